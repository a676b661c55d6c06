// A one-line progress display on stderr for long jobs: redrawn in place a few times a
// second once a job has run for a second, and silent when stderr is not a terminal (logs
// and pipes get only the final status line).
#pragma once

#include <chrono>
#include <mutex>
#include <string>

namespace cosy::tools {

class ProgressLine {
 public:
  ProgressLine();                        // enabled when stderr is a terminal
  void update(const std::string& text);  // thread-safe; drawn at most every 250 ms
  void clear();                          // erases the line before the final output

 private:
  bool enabled_;
  std::mutex mutex_;
  std::chrono::steady_clock::time_point start_, last_;
  bool drawn_ = false;
};

}  // namespace cosy::tools
