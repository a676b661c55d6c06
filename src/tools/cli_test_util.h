// Runs the cosyserve binary as a user would, for the end-to-end CLI tests.
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <string>

#include "core/test_support.h"

namespace cosy::tools::testing {

struct Result {
  int code = -1;    // exit status; 128 + N when killed by signal N
  std::string out;  // stdout and stderr together, unless the command redirects one
};

// `args` goes through the shell after the binary's path, so it may redirect; `env`
// (VAR=value ...) sets variables for the binary alone.
inline Result run_with_env(const std::string& env, const std::string& args) {
  const std::string cmd =
      (env.empty() ? "" : "env " + env + " ") + std::string(COSY_CLI) + " " + args + " 2>&1";
  Result r;
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return r;
  std::array<char, 4096> buf{};
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  const int status = pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

inline Result run(const std::string& args) { return run_with_env("", args); }

// A tiny random-weight folder as make-model writes it alone (its own starter tokenizer, no
// fixtures). One per test: ctest runs the tests as parallel processes.
inline std::filesystem::path tiny_model() {
  static const std::filesystem::path dir = [] {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    const auto d = cosy::testing::scratch_dir(std::string("cli-tiny-") + info->name());
    const Result r = run("make-model --preset tiny --seed 3 --out " + d.string());
    EXPECT_EQ(r.code, 0) << r.out;
    return d;
  }();
  return dir;
}

}  // namespace cosy::tools::testing
