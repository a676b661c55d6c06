// cosyserve synth: text → speech through the Engine API, as a user runs it first.
// Offline (the official stream=False) by default; --stream writes each chunk as it is made
// and reports the first-chunk latency; --incremental feeds the text word by word, as a
// chat LLM would (the bistream path). Status lines go to stderr, so `--out -` can carry
// the audio on stdout.
#include <sys/stat.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>

#include "core/error.h"
#include "core/file_io.h"
#include "kernels/cpu_backend.h"
#include "model/flow/flow_stream.h"
#include "model/model_folder.h"
#include "runtime/engine.h"
#include "runtime/voice_maker.h"
#include "text/text_frontend.h"
#include "tools/audio_output.h"
#include "tools/cli_support.h"
#include "tools/commands.h"
#include "tools/interrupt.h"
#include "tools/progress_line.h"

namespace cosy::tools {
namespace {

struct SynthOptions {
  std::string model, voice, text, text_file, out, format, prompt_wav, prompt_text, instruct;
  std::string trace;
  bool cross_lingual = false;
  double speed = 1.0;
  std::string weights = "fp32", flow_weights = "fp32", hift_weights = "fp32";
  std::string sampling = "ras";
  QualityGuardOptions guard;
  BeamSearchOptions beams;
  double temperature = 1.0, top_p = 0.8;
  int64_t top_k = 25, first_hop = 25, fixed_tokens = 0;
  int64_t max_input_chars = EngineOptions{}.max_input_chars;
  std::optional<int64_t> flow_left_chunks;
  uint64_t seed = 0;
  bool stream = false, incremental = false, segment_per_line = false, half_state = false;
  int threads = 0;
  std::string tuning, allow_formats;
};

int64_t code_points(const std::string& utf8) {
  int64_t n = 0;
  for (const char c : utf8) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

std::string read_text_file(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) fail("--text-file ", path, ": ", std::strerror(errno));
  if (S_ISDIR(st.st_mode)) fail("--text-file ", path, ": is a directory, not a text file");
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("--text-file ", path, ": cannot read it");
  std::ostringstream s;
  s << in.rdbuf();
  if (in.bad()) fail("--text-file ", path, ": reading failed");
  std::string text = s.str();
  if (text.empty()) fail("--text-file ", path, ": the file is empty");
  return text;
}

std::string read_text(const SynthOptions& o) {
  if (!o.text.empty() && !o.text_file.empty()) usage_fail("give --text or --text-file, not both");
  if (o.text.empty() && o.text_file.empty())
    usage_fail("nothing to speak: give the text with --text or --text-file");
  const std::string text = o.text_file.empty() ? o.text : read_text_file(o.text_file);
  const std::string source = o.text_file.empty() ? "--text" : "--text-file " + o.text_file;
  if (text.find_first_not_of(" \t\r\n") == std::string::npos)
    fail(source, ": holds only white space");
  if (const int64_t n = code_points(text); n > o.max_input_chars) {
    fail(source, ": ", n, " characters, over the limit of ", o.max_input_chars,
         " (--max-input-chars; raise it to speak a longer text)");
  }
  return text;
}

// Each non-empty line, normalised but not split further: the user's own segmentation.
std::vector<std::vector<int32_t>> line_segments(const text::TextFrontend& frontend,
                                                const std::string& text) {
  std::vector<std::vector<int32_t>> out;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    const std::string normalized = frontend.normalize(line);
    if (text::has_nothing_to_speak(normalized)) continue;
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
  fail("choose a voice with --voice (", join(ids, ", "), ")");
}

void check_combinations(const SynthOptions& o) {
  if (!o.prompt_wav.empty() && !o.voice.empty())
    usage_fail("--prompt-wav and --voice exclude each other");
  if (!o.prompt_wav.empty() && o.prompt_text.empty() && !o.cross_lingual && o.instruct.empty()) {
    usage_fail(
        "--prompt-wav needs --prompt-text (the words it says), or --cross-lingual or --instruct, "
        "which do not use them");
  }
  if (o.prompt_wav.empty() && !o.prompt_text.empty())
    usage_fail("--prompt-text goes with --prompt-wav");
  if (o.cross_lingual && !o.instruct.empty())
    usage_fail("--cross-lingual and --instruct exclude each other");
  if (o.half_state && !o.stream) usage_fail("--half-state is for streaming (--stream)");
  if (o.flow_left_chunks && !o.stream)
    usage_fail(
        "--flow-left-chunks is for streaming (--stream): offline synthesis uses full attention");
  if (o.segment_per_line && o.incremental)
    usage_fail(
        "--segment-per-line and --incremental exclude each other (incremental text is not split)");
  if (o.sampling == "ras" && o.top_k < 1)
    usage_fail("--top-k ", o.top_k, ": ras sampling needs at least 1 candidate");
}

// The output and the stream being synthesised, for the interrupt handler: cancel the stream
// if there is one, else (still loading) remove the output and exit. The output is opened
// under the same lock, after the handler is installed, so that a signal that comes while
// the file is being created waits for it and removes it, and one that comes before finds
// nothing to remove.
class InterruptTarget {
 public:
  AudioOutput& open(const std::string& path, const std::string& format, int sample_rate) {
    std::lock_guard lock(mutex_);
    out_ = std::make_unique<AudioOutput>(path, format, sample_rate);
    return *out_;
  }
  void on_interrupt() {
    std::lock_guard lock(mutex_);
    if (stream_) {
      stream_->cancel();
      return;
    }
    if (out_) out_->abandon();
    std::fprintf(stderr, "interrupted: nothing written\n");
    _exit(128 + interrupt_signal());
  }
  void set(std::shared_ptr<SynthesisStream> stream) {
    std::lock_guard lock(mutex_);
    stream_ = std::move(stream);
  }

 private:
  std::mutex mutex_;
  std::unique_ptr<AudioOutput> out_;
  std::shared_ptr<SynthesisStream> stream_;
};

int run_synth(const SynthOptions& o) {
  check_combinations(o);
  const std::string text = read_text(o);
  // Fail on an unwritable output or a clashing format before the model loads.
  const ModelConfig config = load_model_config(o.model);
  InterruptTarget target;
  InterruptHandler on_interrupt([&target] { target.on_interrupt(); });
  AudioOutput& out = target.open(o.out, o.format, static_cast<int>(config.sample_rate));
  try {
    const auto t_load = std::chrono::steady_clock::now();
    const ModelFolder folder = load_model_folder(o.model);
    auto backend = cpu::create_cpu_backend(o.threads);
    apply_kernel_tuning(o.tuning, o.threads);
    EngineOptions eo;
    const StageWeightFormats formats = resolve_weight_formats(
        o.model, o.weights, o.flow_weights, o.hift_weights, o.allow_formats, o.tuning, o.threads);
    eo.llm_weights = formats.llm;
    eo.flow_weights = formats.flow;
    eo.hift_weights = formats.hift;
    eo.max_streams = 1;
    eo.max_input_chars = o.max_input_chars;
    eo.flow_left_chunks = o.flow_left_chunks;
    Engine engine(*backend, folder, eo);
    if (engine.frontend() == nullptr) {
      fail(o.model,
           "/CosyVoice-BlankEN has no tokenizer files (tokenizer.json, or vocab.json + "
           "merges.txt)");
    }
    const auto trace = o.trace.empty() ? nullptr : start_trace(engine, o.trace);
    const double load_s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t_load).count();

    StreamOptions so;
    if (!o.prompt_wav.empty()) {
      // A one-off voice, made as the official frontend_zero_shot makes it; cross-lingual and
      // instruct2 use no transcript (the LM never sees it).
      const VoiceMaker maker(o.model, folder.config, *engine.frontend());
      const std::string audio = read_whole_file(o.prompt_wav);
      auto prompt = std::make_shared<VoicePrompt>(maker.one_off(
          std::as_bytes(std::span(audio.data(), audio.size())), o.prompt_wav, o.prompt_text));
      engine.check_voice(*prompt);
      so.voice = std::move(prompt);
    } else {
      so.voice = engine.voice(pick_voice(engine, o.voice));
    }
    if (o.cross_lingual) so.voice = cross_lingual(so.voice, engine.frontend());
    if (!o.instruct.empty())
      so.voice = instruct2(so.voice, instruction_ids(*engine.frontend(), o.instruct));
    so.input = o.incremental ? StreamInput::IncrementalText : StreamInput::Text;
    so.streaming = o.stream;
    so.flow.first_hop = o.first_hop;
    so.flow.half_state = o.half_state;
    so.speed = o.speed;
    so.sampling.method = parse_sampling_method(o.sampling);
    so.sampling.temperature = o.temperature;
    so.sampling.top_k = o.top_k;
    so.sampling.top_p = o.top_p;
    so.sampling.seed = o.seed;
    so.vocoder_seed = o.seed;
    so.fixed_tokens = o.fixed_tokens;
    so.guard = o.guard;
    so.beams = o.beams;

    // Segments are split here rather than in the stream, so progress can count them.
    std::vector<std::vector<int32_t>> segments;
    if (o.segment_per_line) {
      segments = line_segments(*engine.frontend(), text);
    } else if (!o.incremental) {
      for (auto& seg : engine.frontend()->prepare(text)) segments.push_back(std::move(seg.ids));
    }

    std::string write_error;
    std::atomic<int64_t> written{0}, segment{0};
    auto stream = engine.open(so, [&](const AudioChunk& c) {
      try {
        out.write(c.samples);
      } catch (const std::exception& e) {
        write_error = e.what();
        return false;  // cancels the stream
      }
      written += static_cast<int64_t>(c.samples.size());
      segment = c.segment;
      return true;
    });
    target.set(stream);
    if (o.incremental) {
      for (const auto& piece : pieces_of(text)) stream->push_text(piece);
    } else {
      for (const auto& ids : segments) stream->push_text_ids(ids);
    }
    stream->finish_input();
    // Progress for long jobs, on a terminal only.
    ProgressLine progress;
    const auto t_synth = std::chrono::steady_clock::now();
    while (!stream->done()) {
      std::string line =
          cat("synth: ",
              std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() -
                                                               t_synth)
                  .count(),
              " s, ", static_cast<double>(written.load()) / config.sample_rate, " s of audio");
      if (!segments.empty()) line += cat(", segment ", segment.load() + 1, " of ", segments.size());
      progress.update(line);
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    const StreamResult r = stream->wait();
    target.set(nullptr);
    progress.clear();
    const double audio_s = static_cast<double>(r.samples) / config.sample_rate;
    if (const int sig = interrupt_signal(); sig != 0) {
      if (o.stream) {
        // What a listener has been playing stays a valid file.
        out.finish();
        std::fprintf(stderr, "interrupted: kept %.2f s of audio in %s\n",
                     static_cast<double>(out.samples()) / config.sample_rate, o.out.c_str());
      } else {
        out.abandon();
        std::fprintf(stderr, "interrupted: nothing written\n");
      }
      return 128 + sig;
    }
    if (!write_error.empty()) fail(write_error);
    if (r.status != StreamStatus::Done)
      fail("synthesis ", stream_status_name(r.status), ": ", r.error);
    out.finish();

    std::fprintf(stderr, "wrote %s: %.2f s of audio, %lld segment(s), %zu speech tokens\n",
                 o.out.c_str(), audio_s, static_cast<long long>(r.segments),
                 r.speech_tokens.size());
    std::fprintf(stderr, "model load %.2f s; synthesis %.2f s, RTF %.3f", load_s, r.total_s,
                 audio_s > 0 ? r.total_s / audio_s : 0.0);
    if (o.stream)
      std::fprintf(stderr, "; first chunk after %.3f s (%lld chunks)", r.first_chunk_s,
                   static_cast<long long>(r.chunks));
    std::fprintf(stderr, "\n%s\n", quality_line(r.quality).c_str());
    if (trace) {
      trace->close();
      std::fprintf(stderr, "wrote trace %s\n", o.trace.c_str());
    }
    return 0;
  } catch (...) {
    target.set(nullptr);
    out.abandon();  // no half-written file left behind
    throw;
  }
}

}  // namespace

Command register_synth(CLI::App& app) {
  auto o = std::make_shared<SynthOptions>();
  const FlowStreamOptions flow_defaults;
  const std::string weight_formats = join(weight_choice_names());
  app.add_option("--model", o->model, "Model folder (official CosyVoice2 or CosyVoice3 layout)")
      ->required();
  app.add_option("--voice", o->voice,
                 "Voice id from the folder's spk2info.pt (default: the only one)");
  app.add_option("--text", o->text, "Text to speak");
  app.add_option("--text-file", o->text_file, "Read the text from a UTF-8 file");
  app.add_option("--max-input-chars", o->max_input_chars,
                 "Refuse a text longer than this many characters")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--out", o->out,
                 "Output audio file, or - for standard output (pcm or flac, or wav when "
                 "stdout is a file)")
      ->required();
  app.add_option("--format", o->format,
                 "Audio format (default: from the --out extension .wav .flac .pcm .raw, else "
                 "wav). " +
                     audio_format_help() + "; all mono at the model's rate (24 kHz)")
      ->check(CLI::IsMember(audio_format_names()));
  app.add_flag(
      "--stream", o->stream,
      "Stream: write chunks as they are made (chunk-causal flow), report first-chunk latency");
  app.add_flag("--incremental", o->incremental,
               "Feed the text word by word, as a chat LLM writes it (bistream)");
  app.add_flag("--segment-per-line", o->segment_per_line,
               "Each line of the text is one segment (normalised, not split further); "
               "`cosyserve tokenize` shows the automatic split");
  app.add_option("--first-hop", o->first_hop,
                 cat("Streaming: speech tokens in the first chunk, 1 to ", flow_defaults.max_hop,
                     " (the official schedule uses 25; 15 gives first audio sooner)"))
      ->check(CLI::Range(int64_t{1}, flow_defaults.max_hop))
      ->capture_default_str();
  app.add_flag("--half-state", o->half_state,
               "Streaming: keep the flow's cached attention rows in half precision (half the "
               "state memory; the mel differs slightly from the official one)");
  app.add_option("--flow-left-chunks", o->flow_left_chunks,
                 "Streaming: bound the flow's attention to N left chunks (the model's "
                 "num_decoding_left_chunks; bounds the state memory but CHANGES THE OUTPUT "
                 "from the official model's; -1: all)")
      ->check(CLI::Range(int64_t{-1}, int64_t{1} << 20));
  app.add_option("--seed", o->seed,
                 "Seed of the LM sampling and the vocoder noise; as torch.manual_seed, only its "
                 "low 32 bits count (taken mod 2^32)")
      ->capture_default_str();
  app.add_option("--sampling", o->sampling, "LM sampling: " + join(sampling_method_names()))
      ->check(CLI::IsMember(sampling_method_names()))
      ->capture_default_str();
  app.add_option("--temperature", o->temperature,
                 "Sampling temperature (ras and top-k; greedy ignores it), > 0")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--top-k", o->top_k,
                 "Candidates kept (ras: at least 1; top-k: 0 keeps all; greedy ignores it)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--top-p", o->top_p, "Nucleus mass, in (0, 1] (ras and top-k)")
      ->check(CLI::Range(1e-9, 1.0))
      ->capture_default_str();
  app.add_option("--weights", o->weights,
                 "LLM weight format: " + weight_formats +
                     " (fp32 is the official numerics; bf16 needs AVX512_BF16; w8a8 also "
                     "quantises the activations to int8 and needs AVX512-VNNI)")
      ->check(CLI::IsMember(weight_choice_names()))
      ->capture_default_str();
  app.add_option("--flow-weights", o->flow_weights,
                 "Flow weight format: " + weight_formats +
                     " (bf16 rounds the activations, w8a8 quantises them to int8 with about 5x "
                     "bf16's mel difference: not the official numerics)")
      ->check(CLI::IsMember(weight_choice_names()))
      ->capture_default_str();
  app.add_option("--hift-weights", o->hift_weights, "Vocoder weight format: " + weight_formats)
      ->check(CLI::IsMember(weight_choice_names()))
      ->capture_default_str();
  add_allow_formats_option(app, o->allow_formats);
  app.add_option("--fixed-tokens", o->fixed_tokens,
                 "Force this many speech tokens per segment (random-weight models)")
      ->check(CLI::NonNegativeNumber);
  app.add_option(
      "--prompt-wav", o->prompt_wav,
      "A prompt recording (WAV, FLAC, Ogg/Opus, MP3; 16 kHz or more, up to 30 s) for a one-off "
      "zero-shot voice; needs --prompt-text");
  app.add_option("--prompt-text", o->prompt_text, "What the --prompt-wav recording says");
  app.add_option("--speed", o->speed,
                 "Speaking rate, 0.5 to 2.0 (the mel is stretched; pitch is kept)")
      ->check(CLI::Range(0.5, 2.0))
      ->capture_default_str();
  app.add_flag(
      "--cross-lingual", o->cross_lingual,
      "Cross-lingual mode: the LM hears no prompt (for text in another language than the voice's)");
  app.add_option(
      "--instruct", o->instruct,
      "Instruct2 mode: an instruction in place of the prompt transcript (\"用四川话说\", \"speak "
      "slowly\")");
  add_guard_options(app, o->guard);
  add_beam_options(app, o->beams);
  app.add_option("--threads", o->threads, "Compute threads (0: all cores)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  add_tuning_option(app, o->tuning);
  app.add_option("--trace", o->trace,
                 "Write a Chrome trace-event JSON of the engine (Perfetto opens it; cosyserve "
                 "profile reads it)");
  return [o] { return run_synth(*o); };
}

}  // namespace cosy::tools
