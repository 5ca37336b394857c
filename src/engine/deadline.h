// Deadlines for blocking calls: every call that waits on etcd or on the replica takes one.
#pragma once

#include <algorithm>
#include <chrono>

namespace mishka::engine {

class Deadline {
 public:
  using Clock = std::chrono::steady_clock;

  static Deadline after(std::chrono::milliseconds timeout) {
    return Deadline(Clock::now() + timeout);
  }
  static Deadline at(Clock::time_point when) { return Deadline(when); }

  Clock::time_point when() const { return when_; }
  bool expired() const { return Clock::now() >= when_; }
  // Zero once expired.
  std::chrono::milliseconds remaining() const {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(when_ - Clock::now());
    return std::max(left, std::chrono::milliseconds(0));
  }
  // The earlier of this deadline and `timeout` from now.
  Deadline capped(std::chrono::milliseconds timeout) const {
    return Deadline(std::min(when_, Clock::now() + timeout));
  }

 private:
  explicit Deadline(Clock::time_point when) : when_(when) {}
  Clock::time_point when_;
};

}  // namespace mishka::engine
