#include "bench_support.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <iterator>
#include <latch>
#include <mutex>
#include <sstream>
#include <system_error>
#include <thread>

namespace mishka::bench {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

Result<ScratchDir> ScratchDir::create(const std::string& prefix) {
  const char* tmp = std::getenv("TMPDIR");
  const fs::path parent = (tmp != nullptr && *tmp != '\0') ? fs::path(tmp) : fs::path("/tmp");
  std::string pattern = (parent / (prefix + "XXXXXX")).string();
  if (::mkdtemp(pattern.data()) == nullptr) {
    return io_error("cannot create a directory under " + parent.string());
  }
  return ScratchDir(fs::path(pattern));
}

ScratchDir::ScratchDir(ScratchDir&& other) noexcept : path_(std::move(other.path_)) {
  other.path_.clear();
}

ScratchDir::~ScratchDir() {
  if (path_.empty()) return;
  std::error_code ignored;
  fs::remove_all(path_, ignored);
}

Watchdog::Watchdog(std::chrono::seconds cap, std::string what)
    : what_(std::move(what)), thread_([this, cap] { wait(cap); }) {}

Watchdog::~Watchdog() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    disarmed_ = true;
  }
  disarmed_cv_.notify_all();
  thread_.join();
}

void Watchdog::remove_on_expiry(fs::path dir) {
  std::lock_guard<std::mutex> lock(mu_);
  dirs_.push_back(std::move(dir));
}

void Watchdog::wait(std::chrono::seconds cap) {
  std::unique_lock<std::mutex> lock(mu_);
  if (disarmed_cv_.wait_for(lock, cap, [this] { return disarmed_; })) return;
  std::fprintf(stderr, "error: %s exceeded its hard cap of %lld s: stopping the process\n",
               what_.c_str(), static_cast<long long>(cap.count()));
  std::fflush(stderr);
  for (const fs::path& dir : dirs_) {
    std::error_code ignored;
    fs::remove_all(dir, ignored);
  }
  ::_exit(1);
}

void progress(const std::string& line) {
  std::fprintf(stderr, "# %s\n", line.c_str());
  std::fflush(stderr);
}

void progress_start(const std::string& what) {
  const std::time_t now = std::time(nullptr);
  char date[32];
  std::strftime(date, sizeof date, "%Y-%m-%d %H:%M:%S", std::localtime(&now));
  const unsigned cpus = std::max(1u, std::thread::hardware_concurrency());
  progress(std::string(date) + " " + what + ", load at start " + load_average() + ", " +
           std::to_string(cpus) + " cpus");
  if (std::strtod(load_average().c_str(), nullptr) > cpus) {
    progress("warning: the machine is busy (1-minute load above " + std::to_string(cpus) +
             " cpus): the figures will read low and spread wide");
  }
}

double LoadResult::percentile(double q) const {
  if (latency_ms.empty()) return 0;
  const double rank = std::ceil(q * static_cast<double>(latency_ms.size()));
  const std::size_t index = static_cast<std::size_t>(std::max(rank, 1.0)) - 1;
  return latency_ms[std::min(index, latency_ms.size() - 1)];
}

LoadResult run_timed_load(int writers, std::chrono::milliseconds warmup,
                          std::chrono::milliseconds duration, const WriteOp& op) {
  std::latch ready(writers + 1);
  Clock::time_point window_start;
  Clock::time_point window_end;
  std::mutex mu;
  LoadResult result;
  std::vector<std::vector<double>> latencies(static_cast<std::size_t>(writers));

  auto writer = [&](int w) {
    std::vector<double>& mine = latencies[static_cast<std::size_t>(w)];
    std::int64_t failed = 0;
    ready.arrive_and_wait();  // window_start and window_end are set before the last arrival
    for (std::int64_t seq = 0;; ++seq) {
      const Clock::time_point begin = Clock::now();
      if (begin >= window_end) break;
      const Status status = op(w, seq);
      const Clock::time_point end = Clock::now();
      if (!status.ok()) {
        ++failed;
        {
          std::lock_guard<std::mutex> lock(mu);
          if (result.first_error.empty()) result.first_error = status.to_string();
        }
        // A refusal can come back at once: do not spin on it.
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
        continue;
      }
      if (begin >= window_start && end <= window_end) {
        mine.push_back(std::chrono::duration<double, std::milli>(end - begin).count());
      }
    }
    std::lock_guard<std::mutex> lock(mu);
    result.failed += failed;
  };

  std::vector<std::thread> threads;
  threads.reserve(static_cast<std::size_t>(writers));
  for (int w = 0; w < writers; ++w) threads.emplace_back(writer, w);
  window_start = Clock::now() + warmup;
  window_end = window_start + duration;
  ready.arrive_and_wait();
  for (std::thread& t : threads) t.join();

  for (const std::vector<double>& mine : latencies) {
    result.latency_ms.insert(result.latency_ms.end(), mine.begin(), mine.end());
  }
  std::sort(result.latency_ms.begin(), result.latency_ms.end());
  result.completed = static_cast<std::int64_t>(result.latency_ms.size());
  result.seconds = std::chrono::duration<double>(duration).count();
  return result;
}

double seconds_since(Clock::time_point from) {
  return std::chrono::duration<double>(Clock::now() - from).count();
}

double median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const std::size_t n = values.size();
  return n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

double cpu_seconds(int pid) {
  std::ifstream in("/proc/" + (pid == 0 ? std::string("self") : std::to_string(pid)) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // Fields after the command name (which may hold spaces) in parentheses: state is the 3rd
  // field of the line, utime the 14th and stime the 15th (proc(5)).
  const std::size_t close = stat.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream fields(stat.substr(close + 1));
  std::string field;
  double ticks = 0;
  for (int i = 3; i <= 15 && fields >> field; ++i) {
    if (i >= 14) ticks += std::strtod(field.c_str(), nullptr);
  }
  return ticks / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

std::string load_average() {
  std::ifstream in("/proc/loadavg");
  std::string one, five, fifteen;
  if (!(in >> one >> five >> fifteen)) return "?";
  return one + " " + five + " " + fifteen;
}

std::string format_number(double value, int decimals) {
  char text[64];
  std::snprintf(text, sizeof text, "%.*f", decimals, value);
  return text;
}

std::string format_runs(const std::vector<double>& values, int decimals) {
  std::string out;
  for (double v : values) {
    if (!out.empty()) out += "/";
    out += format_number(v, decimals);
  }
  if (values.size() > 1) {
    const auto [lo, hi] = std::minmax_element(values.begin(), values.end());
    const double mid = median(values);
    const double spread = mid > 0 ? (*hi - *lo) / mid * 100 : 0;
    out += ", spread " + format_number(spread, 0) + "%";
  }
  return out;
}

std::string default_etcd_binary() {
  const char* configured = std::getenv("MISHKA_ETCD");
  if (configured != nullptr && *configured != '\0') return configured;
  if (::access("/usr/bin/etcd", X_OK) == 0) return "/usr/bin/etcd";
  return "etcd";
}

}  // namespace mishka::bench
