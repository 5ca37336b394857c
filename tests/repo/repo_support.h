// Helpers of the repo tests: a node slot (directory, loopback ports, name) whose RepoOptions
// start etcd quickly and poll often, a recorder of telemetry events and one of the repo's
// pub/sub messages, each with a bounded wait.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "mishka/pubsub.h"
#include "mishka/repo.h"
#include "mishka/telemetry.h"
#include "support/process_checks.h"  // etcd_binary, eventually
#include "support/temp_dir.h"

namespace mishka::test {

// One node of a test: its directory, ports and name, and the repo options to start it with.
struct RepoSlot {
  TempDir dir;
  std::uint16_t client_port = 0;
  std::uint16_t peer_port = 0;
  std::uint16_t metrics_port = 0;
  std::string name;  // n<i>@127.0.0.1:<client_port>

  // Options for this slot: its dir and ports, etcd on loopback, short timers, health timer off,
  // the given peers (empty: a seed). Every line goes to `log` (may be empty).
  RepoOptions options(const std::vector<std::string>& peers = {}, LogSink log = {}) const;
};
// A slot with a fresh directory and free ports; aborts the test binary if none can be had.
RepoSlot make_slot(int index);

// One telemetry event as a handler saw it.
struct RecordedEvent {
  std::string name;  // the segments joined by dots
  telemetry::Measurements measurements;
  telemetry::Metadata metadata;
};

// Records every event of a Telemetry (attach_all) until destroyed.
class EventRecorder {
 public:
  explicit EventRecorder(telemetry::Telemetry& telemetry);
  ~EventRecorder();
  std::vector<RecordedEvent> events(const std::string& name) const;
  // Waits until an event `name` matching `match` was seen; returns it (nullopt on timeout).
  std::optional<RecordedEvent> wait_for(const std::string& name,
                                        const std::function<bool(const RecordedEvent&)>& match,
                                        std::chrono::milliseconds timeout) const;
  std::string dump() const;

 private:
  telemetry::Telemetry& telemetry_;
  std::string id_;
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  std::vector<RecordedEvent> events_;
};

// The metadata value `key` of an event as a string ("" if absent or not a string).
std::string meta_string(const RecordedEvent& event, const std::string& key);

// Records the repo's messages (topic mishka:plugin:mnesia) on a PubSub.
class MessageRecorder {
 public:
  explicit MessageRecorder(pubsub::PubSub& pubsub);
  ~MessageRecorder();
  std::vector<pubsub::Message> messages(const std::string& status) const;
  std::optional<pubsub::Message> wait_for(const std::string& status,
                                          const std::function<bool(const Value& data)>& match,
                                          std::chrono::milliseconds timeout) const;

 private:
  pubsub::PubSub& pubsub_;
  pubsub::SubscriptionId id_ = 0;
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  std::vector<pubsub::Message> messages_;
};

// A field of a map value, or nullptr.
const Value* field(const Value& map, const std::string& key);
// A map's string field, or "".
std::string string_field(const Value& map, const std::string& key);

// Keeps lines logged; thread-safe.
class Lines {
 public:
  LogSink sink();
  bool has(const std::string& part) const;
  std::string dump() const;

 private:
  mutable std::mutex mu_;
  std::vector<std::string> lines_;
};

}  // namespace mishka::test
