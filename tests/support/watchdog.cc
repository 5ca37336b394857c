#include "support/watchdog.h"

#include <cstdio>
#include <cstdlib>

namespace mishka::test {

Watchdog::Watchdog(std::chrono::milliseconds limit) {
  thread_ = std::thread([this, limit] {
    std::unique_lock lock(mutex_);
    if (!cv_.wait_for(lock, limit, [this] { return done_; })) {
      std::fprintf(stderr, "watchdog: the test exceeded %lld ms; aborting\n",
                   static_cast<long long>(limit.count()));
      std::abort();
    }
  });
}

Watchdog::~Watchdog() {
  {
    std::lock_guard lock(mutex_);
    done_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

}  // namespace mishka::test
