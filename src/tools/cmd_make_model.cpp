#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>

#include "model/model_writer.h"
#include "tools/cli_support.h"
#include "tools/commands.h"

namespace cosy::tools {
namespace {

struct MakeModelOptions {
  std::string preset = "tiny";
  std::string out;
  uint64_t seed = 0;
  std::string tokenizer_dir;
  bool no_voices = false;
  bool no_frontend = false;
  std::string hazard = "none";
};

int run_make_model(const MakeModelOptions& o) {
  const auto start = std::chrono::steady_clock::now();
  const ModelConfig config = preset_config(o.preset);
  WriteModelOptions w;
  w.seed = o.seed;
  w.tokenizer_dir = o.tokenizer_dir;
  // CosyVoice3 folders have no frontend models yet (speech_tokenizer_v3.onnx).
  const bool cv3 = config.family == ModelFamily::CosyVoice3;
  w.voices = !o.no_voices;
  // The frontend models at the preset's scale: the released sizes with the released LM.
  w.frontend = o.no_frontend || cv3 ? WriteModelOptions::Frontend::None
               : o.preset == "tiny" ? WriteModelOptions::Frontend::Tiny
                                    : WriteModelOptions::Frontend::Released;
  w.hazard = parse_hazard(o.hazard);
  write_model_folder(config, o.out, w);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::fprintf(stderr, "wrote %s model (seed %llu) to %s in %.2f s\n", o.preset.c_str(),
               static_cast<unsigned long long>(o.seed), o.out.c_str(), s);
  std::fprintf(stderr, "tokenizer: %s\n",
               w.tokenizer_dir.empty() ? "cosyserve's starter tokenizer (a small byte-level BPE)"
                                       : w.tokenizer_dir.c_str());
  std::fprintf(stderr, "note: random weights produce noise, not speech\n");
  if (w.hazard == WriteModelOptions::Hazard::Loop)
    std::fprintf(stderr, "note: the LM is biased to loop and to hold tokens (--hazard loop)\n");
  if (w.hazard == WriteModelOptions::Hazard::Fp16)
    std::fprintf(stderr, "note: the weights carry fp16 hazards (--hazard fp16)\n");
  return 0;
}

}  // namespace

Command register_make_model(CLI::App& app) {
  auto o = std::make_shared<MakeModelOptions>();
  app.add_option("--preset", o->preset, "Model size: " + join(preset_names()))
      ->check(CLI::IsMember(preset_names()))
      ->capture_default_str();
  app.add_option("--out", o->out, "Output folder")->required();
  app.add_option("--seed", o->seed, "Random seed for the weights")->capture_default_str();
  app.add_option("--tokenizer-dir", o->tokenizer_dir,
                 "Folder with the tokenizer to copy (vocab.json + merges.txt, or "
                 "tokenizer.json); default: write cosyserve's starter tokenizer")
      ->check(CLI::ExistingDirectory);
  app.add_option("--hazard", o->hazard,
                 "none; loop: an LM biased to loop and to hold one token (for trying the "
                 "quality guard); fp16: weights with the fp16 hazards cosyserve audit flags")
      ->check(CLI::IsMember({"none", "loop", "fp16"}))
      ->capture_default_str();
  app.add_flag("--no-voices", o->no_voices, "Do not write spk2info.pt");
  app.add_flag("--no-frontend", o->no_frontend,
               "Do not write the frontend's speech_tokenizer_v2.onnx and campplus.onnx");
  return [o] { return run_make_model(*o); };
}

}  // namespace cosy::tools
