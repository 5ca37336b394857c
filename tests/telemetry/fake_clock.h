// A telemetry clock that moves only when a test says so, so that times and durations are exact.
#pragma once

#include <atomic>
#include <cstdint>

#include "mishka/telemetry.h"

namespace mishka::test {

class FakeClock final : public telemetry::Clock {
 public:
  FakeClock(std::int64_t system_ns, std::int64_t monotonic_ns)
      : system_(system_ns), monotonic_(monotonic_ns) {}

  std::int64_t system_time_ns() const override { return system_.load(); }
  std::int64_t monotonic_time_ns() const override { return monotonic_.load(); }

  // Moves both clocks forward.
  void advance(std::int64_t ns) {
    system_ += ns;
    monotonic_ += ns;
  }

 private:
  std::atomic<std::int64_t> system_;
  std::atomic<std::int64_t> monotonic_;
};

}  // namespace mishka::test
