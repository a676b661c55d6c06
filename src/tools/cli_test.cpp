// End-to-end: runs the cosyserve binary as a user would and checks output and exit codes.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/test_support.h"
#include "io/audio_file.h"
#include "io/npy.h"
#include "model/model_folder.h"

namespace {

struct Result {
  int code = -1;
  std::string out;
};

Result run(const std::string& args) {
  const std::string cmd = std::string(COSY_CLI) + " " + args + " 2>&1";
  Result r;
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return r;
  std::array<char, 4096> buf{};
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  const int status = pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

TEST(Cli, InspectPrintsEveryStageOfTheFixtureModel) {
  const Result r = run("inspect --model " + (cosy::testing::golden_dir() / "model").string());
  ASSERT_EQ(r.code, 0) << r.out;
  for (const char* s :
       {"llm (llm.pt)", "flow (flow.pt)", "hift (hift.pt)", "parameters", "dtype", "bytes",
        "qwen.hidden_size", "static_chunk_size", "upsample_rates", "voices"}) {
    EXPECT_NE(r.out.find(s), std::string::npos) << s;
  }
}

TEST(Cli, MakeModelThenInspectJson) {
  const auto dir = cosy::testing::scratch_dir("cli-make-model");
  Result made = run("make-model --preset tiny --seed 5 --out " + (dir / "m").string());
  ASSERT_EQ(made.code, 0) << made.out;
  const Result r = run("inspect --json --model " + (dir / "m").string());
  ASSERT_EQ(r.code, 0) << r.out;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_GT(j["llm"]["parameters"].get<int64_t>(), 0);
  EXPECT_EQ(j["voices"].size(), 1u);
  EXPECT_TRUE(j["voices"][0]["zero_shot"].get<bool>());
}

TEST(Cli, VocodeWritesAWavOfTheMelsLength) {
  const auto dir = cosy::testing::scratch_dir("cli-vocode");
  const auto golden = cosy::testing::golden_dir();
  const Result r = run("vocode --model " + (golden / "model").string() + " --mel " +
                       (golden / "cases" / "e2e_mel.npy").string() + " --seed 300 --out " +
                       (dir / "e2e.wav").string());
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("RTF"), std::string::npos) << r.out;
  // One audio frame per mel frame's worth of samples, at the model's rate.
  const cosy::ModelConfig config = cosy::load_model_config(golden / "model");
  const int64_t frames = cosy::load_npy(golden / "cases" / "e2e_mel.npy").dim(2);
  const cosy::Audio audio = cosy::read_audio(dir / "e2e.wav");
  EXPECT_EQ(audio.sample_rate, config.sample_rate);
  EXPECT_EQ(int64_t(audio.samples.size()), frames * config.hift.samples_per_frame());
  // A mel with one channel too few is refused.
  const int64_t channels = config.hift.in_channels;
  cosy::save_npy(dir / "bad_mel.npy", cosy::Tensor::zeros(cosy::DType::F32, {1, channels - 1, 10}));
  const Result bad = run("vocode --model " + (golden / "model").string() + " --mel " +
                         (dir / "bad_mel.npy").string() + " --out " + (dir / "x.wav").string());
  EXPECT_EQ(bad.code, 1);
  EXPECT_NE(bad.out.find("expected a (1, " + std::to_string(channels) + ", T) mel"),
            std::string::npos)
      << bad.out;
  const Result unwritable =
      run("vocode --model " + (golden / "model").string() + " --mel " +
          (golden / "cases" / "e2e_mel.npy").string() + " --out /nonexistent-dir/x.wav");
  EXPECT_EQ(unwritable.code, 1);
  EXPECT_NE(unwritable.out.find("cannot write audio"), std::string::npos) << unwritable.out;
}

TEST(Cli, BadInputExitsNonZeroWithOneClearLine) {
  const auto dir = cosy::testing::scratch_dir("cli-bad");
  const Result missing = run("inspect --model " + dir.string());
  EXPECT_EQ(missing.code, 1);
  EXPECT_NE(missing.out.find("error: " + (dir / "cosyvoice2.yaml").string() + ": missing"),
            std::string::npos)
      << missing.out;
  EXPECT_NE(run("inspect").code, 0);
  EXPECT_NE(run("make-model --preset enormous --out " + dir.string()).code, 0);
  EXPECT_NE(run("no-such-command").code, 0);
}

}  // namespace
