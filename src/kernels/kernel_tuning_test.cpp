#include "kernels/kernel_tuning.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "core/error.h"
#include "core/file_io.h"
#include "core/test_support.h"

namespace cosy {
namespace {

constexpr int kThreads = 2;

// A tuning measured here, choosing an AVX-512 tile for one shape where the CPU has one.
cpu::KernelTuning tuning_for_here() {
  cpu::KernelTuning t;
  t.machine = cpu::this_machine(kThreads);
  cpu::TunedGemm e;
  e.shape = {256, 3, 256};
  e.rows = 500;
  e.kernel = cpu::cpu_has_avx512f() ? cpu::GemmKernel::Avx512Rows6Panels4 : cpu::GemmKernel::Avx2;
  e.seconds = {{cpu::GemmKernel::Avx2, 0.002}};
  if (cpu::cpu_has_avx512f()) e.seconds[cpu::GemmKernel::Avx512Rows6Panels4] = 0.001;
  t.gemm.push_back(e);
  return t;
}

class KernelTuningFile : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::getenv("COSY_GEMM_KERNEL") != nullptr) GTEST_SKIP() << "COSY_GEMM_KERNEL forces one";
    // One folder per test: ctest runs the tests as parallel processes.
    dir_ = testing::scratch_dir(std::string("kernel_tuning-") +
                                ::testing::UnitTest::GetInstance()->current_test_info()->name());
    path_ = (dir_ / "sub" / "tuning.json").string();
  }
  void TearDown() override { cpu::install_gemm_kernel_choices(nullptr); }
  std::filesystem::path dir_;
  std::string path_;
};

TEST_F(KernelTuningFile, WrittenAndReadBackUnchanged) {
  const auto t = tuning_for_here();
  cpu::write_kernel_tuning(path_, t);  // creates sub/
  const auto back = cpu::read_kernel_tuning(path_);
  EXPECT_EQ(back.machine, t.machine);
  ASSERT_EQ(back.gemm.size(), 1u);
  EXPECT_EQ(back.gemm[0].shape, t.gemm[0].shape);
  EXPECT_EQ(back.gemm[0].rows, 500);
  EXPECT_EQ(back.gemm[0].kernel, t.gemm[0].kernel);
  EXPECT_EQ(back.gemm[0].seconds, t.gemm[0].seconds);
  EXPECT_FALSE(std::filesystem::exists(path_ + ".tmp." + std::to_string(::getpid())));
}

TEST_F(KernelTuningFile, AFileForThisMachineIsInstalled) {
  cpu::write_kernel_tuning(path_, tuning_for_here());
  const auto status = cpu::install_kernel_tuning(path_, kThreads);
  EXPECT_TRUE(status.installed) << status.message;
  EXPECT_NE(status.message.find("kernels: tuned"), std::string::npos) << status.message;
  EXPECT_EQ(cpu::gemm_kernel_for({256, 3, 256}), tuning_for_here().gemm[0].kernel);
}

TEST_F(KernelTuningFile, AMissingFileLeavesTheDefaultsAndSaysSo) {
  const auto status = cpu::install_kernel_tuning((dir_ / "none.json").string(), kThreads);
  EXPECT_FALSE(status.installed);
  EXPECT_NE(status.message.find("no tuning file at"), std::string::npos) << status.message;
  EXPECT_EQ(cpu::gemm_kernel_for({256, 3, 256}), cpu::GemmKernel::Avx2);
}

TEST_F(KernelTuningFile, AStaleFileLeavesTheDefaultsWithAWarning) {
  // Measured at another thread count, on another CPU, by other kernels: each is stale.
  auto other_threads = tuning_for_here();
  other_threads.machine.threads = kThreads + 6;
  auto other_cpu = tuning_for_here();
  other_cpu.machine.cpu = "Some Other CPU";
  auto other_isa = tuning_for_here();
  other_isa.machine.isa.emplace_back("avx10_9");
  auto other_kernels = tuning_for_here();
  other_kernels.machine.kernels = "cosyserve-kernels/0 gcc 1.0";
  for (const auto& t : {other_threads, other_cpu, other_isa, other_kernels}) {
    // A valid choice installed first must not survive a stale file.
    cpu::write_kernel_tuning(path_, tuning_for_here());
    ASSERT_TRUE(cpu::install_kernel_tuning(path_, kThreads).installed);
    cpu::write_kernel_tuning(path_, t);
    const auto status = cpu::install_kernel_tuning(path_, kThreads);
    EXPECT_FALSE(status.installed);
    EXPECT_NE(status.message.find("warning"), std::string::npos) << status.message;
    EXPECT_NE(status.message.find("stale"), std::string::npos) << status.message;
    EXPECT_EQ(cpu::gemm_kernel_for({256, 3, 256}), cpu::GemmKernel::Avx2);
  }
}

TEST_F(KernelTuningFile, ACorruptFileLeavesTheDefaultsWithAWarningNamingTheFault) {
  cpu::write_kernel_tuning(path_, tuning_for_here());
  const std::string good = read_whole_file(path_);
  const std::string cases[][2] = {
      {good.substr(0, good.size() / 2), "not valid JSON"},
      {"", "not valid JSON"},
      {"[1, 2]", "not a JSON object"},
      {R"({"format": "something-else"})", "not a kernel tuning file"},
      {R"({"format": "cosyserve-kernel-tuning/1"})", "no \"machine\""},
  };
  for (const auto& [text, why] : cases) {
    write_whole_file(path_, text);
    const auto status = cpu::install_kernel_tuning(path_, kThreads);
    EXPECT_FALSE(status.installed);
    EXPECT_NE(status.message.find("warning"), std::string::npos) << status.message;
    EXPECT_NE(status.message.find(why), std::string::npos) << status.message;
  }
  // Valid JSON with bad contents: an unknown kernel, a negative shape.
  auto edit = [&](const std::string& from, const std::string& to) {
    std::string s = good;
    const auto at = s.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    s.replace(at, from.size(), to);
    write_whole_file(path_, s);
    return cpu::install_kernel_tuning(path_, kThreads);
  };
  const auto unknown =
      edit(std::string("\"kernel\": \"") +
               std::string(cpu::gemm_kernel_name(tuning_for_here().gemm[0].kernel)),
           "\"kernel\": \"avx512-99x99");
  EXPECT_FALSE(unknown.installed);
  EXPECT_NE(unknown.message.find("unknown kernel \"avx512-99x99\""), std::string::npos)
      << unknown.message;
  const auto negative = edit("\"n\": 256", "\"n\": -256");
  EXPECT_FALSE(negative.installed);
  EXPECT_NE(negative.message.find("must be positive"), std::string::npos) << negative.message;
  EXPECT_EQ(cpu::gemm_kernel_for({256, 3, 256}), cpu::GemmKernel::Avx2);
}

TEST(KernelTuning, AutoPicksTheFastestAllowedFormatOnlyWhenItIsFaster) {
  using F = WeightFormat;
  const cpu::StageFormatTimes times = {
      {"llm", {{F::F32, 1.54}, {F::F16, 1.0}, {F::I8, 0.73}, {F::BF16, 0.80}}},
      {"flow", {{F::F32, 2.00}, {F::BF16, 2.18}, {F::F16, 1.99}}},
  };
  // Only fp32 allowed: fp32, whatever is faster.
  const auto exact = cpu::pick_stage_format(times, "llm", {F::F32});
  EXPECT_EQ(exact.format, F::F32);
  EXPECT_NE(exact.why.find("only fp32 allowed"), std::string::npos) << exact.why;
  // The fastest of those allowed.
  EXPECT_EQ(cpu::pick_stage_format(times, "llm", {F::F32, F::F16, F::I8}).format, F::I8);
  EXPECT_EQ(cpu::pick_stage_format(times, "llm", {F::F16, F::BF16}).format, F::BF16);
  const auto int8 = cpu::pick_stage_format(times, "llm", {F::I8});
  EXPECT_EQ(int8.why, "int8 (RTF 0.730 against fp32's 1.540)");
  // A reduced format that is slower, or within the noise margin, is never picked.
  const auto flow = cpu::pick_stage_format(times, "flow", {F::BF16, F::F16});
  EXPECT_EQ(flow.format, F::F32);
  EXPECT_NE(flow.why.find("not faster here, so never picked: bf16 2.180, fp16 1.990"),
            std::string::npos)
      << flow.why;
  // Allowed but not measured (a CPU without the instructions), or a stage not measured.
  const auto w8a8 = cpu::pick_stage_format(times, "flow", {F::W8A8});
  EXPECT_EQ(w8a8.format, F::F32);
  EXPECT_NE(w8a8.why.find("not measured on this CPU: w8a8"), std::string::npos) << w8a8.why;
  EXPECT_EQ(cpu::pick_stage_format(times, "hift", {F::I8}).format, F::F32);
  EXPECT_NE(cpu::pick_stage_format(times, "hift", {F::I8}).why.find("no measurement"),
            std::string::npos);
}

TEST_F(KernelTuningFile, StageFormatTimesRoundTripAndBadOnesAreRefused) {
  auto t = tuning_for_here();
  t.formats["/models/a"]["llm"] = {{WeightFormat::F32, 1.5}, {WeightFormat::I8, 0.75}};
  t.formats["/models/b"]["flow"] = {{WeightFormat::F32, 2.5}};
  cpu::write_kernel_tuning(path_, t);
  EXPECT_EQ(cpu::read_kernel_tuning(path_).formats, t.formats);
  std::string s = read_whole_file(path_);
  s.replace(s.find("\"int8\""), 6, "\"int9\"");
  write_whole_file(path_, s);
  EXPECT_THROW(cpu::read_kernel_tuning(path_), Error);
}

TEST(KernelTuning, TheDefaultPathFollowsTheEnvironment) {
  const char* saved = std::getenv("COSY_TUNING_FILE");
  const std::string keep = saved != nullptr ? saved : "";
  setenv("COSY_TUNING_FILE", "/x/y.json", 1);
  EXPECT_EQ(cpu::default_kernel_tuning_path(), "/x/y.json");
  unsetenv("COSY_TUNING_FILE");
  EXPECT_NE(cpu::default_kernel_tuning_path().find("cosyserve/tuning.json"), std::string::npos);
  if (saved != nullptr) setenv("COSY_TUNING_FILE", keep.c_str(), 1);
}

}  // namespace
}  // namespace cosy
