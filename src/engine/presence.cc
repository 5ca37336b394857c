#include "engine/presence.h"

#include <algorithm>
#include <utility>

#include "common/codec.h"
#include "engine/node_name.h"

namespace mishka::engine {
namespace {

using std::chrono::milliseconds;

constexpr milliseconds kCallTimeout{5000};
// Between two attempts to read the keys again after the watch broke.
constexpr milliseconds kRetryPause{500};

}  // namespace

// ---- Presence ----

Result<std::unique_ptr<Presence>> Presence::create(PresenceOptions options) {
  if (options.client == nullptr) return invalid_argument("presence: no client");
  if (options.node_name.empty() || options.node_name.find('/') != std::string::npos) {
    return invalid_argument("presence: node name '" + options.node_name +
                            "' is empty or contains '/'");
  }
  if (options.ttl_seconds < 1) return invalid_argument("presence: ttl_seconds must be at least 1");
  return std::unique_ptr<Presence>(new Presence(std::move(options)));
}

Presence::~Presence() {
  stop();
}

void Presence::log(LogLevel level, const std::string& message) const {
  log_to(options_.log, level, "presence: " + message);
}

int Presence::leases_granted() const {
  std::lock_guard<std::mutex> lock(mu_);
  return leases_granted_;
}

Status Presence::put_with_new_lease(Deadline deadline) {
  Result<std::int64_t> lease = options_.client->lease_grant(options_.ttl_seconds, deadline);
  if (!lease.ok()) return lease.status().with_context("presence: granting the lease");
  std::string value;
  {
    std::lock_guard<std::mutex> lock(mu_);
    encode_value(options_.info, value);
  }
  Result<Header> put =
      options_.client->put(options_.prefix + options_.node_name, value, *lease, deadline);
  if (!put.ok()) {
    (void)options_.client->lease_revoke(*lease, Deadline::after(kCallTimeout));
    return put.status().with_context("presence: putting the key");
  }
  std::lock_guard<std::mutex> lock(mu_);
  lease_ = *lease;
  ++leases_granted_;
  return Status::Ok();
}

Status Presence::start(Deadline deadline) {
  MISHKA_RETURN_IF_ERROR(put_with_new_lease(deadline));
  thread_ = std::thread([this] { keep_alive_loop(); });
  return Status::Ok();
}

Status Presence::update(Value info, Deadline deadline) {
  std::string value;
  std::int64_t lease = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    options_.info = std::move(info);
    encode_value(options_.info, value);
    lease = lease_;
  }
  Result<Header> put =
      options_.client->put(options_.prefix + options_.node_name, value, lease, deadline);
  return put.ok() ? Status::Ok() : put.status().with_context("presence: updating the key");
}

void Presence::keep_alive_loop() {
  const milliseconds period(options_.ttl_seconds * 1000 / 3);
  std::string last_failure;
  std::unique_lock<std::mutex> lock(mu_);
  while (!cv_.wait_for(lock, period, [this] { return stopping_; })) {
    const std::int64_t lease = lease_;
    lock.unlock();
    Result<std::int64_t> ttl = options_.client->lease_keep_alive(lease, Deadline::after(period));
    Status outcome = ttl.ok() ? Status::Ok() : ttl.status();
    if (ttl.ok() && *ttl == 0) {
      // The lease expired while this node could not reach a quorum: the others saw it go.
      // Come back with a new lease and the key again.
      log(LogLevel::warning, "the presence lease expired; granting a new one");
      outcome = put_with_new_lease(Deadline::after(period));
    } else if (!ttl.ok() && ttl.status().code() == StatusCode::not_found) {
      outcome = put_with_new_lease(Deadline::after(period));
    }
    if (!outcome.ok() && outcome.message() != last_failure) {
      last_failure = outcome.message();
      log(LogLevel::warning, "keeping the presence key alive failed: " + outcome.to_string());
    } else if (outcome.ok() && !last_failure.empty()) {
      last_failure.clear();
      log(LogLevel::info, "the presence key is kept alive again");
    }
    lock.lock();
  }
}

void Presence::abandon() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    lease_ = 0;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Presence::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  std::int64_t lease = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    lease = std::exchange(lease_, 0);
  }
  if (lease != 0) {
    Status revoked = options_.client->lease_revoke(lease, Deadline::after(kCallTimeout));
    if (!revoked.ok() && revoked.code() != StatusCode::not_found) {
      log(LogLevel::warning, "revoking the presence lease: " + revoked.to_string() +
                                 " (the key goes when the lease expires)");
    }
  }
}

// ---- NodeMonitor ----

Result<std::unique_ptr<NodeMonitor>> NodeMonitor::create(NodeMonitorOptions options) {
  if (options.client == nullptr) return invalid_argument("node monitor: no client");
  if (!options.on_event) return invalid_argument("node monitor: no on_event callback");
  return std::unique_ptr<NodeMonitor>(new NodeMonitor(std::move(options)));
}

NodeMonitor::~NodeMonitor() {
  stop();
}

void NodeMonitor::log(LogLevel level, const std::string& message) const {
  log_to(options_.log, level, "node monitor: " + message);
}

std::set<std::string> NodeMonitor::up() const {
  std::lock_guard<std::mutex> lock(mu_);
  return up_;
}

void NodeMonitor::report(NodeEvent::Kind kind, const std::string& node) {
  if (node == options_.self || node.empty()) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const bool known = up_.count(node) > 0;
    if (kind == NodeEvent::Kind::up ? known : !known) return;  // no transition
    if (kind == NodeEvent::Kind::up) {
      up_.insert(node);
    } else {
      up_.erase(node);
    }
  }
  options_.on_event(NodeEvent{.kind = kind, .node = node});
}

Result<std::int64_t> NodeMonitor::resync(Deadline deadline) {
  RangeOptions range;
  range.range_end = prefix_range_end(options_.prefix);
  range.keys_only = true;
  Result<RangeResult> read = options_.client->range(options_.prefix, range, deadline);
  if (!read.ok()) return read.status().with_context("node monitor: reading the presence keys");
  std::set<std::string> present;
  for (const KeyValue& kv : read->kvs) present.insert(kv.key.substr(options_.prefix.size()));
  for (const std::string& node : up()) {
    if (present.count(node) == 0) report(NodeEvent::Kind::down, node);
  }
  for (const std::string& node : present) report(NodeEvent::Kind::up, node);
  return read->header.revision;
}

Status NodeMonitor::start(Deadline deadline) {
  Result<std::int64_t> revision = resync(deadline);
  if (!revision.ok()) return revision.status();
  thread_ = std::thread([this, from = *revision + 1] { watch_loop(from); });
  return Status::Ok();
}

void NodeMonitor::watch_loop(std::int64_t from) {
  std::string last_failure;
  auto pause = [this] {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, kRetryPause, [this] { return stopping_; });
  };
  while (true) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return;
    }
    WatchOptions watch;
    watch.key = options_.prefix;
    watch.range_end = prefix_range_end(options_.prefix);
    watch.start_revision = from;
    Result<std::unique_ptr<WatchStream>> opened = options_.client->watch(watch);
    Status failure = opened.ok() ? Status::Ok() : opened.status();
    if (opened.ok()) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (stopping_) return;
        stream_ = std::move(opened).value();
      }
      while (true) {
        Result<WatchBatch> batch = stream_->next();
        if (!batch.ok()) {
          failure = batch.status();
          break;
        }
        for (const WatchEvent& event : batch->events) {
          report(event.type == WatchEvent::Type::put ? NodeEvent::Kind::up : NodeEvent::Kind::down,
                 event.kv.key.substr(options_.prefix.size()));
          from = event.kv.mod_revision + 1;
        }
      }
      std::lock_guard<std::mutex> lock(mu_);
      stream_.reset();
      if (stopping_) return;
    }
    if (failure.message() != last_failure) {
      last_failure = failure.message();
      log(LogLevel::warning, "watching the presence keys: " + failure.to_string() +
                                 "; the view is kept until they can be read again");
    }
    // Read everything again (the history may be compacted meanwhile) and report the difference.
    while (true) {
      if (pause()) return;
      Result<std::int64_t> revision = resync(Deadline::after(kCallTimeout));
      if (revision.ok()) {
        from = *revision + 1;
        break;
      }
    }
  }
}

void NodeMonitor::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    if (stream_) stream_->cancel();
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

// ---- PeerProbe ----

Result<std::unique_ptr<PeerProbe>> PeerProbe::create(PeerProbeOptions options) {
  if (!options.on_event) return invalid_argument("peer probe: no on_event callback");
  if (options.interval <= milliseconds(0) || options.probe_timeout <= milliseconds(0)) {
    return invalid_argument("peer probe: interval and probe_timeout must be positive");
  }
  std::unique_ptr<PeerProbe> probe(new PeerProbe(std::move(options)));
  for (const std::string& peer : probe->options_.peers) {
    Result<NodeName> name = parse_node_name(peer);
    if (!name.ok()) return name.status().with_context("peer probe");
    ClientOptions client;
    client.endpoints = {name->client_endpoint()};
    client.tls = probe->options_.tls;
    Result<std::unique_ptr<EtcdClient>> created = EtcdClient::create(client);
    if (!created.ok()) return created.status().with_context("peer probe: " + peer);
    probe->clients_.push_back(std::move(created).value());
    probe->up_[peer] = false;
  }
  return probe;
}

PeerProbe::~PeerProbe() {
  stop();
}

void PeerProbe::start() {
  thread_ = std::thread([this] { loop(); });
}

void PeerProbe::probe_once() {
  std::lock_guard<std::mutex> round(round_mu_);
  for (std::size_t i = 0; i < clients_.size(); ++i) {
    const std::string& peer = options_.peers[i];
    Result<EndpointStatus> status =
        clients_[i]->status("", Deadline::after(options_.probe_timeout));
    const bool now_up = status.ok();
    // A peer that stays up but answers for another cluster (its directory was wiped and it
    // bootstrapped again between two rounds) is reported as up again, with the new id: for
    // the repo that is the inconsistency of a peer that came back in another cluster.
    const std::uint64_t cluster_id = now_up ? status->header.cluster_id : 0;
    const bool changed_cluster = now_up && up_[peer] && cluster_ids_[peer] != cluster_id;
    if (now_up == up_[peer] && !changed_cluster) continue;
    up_[peer] = now_up;
    cluster_ids_[peer] = cluster_id;
    PeerEvent event;
    event.kind = now_up ? NodeEvent::Kind::up : NodeEvent::Kind::down;
    event.peer = peer;
    if (now_up) {
      event.cluster_id = cluster_id;
    } else {
      event.detail = status.status().to_string();
    }
    options_.on_event(event);
  }
}

void PeerProbe::loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    lock.unlock();
    probe_once();
    lock.lock();
    cv_.wait_for(lock, options_.interval, [this] { return stopping_; });
  }
}

void PeerProbe::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

}  // namespace mishka::engine
