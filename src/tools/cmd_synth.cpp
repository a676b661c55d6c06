// cosyserve synth: text → speech through the Engine API, as a user runs it first.
// Offline (the official stream=False) by default; --stream writes each chunk as it is made
// and reports the first-chunk latency; --incremental feeds the text word by word, as a
// chat LLM would (the bistream path).
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

#include "core/error.h"
#include "io/audio_file.h"
#include "kernels/cpu_backend.h"
#include "model/model_folder.h"
#include "runtime/engine.h"
#include "text/text_frontend.h"
#include "tools/commands.h"

namespace cosy::tools {
namespace {

struct SynthOptions {
  std::string model, voice, text, text_file, out, format = "wav", prompt_wav;
  std::string weights = "fp32", flow_weights = "fp32", hift_weights = "fp32";
  std::string sampling = "ras";
  double temperature = 1.0, top_p = 0.8;
  int64_t top_k = 25, first_hop = 25, fixed_tokens = 0;
  std::optional<int64_t> flow_left_chunks;
  uint64_t seed = 0;
  bool stream = false, incremental = false, segment_per_line = false, half_state = false;
  int threads = 0;
};

std::string read_text(const SynthOptions& o) {
  if (!o.text.empty() && !o.text_file.empty()) fail("give --text or --text-file, not both");
  if (!o.text_file.empty()) {
    std::ifstream in(o.text_file, std::ios::binary);
    if (!in) fail(o.text_file, ": cannot read");
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
  }
  return o.text;
}

// Each non-empty line, normalised but not split further: the user's own segmentation.
std::vector<std::vector<int32_t>> line_segments(const text::TextFrontend& frontend,
                                                const std::string& text) {
  std::vector<std::vector<int32_t>> out;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    const std::string normalized = frontend.normalize(line);
    if (text::is_only_punctuation(normalized)) continue;
    out.push_back(frontend.encode(normalized));
  }
  if (out.empty()) fail("--segment-per-line: no line has text to speak");
  return out;
}

// Words with their following spaces, as a chat LLM streams them.
std::vector<std::string> pieces_of(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t i = 0; i <= text.size(); ++i) {
    if (i == text.size() || (text[i] == ' ' && i + 1 < text.size() && text[i + 1] != ' ')) {
      if (i > start) out.push_back(text.substr(start, i + 1 - start));
      start = i + 1;
    }
  }
  return out;
}

std::string pick_voice(const Engine& engine, const std::string& requested) {
  if (!requested.empty()) {
    (void)engine.voice(requested);  // an Error names the voices there are
    return requested;
  }
  const auto ids = engine.voice_ids();
  if (ids.size() == 1) return ids[0];
  if (ids.empty()) fail("the model folder has no zero-shot voice in spk2info.pt");
  std::string list;
  for (const auto& id : ids) list += (list.empty() ? "" : ", ") + id;
  fail("choose a voice with --voice (", list, ")");
}

int run_synth(const SynthOptions& o) {
  if (!o.prompt_wav.empty()) {
    fail(
        "--prompt-wav: a prompt given as audio needs the speech tokenizer and speaker model, "
        "which cosyserve does not run yet; use --voice with a voice cached in spk2info.pt "
        "(`cosyserve inspect --model DIR` lists them)");
  }
  if (o.half_state && !o.stream) fail("--half-state is for streaming (--stream)");
  if (o.flow_left_chunks && !o.stream)
    fail("--flow-left-chunks is for streaming (--stream): offline synthesis uses full attention");
  if (o.segment_per_line && o.incremental)
    fail("--segment-per-line and --incremental exclude each other (incremental text is not split)");
  const std::string text = read_text(o);
  if (text.find_first_not_of(" \t\r\n") == std::string::npos) fail("no text to speak (--text)");
  // Fail on an unwritable output before the model loads.
  const ModelConfig config = load_model_config(o.model);
  AudioWriter writer(o.out, static_cast<int>(config.sample_rate), parse_audio_format(o.format));
  try {
    const auto t_load = std::chrono::steady_clock::now();
    const ModelFolder folder = load_model_folder(o.model);
    auto backend = cpu::create_cpu_backend(o.threads);
    EngineOptions eo;
    eo.llm_weights = parse_weight_format(o.weights);
    eo.flow_weights = parse_weight_format(o.flow_weights);
    eo.hift_weights = parse_weight_format(o.hift_weights);
    eo.max_streams = 1;
    eo.flow_left_chunks = o.flow_left_chunks;
    Engine engine(*backend, folder, eo);
    if (engine.frontend() == nullptr) {
      fail(o.model,
           "/CosyVoice-BlankEN has no tokenizer files (tokenizer.json, or vocab.json + "
           "merges.txt)");
    }
    const double load_s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t_load).count();

    StreamOptions so;
    so.voice = engine.voice(pick_voice(engine, o.voice));
    so.input = o.incremental ? StreamInput::IncrementalText : StreamInput::Text;
    so.streaming = o.stream;
    so.flow.first_hop = o.first_hop;
    so.flow.half_state = o.half_state;
    so.sampling.method = parse_sampling_method(o.sampling);
    so.sampling.temperature = o.temperature;
    so.sampling.top_k = o.top_k;
    so.sampling.top_p = o.top_p;
    so.sampling.seed = o.seed;
    so.vocoder_seed = o.seed;
    so.fixed_tokens = o.fixed_tokens;

    std::string write_error;
    auto stream = engine.open(so, [&](const AudioChunk& c) {
      try {
        writer.write(c.samples);
      } catch (const std::exception& e) {
        write_error = e.what();
        return false;  // cancels the stream
      }
      return true;
    });
    if (o.incremental) {
      for (const auto& piece : pieces_of(text)) stream->push_text(piece);
    } else if (o.segment_per_line) {
      for (const auto& ids : line_segments(*engine.frontend(), text)) stream->push_text_ids(ids);
    } else {
      stream->push_text(text);
    }
    stream->finish_input();
    const StreamResult r = stream->wait();
    if (!write_error.empty()) fail(write_error);
    if (r.status != StreamStatus::Done)
      fail("synthesis ", stream_status_name(r.status), ": ", r.error);
    writer.close();

    const double audio_s = static_cast<double>(r.samples) / config.sample_rate;
    std::printf("wrote %s: %.2f s of audio, %lld segment(s), %zu speech tokens\n", o.out.c_str(),
                audio_s, static_cast<long long>(r.segments), r.speech_tokens.size());
    std::printf("model load %.2f s; synthesis %.2f s, RTF %.3f", load_s, r.total_s,
                audio_s > 0 ? r.total_s / audio_s : 0.0);
    if (o.stream)
      std::printf("; first chunk after %.3f s (%lld chunks)", r.first_chunk_s,
                  static_cast<long long>(r.chunks));
    std::printf("\n");
    return 0;
  } catch (...) {
    writer.close();
    std::filesystem::remove(o.out);  // no half-written file left behind
    throw;
  }
}

}  // namespace

Command register_synth(CLI::App& app) {
  auto o = std::make_shared<SynthOptions>();
  app.add_option("--model", o->model, "Model folder (official CosyVoice2 layout)")->required();
  app.add_option("--voice", o->voice,
                 "Voice id from the folder's spk2info.pt (default: the only one)");
  app.add_option("--text", o->text, "Text to speak");
  app.add_option("--text-file", o->text_file, "Read the text from a UTF-8 file");
  app.add_option("--out", o->out, "Output audio file")->required();
  app.add_option("--format", o->format, "wav | wav-float | flac | pcm")->capture_default_str();
  app.add_flag(
      "--stream", o->stream,
      "Stream: write chunks as they are made (chunk-causal flow), report first-chunk latency");
  app.add_flag("--incremental", o->incremental,
               "Feed the text word by word, as a chat LLM writes it (bistream)");
  app.add_flag("--segment-per-line", o->segment_per_line,
               "Each line of the text is one segment (normalised, not split further); "
               "`cosyserve tokenize` shows the automatic split");
  app.add_option("--first-hop", o->first_hop, "Streaming: tokens in the first chunk (15 or 25)")
      ->capture_default_str();
  app.add_flag("--half-state", o->half_state,
               "Streaming: keep the flow's cached attention rows in half precision (half the "
               "state memory; the mel differs slightly from the official one)");
  app.add_option("--flow-left-chunks", o->flow_left_chunks,
                 "Streaming: bound the flow's attention to N left chunks (the model's "
                 "num_decoding_left_chunks; bounds the state memory but CHANGES THE OUTPUT "
                 "from the official model's; -1: all)");
  app.add_option("--seed", o->seed, "Seed of the LM sampling and the vocoder noise")
      ->capture_default_str();
  app.add_option("--sampling", o->sampling, "ras | top-k | greedy")->capture_default_str();
  app.add_option("--temperature", o->temperature, "Sampling temperature (top-k)")
      ->capture_default_str();
  app.add_option("--top-k", o->top_k, "Candidates kept (ras, top-k; 0: all)")
      ->capture_default_str();
  app.add_option("--top-p", o->top_p, "Nucleus mass (ras, top-k)")->capture_default_str();
  app.add_option("--weights", o->weights,
                 "LLM weight format: fp32 | fp16 | int8 | w8a8 (w8a8 also quantises the "
                 "activations to int8: not the official numerics; needs AVX512-VNNI)")
      ->capture_default_str();
  app.add_option("--flow-weights", o->flow_weights,
                 "Flow weight format: fp32 | fp16 | bf16 | w8a8 (bf16 rounds the activations, "
                 "w8a8 quantises them to int8 with about 5x bf16's mel difference: not the "
                 "official numerics; need AVX512_BF16 / AVX512-VNNI)")
      ->capture_default_str();
  app.add_option("--hift-weights", o->hift_weights, "Vocoder weight format")->capture_default_str();
  app.add_option("--fixed-tokens", o->fixed_tokens,
                 "Force this many speech tokens per segment (random-weight models)");
  app.add_option("--prompt-wav", o->prompt_wav, "A prompt recording (not supported yet)");
  app.add_option("--threads", o->threads, "Compute threads (0: all cores)")->capture_default_str();
  return [o] { return run_synth(*o); };
}

}  // namespace cosy::tools
