#include "core/thread_pool.h"

#include <immintrin.h>
#include <sched.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <string>

namespace cosy {

namespace {

// How long a thread spins for new work (a worker) or for its job's stragglers (a caller)
// before it sleeps on a condition variable: longer than the gap between two ops of a
// model step, short enough that an idle pool stops using the cores at once.
constexpr std::chrono::microseconds kSpin{200};

// Spins up to kSpin for `done()` to turn true; false when it did not.
template <typename Done>
bool spin_until(const Done& done) {
  const auto deadline = std::chrono::steady_clock::now() + kSpin;
  for (;;) {
    for (int i = 0; i < 64; ++i) {
      if (done()) return true;
      _mm_pause();
    }
    if (std::chrono::steady_clock::now() >= deadline) return false;
  }
}

}  // namespace

std::shared_ptr<ThreadPool::Job> ThreadPool::claimable_job() const {
  for (const auto& j : jobs_) {
    if (j->next.load(std::memory_order_relaxed) < j->n) return j;
  }
  return nullptr;
}

ThreadPool::ThreadPool(int num_threads) {
  const int extra = std::max(0, num_threads - 1);
  workers_.reserve(static_cast<size_t>(extra));
  for (int i = 0; i < extra; ++i) workers_.emplace_back([this] { worker_loop(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  work_cv_.notify_all();
  for (auto& w : workers_) w.join();
}

void ThreadPool::run_tasks(Job& job) {
  for (;;) {
    const int64_t i = job.next.fetch_add(1, std::memory_order_relaxed);
    if (i >= job.n) return;
    try {
      (*job.task)(i);
    } catch (...) {
      std::lock_guard<std::mutex> lock(job.error_mutex);
      if (!job.error) job.error = std::current_exception();
    }
    job.done.fetch_add(1, std::memory_order_acq_rel);
  }
}

void ThreadPool::worker_loop() {
  uint64_t seen = queued_.load(std::memory_order_acquire);
  for (;;) {
    // Spin for a job queued since the last look; sleep only when none came meanwhile.
    const bool queued = spin_until([&] { return queued_.load(std::memory_order_acquire) != seen; });
    std::shared_ptr<Job> job;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      if (!queued) work_cv_.wait(lock, [&] { return stopping_ || claimable_job() != nullptr; });
      if (stopping_) return;
      seen = queued_.load(std::memory_order_relaxed);
      job = claimable_job();
    }
    if (!job) continue;  // its callers claimed every task first
    run_tasks(*job);
    // Passing through the mutex orders our `done` increments before a waiting caller's
    // predicate check, so the notify below cannot be lost.
    { std::lock_guard<std::mutex> lock(mutex_); }
    done_cv_.notify_all();
  }
}

void ThreadPool::parallel_for(int64_t n, const std::function<void(int64_t)>& task) {
  if (n <= 0) return;
  if (workers_.empty() || n == 1) {
    for (int64_t i = 0; i < n; ++i) task(i);
    return;
  }
  auto job = std::make_shared<Job>();
  job->task = &task;
  job->n = n;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    jobs_.push_back(job);
    queued_.fetch_add(1, std::memory_order_release);
  }
  work_cv_.notify_all();
  run_tasks(*job);
  spin_until([&] { return job->done.load(std::memory_order_acquire) == n; });
  {
    std::unique_lock<std::mutex> lock(mutex_);
    done_cv_.wait(lock, [&] { return job->done.load(std::memory_order_acquire) == n; });
    jobs_.erase(std::find(jobs_.begin(), jobs_.end(), job));
  }
  if (job->error) std::rethrow_exception(job->error);
}

void ThreadPool::parallel_range(int64_t n, int64_t grain,
                                const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(1, grain);
  const int64_t max_chunks = static_cast<int64_t>(num_threads()) * 4;
  const int64_t chunks = std::clamp<int64_t>(n / grain, 1, max_chunks);
  const int64_t step = (n + chunks - 1) / chunks;
  parallel_for((n + step - 1) / step, [&](int64_t c) {
    const int64_t begin = c * step;
    fn(begin, std::min(n, begin + step));
  });
}

int ThreadPool::default_num_threads() {
  if (const char* env = std::getenv("COSY_NUM_THREADS")) {
    const int n = std::atoi(env);
    if (n > 0) return n;
  }
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
  return std::max(1u, std::thread::hardware_concurrency());
}

ThreadPool& ThreadPool::global() {
  static ThreadPool pool(default_num_threads());
  return pool;
}

}  // namespace cosy
