// CosyVoice3's half of model_writer.h: the presets' configs and cosyvoice3.yaml.
#pragma once

#include <string>

#include "model/config.h"

namespace cosy {

// Fun-CosyVoice3-0.5B's dimensions (`full`), or a tiny model for tests.
ModelConfig cosyvoice3_preset_config(bool full);
// cosyvoice3.yaml text in the structure of the official examples' file.
std::string cosyvoice3_yaml(const ModelConfig& c);

}  // namespace cosy
