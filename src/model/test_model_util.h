// Helpers for model tests: a small random model folder written by our own writer.
#pragma once

#include <filesystem>
#include <string>

#include "core/test_support.h"
#include "model/model_writer.h"

namespace cosy::testing {

// The tiny preset with a small text vocabulary, so tests write a folder in milliseconds.
inline ModelConfig small_config() {
  ModelConfig c = preset_config("tiny");
  c.llm.qwen.vocab_size = 300;
  return c;
}

inline std::filesystem::path write_small_model(
    const std::string& name, uint64_t seed = 1,
    WriteModelOptions::Hazard hazard = WriteModelOptions::Hazard::None) {
  const auto dir = scratch_dir(name);
  WriteModelOptions options;
  options.seed = seed;
  options.hazard = hazard;
  write_model_folder(small_config(), dir, options);
  return dir;
}

// The error message `fn` throws, or "" when it does not throw.
template <typename Fn>
std::string error_of(Fn&& fn) {
  try {
    fn();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

}  // namespace cosy::testing
