// The engine of one core node: its directory, its identity, its own etcd member, the client to
// that member, and the maintenance that keeps etcd's history and database bounded
// (docs/engine.md, "The node's engine" and "Maintenance").
//
// Directory (<mnesia_dir>):
//   identity   who owns the directory, and which etcd member and cluster it holds (identity.h)
//   etcd/      the member's directory (etcd_member.h)
//
// Identity rules, checked by open() before anything is started or written:
//   - the identity file names another node: node_name_mismatch, the directory is left untouched;
//   - the identity file is unreadable, truncated or altered: corrupt with its path, nothing runs;
//   - no identity file but etcd data: corrupt (the data's owner is unknown);
//   - an identity with recorded ids but no etcd data: corrupt (the data is gone);
//   - no identity file and no etcd data: a first start. The node name is written first (cluster
//     id 0: "first start not completed"); then a seed bootstraps a one-member cluster (with a
//     fresh random cluster token, so that a wiped seed gets a new cluster id), and a joiner
//     joins through its peers (join.h; etcd data left by an interrupted join is wiped first).
//     The member id (0 for a replica) and the cluster id are recorded;
//   - an identity with a cluster id but member id 0: a replica node; it starts no member;
//   - otherwise the directory is reused, and etcd's member id and cluster id must equal the
//     recorded ones (corrupt, naming both ids and the path, and etcd is stopped again).
//
// Threading: open() and stop() from one owner thread; every other method from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "engine/etcd_client.h"
#include "engine/etcd_member.h"
#include "engine/identity.h"
#include "engine/join.h"
#include "mishka/log.h"
#include "mishka/status.h"

namespace mishka::engine {

// etcd's own default --quota-backend-bytes (etcdserver/quota.go, DefaultQuotaBytes).
inline constexpr std::int64_t kEtcdDefaultQuotaBytes = std::int64_t{2} << 30;
// The quota we accept: etcd has no minimum (below one MiB every write would raise the alarm)
// and warns above 8 GiB (its MaxQuotaBytes).
inline constexpr std::int64_t kMinQuotaBytes = std::int64_t{1} << 20;
inline constexpr std::int64_t kMaxQuotaBytes = std::int64_t{8} << 30;

struct MaintenanceOptions {
  // Time between two maintenance runs of the engine's thread. 0: no thread (tests call
  // run_maintenance_once()).
  std::chrono::milliseconds interval{5000};

  // Compaction keeps at least the last `retention_revisions` revisions and, when
  // `retention_time` is positive, every revision of the last `retention_time`: it compacts to
  // the older of the two bounds. 0 and 0: no compaction (except under the space alarm).
  std::int64_t retention_revisions = 10000;
  std::chrono::milliseconds retention_time{0};
  // A compaction is sent only when it moves the compact revision forward by at least this.
  std::int64_t compaction_min_step = 1000;

  // Defragmentation (it blocks the member while it runs) happens when etcd's database file is
  // at least `defrag_ratio` times the bytes in use AND wastes at least `defrag_min_free_bytes`,
  // and the previous one is at least `defrag_min_interval` ago. etcd counts the pages a
  // compaction freed as free only after a few more of its backend commits (writes), so the
  // defragmentation usually comes a run or more after the compaction. Under the space alarm
  // the interval and the thresholds are ignored (see docs/engine.md, "Maintenance").
  double defrag_ratio = 2.0;
  std::int64_t defrag_min_free_bytes = std::int64_t{64} << 20;
  std::chrono::milliseconds defrag_min_interval{std::chrono::minutes(10)};

  // The space alarm of this member is disarmed once its database file is at most this fraction
  // of the quota (etcd raises it again at the next write otherwise).
  double disarm_below_fraction = 0.9;

  // Deadlines: status and alarm calls; compaction (waits until applied on disk); defragment.
  std::chrono::milliseconds call_timeout{5000};
  std::chrono::milliseconds compaction_timeout{30000};
  std::chrono::milliseconds defrag_timeout{60000};
};

// What the space alarm does: raised when etcd reports NOSPACE (writes are refused everywhere
// in the cluster), cleared once no NOSPACE alarm is left.
struct SpaceAlarmEvent {
  enum class Kind { raised, cleared };
  Kind kind = Kind::raised;
  std::int64_t db_size = 0;  // this member's database file, bytes, when reported
  std::int64_t quota = 0;    // --quota-backend-bytes
  std::string detail;        // which members, what was done
};

// What one maintenance run saw and did.
struct MaintenanceReport {
  std::int64_t revision = 0;      // etcd's revision at the start of the run
  std::int64_t compacted_to = 0;  // the compaction sent by this run; 0: none
  bool defragmented = false;
  std::int64_t db_size_before = 0;  // this member's database file at the start
  std::int64_t db_size_in_use_before = 0;
  std::int64_t db_size_after = 0;  // after a defragmentation (else db_size_before)
  bool space_alarm = false;        // a NOSPACE alarm is raised after this run
  bool alarm_disarmed = false;     // this run disarmed this member's NOSPACE alarm
};

// What a node is in its cluster (ARCHITECTURE.md decision 6).
enum class NodeRole {
  voter,    // runs an etcd member that votes
  learner,  // runs an etcd member that is still catching up (during a join only)
  replica,  // no etcd member: the cluster had its target of voters when this node joined
};
const char* node_role_name(NodeRole role);

// A configured peer that belongs to another etcd cluster than this node (CONTRACT.md section
// 5): two seeds bootstrapped apart, a seed whose directory was wiped, a removed node that came
// back. The engine exchanges no data with such a peer.
struct ClusterMismatch {
  std::string peer;                 // the peer's node name as configured
  std::uint64_t local_cluster = 0;  // this node's cluster id (0: not in a cluster yet)
  std::uint64_t peer_cluster = 0;
  std::string context;  // which case, in words
};

struct LocalEngineConfig {
  // The node's name, opaque here: the identity file stores it and etcd gets it as --name (so
  // no '=' or ','). 1 to kMaxNodeNameBytes bytes.
  std::string node_name;
  std::string mnesia_dir;  // created (0700) if missing
  std::string etcd_binary = "etcd";
  std::string host = "127.0.0.1";  // IP literal where the member listens and advertises
  std::uint16_t client_port = 4370;
  std::uint16_t peer_port = 4371;
  // Appended to etcd's command line. May not set --quota-backend-bytes (see below) nor what
  // EtcdMember sets from this config (--name, --data-dir, the URLs, --initial-*):
  // invalid_argument.
  std::vector<std::string> extra_etcd_args;
  // etcd's --quota-backend-bytes, always passed: kMinQuotaBytes to kMaxQuotaBytes.
  std::int64_t quota_backend_bytes = kEtcdDefaultQuotaBytes;

  std::chrono::milliseconds ready_timeout{30000};  // health wait of each (re)start of etcd
  std::chrono::milliseconds restart_backoff_min{200};
  std::chrono::milliseconds restart_backoff_max{10000};
  std::chrono::milliseconds stop_grace{10000};
  // The member's supervisor gives up after this many failed restarts in a row
  // (MemberEvent::gave_up). 0: never.
  int give_up_after = 0;
  // Deadline of the calls made by open() (etcd's status once it is healthy).
  std::chrono::milliseconds call_timeout{5000};

  MaintenanceOptions maintenance;

  // Cluster membership (docs/cluster.md). Node names (NAME@HOST:PORT, engine/node_name.h) of
  // the configured peers. Empty: a seed, which bootstraps a one-member cluster at its first
  // start. Otherwise a first start joins the cluster of the first peer that answers (see
  // engine/join.h), and every start compares the peers' cluster ids with this node's.
  std::vector<std::string> peers;
  // Voters the cluster aims at: a joiner beyond it becomes a replica without a member. 1..7.
  int target_voters = 3;
  // Bounds a join (waiting for the join lock, the learner's start and catching up).
  std::chrono::milliseconds join_timeout{60000};
  // The cluster's key prefix (replica/keyspace.h); the join lock is "<prefix>join".
  std::string cluster_prefix = "/mishka/v1/";
  // Told of each configured peer found to belong to another cluster, on the thread of open().
  std::function<void(const ClusterMismatch&)> mismatch_listener;

  // Told once when this node finds out that an operator removed it (remove_node() run
  // anywhere): its member is stopped first. On the membership thread.
  std::function<void(const std::string& detail)> removed_listener;
  // How often the membership thread checks whether this node was removed and, on a replica
  // node, whether the cluster is below its voter target (then the replica joins as a voter).
  // 0: no thread (tests call check_membership_once()).
  std::chrono::milliseconds membership_interval{2000};

  // Mutual TLS (docs/security.md). `tls` is this node's material for its client; `member_tls`
  // the same material as files, for etcd's listeners; then `metrics_port` must be set (the
  // health probe's plain listener on 127.0.0.1). Both or neither.
  std::optional<TlsFiles> tls;
  std::optional<MemberTls> member_tls;
  std::uint16_t metrics_port = 0;

  // Lines of the engine, prefixed "engine <node_name>: ". May be empty.
  LogSink log;
  // Also told of every event of the member's supervisor (after it is logged); its thread and
  // rules are EtcdMember::Listener's.
  EtcdMember::Listener member_listener;
  // Told when the space alarm is raised or cleared, on the thread running maintenance (the
  // engine's thread or a caller of run_maintenance_once()). Must not block for long, nor call
  // stop() or run_maintenance_once() (the run holds a lock).
  std::function<void(const SpaceAlarmEvent&)> space_alarm_listener;
};

class LocalEngine {
 public:
  // Checks the directory (rules at the top), starts the member and waits for it to be healthy,
  // connects the client, records or verifies the ids, and starts the maintenance thread.
  // Errors: invalid_argument (a bad config value, named), node_name_mismatch, corrupt (with
  // the path; and both ids on a cluster id mismatch), io_error, and the errors of
  // EtcdMember::start() and of etcd's status call. On error nothing runs.
  static Result<std::unique_ptr<LocalEngine>> open(LocalEngineConfig config);

  // stop().
  ~LocalEngine();
  LocalEngine(const LocalEngine&) = delete;
  LocalEngine& operator=(const LocalEngine&) = delete;

  // Stops the maintenance thread (waiting for a run in progress, at most its deadlines), drops
  // the client, then stops the member. Idempotent.
  void stop();

  // The client: this node's member first, then the other members' client URLs (as etcd
  // listed them at open()); a replica's goes to the members only. Valid from open() until
  // stop().
  EtcdClient& client() const { return *client_; }
  // This node's etcd member; nullptr for a replica.
  EtcdMember* member() const { return member_.get(); }
  NodeRole role() const { return role_.load(); }
  // The identity as recorded (member id and cluster id filled in).
  const Identity& identity() const { return identity_; }
  const LocalEngineConfig& config() const { return config_; }
  // True while etcd reports a NOSPACE alarm (as of the last maintenance run): writes fail with
  // space_exceeded.
  bool space_alarm() const { return space_alarm_.load(); }
  // The last compaction revision this engine sent (0: none yet).
  std::int64_t compacted_revision() const { return compacted_revision_.load(); }
  int defragment_count() const { return defragment_count_.load(); }

  // Removes node `node_name` from the cluster (an operator's action; nothing removes a node
  // on its own): removes its etcd member if it has one, then records it as removed
  // ("<prefix>removed/<name>", so that the node, a replica included, finds out and stops, and
  // refuses to start again on its directory) and erases its presence key. invalid_argument for this
  // node's own name or when it would remove the last voter; not_found when no member and no
  // presence key has that name; etcd's errors otherwise.
  Status remove_node(const std::string& node_name, Deadline deadline);

  // One round of the membership thread now. Returns what it did, in words ("" for nothing).
  Result<std::string> check_membership_once();
  // True once this node found out that it was removed.
  bool removed() const { return removed_.load(); }

  // One maintenance run now (alarms, compaction, defragmentation, disarm), serialized with the
  // engine's thread. Errors: those of the etcd calls; a run that fails midway is retried in
  // full by the next one.
  Result<MaintenanceReport> run_maintenance_once();

 private:
  explicit LocalEngine(LocalEngineConfig config);

  Status start();
  Status join_cluster(const std::vector<std::string>& peer_endpoints);
  MemberConfig member_config() const;
  JoinRequest join_request();
  // Starts the learner of `join`, promotes it and records the identity; cleans up on failure.
  Status run_learner(ClusterJoin& join, Deadline deadline);
  Status open_replica(const std::vector<std::string>& peer_endpoints);
  Status connect_client(const std::vector<Member>& members);
  // Asks each configured peer for its cluster id; reports those of another cluster. removed
  // when a peer of this node's cluster holds this node's removal record.
  Status check_peers(const std::vector<std::string>& peer_endpoints);
  ClientOptions client_options(std::vector<std::string> endpoints) const;
  void log(LogLevel level, const std::string& message) const;
  void on_member_event(const MemberEvent& event);
  void maintenance_loop();
  void membership_loop();
  void start_threads();
  // This node was removed: stop the member, tell the listener (once).
  void on_removed(const std::string& detail);
  // A replica takes a voter's place (the join of join.h, through its own client).
  Status become_voter();
  std::string removed_key(const std::string& node_name) const;
  // `failure` of reaching the peers, with what a TLS probe of each says (and a log line when
  // a peer holds another cookie or CA).
  Status explain_unreachable_peers(const Status& failure) const;
  // The compaction target of this run, or 0 (mu_ held).
  std::int64_t compaction_target(std::int64_t revision, bool emergency);
  void report_alarm(SpaceAlarmEvent::Kind kind, std::int64_t db_size, const std::string& detail);

  LocalEngineConfig config_;
  Identity identity_;
  std::atomic<NodeRole> role_{NodeRole::voter};
  std::unique_ptr<EtcdMember> member_;
  std::unique_ptr<EtcdClient> client_;

  std::atomic<bool> space_alarm_{false};
  std::atomic<std::int64_t> compacted_revision_{0};
  std::atomic<int> defragment_count_{0};

  std::mutex run_mu_;  // one maintenance run at a time; guards the fields below
  std::deque<std::pair<std::chrono::steady_clock::time_point, std::int64_t>> revision_samples_;
  std::optional<std::chrono::steady_clock::time_point> last_defrag_;
  bool alarm_stuck_logged_ = false;  // "the alarm stays" was logged for the current alarm
  // The revision at the last defragmentation under the current space alarm.
  std::optional<std::int64_t> alarm_defrag_revision_;
  std::string last_failure_;  // the thread's own: its last failure, logged once

  std::mutex thread_mu_;
  std::condition_variable thread_cv_;
  bool stopping_ = false;  // guarded by thread_mu_
  std::thread thread_;
  std::thread membership_thread_;
  std::atomic<bool> removed_{false};
  std::mutex membership_mu_;  // one membership round at a time
};

}  // namespace mishka::engine
