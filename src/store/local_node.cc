#include "store/local_node.h"

#include <algorithm>
#include <filesystem>
#include <future>
#include <memory>
#include <system_error>
#include <thread>
#include <utility>

#include "engine/deadline.h"
#include "store/catalog.h"
#include "store/cluster_meta.h"
#include "store/store_open.h"

namespace mishka::store {

using engine::Deadline;

namespace {

// How long wait_for_tables pauses before asking etcd again after a failed sync.
constexpr std::chrono::milliseconds kSyncRetryPause{100};

std::string join(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& name : names) {
    if (!out.empty()) out += ", ";
    out += "'" + name + "'";
  }
  return out;
}

}  // namespace

Result<std::unique_ptr<LocalNode>> LocalNode::open(LocalNodeConfig config) {
  if (config.engine.log) {
    return invalid_argument("node '" + config.engine.node_name +
                            "': set LocalNodeConfig::log, not engine.log");
  }
  if (config.replica_start_timeout <= std::chrono::milliseconds(0)) {
    return invalid_argument("node '" + config.engine.node_name +
                            "': replica_start_timeout must be positive");
  }
  std::unique_ptr<LocalNode> node(new LocalNode(std::move(config)));
  Status started = node->start();
  if (!started.ok()) {
    node->stop();
    return started;
  }
  return node;
}

LocalNode::LocalNode(LocalNodeConfig config) : config_(std::move(config)) {
  snapshot_path_ =
      (std::filesystem::path(config_.engine.mnesia_dir) / kReplicaSnapshotFile).string();
}

LocalNode::~LocalNode() {
  stop();
}

Status LocalNode::start() {
  const std::string context = "node '" + node_name() + "' in " + config_.engine.mnesia_dir;

  // The replica's snapshot file is read and decoded while the etcd member starts: with a
  // million records each takes seconds, and the decode needs no etcd. Without a thread to spare
  // the replica reads it itself, later (the same outcome, only later).
  std::shared_ptr<std::future<replica::SnapshotFile>> early_snapshot;
  try {
    early_snapshot = std::make_shared<std::future<replica::SnapshotFile>>(std::async(
        std::launch::async, [path = snapshot_path_] { return replica::read_snapshot_file(path); }));
  } catch (const std::system_error&) {
    early_snapshot.reset();
  }

  engine::LocalEngineConfig engine_config = config_.engine;
  engine_config.log = config_.log;
  auto engine = engine::LocalEngine::open(std::move(engine_config));
  if (!engine.ok()) return engine.status().with_context(context + ": engine");
  engine_ = std::move(*engine);

  // Nothing of the cluster's data is read before its layout is known to this build. etcd may
  // still be electing its first leader: errors that may pass are waited out.
  const replica::Keyspace keyspace;
  const Deadline layout_deadline = Deadline::after(config_.replica_start_timeout);
  for (;;) {
    Status layout = check_keyspace_layout(engine_->client(), keyspace, node_name(),
                                          layout_deadline.capped(config_.replica_call_timeout),
                                          prefixed_sink("node " + node_name() + ": "));
    if (layout.ok()) break;
    const bool may_pass = layout.code() == StatusCode::engine_unavailable ||
                          layout.code() == StatusCode::no_quorum ||
                          layout.code() == StatusCode::timeout;
    if (!may_pass || layout_deadline.expired()) {
      return layout.with_context(context + ": keyspace layout");
    }
    std::this_thread::sleep_for(std::min(kSyncRetryPause, layout_deadline.remaining()));
  }

  // Before the replica starts, so that it never serves ram_copies records of a lease left over
  // from a stop of the whole cluster: those are revoked here, and the replica's first sync
  // covers their deletion.
  RamLeaseOptions ram;
  ram.client = &engine_->client();
  ram.key = keyspace.ram_key();
  ram.write_marker_key = keyspace.write_marker_key();
  ram.ttl_seconds = config_.ram_lease_ttl_seconds;
  ram.keep_alive_period = config_.ram_lease_keep_alive_period;
  ram.stale_after = config_.ram_lease_stale_after;
  ram.call_timeout = config_.replica_call_timeout;
  ram.log = prefixed_sink("node " + node_name() + ": ");
  auto ram_lease = RamLease::create(std::move(ram));
  if (!ram_lease.ok()) return ram_lease.status().with_context(context);
  ram_lease_ = std::move(*ram_lease);
  Status judged = ram_lease_->start(Deadline::after(config_.replica_start_timeout));
  if (!judged.ok()) return judged.with_context(context);

  replica::ReplicaOptions replica_options;
  replica_options.client = &engine_->client();
  replica_options.node_name = node_name();
  replica_options.snapshot_path = snapshot_path_;
  if (early_snapshot != nullptr) {
    replica_options.snapshot_file = [early_snapshot] { return early_snapshot->get(); };
  }
  replica_options.load_page = config_.replica_load_page;
  replica_options.snapshot_every_revisions = config_.snapshot_every_revisions;
  replica_options.call_timeout = config_.replica_call_timeout;
  replica_options.log = prefixed_sink("node " + node_name() + ": ");
  replica_options.keyspace = keyspace;
  auto replica = replica::Replica::create(std::move(replica_options));
  if (!replica.ok()) return replica.status().with_context(context + ": replica");
  replica_ = std::move(*replica);
  Status loaded = replica_->start(Deadline::after(config_.replica_start_timeout));
  if (!loaded.ok()) return loaded.with_context(context + ": replica");

  StoreContext store_context;
  store_context.client = &engine_->client();
  store_context.replica = replica_.get();
  store_context.node_name = node_name();
  store_context.keyspace = keyspace;
  store_context.options = config_.store;
  store_context.log = prefixed_sink("node " + node_name() + ": store: ");
  store_context.ram_lease = ram_lease_;
  auto store = open_store(std::move(store_context));
  if (!store.ok()) return store.status().with_context(context + ": store");
  store_ = std::move(*store);

  // While the node has ram_copies tables (its own or created elsewhere), it renews the
  // cluster's ram lease, taking one if there is none, so that the lease lives while any node
  // runs: from its start, then checked every renewal period.
  auto ram_tables = [replica = replica_.get()] {
    bool found = false;
    const replica::Replica::ReadView view = replica->read();
    view.catalog().for_each_table([&](const Table& table) {
      found = found || table.spec().storage == StorageType::ram_copies;
    });
    return found;
  };
  if (ram_tables()) {
    auto lease = ram_lease_->acquire(Deadline::after(config_.replica_call_timeout));
    if (!lease.ok()) {
      log(LogLevel::warning, "no ram_copies lease yet (" + lease.status().to_string() +
                                 "); taking one is tried again every renewal period");
    }
  }
  ram_lease_->keep_when(ram_tables);

  if (config_.pubsub != nullptr) {
    engine::ClusterBroadcastOptions options;
    options.prefix = keyspace.root() + "ps/";
    options.log = prefixed_sink("node " + node_name() + ": ");
    auto created = engine::ClusterBroadcast::create(engine_->client(), *config_.pubsub, options);
    if (!created.ok()) return created.status().with_context(context + ": pub/sub");
    broadcast_ = std::move(*created);
    Status started = broadcast_->start(Deadline::after(config_.replica_call_timeout));
    if (!started.ok()) return started.with_context(context + ": pub/sub");
    config_.pubsub->set_transport(broadcast_);
  }

  const std::string nodes_prefix = keyspace.root() + "nodes/";
  if (config_.presence_ttl_seconds > 0) {
    engine::PresenceOptions presence;
    presence.client = &engine_->client();
    presence.prefix = nodes_prefix;
    presence.node_name = node_name();
    presence.info = Value(Map{
        {Value("role"), Value(engine::node_role_name(engine_->role()))},
        {Value("cluster_id"), Value(static_cast<std::int64_t>(engine_->identity().cluster_id))}});
    presence.ttl_seconds = config_.presence_ttl_seconds;
    presence.log = prefixed_sink("node " + node_name() + ": ");
    auto created = engine::Presence::create(std::move(presence));
    if (!created.ok()) return created.status().with_context(context);
    presence_ = std::move(*created);
    Status announced = presence_->start(Deadline::after(config_.replica_call_timeout));
    if (!announced.ok()) return announced.with_context(context);
  }
  if (config_.on_node_event) {
    engine::NodeMonitorOptions monitor;
    monitor.client = &engine_->client();
    monitor.prefix = nodes_prefix;
    monitor.self = node_name();
    monitor.on_event = config_.on_node_event;
    monitor.log = prefixed_sink("node " + node_name() + ": ");
    auto created = engine::NodeMonitor::create(std::move(monitor));
    if (!created.ok()) return created.status().with_context(context);
    monitor_ = std::move(*created);
    Status watching = monitor_->start(Deadline::after(config_.replica_call_timeout));
    if (!watching.ok()) return watching.with_context(context + ": node monitor");
  }

  const replica::ReplicaStats stats = replica_->stats();
  log(LogLevel::info, "started at revision " + std::to_string(stats.applied_revision) +
                          (stats.loaded_from_snapshot_revision > 0
                               ? " (snapshot file at revision " +
                                     std::to_string(stats.loaded_from_snapshot_revision) + ")"
                               : " (read from etcd)"));
  return Status::Ok();
}

void LocalNode::stop() {
  const bool was_running = store_ != nullptr;
  // A renewal of the ram lease in flight may take until its deadline when etcd has no quorum
  // (the last node of a cluster): let it overlap the steps below.
  if (ram_lease_) ram_lease_->begin_stop();
  if (monitor_) monitor_->stop();
  monitor_.reset();
  if (presence_) presence_->stop();
  presence_.reset();
  if (broadcast_) {
    config_.pubsub->set_transport(nullptr);
    Status stopped = broadcast_->stop(Deadline::after(config_.replica_call_timeout));
    if (!stopped.ok()) log(LogLevel::warning, "stopping pub/sub: " + stopped.to_string());
    broadcast_.reset();
  }
  store_.reset();
  if (ram_lease_) ram_lease_->stop();
  ram_lease_.reset();
  if (replica_) replica_->stop();
  replica_.reset();
  if (engine_) engine_->stop();
  engine_.reset();
  if (was_running) log(LogLevel::info, "stopped");
}

TablesWait LocalNode::wait_for_tables(const std::vector<std::string>& tables,
                                      std::chrono::milliseconds timeout) const {
  const Deadline deadline = Deadline::after(timeout);
  TablesWait result;
  if (tables.empty()) return result;

  auto absent = [&] {
    std::vector<std::string> missing;
    const replica::Replica::ReadView view = replica_->read();
    for (const std::string& name : tables) {
      if (view.catalog().find(name) == nullptr &&
          std::find(missing.begin(), missing.end(), name) == missing.end()) {
        missing.push_back(name);
      }
    }
    return missing;
  };

  // A table absent here may exist in etcd already: catch up with etcd once (Replica::sync)
  // before waiting for the replica to apply new revisions. etcd may be restarting: the sync is
  // retried until the deadline.
  bool synced = false;
  Status sync_error;
  for (;;) {
    const std::int64_t seen = replica_->applied_revision();
    result.missing = absent();
    if (result.missing.empty()) return result;
    if (deadline.expired()) break;
    if (!synced) {
      sync_error = replica_->sync(deadline);
      synced = sync_error.ok();
      if (!synced && !deadline.expired()) {
        std::this_thread::sleep_for(std::min(kSyncRetryPause, deadline.remaining()));
      }
      continue;
    }
    Status waited = replica_->wait_for_revision(seen + 1, deadline);
    if (waited.code() == StatusCode::engine_unavailable) {
      result.status = waited.with_context("node '" + node_name() + "': wait_for_tables");
      result.missing = absent();
      return result;
    }
  }
  std::string message = "node '" + node_name() + "': tables " + join(result.missing) +
                        " not present after " + std::to_string(timeout.count()) + " ms";
  if (!synced) message += " (could not catch up with etcd: " + sync_error.to_string() + ")";
  result.status = Status(StatusCode::timeout, std::move(message));
  return result;
}

void LocalNode::log(LogLevel level, const std::string& message) const {
  log_to(config_.log, level, "node " + node_name() + ": " + message);
}

LogSink LocalNode::prefixed_sink(std::string prefix) const {
  if (!config_.log) return {};
  return
      [sink = config_.log, prefix = std::move(prefix)](LogLevel level, std::string_view message) {
        sink(level, prefix + std::string(message));
      };
}

}  // namespace mishka::store
