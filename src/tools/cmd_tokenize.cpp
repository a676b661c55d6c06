// cosyserve tokenize: what the text frontend makes of a text, as synth would feed it to the
// LM: the normalised text, the segments and each segment's token ids.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "model/model_folder.h"
#include "text/text_frontend.h"
#include "tools/commands.h"

namespace cosy::tools {
namespace {

struct TokenizeOptions {
  std::string model, text;
  bool json = false;
};

int run_tokenize(const TokenizeOptions& o) {
  const auto frontend = load_text_frontend(o.model, model_folder_family(o.model));
  const std::string normalized = frontend.normalize(o.text);
  const auto segments = frontend.prepare(o.text);
  if (o.json) {
    nlohmann::json j = {{"normalized", normalized}, {"segments", nlohmann::json::array()}};
    for (const auto& s : segments) j["segments"].push_back({{"text", s.text}, {"ids", s.ids}});
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  std::printf("normalized: %s\n", normalized.c_str());
  for (size_t i = 0; i < segments.size(); ++i) {
    std::printf("segment %zu (%zu tokens): %s\n  ids:", i, segments[i].ids.size(),
                segments[i].text.c_str());
    for (const int32_t id : segments[i].ids) std::printf(" %d", id);
    std::printf("\n");
  }
  if (segments.empty()) std::printf("(nothing to speak)\n");
  return 0;
}

}  // namespace

Command register_tokenize(CLI::App& app) {
  auto o = std::make_shared<TokenizeOptions>();
  app.add_option("--model", o->model, "Model folder (its CosyVoice-BlankEN/ tokenizer)")
      ->required();
  app.add_option("text", o->text, "Text (UTF-8)")->required();
  app.add_flag("--json", o->json, "Print JSON");
  return [o] { return run_tokenize(*o); };
}

}  // namespace cosy::tools
