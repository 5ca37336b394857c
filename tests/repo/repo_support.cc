#include "repo/repo_support.h"

#include <cstdio>
#include <cstdlib>
#include <sstream>

#include "engine/child_process.h"

namespace mishka::test {

using std::chrono::milliseconds;

RepoSlot make_slot(int index) {
  Result<std::vector<std::uint16_t>> ports = engine::pick_free_loopback_ports(3);
  Result<TempDir> dir = TempDir::Create("mishka-repo-");
  if (!ports.ok() || !dir.ok()) {
    std::fprintf(stderr, "cannot make a test slot: %s %s\n", ports.status().to_string().c_str(),
                 dir.status().to_string().c_str());
    std::abort();
  }
  RepoSlot slot{.dir = std::move(dir).value(),
                .client_port = (*ports)[0],
                .peer_port = (*ports)[1],
                .metrics_port = (*ports)[2],
                .name = ""};
  slot.name = "n" + std::to_string(index) + "@127.0.0.1:" + std::to_string(slot.client_port);
  return slot;
}

RepoOptions RepoSlot::options(const std::vector<std::string>& peers, LogSink log) const {
  RepoOptions o;
  o.mnesia_dir = (dir.path() / "node").string();
  o.node = name;
  o.peer_port = peer_port;
  o.metrics_port = metrics_port;
  o.etcd_binary = etcd_binary();
  o.cluster_nodes = peers;
  o.wait_timeout = milliseconds(5000);
  o.wait_retries = 2;
  o.health_interval = milliseconds(0);
  o.join_timeout = milliseconds(30000);
  o.member_ready_timeout = milliseconds(15000);
  o.retry_min = milliseconds(200);
  o.retry_max = milliseconds(2000);
  o.probe_interval = milliseconds(300);
  o.presence_ttl_seconds = 2;
  o.membership_interval = milliseconds(500);
  o.call_timeout = milliseconds(2000);
  o.log = std::move(log);
  return o;
}

EventRecorder::EventRecorder(telemetry::Telemetry& telemetry)
    : telemetry_(telemetry),
      id_("test-recorder-" + std::to_string(reinterpret_cast<std::uintptr_t>(this))) {
  Status attached = telemetry_.attach_all(
      id_, [this](const telemetry::EventName& event, const telemetry::Measurements& m,
                  const telemetry::Metadata& md) {
        {
          std::lock_guard<std::mutex> lock(mu_);
          events_.push_back(RecordedEvent{telemetry::join_event_name(event), m, md});
        }
        cv_.notify_all();
      });
  if (!attached.ok()) std::abort();
}

EventRecorder::~EventRecorder() {
  (void)telemetry_.detach(id_);
}

std::vector<RecordedEvent> EventRecorder::events(const std::string& name) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<RecordedEvent> out;
  for (const RecordedEvent& e : events_) {
    if (e.name == name) out.push_back(e);
  }
  return out;
}

std::optional<RecordedEvent> EventRecorder::wait_for(
    const std::string& name, const std::function<bool(const RecordedEvent&)>& match,
    milliseconds timeout) const {
  std::unique_lock<std::mutex> lock(mu_);
  std::optional<RecordedEvent> found;
  cv_.wait_for(lock, timeout, [&] {
    for (const RecordedEvent& e : events_) {
      if (e.name == name && (!match || match(e))) {
        found = e;
        return true;
      }
    }
    return false;
  });
  return found;
}

std::string EventRecorder::dump() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::ostringstream out;
  for (const RecordedEvent& e : events_) {
    out << e.name;
    for (const auto& [key, value] : e.metadata) out << " " << key << "=" << value.debug_string();
    out << "\n";
  }
  return out.str();
}

std::string meta_string(const RecordedEvent& event, const std::string& key) {
  auto it = event.metadata.find(key);
  if (it == event.metadata.end() || it->second.get_string() == nullptr) return "";
  return *it->second.get_string();
}

MessageRecorder::MessageRecorder(pubsub::PubSub& pubsub) : pubsub_(pubsub) {
  Result<pubsub::SubscriptionId> id =
      pubsub_.subscribe(kRepoTopic, [this](const pubsub::Message& message) {
        {
          std::lock_guard<std::mutex> lock(mu_);
          messages_.push_back(message);
        }
        cv_.notify_all();
      });
  if (!id.ok()) std::abort();
  id_ = *id;
}

MessageRecorder::~MessageRecorder() {
  (void)pubsub_.unsubscribe(id_);
}

std::vector<pubsub::Message> MessageRecorder::messages(const std::string& status) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<pubsub::Message> out;
  for (const pubsub::Message& m : messages_) {
    if (string_field(m.payload, "status") == status) out.push_back(m);
  }
  return out;
}

std::optional<pubsub::Message> MessageRecorder::wait_for(
    const std::string& status, const std::function<bool(const Value& data)>& match,
    milliseconds timeout) const {
  std::unique_lock<std::mutex> lock(mu_);
  std::optional<pubsub::Message> found;
  cv_.wait_for(lock, timeout, [&] {
    for (const pubsub::Message& m : messages_) {
      const Value* data = field(m.payload, "data");
      if (string_field(m.payload, "status") == status && data != nullptr &&
          (!match || match(*data))) {
        found = m;
        return true;
      }
    }
    return false;
  });
  return found;
}

const Value* field(const Value& map, const std::string& key) {
  const Map* m = map.get_map();
  return m == nullptr ? nullptr : m->find(Value(key));
}

std::string string_field(const Value& map, const std::string& key) {
  const Value* v = field(map, key);
  return v != nullptr && v->get_string() != nullptr ? *v->get_string() : "";
}

LogSink Lines::sink() {
  return [this](LogLevel, std::string_view line) {
    std::lock_guard<std::mutex> lock(mu_);
    lines_.emplace_back(line);
  };
}

bool Lines::has(const std::string& part) const {
  std::lock_guard<std::mutex> lock(mu_);
  for (const std::string& line : lines_) {
    if (line.find(part) != std::string::npos) return true;
  }
  return false;
}

std::string Lines::dump() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::string out;
  for (const std::string& line : lines_) out += line + "\n";
  return out;
}

}  // namespace mishka::test
