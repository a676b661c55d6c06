// A `cosyserve serve` process for end-to-end tests: started on a free loopback port with a
// model the test wrote, talked to with curl, stopped with SIGTERM (and killed if it hangs).
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/prctl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <thread>
#include <vector>

namespace cosy::tools::testing {

inline std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

class ServerProcess {
 public:
  // Starts `cosyserve serve --model MODEL --port 0 ARGS`; waits (20 s at most) until it listens.
  ServerProcess(const std::filesystem::path& model, const std::string& args,
                const std::filesystem::path& log, const std::string& env = "")
      : log_(log) {
    pid_ = fork();
    if (pid_ == 0) {
      // The server dies with the test process, even one a sanitizer aborts before the
      // destructor below can run: no server is left behind.
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      const std::string cmd = env + " exec " + std::string(COSY_CLI) + " serve --model " +
                              model.string() + " --port 0 " + args + " 2> " + log.string();
      execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    const auto start = std::chrono::steady_clock::now();
    const std::regex listening("listening on http://[0-9.]+:([0-9]+)");
    while (std::chrono::steady_clock::now() - start < std::chrono::seconds(20)) {
      std::smatch m;
      const std::string text = slurp(log_);
      if (std::regex_search(text, m, listening)) {
        port_ = std::stoi(m[1]);
        return;
      }
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ADD_FAILURE() << "the server did not start:\n" << slurp(log_);
  }
  ~ServerProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  int port() const { return port_; }
  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  void signal(int sig) const { kill(pid_, sig); }
  // Waits for the process to exit (at most `seconds`); its exit status, or -1.
  int wait_exit(double seconds) {
    const auto start = std::chrono::steady_clock::now();
    while (pid_ > 0) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      if (std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() > seconds)
        return -1;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return -1;
  }
  std::string log() const { return slurp(log_); }

 private:
  std::filesystem::path log_;
  pid_t pid_ = -1;
  int port_ = 0;
};

struct CurlResult {
  int status = 0;     // HTTP status, 0 if none
  int exit_code = 0;  // curl's own (18: the body was cut short)
  std::string body;
  std::string headers;
};

// curl with `args` (already shell-quoted); the body goes to a file of `dir`.
inline CurlResult curl(const std::filesystem::path& dir, const std::string& args) {
  static int n = 0;
  const auto body = dir / ("curl-body-" + std::to_string(++n));
  const auto headers = dir / ("curl-headers-" + std::to_string(n));
  const auto code = dir / ("curl-code-" + std::to_string(n));
  const std::string cmd = "curl -s -o " + body.string() + " -D " + headers.string() +
                          " -w '%{http_code}' " + args + " > " + code.string();
  const int rc = std::system(cmd.c_str());
  CurlResult r;
  r.exit_code = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  const std::string c = slurp(code);
  r.status = c.empty() ? 0 : std::atoi(c.c_str());
  r.body = slurp(body);
  r.headers = slurp(headers);
  return r;
}

// curl arguments that POST `body` as JSON (from a file of `dir`: no shell quoting).
inline std::string json_post(const std::filesystem::path& dir, const std::string& url,
                             const std::string& body) {
  static int n = 0;
  const auto path = dir / ("request-" + std::to_string(++n) + ".json");
  std::ofstream(path, std::ios::binary) << body;
  return "-H 'Content-Type: application/json' --data-binary @" + path.string() + " " + url;
}

}  // namespace cosy::tools::testing
