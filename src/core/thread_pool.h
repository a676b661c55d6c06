// A fixed pool of worker threads that many callers share at once. parallel_for splits a
// job into tasks; the calling thread works on its own job too, so a task may itself call
// parallel_for (nested) without deadlock, and several streams' jobs run side by side with
// no global lock held while computing.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace cosy {

class ThreadPool {
 public:
  // `num_threads` counts the caller: 1 runs everything inline on the calling thread.
  explicit ThreadPool(int num_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int num_threads() const { return static_cast<int>(workers_.size()) + 1; }

  // Runs task(i) for every i in [0, n) and returns when all are done. The first exception
  // a task throws is rethrown here (the other tasks still finish).
  void parallel_for(int64_t n, const std::function<void(int64_t)>& task);

  // Splits [0, n) into about num_threads() * 4 ranges of at least `grain` and runs
  // fn(begin, end) on each.
  void parallel_range(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn);

  // The process-wide pool, sized by $COSY_NUM_THREADS or else the cores this process may
  // use. Libraries with pools of their own (a BLAS) must be called single-threaded from
  // inside tasks, so the machine is never oversubscribed.
  static ThreadPool& global();
  static int default_num_threads();

 private:
  struct Job {
    const std::function<void(int64_t)>* task = nullptr;
    int64_t n = 0;
    std::atomic<int64_t> next{0};
    std::atomic<int64_t> done{0};
    std::mutex error_mutex;
    std::exception_ptr error;
  };
  // Claims and runs tasks of `job` until none is left.
  static void run_tasks(Job& job);
  void worker_loop();
  // The first job with unclaimed tasks, or null; the mutex must be held.
  std::shared_ptr<Job> claimable_job() const;

  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable work_cv_;  // workers wait for jobs
  std::condition_variable done_cv_;  // callers wait for their job's stragglers
  std::deque<std::shared_ptr<Job>> jobs_;
  // Bumped (under the mutex) whenever a job is queued: an idle worker spins on it for a
  // while before it sleeps, since inference queues its ops back to back and waking a
  // sleeping thread takes tens of microseconds, as long as a small op itself.
  std::atomic<uint64_t> queued_{0};
  bool stopping_ = false;
};

}  // namespace cosy
