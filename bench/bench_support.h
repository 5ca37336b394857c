// Helpers of the cluster benchmarks (bench/cluster_bench.cc, bench/compare_bench.cc): a scratch
// directory, a hard cap on a run's time, progress lines, a timed load of writer threads with its
// latencies, medians over runs, and the machine's load.
//
// Threading: run_timed_load() runs its writers on threads of its own and a Watchdog waits on one
// of its own; everything else belongs to the calling thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "mishka/status.h"

namespace mishka::bench {

// A fresh directory under $TMPDIR (or /tmp), removed with everything in it when destroyed.
class ScratchDir {
 public:
  // io_error naming the parent when it cannot be created.
  static Result<ScratchDir> create(const std::string& prefix);
  ScratchDir(ScratchDir&& other) noexcept;
  ScratchDir& operator=(ScratchDir&&) = delete;
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  ~ScratchDir();

  const std::filesystem::path& path() const { return path_; }

 private:
  explicit ScratchDir(std::filesystem::path path) : path_(std::move(path)) {}
  std::filesystem::path path_;  // empty once moved from
};

// Ends the process when a run outlives its hard cap, so that no step can hang a caller: prints
// `what` and the cap on stderr, removes the directories it was given, and _exit(1)s (the etcd
// members this process started die with it: they have a parent-death signal). Disarmed when
// destroyed. Its own thread waits; remove_on_expiry() may be called from any thread.
class Watchdog {
 public:
  Watchdog(std::chrono::seconds cap, std::string what);
  ~Watchdog();
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  void remove_on_expiry(std::filesystem::path dir);

 private:
  void wait(std::chrono::seconds cap);

  std::string what_;
  std::mutex mu_;
  std::condition_variable disarmed_cv_;
  bool disarmed_ = false;                    // guarded by mu_
  std::vector<std::filesystem::path> dirs_;  // guarded by mu_
  std::thread thread_;                       // last: started once the rest is set
};

// A progress line on stderr: "# <line>".
void progress(const std::string& line);
// A progress line with the load at start and a warning when the 1-minute load exceeds the cpus
// (the figures will then read low and spread wide).
void progress_start(const std::string& what);

// One writer's operation: called again and again with the writer's index and a sequence
// number that grows by one per call (unique per writer). Returns the operation's status.
using WriteOp = std::function<Status(int writer, std::int64_t seq)>;

struct LoadResult {
  double seconds = 0;              // the measured window
  std::int64_t completed = 0;      // ok operations that ended inside the window
  std::int64_t failed = 0;         // failed operations (any time)
  std::string first_error;         // the first failure, for the report
  std::vector<double> latency_ms;  // of the completed operations, sorted

  double per_second() const { return seconds > 0 ? static_cast<double>(completed) / seconds : 0; }
  // Nearest-rank percentile of latency_ms (q in (0, 1]); 0 when nothing completed.
  double percentile(double q) const;
};

// Runs `writers` threads calling `op` back to back: first for `warmup` (not measured: gRPC
// connections, caches), then for `duration`, the measured window. An operation counts when it
// started and ended inside the window. No operation starts after the window; the call returns
// once the last one in flight ended (each is bounded by its own timeout).
LoadResult run_timed_load(int writers, std::chrono::milliseconds warmup,
                          std::chrono::milliseconds duration, const WriteOp& op);

// Seconds from `from` until now.
double seconds_since(std::chrono::steady_clock::time_point from);

// The median of `values` (the mean of the two middle ones for an even count); 0 when empty.
double median(std::vector<double> values);

// CPU time (user + system) a process has used so far, in seconds, from /proc/<pid>/stat; pid 0
// is this process. 0 when it cannot be read (the process is gone).
double cpu_seconds(int pid);

// "/proc/loadavg"'s first three fields, or "?".
std::string load_average();

// A figure with a fixed number of decimals, e.g. format_number(5.123, 1) == "5.1".
std::string format_number(double value, int decimals);

// "a/b/c" of the values, each with `decimals` decimals, and the spread "(max-min)/median" in
// percent: "2400/2510/2600, spread 8%".
std::string format_runs(const std::vector<double>& values, int decimals);

// The etcd binary: $MISHKA_ETCD if set, else /usr/bin/etcd if it exists, else "etcd" (PATH).
std::string default_etcd_binary();

}  // namespace mishka::bench
