// cosyserve tune, and the tuning file as every command that loads a model reads it.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>

#include "kernels/gemm_kernel.h"
#include "tools/cli_test_util.h"

namespace cosy::tools {
namespace {

using testing::Result;
using testing::run;
using testing::run_with_env;
using testing::tiny_model;

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

std::string file_bytes(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

class CliTune : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = cosy::testing::scratch_dir(
        std::string("cli-tune-") + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    tuning_ = (dir_ / "tuning.json").string();
    const Result r = run("tune --model " + tiny_model().string() + " --out " + tuning_ +
                         " --threads 2 --tokens 30 --seconds-per-kernel 0.005");
    ASSERT_EQ(r.code, 0) << r.out;
    tune_out_ = r.out;
  }
  // synth with fixed settings; `env` goes before the binary (VAR=value ...).
  std::string synth(const std::string& extra, const std::string& wav) const {
    return "synth --model " + tiny_model().string() +
           " --text 'Hello there, how are you today?' --fixed-tokens 40 --seed 5 --threads 2 "
           "--out " +
           (dir_ / wav).string() + " " + extra;
  }
  std::filesystem::path dir_;
  std::string tuning_, tune_out_;
};

TEST_F(CliTune, WritesEveryRecordedShapeWithItsTimesAndTheMachine) {
  EXPECT_TRUE(contains(tune_out_, "written " + tuning_)) << tune_out_;
  EXPECT_TRUE(contains(tune_out_, "cpu: ")) << tune_out_;
  std::ifstream in(tuning_);
  const auto j = nlohmann::json::parse(in);
  EXPECT_EQ(j["format"], "cosyserve-kernel-tuning/1");
  EXPECT_EQ(j["machine"]["threads"], 2);
  if (!cpu::cpu_has_avx512f()) {
    // Only the default kernel runs here: no shape has a choice, and none is written.
    EXPECT_TRUE(j["gemm"].empty()) << j["gemm"].dump();
    EXPECT_TRUE(contains(tune_out_, "0 GEMM shapes")) << tune_out_;
    return;
  }
  ASSERT_GT(j["gemm"].size(), 5u);  // the LM, flow and vocoder of even a tiny model
  bool a_convolution = false;
  std::set<WeightFormat> formats;
  for (const auto& e : j["gemm"]) {
    const auto kernel = e["kernel"].get<std::string>();
    EXPECT_TRUE(cpu::parse_gemm_kernel(kernel).has_value()) << kernel;
    // The chosen kernel was timed, beside every kernel this CPU runs.
    EXPECT_TRUE(e["seconds"].contains(kernel)) << e.dump();
    const auto format = parse_weight_format(e["format"].get<std::string>());
    const auto regime =
        e["rows"].get<int64_t>() <= cpu::kGemmStreamRows ? cpu::GemmRows::Few : cpu::GemmRows::Many;
    EXPECT_EQ(e["seconds"].size(), cpu::gemm_kernels_for(format, regime).size()) << e.dump();
    // float32 in both regimes; fp16 and int8 only decode (their many rows have one kernel).
    EXPECT_TRUE(format == WeightFormat::F32 || regime == cpu::GemmRows::Few) << e.dump();
    formats.insert(format);
    a_convolution = a_convolution || e["taps"].get<int64_t>() > 1;
  }
  EXPECT_TRUE(a_convolution) << "the flow's and vocoder's convolutions are tuned too";
  EXPECT_EQ(formats,
            (std::set<WeightFormat>{WeightFormat::F32, WeightFormat::F16, WeightFormat::I8}))
      << "the LM's decode shapes in fp16 and int8 too";
}

TEST_F(CliTune, TunedForcedAndDefaultKernelsSpeakTheSameBytes) {
  const Result tuned = run(synth("--tuning " + tuning_, "tuned.wav"));
  ASSERT_EQ(tuned.code, 0) << tuned.out;
  EXPECT_TRUE(contains(tuned.out, "kernels: tuned (" + tuning_)) << tuned.out;
  const Result plain = run(synth("--tuning " + (dir_ / "none.json").string(), "default.wav"));
  ASSERT_EQ(plain.code, 0) << plain.out;
  EXPECT_TRUE(contains(plain.out, "no tuning file at")) << plain.out;
  const std::string expected = file_bytes(dir_ / "default.wav");
  ASSERT_GT(expected.size(), 1000u);
  EXPECT_EQ(file_bytes(dir_ / "tuned.wav"), expected);
  // Every kernel this CPU runs, forced on every shape.
  for (const cpu::GemmKernel k : cpu::gemm_kernels_on_this_cpu()) {
    const std::string name(cpu::gemm_kernel_name(k));
    const Result forced = run_with_env("COSY_GEMM_KERNEL=" + name, synth("", name + ".wav"));
    ASSERT_EQ(forced.code, 0) << forced.out;
    EXPECT_TRUE(contains(forced.out, "every shape on " + name)) << forced.out;
    EXPECT_EQ(file_bytes(dir_ / (name + ".wav")), expected) << name;
  }
  // int8 and fp16 weights: their decode kernel forced, against the default.
  if (!cpu::cpu_has_avx512f()) return;
  for (const char* format : {"int8", "fp16"}) {
    const std::string weights = std::string("--weights ") + format + " --flow-weights " + format;
    const std::string base = std::string(format) + "-default.wav";
    ASSERT_EQ(run(synth(weights + " --tuning " + (dir_ / "none.json").string(), base)).code, 0);
    const Result forced = run_with_env("COSY_GEMM_KERNEL=avx512-stream",
                                       synth(weights, std::string(format) + "-stream.wav"));
    ASSERT_EQ(forced.code, 0) << forced.out;
    EXPECT_EQ(file_bytes(dir_ / (std::string(format) + "-stream.wav")), file_bytes(dir_ / base))
        << format;
  }
}

TEST_F(CliTune, StaleOrCorruptFilesWarnAndRunOnTheDefaults) {
  // Tuned at 2 threads; read at 1: stale.
  const Result stale = run("bench --model " + tiny_model().string() +
                           " --tokens 20 --first-hop 15 --first-chunk-repeats 0 --threads 1 "
                           "--tuning " +
                           tuning_ + " --json " + (dir_ / "b.json").string());
  ASSERT_EQ(stale.code, 0) << stale.out;
  EXPECT_TRUE(contains(stale.out, "warning: kernels: default, " + tuning_ + " is stale"))
      << stale.out;
  std::ifstream in(dir_ / "b.json");
  const auto j = nlohmann::json::parse(in);
  EXPECT_TRUE(contains(j["machine"]["kernels"].get<std::string>(), "stale"));

  const std::string corrupt = (dir_ / "corrupt.json").string();
  std::ofstream(corrupt) << file_bytes(tuning_).substr(0, 100);
  const Result bad = run(synth("--tuning " + corrupt, "corrupt.wav"));
  ASSERT_EQ(bad.code, 0) << bad.out;
  EXPECT_TRUE(contains(bad.out, "warning: kernels: default, the tuning file is unreadable: " +
                                    corrupt + ": not valid JSON"))
      << bad.out;
  const Result plain = run(synth("--tuning " + (dir_ / "none.json").string(), "default.wav"));
  ASSERT_EQ(plain.code, 0) << plain.out;
  EXPECT_EQ(file_bytes(dir_ / "corrupt.wav"), file_bytes(dir_ / "default.wav"));
}

TEST_F(CliTune, AutoFormatsPickTheMeasuredFastestOfThoseAllowed) {
  // tune measured every stage in every format this CPU runs, under the model's path.
  nlohmann::json j;
  {
    std::ifstream in(tuning_);
    j = nlohmann::json::parse(in);
  }
  const std::string key = std::filesystem::weakly_canonical(tiny_model()).string();
  ASSERT_TRUE(j["formats"].contains(key)) << j["formats"].dump();
  for (const char* stage : {"llm", "flow", "hift"}) {
    for (const char* f : {"fp32", "fp16", "int8"}) {
      EXPECT_GT(j["formats"][key][stage][f].get<double>(), 0) << stage << " " << f;
    }
  }
  // Known answers: int8 far faster for the LLM, fp16 slower for the flow, the vocoder's
  // reduced formats within the noise margin of fp32.
  auto& m = j["formats"][key];
  m["llm"] = {{"fp32", 1.0}, {"fp16", 0.8}, {"int8", 0.5}};
  m["flow"] = {{"fp32", 1.0}, {"fp16", 1.2}, {"int8", 0.9}};
  m["hift"] = {{"fp32", 1.0}, {"fp16", 0.99}, {"int8", 0.98}};
  const std::string known = (dir_ / "known.json").string();
  std::ofstream(known) << j.dump(2);
  const std::string bench = "bench --model " + tiny_model().string() +
                            " --tokens 20 --first-hop 15 --first-chunk-repeats 0 --threads 2 "
                            "--weights auto --flow-weights auto --hift-weights auto --tuning " +
                            known + " --json " + (dir_ / "b.json").string();
  // Nothing allowed beyond fp32: fp32 everywhere, and the output says why.
  const Result exact = run(bench);
  ASSERT_EQ(exact.code, 0) << exact.out;
  EXPECT_TRUE(contains(exact.out, "weights llm: auto -> fp32 (RTF 1.000); only fp32 allowed"))
      << exact.out;
  EXPECT_TRUE(contains(exact.out, "LLM weights fp32, flow weights fp32, hift weights fp32"));
  // fp16 and int8 allowed: int8 for the LLM, fp32 elsewhere, each reduced one that is not
  // faster named.
  const Result reduced = run(bench + " --allow-formats fp16,int8");
  ASSERT_EQ(reduced.code, 0) << reduced.out;
  EXPECT_TRUE(contains(reduced.out, "LLM weights int8, flow weights int8, hift weights fp32"))
      << reduced.out;
  EXPECT_TRUE(contains(reduced.out, "llm: auto -> int8 (RTF 0.500 against fp32's 1.000)"))
      << reduced.out;
  EXPECT_TRUE(contains(reduced.out,
                       "flow: auto -> int8 (RTF 0.900 against fp32's 1.000); not "
                       "faster here, so never picked: fp16 1.200"))
      << reduced.out;
  EXPECT_TRUE(contains(reduced.out,
                       "hift: auto -> fp32 (RTF 1.000); not faster here, so never "
                       "picked: fp16 0.990, int8 0.980"))
      << reduced.out;
  std::ifstream in(dir_ / "b.json");
  const auto b = nlohmann::json::parse(in);
  EXPECT_EQ(b["weights"], "int8");
  EXPECT_EQ(b["hift_weights"], "fp32");
  EXPECT_EQ(b["weights_auto"].size(), 3u);
  // Another machine's file: auto falls back to fp32 and says why.
  j["machine"]["threads"] = 7;
  std::ofstream(known) << j.dump(2);
  const Result stale = run(bench + " --allow-formats int8");
  ASSERT_EQ(stale.code, 0) << stale.out;
  EXPECT_TRUE(contains(stale.out, "llm: auto -> fp32 (" + known +
                                      " was measured on another machine or thread count"))
      << stale.out;
  // A format name that is none.
  const Result bad = run(bench + " --allow-formats int9");
  EXPECT_EQ(bad.code, 2) << bad.out;
  EXPECT_TRUE(contains(bad.out, "--allow-formats: unknown weight format 'int9'")) << bad.out;
}

TEST_F(CliTune, ABadForcedKernelIsAClearErrorBeforeAnyWork) {
  const Result r = run_with_env("COSY_GEMM_KERNEL=avx9000", synth("", "x.wav"));
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_TRUE(contains(r.out, "COSY_GEMM_KERNEL=avx9000 names no GEMM kernel; one of: avx2"))
      << r.out;
  EXPECT_FALSE(std::filesystem::exists(dir_ / "x.wav"));
}

TEST(CliTuneUsage, BadArgumentsAreClearErrors) {
  const Result no_model = run("tune --model /nonexistent/folder --out /tmp/x.json");
  EXPECT_EQ(no_model.code, 1) << no_model.out;
  EXPECT_TRUE(contains(no_model.out, "/nonexistent/folder")) << no_model.out;
  const Result few = run("tune --model " + tiny_model().string() + " --tokens 3");
  EXPECT_EQ(few.code, 1) << few.out;
  EXPECT_TRUE(contains(few.out, "--tokens must be >= 30")) << few.out;
}

}  // namespace
}  // namespace cosy::tools
