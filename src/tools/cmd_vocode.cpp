// cosyserve vocode: mel (.npy, (1, 80, T) as the official code lays it out, or (T, 80) with
// --channels-last) → waveform, through the vocoder of a model folder (CosyVoice2's HiFT or
// CosyVoice3's causal HiFT).
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <string>

#include "core/error.h"
#include "io/npy.h"
#include "kernels/cpu_backend.h"
#include "model/model_folder.h"
#include "runtime/stages/model_stages.h"
#include "tools/audio_output.h"
#include "tools/cli_support.h"
#include "tools/commands.h"

namespace cosy::tools {

namespace {
struct VocodeOptions {
  std::string model, mel, out, format, weights = "fp32";
  uint64_t seed = 0;
  bool channels_last = false;
  int threads = 0;
  std::string tuning;
};

int run_vocode(const VocodeOptions& o) {
  LoadOptions lo;
  lo.llm = lo.flow = lo.voices = false;
  // Fail on an unwritable output or a clashing format before any work.
  const ModelConfig config = load_model_config(o.model);
  AudioOutput out(o.out, o.format, static_cast<int>(config.sample_rate));
  try {
    const ModelFolder folder = load_model_folder(o.model, lo);
    folder.wait_verified();
    const Tensor mel_t = load_npy(o.mel);
    const int64_t channels = folder.config.hift.in_channels;
    int64_t frames = 0;
    std::vector<float> mel;
    const auto v = mel_t.to_float_vector();
    if (o.channels_last) {
      if (mel_t.rank() < 2 || mel_t.dim(mel_t.rank() - 1) != channels) {
        fail(o.mel, ": expected a (T, ", channels, ") mel, got ", shape_str(mel_t.shape()));
      }
      frames = mel_t.dim(mel_t.rank() - 2);
      mel = v;
    } else {
      if (mel_t.rank() < 2 || mel_t.dim(mel_t.rank() - 2) != channels ||
          (mel_t.rank() == 3 && mel_t.dim(0) != 1) || mel_t.rank() > 3) {
        fail(o.mel, ": expected a (1, ", channels, ", T) mel, got ", shape_str(mel_t.shape()),
             " (use --channels-last for (T, ", channels, "))");
      }
      frames = mel_t.dim(mel_t.rank() - 1);
      mel = transpose_2d(v, channels, frames);
    }
    auto backend = cpu::create_cpu_backend(o.threads);
    apply_kernel_tuning(o.tuning, o.threads);
    // The family's vocoder, as the engine runs it: one final call over the whole mel.
    const auto vocoder = load_vocoder_stage(*backend, folder, parse_weight_format(o.weights));
    const auto unit = vocoder->open(o.seed);
    std::vector<float> speech;
    VocoderWork w;
    w.unit = unit.get();
    w.mel = mel;
    w.frames = frames;
    w.finalize = true;
    w.out = &speech;
    const auto t0 = std::chrono::steady_clock::now();
    vocoder->run({&w, 1});
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    out.write(speech);
    out.finish();
    const double audio_s =
        static_cast<double>(speech.size()) / static_cast<double>(folder.config.sample_rate);
    std::fprintf(stderr, "wrote %s: %zu samples (%.2f s) in %.3f s, RTF %.3f\n", o.out.c_str(),
                 speech.size(), audio_s, secs, secs / audio_s);
    return 0;
  } catch (...) {
    out.abandon();  // no half-written file left behind
    throw;
  }
}
}  // namespace

Command register_vocode(CLI::App& app) {
  auto o = std::make_shared<VocodeOptions>();
  app.add_option("--model", o->model, "Model folder (cosyvoice2.yaml or cosyvoice3.yaml, hift.pt)")
      ->required();
  app.add_option("--mel", o->mel, "Mel .npy: (1, 80, T) float32, as flow outputs it")->required();
  app.add_option("--out", o->out, "Output audio file, or - for standard output")->required();
  app.add_option(
         "--format", o->format,
         "Audio format (default: from the --out extension, else wav). " + audio_format_help())
      ->check(CLI::IsMember(audio_format_names()));
  app.add_option("--seed", o->seed,
                 "Seed of the source module's noise (torch.manual_seed: taken mod 2^32); "
                 "CosyVoice3's source buffers are fixed, so it ignores the seed")
      ->capture_default_str();
  app.add_option("--weights", o->weights, "Conv weight format: " + join(weight_format_names()))
      ->check(CLI::IsMember(weight_format_names()))
      ->capture_default_str();
  app.add_option("--threads", o->threads, "Compute threads (0: all cores)")->capture_default_str();
  add_tuning_option(app, o->tuning);
  app.add_flag("--channels-last", o->channels_last, "The mel is (T, 80)");
  return [o] { return run_vocode(*o); };
}

}  // namespace cosy::tools
