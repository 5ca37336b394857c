// Presence (ARCHITECTURE.md decision 7; docs/cluster.md, "Presence"): each node keeps a key
// alive under a lease of its own, and a node monitor turns the appearance and disappearance of
// those keys into nodeup / nodedown, as Erlang's net_kernel:monitor_nodes does for BEAM nodes.
// A node that is not in the cluster yet cannot watch it; PeerProbe asks its configured peers
// directly instead and reports them up when they answer.
//
// Keys: "<prefix><node name>" (prefix "/mishka/v1/nodes/"), value: the node's presence record,
// a MessagePack map (docs/keyspace.md). A node that stops cleanly revokes its lease, so the
// others see it go at once; one that dies goes when its lease expires (ttl_seconds).
//
// Threading: start() and stop() from the owner; callbacks come on the object's own thread, one
// at a time, and must not call stop() of the object that calls them.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "engine/deadline.h"
#include "engine/etcd_client.h"
#include "mishka/log.h"
#include "mishka/status.h"
#include "mishka/value.h"

namespace mishka::engine {

struct PresenceOptions {
  EtcdClient* client = nullptr;  // not owned; must outlive the object
  std::string prefix = "/mishka/v1/nodes/";
  std::string node_name;
  Value info;  // what the node says about itself (role, addresses); stored as MessagePack
  // etcd's lease TTL: how long after a node dies the others see it down. etcd rounds a TTL up
  // to its minimum (about 2 s with its default election timeout). At least 1.
  std::int64_t ttl_seconds = 5;
  LogSink log;
};

class Presence {
 public:
  // invalid_argument for a missing client, an empty name, a name containing '/', or ttl < 1.
  static Result<std::unique_ptr<Presence>> create(PresenceOptions options);
  ~Presence();  // stop()

  // Grants the lease, puts the key and starts keeping it alive (every ttl/3). When the lease is
  // lost (the node was cut off for longer than the TTL), a new one is granted and the key put
  // again. Errors: the client's (the key is not there then).
  Status start(Deadline deadline);
  // Stops keeping the key alive and revokes the lease (the key goes at once). Idempotent.
  void stop();
  // Stops keeping the key alive without revoking the lease: the key goes when the lease
  // expires, as when the node dies (tests simulate a death in-process with it). Idempotent.
  void abandon();
  // Puts the key again with new info (e.g. the role changed). Errors: the client's.
  Status update(Value info, Deadline deadline);
  // Leases granted so far (1 after start; more after losses).
  int leases_granted() const;

 private:
  explicit Presence(PresenceOptions options) : options_(std::move(options)) {}
  Status put_with_new_lease(Deadline deadline);
  void keep_alive_loop();
  void log(LogLevel level, const std::string& message) const;

  PresenceOptions options_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::int64_t lease_ = 0;
  int leases_granted_ = 0;
  std::thread thread_;
};

// A transition of another node.
struct NodeEvent {
  enum class Kind { up, down };
  Kind kind = Kind::up;
  std::string node;
};

struct NodeMonitorOptions {
  EtcdClient* client = nullptr;  // not owned; must outlive the object
  std::string prefix = "/mishka/v1/nodes/";
  std::string self;  // this node: never reported
  // Called once per transition of each other node, in order, on the monitor's thread.
  std::function<void(const NodeEvent&)> on_event;
  LogSink log;
};

// Watches the presence keys. Every transition is reported exactly once: a node seen at start
// is reported up; then up when its key appears, down when it goes. When the watch breaks (this
// node's member restarting, a partition), the monitor keeps its view, and once it can read
// again it compares the keys with that view and reports the difference: a node that went and
// came back meanwhile is reported neither down nor up, as nothing in etcd says it did.
class NodeMonitor {
 public:
  static Result<std::unique_ptr<NodeMonitor>> create(NodeMonitorOptions options);
  ~NodeMonitor();  // stop()

  // Reads the keys (reporting each node present as up, before returning) and starts watching.
  // Errors: the client's.
  Status start(Deadline deadline);
  void stop();
  // The nodes currently seen up (without self).
  std::set<std::string> up() const;

 private:
  explicit NodeMonitor(NodeMonitorOptions options) : options_(std::move(options)) {}
  // Reads every key; reports the difference with the current view. Returns the revision read.
  Result<std::int64_t> resync(Deadline deadline);
  void watch_loop(std::int64_t from);
  void report(NodeEvent::Kind kind, const std::string& node);
  void log(LogLevel level, const std::string& message) const;

  NodeMonitorOptions options_;
  mutable std::mutex mu_;
  std::set<std::string> up_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::unique_ptr<WatchStream> stream_;  // guarded by mu_ (cancel() from stop())
  std::thread thread_;
};

// A configured peer as a node outside the cluster sees it.
struct PeerEvent {
  NodeEvent::Kind kind = NodeEvent::Kind::up;
  std::string peer;              // the name as configured
  std::uint64_t cluster_id = 0;  // up: the cluster the peer's member belongs to
  std::string detail;            // down: why (the probe's error)
};

struct PeerProbeOptions {
  std::vector<std::string> peers;  // node names (NAME@HOST:PORT)
  std::optional<TlsFiles> tls;     // this node's, as for its own client
  std::chrono::milliseconds interval{1000};
  std::chrono::milliseconds probe_timeout{1000};
  // Called on the probe's thread, once per transition, and once more (as `up`) when a peer that
  // is up answers for another cluster than before; every peer starts down (not reported).
  std::function<void(const PeerEvent&)> on_event;
  LogSink log;
};

// Asks each configured peer's etcd for its status every interval.
class PeerProbe {
 public:
  // invalid_argument for a name that does not parse, naming it.
  static Result<std::unique_ptr<PeerProbe>> create(PeerProbeOptions options);
  ~PeerProbe();  // stop()
  // Starts the thread; the first round runs at once.
  void start();
  void stop();
  // Runs one round now on the caller's thread (serialized with the thread's rounds).
  void probe_once();

 private:
  explicit PeerProbe(PeerProbeOptions options) : options_(std::move(options)) {}
  void loop();

  PeerProbeOptions options_;
  std::vector<std::unique_ptr<EtcdClient>> clients_;  // one per peer
  std::mutex round_mu_;
  std::map<std::string, bool> up_;                    // guarded by round_mu_
  std::map<std::string, std::uint64_t> cluster_ids_;  // of the last answer; guarded by round_mu_
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace mishka::engine
