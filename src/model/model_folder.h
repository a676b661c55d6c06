// A CosyVoice2 or CosyVoice3 model folder as released (cosyvoice2.yaml or cosyvoice3.yaml,
// CosyVoice-BlankEN/, llm.pt, flow.pt, hift.pt, optional spk2info.pt), loaded without Python. The
// weights are read-only views of file mappings: load it once and share it between all streams.
#pragma once

#include <filesystem>
#include <future>
#include <optional>

#include "io/torch_checkpoint.h"
#include "model/config.h"
#include "model/voices.h"
#include "text/text_frontend.h"

namespace cosy {

struct ModelFolder {
  std::filesystem::path dir;
  ModelConfig config;
  StateDict llm;
  StateDict flow;
  StateDict hift;
  std::optional<VoiceBank> voices;  // when spk2info.pt is present

  // The CRC-32 check of every record of the loaded checkpoints. It runs in the background
  // from the end of loading, so that packing the weights goes on meanwhile; whoever is
  // about to serve or write results calls wait_verified(), which throws if a record is
  // corrupt. (A checkpoint's tensors are otherwise only checked for shape and bounds.)
  std::shared_future<void> verification;
  void wait_verified() const;
};

struct LoadOptions {
  bool llm = true;
  bool flow = true;
  bool hift = true;
  bool voices = true;
  // Check the records' CRC-32 on a background thread (false: before returning).
  bool verify_in_background = true;
};

// Which family a folder holds, by its yaml, as the official AutoModel decides.
ModelFamily model_folder_family(const std::filesystem::path& dir);
// The text frontend of a folder of that family: <dir>/CosyVoice-BlankEN's tokenizer with
// the family's special tokens and rules (text/text_frontend.h).
text::TextFrontend load_text_frontend(const std::filesystem::path& dir, ModelFamily family);
// The configs alone (the family's yaml + CosyVoice-BlankEN/config.json), validated.
ModelConfig load_model_config(const std::filesystem::path& dir);
// Loads configs and the selected checkpoints, and checks every tensor's shape against the
// configs. Errors name the file and what is wrong.
ModelFolder load_model_folder(const std::filesystem::path& dir, const LoadOptions& options = {});

}  // namespace cosy
