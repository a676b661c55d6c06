// Time to register a voice from a recording at the released model sizes: the frontend
// (resampling, the three feature extractors, speech_tokenizer_v2.onnx and campplus.onnx on
// our ONNX runtime) for 5 s and 10 s prompts. Usage: voice_bench [DIR]
// DIR holds speech_tokenizer_v2.onnx and campplus.onnx; when they are missing, random-weight
// files of the released sizes are written there first (default /tmp/cosy-voice-bench).
//
// Reported per length: the best and median of 3 runs, with the speech tokenizer's share,
// and the tokenizer's GEMM rate as a fraction of this machine's measured peak.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/machine_limits.h"
#include "model/model_writer.h"
#include "model/voice/frontend_models.h"
#include "model/voice/resample.h"
#include "model/voice/voice_frontend.h"

namespace {

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// A speech-like test signal: a voiced source whose pitch wanders, with formant-ish
// harmonics and breath noise, at 24 kHz.
std::vector<float> speechlike(double seconds, int rate) {
  std::mt19937 rng(7);
  std::normal_distribution<float> noise(0.0f, 0.02f);
  std::vector<float> v(static_cast<size_t>(seconds * rate));
  double phase = 0;
  for (size_t i = 0; i < v.size(); ++i) {
    const double t = static_cast<double>(i) / rate;
    const double f0 = 140.0 + 30.0 * std::sin(2 * M_PI * 0.7 * t);
    phase += 2 * M_PI * f0 / rate;
    double s = 0;
    for (int h = 1; h <= 12; ++h)
      s += std::sin(h * phase) / h * (1.0 + std::sin(2 * M_PI * 3.0 * t + h));
    v[i] = static_cast<float>(0.1 * s) + noise(rng);
  }
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace cosy;
  const std::filesystem::path dir = argc > 1 ? argv[1] : "/tmp/cosy-voice-bench";
  std::filesystem::create_directories(dir);
  const ModelConfig config = preset_config("cosyvoice2-0.5b");
  if (!std::filesystem::exists(dir / voice::kSpeechTokenizerFile) ||
      !std::filesystem::exists(dir / voice::kSpeakerEncoderFile)) {
    const double t0 = now();
    voice::write_speech_tokenizer(dir / voice::kSpeechTokenizerFile,
                                  voice::released_speech_tokenizer(), 1);
    voice::CamPlusShape cam = voice::released_campplus();
    cam.embedding = config.flow.spk_embed_dim;
    voice::write_campplus(dir / voice::kSpeakerEncoderFile, cam, 2);
    std::printf("wrote released-size frontend models to %s in %.1f s\n", dir.c_str(), now() - t0);
  }
  const double t_load = now();
  const voice::VoiceFrontend frontend(dir, config);
  std::printf("load (parse, check, pack weights): %.2f s\n", now() - t_load);
  const voice::SpeechTokenizer tokenizer(dir / voice::kSpeechTokenizerFile);
  const bench::MachineLimits limits = bench::measure_machine(ThreadPool::global());
  std::printf("threads %d, measured peak %.0f GFLOP/s\n", ThreadPool::global().num_threads(),
              limits.peak_gflops);

  const voice::SpeechTokenizerShape shape = voice::released_speech_tokenizer();
  for (double seconds : {5.0, 10.0}) {
    const std::vector<float> wave = speechlike(seconds, 24000);
    std::vector<double> total;
    std::vector<double> tok;
    for (int run = 0; run < 3; ++run) {
      const double t0 = now();
      const voice::PromptAnalysis p = frontend.analyze_samples(wave, 24000, "bench");
      total.push_back(now() - t0);
      const double t1 = now();
      (void)tokenizer.tokens(p.whisper_mel);
      tok.push_back(now() - t1);
    }
    std::sort(total.begin(), total.end());
    std::sort(tok.begin(), tok.end());
    // GEMM work of the tokenizer: convs, then per block q/k/v/out, the MLP and attention.
    const double frames = seconds * 100.0;
    const double t_tokens = std::ceil(std::ceil(frames / 2) / 2);
    const double D = static_cast<double>(shape.width);
    const double flops =
        2 * (frames / 2 * shape.mels * D * 3 + t_tokens * D * D * 3) +
        shape.layers * 2 * (t_tokens * (4 * D * D + 8 * D * D) + 2 * t_tokens * t_tokens * D);
    std::printf(
        "%4.1f s prompt: register %.3f s best, %.3f s median (tokenizer %.3f s: %.1f GFLOP, %.0f%% "
        "of peak)\n",
        seconds, total[0], total[1], tok[0], flops / 1e9,
        100.0 * flops / tok[0] / 1e9 / limits.peak_gflops);
  }
  return 0;
}
