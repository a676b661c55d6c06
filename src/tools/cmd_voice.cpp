// `cosyserve voice add | list | remove`: the folder's voice file, spk2info.pt, in the
// official format, so voices made here work in the official toolkit and the other way round.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <memory>

#include "core/error.h"
#include "core/file_io.h"
#include "model/model_folder.h"
#include "model/voices.h"
#include "runtime/voice_maker.h"
#include "text/text_frontend.h"
#include "tools/cli_support.h"
#include "tools/commands.h"

namespace cosy::tools {

namespace {

struct VoiceOptions {
  std::string model, wav, text, id;
  bool force = false;
};

std::filesystem::path voice_file(const std::string& model) {
  return std::filesystem::path(model) / "spk2info.pt";
}

VoiceBank existing_voices(const std::string& model, const ModelConfig& config) {
  const auto path = voice_file(model);
  if (!std::filesystem::exists(path)) return {};
  return load_voices(path, config);
}

int run_add(const VoiceOptions& o) {
  const ModelConfig config = load_model_config(o.model);
  if (!is_valid_voice_id(o.id))
    usage_fail("--id '", o.id, "': use 1 to 64 letters, digits, '_', '-' or '.'");
  VoiceBank bank = existing_voices(o.model, config);
  if (bank.find(o.id) != nullptr && !o.force) {
    fail("voice '", o.id, "' is already in ", voice_file(o.model).string(),
         " (--force replaces it)");
  }
  const text::TextFrontend text = load_text_frontend(o.model, config.family);
  const VoiceMaker maker(o.model, config, text);
  const std::string audio = read_whole_file(o.wav);
  Voice v = maker.make(o.id, std::as_bytes(std::span(audio.data(), audio.size())), o.wav, o.text);
  const Tensor* emb = v.find("flow_embedding");
  if (emb->numel() != config.flow.spk_embed_dim) {
    fail(voice::kSpeakerEncoderFile, " gives a ", emb->numel(), "-d embedding; the flow takes ",
         config.flow.spk_embed_dim);
  }
  const int64_t tokens = v.find("flow_prompt_speech_token")->numel();
  std::erase_if(bank.voices, [&](const Voice& x) { return x.id == o.id; });
  bank.voices.push_back(std::move(v));
  save_voices(voice_file(o.model), bank);
  (void)load_voices(voice_file(o.model), config);  // what we wrote reads back
  std::printf("added voice '%s' to %s: %lld prompt tokens (%.2f s)\n", o.id.c_str(),
              voice_file(o.model).string().c_str(), static_cast<long long>(tokens),
              static_cast<double>(tokens) / static_cast<double>(config.token_frame_rate));
  return 0;
}

int run_list(const VoiceOptions& o) {
  const ModelConfig config = load_model_config(o.model);
  const VoiceBank bank = existing_voices(o.model, config);
  for (const Voice& v : bank.voices) {
    const Tensor* t = v.find("flow_prompt_speech_token");
    if (v.is_zero_shot() && t != nullptr) {
      std::printf("%s\tzero-shot\t%.2f s\n", v.id.c_str(),
                  static_cast<double>(t->numel()) / static_cast<double>(config.token_frame_rate));
    } else {
      std::printf("%s\t%s\n", v.id.c_str(),
                  v.has("embedding") ? "sft (embedding only)" : "incomplete");
    }
  }
  return 0;
}

int run_remove(const VoiceOptions& o) {
  const ModelConfig config = load_model_config(o.model);
  VoiceBank bank = existing_voices(o.model, config);
  if (bank.find(o.id) == nullptr) fail("no voice '", o.id, "' in ", voice_file(o.model).string());
  std::erase_if(bank.voices, [&](const Voice& x) { return x.id == o.id; });
  save_voices(voice_file(o.model), bank);
  std::printf("removed voice '%s'\n", o.id.c_str());
  return 0;
}

}  // namespace

Command register_voice(CLI::App& app) {
  auto o = std::make_shared<VoiceOptions>();
  app.require_subcommand(1);
  CLI::App* add =
      app.add_subcommand("add", "Make a zero-shot voice from a recording and its transcript");
  add->add_option("--model", o->model, "Model folder (official CosyVoice2 or CosyVoice3 layout)")
      ->required();
  add->add_option("--wav", o->wav,
                  "The recording (WAV, FLAC, Ogg/Opus, MP3; 16 kHz or more, up to 30 s)")
      ->required();
  add->add_option("--text", o->text, "What the recording says")->required();
  add->add_option("--id", o->id, "The voice's name")->required();
  add->add_flag("--force", o->force, "Replace a voice of the same name");
  CLI::App* list = app.add_subcommand("list", "List the folder's voices");
  list->add_option("--model", o->model, "Model folder")->required();
  CLI::App* remove = app.add_subcommand("remove", "Remove a voice from the folder");
  remove->add_option("--model", o->model, "Model folder")->required();
  remove->add_option("--id", o->id, "The voice's name")->required();
  return [o, add, list] {
    if (add->parsed()) return run_add(*o);
    if (list->parsed()) return run_list(*o);
    return run_remove(*o);
  };
}

}  // namespace cosy::tools
