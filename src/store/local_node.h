// One core node on one directory: its engine (identity, etcd member, client, maintenance), the
// replica fed by that member, and the store over both (docs/store.md, "The node on one
// directory").
//
// Directory (<mnesia_dir>):
//   identity          the engine's (src/engine/local_engine.h)
//   etcd/             the engine's etcd member
//   replica.snapshot  the replica's snapshot file: a cache, rebuilt from etcd when damaged
//
// Start is all or nothing: open() starts the engine, checks the keyspace layout in etcd
// (store/cluster_meta.h), judges a ram_copies lease left in etcd (store/ram_lease.h), then
// starts the replica, then the store; when a step fails, what was started is stopped again in
// reverse order and the error is returned. Then the node connects its pub/sub to the cluster
// (if given one), announces itself (presence) and, if asked, watches the others (node
// monitor). stop() undoes these in reverse order, then stops the store, the ram lease's
// renewal, the replica (which writes its snapshot file), then the engine.
//
// Threading: open() and stop() belong to the owner. The accessors and wait_for_tables() may be
// called from any thread between them.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/cluster_broadcast.h"
#include "engine/local_engine.h"
#include "engine/presence.h"
#include "mishka/log.h"
#include "mishka/pubsub.h"
#include "mishka/status.h"
#include "mishka/store.h"
#include "replica/replica.h"
#include "store/ram_lease.h"

namespace mishka::store {

// The file name of the replica's snapshot file inside the node's directory.
inline constexpr char kReplicaSnapshotFile[] = "replica.snapshot";

struct LocalNodeConfig {
  // Node name, directory, ports, etcd and maintenance settings. Leave engine.log empty: the
  // engine logs to `log` below (setting both is invalid_argument).
  engine::LocalEngineConfig engine;

  // The replica (src/replica/replica.h): records per range request of a full load, applied
  // revisions between two rewrites of the snapshot file, the deadline of each of its calls.
  std::int64_t replica_load_page = 5000;
  std::int64_t snapshot_every_revisions = 50000;
  std::chrono::milliseconds replica_call_timeout{5000};
  // Bounds the replica's start: loading the snapshot file or etcd, then catching up with etcd.
  std::chrono::milliseconds replica_start_timeout{60000};

  StoreOptions store;

  // The cluster-wide lease of ram_copies records (store/ram_lease.h, docs/store.md). Every node
  // of a cluster must use the same keep-alive period (a node judges a lease left in etcd by
  // how often the others renew it); the TTL and the judgement's length are per node.
  std::int64_t ram_lease_ttl_seconds = 10;
  std::chrono::milliseconds ram_lease_keep_alive_period{1000};
  std::chrono::milliseconds ram_lease_stale_after{5000};

  // The node's pub/sub (mishka/pubsub.h), owned by the caller so that subscribers may come
  // before the node: while the node runs, its cluster-wide broadcasts go through etcd
  // (engine/cluster_broadcast.h, under "<root>ps/") to every node's subscribers. Not owned;
  // must outlive the node. nullptr: none.
  pubsub::PubSub* pubsub = nullptr;

  // Presence (engine/presence.h): the node keeps "<root>nodes/<name>" alive under a lease of
  // this TTL, so that other nodes see it up, and down within the TTL once it dies (at once when
  // it stops cleanly). 0: no presence key.
  std::int64_t presence_ttl_seconds = 5;
  // Told of each transition of another node (up / down), from the presence keys: once per
  // transition, on the node monitor's thread (its rules: engine/presence.h). Those present at
  // start come as up before open() returns. Empty: no monitor.
  std::function<void(const engine::NodeEvent&)> on_node_event;

  // Every line of the node: the engine's ("engine <node>: ..."), the replica's and the store's
  // ("node <node>: replica: ...", "node <node>: store: ..."). May be empty.
  LogSink log;
};

// What wait_for_tables() found.
struct TablesWait {
  // ok: every table is present. timeout: the deadline passed (the message names `missing`).
  // engine_unavailable: the node is stopping. Other errors of the last attempt to catch up with
  // etcd are named in a timeout's message.
  Status status;
  // The tables not present in the local replica when the call returned, in the order asked;
  // empty when status is ok.
  std::vector<std::string> missing;
};

class LocalNode {
 public:
  // Opens the node on config.engine.mnesia_dir (see the top). Errors, each naming the node:
  //   - those of LocalEngine::open(): invalid_argument, node_name_mismatch, corrupt with the
  //     path of a damaged identity file (nothing is started then), io_error, and etcd's;
  //   - unsupported when etcd's "<root>meta" says another keyspace layout than this build's
  //     (1), corrupt when that key cannot be decoded (store/cluster_meta.h);
  //   - those of RamLease::start() (a timeout when no verdict on a ram lease left in etcd
  //     could be reached, e.g. while etcd keeps electing leaders);
  //   - those of Replica::start(): the client's, and corrupt naming a record etcd holds that
  //     cannot be decoded. A damaged snapshot file is not an error: it is logged as a warning
  //     with its path, removed, and the replica is read from etcd;
  //   - those of open_store() (invalid_argument for a bad store option).
  // On error nothing of the node runs (the etcd member is stopped).
  // When etcd holds a ram_copies lease, open() takes up to about ram_lease_stale_after longer
  // (the judgement of RamLease::start; docs/store.md, "ram_copies: the cluster's lease").
  static Result<std::unique_ptr<LocalNode>> open(LocalNodeConfig config);

  // stop().
  ~LocalNode();
  LocalNode(const LocalNode&) = delete;
  LocalNode& operator=(const LocalNode&) = delete;

  // Stops the store (no call of it may be running), then the replica (it writes the snapshot
  // file), then the engine (the etcd member stops). Idempotent. The accessors are invalid after.
  void stop();

  Store& store() const { return *store_; }
  replica::Replica& replica() const { return *replica_; }
  engine::LocalEngine& engine() const { return *engine_; }
  // The cluster's ram_copies lease as this node keeps it.
  RamLease& ram_lease() const { return *ram_lease_; }
  // The node monitor; nullptr without on_node_event.
  engine::NodeMonitor* node_monitor() const { return monitor_.get(); }
  const std::string& node_name() const { return config_.engine.node_name; }
  // <mnesia_dir>/replica.snapshot.
  const std::string& snapshot_path() const { return snapshot_path_; }

  // Waits until every table of `tables` is present in this node's replica, as Mnesia's
  // wait_for_tables/2: first the replica catches up with etcd (Replica::sync), so a table
  // created anywhere before the call is found; then tables created during the wait are found
  // as the replica applies them. Returns ok at once when `tables` is empty. On timeout,
  // `missing` lists the tables still absent, and so does the message. Blocks at most `timeout`
  // (plus one etcd call's cancellation); any thread.
  TablesWait wait_for_tables(const std::vector<std::string>& tables,
                             std::chrono::milliseconds timeout) const;

 private:
  explicit LocalNode(LocalNodeConfig config);
  Status start();
  void log(LogLevel level, const std::string& message) const;
  LogSink prefixed_sink(std::string prefix) const;

  LocalNodeConfig config_;
  std::string snapshot_path_;
  std::unique_ptr<engine::LocalEngine> engine_;
  std::shared_ptr<RamLease> ram_lease_;  // shared with the store
  std::unique_ptr<replica::Replica> replica_;
  std::unique_ptr<Store> store_;
  std::shared_ptr<engine::ClusterBroadcast> broadcast_;
  std::unique_ptr<engine::Presence> presence_;
  std::unique_ptr<engine::NodeMonitor> monitor_;
};

}  // namespace mishka::store
