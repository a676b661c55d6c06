// End-to-end on a CosyVoice3 folder (make-model --preset cosyvoice3-tiny): every command a
// CosyVoice2 folder takes, run as a user would, on the same engine.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/test_support.h"
#include "io/audio_file.h"
#include "io/npy.h"
#include "tools/cli_test_util.h"

namespace {

using cosy::tools::testing::Result;
using cosy::tools::testing::run;

const std::filesystem::path& cv3_model() {
  static const std::filesystem::path dir = [] {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    const auto d = cosy::testing::scratch_dir(std::string("cli-cv3-") + info->name());
    const Result r = run("make-model --preset cosyvoice3-tiny --seed 5 --out " + d.string());
    EXPECT_EQ(r.code, 0) << r.out;
    return d;
  }();
  return dir;
}

TEST(CliCv3, MakeModelWritesAFolderWithAVoiceThatInspectCalls3) {
  EXPECT_TRUE(std::filesystem::exists(cv3_model() / "cosyvoice3.yaml"));
  EXPECT_TRUE(std::filesystem::exists(cv3_model() / "spk2info.pt"));
  EXPECT_FALSE(std::filesystem::exists(cv3_model() / "speech_tokenizer_v3.onnx"));
  const Result r = run("inspect --json --model " + cv3_model().string());
  ASSERT_EQ(r.code, 0) << r.out;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["voices"].size(), 1u) << r.out;
  EXPECT_NE(r.out.find("CosyVoice3"), std::string::npos) << r.out;
  const auto other = cosy::testing::scratch_dir("cli-cv3-no-voices");
  const Result bare =
      run("make-model --preset cosyvoice3-tiny --no-voices --out " + other.string() + " --seed 1");
  EXPECT_EQ(bare.code, 0) << bare.out;
  EXPECT_FALSE(std::filesystem::exists(other / "spk2info.pt"));
}

TEST(CliCv3, SynthOfflineStreamingAndIncrementalWriteTheForcedLength) {
  const auto dir = cosy::testing::scratch_dir("cli-cv3-synth");
  const std::string synth = "synth --model " + cv3_model().string() +
                            " --fixed-tokens 40 --text 'Hello world. How are you today?' ";
  const Result offline = run(synth + "--out " + (dir / "a.wav").string());
  ASSERT_EQ(offline.code, 0) << offline.out;
  const cosy::Audio a = cosy::read_audio(dir / "a.wav");
  EXPECT_EQ(a.sample_rate, 24000);
  ASSERT_FALSE(a.samples.empty());
  EXPECT_EQ(a.samples.size() % (size_t{40} * 960), 0u);
  for (const std::string extra :
       {"--stream --first-hop 15", "--stream --half-state", "--stream --flow-left-chunks 1"}) {
    const Result r = run(synth + extra + " --format pcm --out " + (dir / "b.pcm").string());
    ASSERT_EQ(r.code, 0) << extra << ": " << r.out;
    EXPECT_NE(r.out.find("first chunk after"), std::string::npos) << r.out;
    EXPECT_EQ(std::filesystem::file_size(dir / "b.pcm"), 2 * a.samples.size()) << extra;
  }
  const Result cross = run(synth + "--cross-lingual --out " + (dir / "x.wav").string());
  ASSERT_EQ(cross.code, 0) << cross.out;
  EXPECT_FALSE(cosy::read_audio(dir / "x.wav").samples.empty());
  const Result instruct =
      run(synth + "--instruct 'Speak slowly.' --out " + (dir / "i.wav").string());
  ASSERT_EQ(instruct.code, 0) << instruct.out;
  const Result incremental =
      run(synth + "--stream --incremental --format flac --out " + (dir / "c.flac").string());
  ASSERT_EQ(incremental.code, 0) << incremental.out;
  EXPECT_FALSE(cosy::read_audio(dir / "c.flac").samples.empty());
}

// The causal vocoder from a mel file: 480 samples per frame, no seed needed.
TEST(CliCv3, VocodeWritesAWavOfTheMelsLength) {
  const auto dir = cosy::testing::scratch_dir("cli-cv3-vocode");
  cosy::Tensor mel = cosy::Tensor::zeros(cosy::DType::F32, {1, 80, 30});
  for (int64_t i = 0; i < mel.numel(); ++i)
    mel.mutable_data<float>()[i] = -6.0f + 0.01f * static_cast<float>(i % 97);
  cosy::save_npy(dir / "mel.npy", mel);
  const Result r = run("vocode --model " + cv3_model().string() + " --mel " +
                       (dir / "mel.npy").string() + " --out " + (dir / "v.wav").string());
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(cosy::read_audio(dir / "v.wav").samples.size(), 30u * 480);
}

TEST(CliCv3, BenchAndLoadtestMeasureEveryStage) {
  const auto dir = cosy::testing::scratch_dir("cli-cv3-bench");
  const Result b = run("bench --model " + cv3_model().string() +
                       " --tokens 40 --first-hop 15 --first-chunk-repeats 1 --json " +
                       (dir / "b.json").string());
  ASSERT_EQ(b.code, 0) << b.out;
  std::ifstream in(dir / "b.json");
  const auto j = nlohmann::json::parse(in);
  ASSERT_EQ(j["stages"].size(), 3u);
  for (const auto& s : j["stages"]) {
    EXPECT_GT(s["seconds"].get<double>(), 0) << s.dump();
    EXPECT_GT(s["peak_frac"].get<double>(), 0) << s.dump();
  }
  EXPECT_GT(j["first_chunk_s"].get<double>(), 0);
  const Result l = run("loadtest --model " + cv3_model().string() +
                       " --concurrency 2 --requests 2 --warmup-requests 0 "
                       "--tokens-per-text-token 5 --json " +
                       (dir / "l.json").string());
  ASSERT_EQ(l.code, 0) << l.out;
  std::ifstream lin(dir / "l.json");
  const auto lj = nlohmann::json::parse(lin);
  ASSERT_EQ(lj["levels"].size(), 1u) << lj.dump();
  EXPECT_EQ(lj["levels"][0]["failed"], 0) << lj.dump();
  EXPECT_EQ(lj["levels"][0]["requests"], 2) << lj.dump();
  EXPECT_GT(lj["levels"][0]["stages"]["flow"]["gflop"].get<double>(), 0) << lj.dump();
}

// audit compares a reduced format with fp32 through CosyVoice3's stages: the LM's top-1
// agreement and the flow and vocoder's mel and audio SNR.
TEST(CliCv3, AuditComparesAReducedFormatWithFp32) {
  const auto dir = cosy::testing::scratch_dir("cli-cv3-audit");
  const Result r = run("audit --model " + cv3_model().string() +
                       " --formats fp16 --texts 1 --json " + (dir / "a.json").string());
  ASSERT_EQ(r.code, 0) << r.out;
  std::ifstream in(dir / "a.json");
  const auto j = nlohmann::json::parse(in);
  ASSERT_EQ(j["formats"].size(), 1u) << j.dump();
  const auto& f = j["formats"][0];
  EXPECT_EQ(f["flow_format"], "fp16") << f.dump();
  EXPECT_EQ(f["hift_format"], "fp16") << f.dump();
  EXPECT_GT(f["llm"]["positions"].get<int64_t>(), 0) << f.dump();
  // fp16 rounding (11 bits) over the random-weight stages: far above a broken pipeline's
  // 0 dB, below fp32's exact match.
  EXPECT_GT(f["audio"]["mel_snr_db"].get<double>(), 30) << f.dump();
  EXPECT_LT(f["audio"]["mel_snr_db"].get<double>(), 200) << f.dump();
  EXPECT_EQ(f["audio"]["nonfinite"], 0) << f.dump();
}

}  // namespace
