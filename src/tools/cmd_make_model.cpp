#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>

#include "model/model_writer.h"
#include "tools/commands.h"

namespace cosy::tools {
namespace {

struct MakeModelOptions {
  std::string preset = "tiny";
  std::string out;
  uint64_t seed = 0;
  std::string tokenizer_dir;
  bool no_voices = false;
};

// The fixture tokenizer, when COSY_GOLDEN_DIR points at one: real weights ship their own.
std::string default_tokenizer_dir() {
  const char* golden = std::getenv("COSY_GOLDEN_DIR");
  if (golden == nullptr) return "";
  const auto dir = std::filesystem::path(golden) / "tokenizer" / "model";
  return std::filesystem::exists(dir / "vocab.json") ? dir.string() : "";
}

int run_make_model(const MakeModelOptions& o) {
  const auto start = std::chrono::steady_clock::now();
  const ModelConfig config = preset_config(o.preset);
  WriteModelOptions w;
  w.seed = o.seed;
  w.tokenizer_dir = o.tokenizer_dir.empty() ? default_tokenizer_dir() : o.tokenizer_dir;
  w.voices = !o.no_voices;
  write_model_folder(config, o.out, w);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("wrote %s model (seed %llu) to %s in %.2f s\n", o.preset.c_str(),
              static_cast<unsigned long long>(o.seed), o.out.c_str(), s);
  if (w.tokenizer_dir.empty()) {
    std::printf("note: no tokenizer files copied (pass --tokenizer-dir, or set COSY_GOLDEN_DIR)\n");
  }
  std::printf("note: random weights produce noise, not speech\n");
  return 0;
}

}  // namespace

Command register_make_model(CLI::App& app) {
  auto o = std::make_shared<MakeModelOptions>();
  app.add_option("--preset", o->preset, "tiny | cosyvoice2-0.5b")
      ->check(CLI::IsMember(preset_names()));
  app.add_option("--out", o->out, "Output folder")->required();
  app.add_option("--seed", o->seed, "Random seed for the weights");
  app.add_option("--tokenizer-dir", o->tokenizer_dir,
                 "Folder with vocab.json, merges.txt, tokenizer.json")
      ->check(CLI::ExistingDirectory);
  app.add_flag("--no-voices", o->no_voices, "Do not write spk2info.pt");
  return [o] { return run_make_model(*o); };
}

}  // namespace cosy::tools
