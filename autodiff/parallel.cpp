// The pool behind parallel_for. One shared queue of jobs; a job is one parallel_for call.
// Workers and the calling thread claim chunks of a job with an atomic counter, so a job
// never waits for a worker to make progress: if every worker is busy elsewhere (another
// user thread's job, or being stopped by set_num_threads), the caller runs its chunks alone.
#include "autodiff/parallel.hpp"
#include "autodiff/detail/ownership.hpp"

#include <cblas.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <exception>
#include <fmt/format.h>
#include <limits>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "autodiff/errors.hpp"

namespace cholla {
namespace {

thread_local bool t_in_chunk = false;

// Marks the current thread as running a chunk, so nested parallel_for calls run inline.
struct ChunkScope {
  bool saved = t_in_chunk;
  ChunkScope() { t_in_chunk = true; }
  ~ChunkScope() { t_in_chunk = saved; }
  ChunkScope(const ChunkScope&) = delete;
  ChunkScope& operator=(const ChunkScope&) = delete;
};

struct Job {
  parallel_impl::ChunkCall call;
  void* fn;
  int64_t n_items, grain, n_chunks;
  std::atomic<int64_t> next{0};  // next unclaimed chunk
  std::atomic<int64_t> lowest_failure{std::numeric_limits<int64_t>::max()};
  std::mutex mutex;  // guards finished, error
  std::condition_variable all_done;
  int64_t finished = 0;
  std::exception_ptr error;

  // Claims and runs chunks until none is left to claim.
  void work() {
    const ChunkScope scope;
    for (;;) {
      const int64_t c = next.fetch_add(1, std::memory_order_relaxed);
      if (c >= n_chunks) return;
      std::exception_ptr failed;
      // A chunk after a recorded failure is skipped: its result would be discarded anyway,
      // and every chunk before the lowest failure is still run, so the winner is fixed.
      if (c < lowest_failure.load(std::memory_order_relaxed)) {
        try {
          call(fn, c * grain, std::min(n_items, (c + 1) * grain));
        } catch (...) {
          failed = std::current_exception();
        }
      }
      const std::lock_guard lock(mutex);
      if (failed && c < lowest_failure.load(std::memory_order_relaxed)) {
        lowest_failure.store(c, std::memory_order_relaxed);
        error = failed;
      }
      if (++finished == n_chunks) all_done.notify_all();
    }
  }

  bool exhausted() const { return next.load(std::memory_order_relaxed) >= n_chunks; }
};

int64_t hardware_threads() {
  const unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int64_t>(n);
}

int64_t threads_from_environment() {
  const char* env = std::getenv("CHOLLA_NUM_THREADS");
  if (env == nullptr || *env == '\0') return hardware_threads();
  char* end = nullptr;
  const long long n = std::strtoll(env, &end, 10);
  if (*end != '\0' || n < 1)
    throw DomainError("set_num_threads",
                      fmt::format("the environment variable CHOLLA_NUM_THREADS = '{}' is not a "
                                  "positive integer. Set it to a thread count such as 1 or 2, "
                                  "or unset it to use every hardware thread.",
                                  env),
                      "CHOLLA_NUM_THREADS");
  return n;
}

class Pool {
 public:
  static Pool& instance() {
    static Pool pool;
    return pool;
  }

  int64_t threads() {
    const std::lock_guard lock(config_mutex_);
    configure_locked();
    return threads_;
  }

  void resize(int64_t n) {
    const std::lock_guard lock(config_mutex_);
    configure_locked();
    if (n == threads_) return;
    stop_workers_locked();
    threads_ = n;
    relate_openblas_locked();
  }

  void run(int64_t n_items, int64_t grain, parallel_impl::ChunkCall call, void* fn) {
    auto job = std::make_shared<Job>();
    job->call = call;
    job->fn = fn;
    job->n_items = n_items;
    job->grain = grain;
    job->n_chunks = parallel_chunk_count(n_items, grain);
    if (!start_workers_if_needed(job->n_chunks)) {
      job->work();  // one thread: the same chunks, in order, here
    } else {
      {
        const std::lock_guard lock(queue_mutex_);
        queue_.push_back(job);
      }
      queue_cv_.notify_all();
      job->work();
      {
        const std::lock_guard lock(queue_mutex_);  // workers may not have seen it at all
        const auto it = std::find(queue_.begin(), queue_.end(), job);
        if (it != queue_.end()) queue_.erase(it);
      }
      std::unique_lock lock(job->mutex);
      job->all_done.wait(lock, [&] { return job->finished == job->n_chunks; });
    }
    if (job->error) std::rethrow_exception(job->error);
  }

  ~Pool() {
    const std::lock_guard lock(config_mutex_);
    stop_workers_locked();
  }

 private:
  Pool() = default;

  // Resolves the default thread count once (the environment may be malformed: then every
  // call that needs the count throws until set_num_threads fixes it).
  void configure_locked() {
    if (threads_ > 0) return;
    blas_threads_ = std::max(1, openblas_get_num_threads());
    threads_ = threads_from_environment();
    relate_openblas_locked();
  }

  void relate_openblas_locked() {
    openblas_set_num_threads(static_cast<int>(std::max<int64_t>(1, blas_threads_ / threads_)));
  }

  // Starts the workers (threads - 1) on first use. Returns false when the job should run
  // on the caller alone.
  bool start_workers_if_needed(int64_t n_chunks) {
    if (n_chunks <= 1) return false;
    const std::lock_guard lock(config_mutex_);
    configure_locked();
    if (threads_ <= 1) return false;
    if (workers_.empty()) {
      {
        const std::lock_guard queue_lock(queue_mutex_);
        stopping_ = false;
      }
      for (int64_t i = 1; i < threads_; ++i) workers_.emplace_back([this] { worker_loop(); });
    }
    return true;
  }

  void stop_workers_locked() {
    {
      const std::lock_guard lock(queue_mutex_);
      stopping_ = true;
    }
    queue_cv_.notify_all();
    for (std::thread& t : workers_) t.join();
    workers_.clear();
  }

  void worker_loop() {
    for (;;) {
      std::shared_ptr<Job> job;
      {
        std::unique_lock lock(queue_mutex_);
        queue_cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
        if (stopping_) return;
        job = queue_.front();
        if (job->exhausted()) {  // every chunk claimed: nothing left for anyone here
          queue_.pop_front();
          continue;
        }
      }
      job->work();
      // A chunk that made tensors (user code may) owns them; if their handles were dropped on
      // the caller's thread, this worker is the one to reconcile them (docs/engine.md).
      detail::reconcile_dropped_elsewhere();
    }
  }

  std::mutex config_mutex_;  // guards threads_, blas_threads_, workers_
  int64_t threads_ = 0;      // 0 until configured
  int blas_threads_ = 1;
  std::vector<std::thread> workers_;

  std::mutex queue_mutex_;  // guards queue_, stopping_
  std::condition_variable queue_cv_;
  std::deque<std::shared_ptr<Job>> queue_;
  bool stopping_ = false;
};

}  // namespace

void set_num_threads(int64_t n) {
  if (n < 1)
    throw DomainError("set_num_threads",
                      fmt::format("the thread count must be at least 1, got {}. Use 1 for a "
                                  "single thread or num_threads() for the current count.",
                                  n),
                      "n");
  if (t_in_chunk)
    throw DomainError("set_num_threads",
                      "called from inside a parallel_for chunk. Set the thread count before "
                      "the parallel work starts.",
                      "n");
  Pool::instance().resize(n);
}

int64_t num_threads() { return Pool::instance().threads(); }

int64_t parallel_chunk_count(int64_t n_items, int64_t grain) {
  if (n_items <= 0) return 0;
  grain = std::max<int64_t>(grain, 1);
  return (n_items + grain - 1) / grain;
}

bool in_parallel_region() { return t_in_chunk; }

namespace parallel_impl {

void parallel_run(int64_t n_items, int64_t grain, ChunkCall call, void* fn) {
  if (n_items <= 0) return;
  grain = std::max<int64_t>(grain, 1);
  if (t_in_chunk) {  // nested: inline, in chunk order (the first throw is the lowest chunk)
    for (int64_t begin = 0; begin < n_items; begin += grain)
      call(fn, begin, std::min(n_items, begin + grain));
    return;
  }
  Pool::instance().run(n_items, grain, call, fn);
}

}  // namespace parallel_impl
}  // namespace cholla
