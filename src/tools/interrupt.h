// Ctrl-C (SIGINT) and SIGTERM for the CLI. block_interrupts(), first thing in main before
// any thread starts, blocks both in every thread and starts one watcher thread that takes
// them with sigwait. A command installs what an interrupt should do (cancel its stream,
// remove a half-written file) with an InterruptHandler; with none installed, or at a second
// signal, the process exits at once with status 128 + the signal, as a killed one would.
#pragma once

#include <functional>

namespace cosy::tools {

void block_interrupts();

// While it lives, a signal runs `on_interrupt` on the watcher thread. Not nested.
class InterruptHandler {
 public:
  explicit InterruptHandler(std::function<void()> on_interrupt);
  ~InterruptHandler();
  InterruptHandler(const InterruptHandler&) = delete;
  InterruptHandler& operator=(const InterruptHandler&) = delete;
};

// 0, or the signal that came (SIGINT or SIGTERM).
int interrupt_signal();

}  // namespace cosy::tools
