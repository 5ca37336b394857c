// Test helpers for pub/sub: an inbox that records what a subscriber received and lets a test
// wait for it with a bound, and a log sink that keeps the lines for assertions.
#pragma once

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "mishka/log.h"
#include "mishka/pubsub.h"

namespace mishka::pubsub::test {

class Inbox {
 public:
  // A subscriber that records into this inbox; the inbox must outlive the subscription.
  Subscriber subscriber() {
    return [this](const Message& message) { add(message); };
  }

  void add(const Message& message) {
    {
      std::lock_guard lock(mu_);
      messages_.push_back(message);
    }
    cv_.notify_all();
  }

  // True once at least `count` messages arrived, false after `limit`.
  bool wait_for(std::size_t count, std::chrono::milliseconds limit) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, limit, [&] { return messages_.size() >= count; });
  }

  std::vector<Message> messages() const {
    std::lock_guard lock(mu_);
    return messages_;
  }

  std::size_t size() const {
    std::lock_guard lock(mu_);
    return messages_.size();
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Message> messages_;
};

class LogCapture {
 public:
  LogSink sink() {
    return [this](LogLevel level, std::string_view text) {
      std::lock_guard lock(mu_);
      lines_.emplace_back(level, std::string(text));
    };
  }

  // Lines at `level` that contain `part`.
  std::size_t count(LogLevel level, std::string_view part) const {
    std::lock_guard lock(mu_);
    return static_cast<std::size_t>(std::count_if(lines_.begin(), lines_.end(), [&](const auto& l) {
      return l.first == level && l.second.find(part) != std::string::npos;
    }));
  }

  std::string all() const {
    std::lock_guard lock(mu_);
    std::string out;
    for (const auto& line : lines_) out += line.second + "\n";
    return out;
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::pair<LogLevel, std::string>> lines_;
};

// A gate a subscriber can wait on; records that it got there.
class Gate {
 public:
  void wait() {
    std::unique_lock lock(mu_);
    ++arrived_;
    cv_.notify_all();
    cv_.wait(lock, [&] { return open_; });
  }
  void open() {
    {
      std::lock_guard lock(mu_);
      open_ = true;
    }
    cv_.notify_all();
  }
  // True once `count` callers have arrived, false after `limit`.
  bool wait_arrived(int count, std::chrono::milliseconds limit) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, limit, [&] { return arrived_ >= count; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
  int arrived_ = 0;
};

}  // namespace mishka::pubsub::test
