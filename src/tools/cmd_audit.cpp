// cosyserve audit: does a reduced weight format change what the model says? A fixed set of
// texts is spoken in fp32 (the reference: its speech tokens, mel and audio); then, for each
// format, the LM is teacher-forced on the reference's tokens (top-1 agreement: the same
// inputs, so every disagreement is the format's) and the flow and vocoder turn the same
// tokens into mel and audio (SNR and log-spectral distance against fp32). Non-finite values
// anywhere are counted, and the weights are scanned for the known fp16 hazards
// (model/precision_hazards.h). This is how a team finds out whether its accelerator's
// precision is what makes the model babble.
#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>

#include "core/error.h"
#include "kernels/cpu_backend.h"
#include "model/lm/teacher_forcing.h"
#include "model/model_folder.h"
#include "model/precision_hazards.h"
#include "model/spectral_distance.h"
#include "runtime/engine.h"
#include "tools/cli_support.h"
#include "tools/commands.h"

namespace cosy::tools {
namespace {

using Json = nlohmann::json;

// English, Chinese, and written forms the normaliser reads out: one segment each.
constexpr const char* kTexts[] = {
    "The quick brown fox jumps over the lazy dog near the river bank.",
    "今天天气很好，我们一起去公园散步吧。",
    "Your order 4521 ships on May 3rd, and the total is $19.99.",
    "Please call me back when you have a minute to talk about the plan.",
};

struct AuditOptions {
  std::string model, voice, json;
  std::vector<std::string> formats;
  int64_t texts = 3;
  uint64_t seed = 1;
  int threads = 0;
  // The LM's length bound: the official 20 speech tokens per text token; random-weight
  // models (which never stop on their own) audit faster with less.
  double max_token_text_ratio = 20;
};

// What one text became in fp32, and its LM inputs for teacher forcing.
struct Reference {
  std::vector<LmInput> inputs;  // sos, prompt text + text, task_id, prompt speech, tokens
  int64_t from = 0;             // the position whose logits predict the first token
  std::vector<int32_t> tokens;
  std::vector<float> mel, audio;
};

struct Spoken {
  std::vector<float> mel, audio;
  std::string error;  // the stream failed (a non-finite mel or audio says so)
};

// Runs one offline stream of `so` (`feed` gives it its input) and keeps its mel and audio.
template <typename Feed>
Spoken run_stream(Engine& engine, const StreamOptions& so, Feed&& feed,
                  StreamResult* result = nullptr) {
  Spoken out;
  std::mutex mutex;
  auto stream = engine.open(so, [&](const AudioChunk& c) {
    std::lock_guard lock(mutex);
    out.mel.insert(out.mel.end(), c.mel.begin(), c.mel.end());
    out.audio.insert(out.audio.end(), c.samples.begin(), c.samples.end());
    return true;
  });
  feed(*stream);
  stream->finish_input();
  const StreamResult r = stream->wait();
  if (r.status != StreamStatus::Done) out.error = r.error;
  if (result != nullptr) *result = r;
  return out;
}

// The speech tokens `tokens` through `engine`'s flow and vocoder, offline.
Spoken speak_tokens(Engine& engine, const std::shared_ptr<const VoicePrompt>& voice,
                    const std::vector<int32_t>& tokens, uint64_t seed) {
  StreamOptions so;
  so.voice = voice;
  so.input = StreamInput::SpeechTokens;
  so.streaming = false;
  so.vocoder_seed = seed;
  return run_stream(engine, so, [&](SynthesisStream& s) { s.push_speech_tokens(tokens); });
}

std::vector<int32_t> text_ids(const Engine& engine, const std::string& text, size_t index) {
  if (engine.frontend() == nullptr) {  // no tokenizer files: plain ids of the same length
    std::vector<int32_t> ids(14);
    for (size_t i = 0; i < ids.size(); ++i)
      ids[i] = static_cast<int32_t>((37 * (i + index) + 5) % 200);
    return ids;
  }
  const auto segments = engine.frontend()->prepare(text);
  if (segments.empty()) fail("audit: the text '", text, "' has nothing to speak");
  return segments.front().ids;
}

Reference speak_reference(Engine& engine, const std::shared_ptr<const VoicePrompt>& voice,
                          const std::vector<int32_t>& ids, uint64_t seed, double max_ratio) {
  StreamOptions so;
  so.voice = voice;
  so.max_token_text_ratio = max_ratio;
  so.min_token_text_ratio = std::min(so.min_token_text_ratio, max_ratio);
  so.streaming = false;
  so.sampling.seed = seed;
  so.vocoder_seed = seed;
  StreamResult r;
  const Spoken spoken = run_stream(
      engine, so, [&](SynthesisStream& s) { s.push_text_ids(ids); }, &r);
  if (!spoken.error.empty()) fail("audit: the fp32 reference failed: ", spoken.error);
  Reference ref;
  ref.tokens = r.speech_tokens;
  ref.inputs.push_back({LmInputKind::Sos, 0});
  for (int32_t t : voice->text) ref.inputs.push_back({LmInputKind::Text, t});
  for (int32_t t : ids) ref.inputs.push_back({LmInputKind::Text, t});
  ref.inputs.push_back({LmInputKind::TaskId, 0});
  for (int32_t t : voice->lm_speech) ref.inputs.push_back({LmInputKind::Speech, t});
  ref.from = static_cast<int64_t>(ref.inputs.size()) - 1;
  // The last token's own row predicts nothing the reference said: leave it out.
  for (size_t i = 0; i + 1 < ref.tokens.size(); ++i)
    ref.inputs.push_back({LmInputKind::Speech, ref.tokens[i]});
  return ref;
}

int64_t count_nonfinite(std::span<const float> v) {
  int64_t n = 0;
  for (float x : v) n += std::isfinite(x) ? 0 : 1;
  return n;
}

double max_abs(std::span<const float> v) {
  double m = 0;
  for (float x : v) {
    if (std::isfinite(x)) m = std::max(m, std::fabs(static_cast<double>(x)));
  }
  return m;
}

// Whether a stage accepts `format` (its weights prepared in it); why not, when it does not.
template <typename Load>
std::string refusal(Load&& load) {
  try {
    load();
    return "";
  } catch (const std::exception& e) {
    return e.what();
  }
}

Json hazard_json(const PrecisionHazard& h) {
  return {{"stage", h.stage}, {"kind", h.kind},       {"where", h.where},    {"count", h.count},
          {"worst", h.worst}, {"flagged", h.flagged}, {"message", h.message}};
}

int run_audit(const AuditOptions& o) {
  if (o.texts < 1 || o.texts > static_cast<int64_t>(std::size(kTexts)))
    usage_fail("--texts must be in 1..", std::size(kTexts));
  std::vector<WeightFormat> formats;
  for (const auto& f : o.formats) {
    const WeightFormat w = parse_weight_format(f);
    if (w == WeightFormat::F32) usage_fail("--formats: fp32 is the reference; list the others");
    formats.push_back(w);
  }
  const ModelFolder folder = load_model_folder(o.model);
  auto backend = cpu::create_cpu_backend(o.threads);
  Engine reference(*backend, folder);
  const std::string voice_id =
      !o.voice.empty() ? o.voice : (reference.voice_ids().empty() ? "" : reference.voice_ids()[0]);
  const auto voice = reference.voice(voice_id);
  if (voice == nullptr) fail("audit: no voice '", voice_id, "' in ", o.model);

  Json report = {{"model", o.model}, {"voice", voice_id}, {"seed", o.seed}};
  std::vector<Reference> refs;
  std::vector<TeacherForced> ref_tf;
  int64_t positions = 0;
  for (int64_t i = 0; i < o.texts; ++i) {
    const auto ids = text_ids(reference, kTexts[i], static_cast<size_t>(i));
    refs.push_back(speak_reference(reference, voice, ids, o.seed + static_cast<uint64_t>(i),
                                   o.max_token_text_ratio));
    // The flow and vocoder's reference from the same path the formats take (token input).
    const Spoken again =
        speak_tokens(reference, voice, refs.back().tokens, o.seed + static_cast<uint64_t>(i));
    if (!again.error.empty()) fail("audit: the fp32 reference failed: ", again.error);
    refs.back().mel = again.mel;
    refs.back().audio = again.audio;
    ref_tf.push_back(
        teacher_forced(*backend, reference.lm(), refs.back().inputs, refs.back().from));
    positions += static_cast<int64_t>(ref_tf.back().top1.size());
  }
  double ref_logit = 0;
  int64_t ref_nonfinite = 0;
  for (const auto& t : ref_tf) {
    ref_logit = std::max(ref_logit, t.max_abs_logit);
    ref_nonfinite += t.nonfinite;
  }
  double ref_mel = 0;
  for (const auto& r : refs) ref_mel = std::max(ref_mel, max_abs(r.mel));
  std::printf("audit of %s: voice %s, %lld texts, %lld teacher-forced positions\n", o.model.c_str(),
              voice_id.c_str(), static_cast<long long>(o.texts), static_cast<long long>(positions));
  std::printf("fp32 reference: max |logit| %.1f, max |mel| %.2f, non-finite logits %lld\n",
              ref_logit, ref_mel, static_cast<long long>(ref_nonfinite));
  report["reference"] = {{"max_abs_logit", ref_logit},
                         {"max_abs_mel", ref_mel},
                         {"nonfinite_logits", ref_nonfinite},
                         {"positions", positions}};

  report["formats"] = Json::array();
  for (const WeightFormat f : formats) {
    const std::string name = weight_format_name(f);
    Json fj = {{"format", name}};
    // The LM, teacher-forced.
    std::optional<SpeechLm> lm;
    try {
      lm.emplace(*backend, folder.config.llm, folder.llm, f);
    } catch (const std::exception& e) {
      fj["llm"] = {{"refused", e.what()}};
      std::printf("llm %s: refused: %s\n", name.c_str(), e.what());
    }
    if (lm) {
      int64_t same = 0, total = 0, nonfinite = 0;
      double logit = 0;
      for (size_t i = 0; i < refs.size(); ++i) {
        const TeacherForced t = teacher_forced(*backend, *lm, refs[i].inputs, refs[i].from);
        same += static_cast<int64_t>(
            std::llround(top1_agreement(t, ref_tf[i]) * static_cast<double>(t.top1.size())));
        total += static_cast<int64_t>(t.top1.size());
        nonfinite += t.nonfinite;
        logit = std::max(logit, t.max_abs_logit);
      }
      const double agreement =
          static_cast<double>(same) / static_cast<double>(std::max<int64_t>(total, 1));
      fj["llm"] = {{"top1_agreement", agreement},
                   {"positions", total},
                   {"nonfinite_logits", nonfinite},
                   {"max_abs_logit", logit}};
      std::printf(
          "llm %s: teacher-forced top-1 agreement with fp32 %.1f%% over %lld positions; "
          "max |logit| %.1f; non-finite logits %lld\n",
          name.c_str(), 100 * agreement, static_cast<long long>(total), logit,
          static_cast<long long>(nonfinite));
      lm.reset();
    }
    // The flow and the vocoder, each in the format where it takes it.
    const std::string flow_no =
        refusal([&] { load_flow_stage(*backend, folder, folder.config.flow, f); });
    const std::string hift_no = refusal([&] { load_vocoder_stage(*backend, folder, f); });
    EngineOptions eo;
    eo.llm_weights = WeightFormat::F32;
    eo.flow_weights = flow_no.empty() ? f : WeightFormat::F32;
    eo.hift_weights = hift_no.empty() ? f : WeightFormat::F32;
    if (!flow_no.empty()) fj["flow_refused"] = flow_no;
    if (!hift_no.empty()) fj["hift_refused"] = hift_no;
    fj["flow_format"] = weight_format_name(eo.flow_weights);
    fj["hift_format"] = weight_format_name(eo.hift_weights);
    if (flow_no.empty() || hift_no.empty()) {
      Engine engine(*backend, folder, eo);
      const auto v = engine.voice(voice_id);
      double mel_snr = INFINITY, audio_snr = INFINITY, lsd = 0, mel_err = 0;
      std::string failure;
      int64_t nonfinite = 0;
      for (size_t i = 0; i < refs.size() && failure.empty(); ++i) {
        const Spoken s = speak_tokens(engine, v, refs[i].tokens, o.seed + i);
        if (!s.error.empty()) {
          failure = s.error;
          break;
        }
        nonfinite += count_nonfinite(s.mel) + count_nonfinite(s.audio);
        if (s.mel.size() != refs[i].mel.size() || s.audio.size() != refs[i].audio.size()) {
          failure = "the output's length differs from fp32's";
          break;
        }
        mel_snr = std::min(mel_snr, snr_db(s.mel, refs[i].mel));
        audio_snr = std::min(audio_snr, snr_db(s.audio, refs[i].audio));
        for (size_t k = 0; k < s.mel.size(); ++k)
          mel_err = std::max(mel_err, std::fabs(double(s.mel[k]) - refs[i].mel[k]));
        lsd = std::max(lsd, spectral_distance(s.audio, refs[i].audio).log_magnitude_db);
      }
      const std::string stages = cat("flow ", weight_format_name(eo.flow_weights), ", hift ",
                                     weight_format_name(eo.hift_weights));
      if (!failure.empty()) {
        fj["audio"] = {{"failed", failure}};
        std::printf("flow+hift %s (%s): FAILED: %s\n", name.c_str(), stages.c_str(),
                    failure.c_str());
      } else {
        const auto finite_or_null = [](double x) {
          return std::isfinite(x) ? Json(x) : Json(nullptr);
        };
        fj["audio"] = {{"mel_snr_db", finite_or_null(mel_snr)},
                       {"mel_max_abs_error", mel_err},
                       {"audio_snr_db", finite_or_null(audio_snr)},
                       {"log_spectral_distance_db", lsd},
                       {"nonfinite", nonfinite}};
        std::printf(
            "flow+hift %s (%s): mel SNR %.1f dB (max |error| %.4f); audio SNR %.1f dB, "
            "log-spectral distance %.3f dB; non-finite %lld\n",
            name.c_str(), stages.c_str(), mel_snr, mel_err, audio_snr, lsd,
            static_cast<long long>(nonfinite));
      }
    } else {
      std::printf("flow+hift %s: refused by both stages (flow: %s)\n", name.c_str(),
                  flow_no.c_str());
    }
    report["formats"].push_back(fj);
  }

  // The weights' own hazards, and what fp32 measured against fp16's range.
  std::vector<PrecisionHazard> hazards;
  for (const auto& [stage, sd] : {std::pair<const char*, const StateDict*>{"llm", &folder.llm},
                                  {"flow", &folder.flow},
                                  {"hift", &folder.hift}}) {
    for (auto& h : weight_hazards(stage, *sd)) hazards.push_back(std::move(h));
  }
  hazards.push_back(snake_alpha_hazard(folder.hift));
  hazards.push_back(attention_logit_hazard(folder.config.llm, folder.llm));
  PrecisionHazard logits{
      "llm",
      "logit_range",
      "teacher-forced fp32",
      0,
      ref_logit,
      ref_logit > kFp16Max,
      cat("fp32 logits reach |", ref_logit, "|", ref_logit > kFp16Max ? ": beyond fp16" : "")};
  hazards.push_back(logits);
  report["hazards"] = Json::array();
  int64_t flagged = 0;
  for (const PrecisionHazard& h : hazards) {
    report["hazards"].push_back(hazard_json(h));
    flagged += h.flagged ? 1 : 0;
    std::printf("%s %s %s: %s\n", h.flagged ? "HAZARD" : "ok    ", h.stage.c_str(), h.kind.c_str(),
                h.message.c_str());
  }
  report["hazards_flagged"] = flagged;
  if (!o.json.empty()) {
    std::ofstream out(o.json);
    out << report.dump(2) << "\n";
    if (!out) fail(o.json, ": cannot write");
    std::fprintf(stderr, "wrote %s\n", o.json.c_str());
  }
  return 0;
}

}  // namespace

Command register_audit(CLI::App& app) {
  auto o = std::make_shared<AuditOptions>();
  app.add_option("--model", o->model, "Model folder (official CosyVoice2 or CosyVoice3 layout)")
      ->required();
  app.add_option("--voice", o->voice, "Voice id (default: the folder's first)");
  app.add_option("--formats", o->formats,
                 "Reduced formats to audit against fp32 (comma-separated; default: every one "
                 "this CPU runs): " +
                     join(weight_format_names()))
      ->delimiter(',');
  app.add_option("--texts", o->texts, "How many of the built-in texts to speak")
      ->capture_default_str();
  app.add_option("--max-token-text-ratio", o->max_token_text_ratio,
                 "Speech tokens per text token at most (the official bound is 20; less makes "
                 "random-weight models faster to audit)")
      ->check(CLI::Range(0.5, 20.0))
      ->capture_default_str();
  app.add_option("--seed", o->seed, "Seed of the reference's sampling and vocoder")
      ->capture_default_str();
  app.add_option("--json", o->json, "Write the figures as JSON");
  app.add_option("--threads", o->threads, "Compute threads (0: all cores)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  return [o] {
    if (o->formats.empty()) {
      auto probe = cpu::create_cpu_backend(1);
      for (const auto& f : weight_format_names()) {
        const WeightFormat w = parse_weight_format(f);
        if (w != WeightFormat::F32 && probe->supports_weight_format(w)) o->formats.push_back(f);
      }
    }
    return run_audit(*o);
  };
}

}  // namespace cosy::tools
