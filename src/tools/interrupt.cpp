#include "tools/interrupt.h"

#include <pthread.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <mutex>
#include <thread>

namespace cosy::tools {
namespace {

std::mutex g_mutex;
std::function<void()> g_handler;  // under g_mutex
std::atomic<int> g_signal{0};

sigset_t interrupt_set() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  return set;
}

void watch(sigset_t set) {
  for (;;) {
    int sig = 0;
    if (sigwait(&set, &sig) != 0) continue;
    std::function<void()> handler;
    {
      std::lock_guard lock(g_mutex);
      // The first signal runs the command's handler; a second one, or none installed, ends
      // the process now.
      if (g_signal.exchange(sig) == 0) handler = std::move(g_handler);
      g_handler = nullptr;
    }
    if (!handler) _exit(128 + sig);
    handler();
  }
}

}  // namespace

void block_interrupts() {
  const sigset_t set = interrupt_set();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::thread(watch, set).detach();
}

InterruptHandler::InterruptHandler(std::function<void()> on_interrupt) {
  std::lock_guard lock(g_mutex);
  g_handler = std::move(on_interrupt);
}

InterruptHandler::~InterruptHandler() {
  std::lock_guard lock(g_mutex);
  g_handler = nullptr;
}

int interrupt_signal() { return g_signal.load(); }

}  // namespace cosy::tools
