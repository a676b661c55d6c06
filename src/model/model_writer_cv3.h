// CosyVoice3's half of model_writer.h: the presets' configs and cosyvoice3.yaml.
#pragma once

#include <ostream>
#include <string>

#include "model/config.h"

namespace cosy {

// The sections both families' yaml share (model_writer.cpp).
void write_yaml_preamble(std::ostream& y, const ModelConfig& c, const std::string& file,
                         int64_t left_chunks);
void write_yaml_llm(std::ostream& y, const LlmConfig& l);
void write_yaml_cfm(std::ostream& y, const CfmConfig& decoder);
void write_yaml_hift(std::ostream& y, const HiftConfig& h);

// Fun-CosyVoice3-0.5B's dimensions (`full`), or a tiny model for tests.
ModelConfig cosyvoice3_preset_config(bool full);
// cosyvoice3.yaml text in the structure of the official examples' file.
std::string cosyvoice3_yaml(const ModelConfig& c);

}  // namespace cosy
