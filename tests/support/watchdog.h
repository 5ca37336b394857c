// A per-test time limit: aborts the whole test process (and so, by PDEATHSIG, every etcd it
// started) when a test hangs instead of failing, so that CI sees a crash with a message rather
// than a run that never ends.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

namespace mishka::test {

// Aborts the process when not destroyed within `limit`.
class Watchdog {
 public:
  explicit Watchdog(std::chrono::milliseconds limit);
  ~Watchdog();
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;
};

}  // namespace mishka::test
