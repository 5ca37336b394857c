// MnesiaRepo: the replicated table store of one node that boots, joins, supervises and announces
// itself, as CONTRACT.md describes (docs/repo.md is the guide).
//
// A program makes one MnesiaRepo per node it runs (several may live in one process). start()
// blocks until boot ends, like the original's init: the repo is then `synchronized` (its
// essential tables are local and loaded), `pending` (a joiner that could not reach its cluster
// yet: no tables, it keeps trying), or `inconsistent` (a configured peer belongs to another
// cluster, or this node was removed: nothing is merged or wiped). A boot that fails returns the
// error instead, with its reason (node_name_mismatch, essential_table_failed naming each table
// and why, tables_unavailable naming the tables still loading).
//
// What it announces: telemetry events under "mishka_installer.mnesia" (CONTRACT.md section 7)
// on the Telemetry it is given, and pub/sub messages on topic "mishka:plugin:mnesia" (section
// 6) through the PubSub it is given, cluster-wide while the node runs.
//
// Threading: every method may be called from any thread; start() and stop() from the owner.
// Node events, the pending retry timer and the health timer run on the repo's own thread.
// Callbacks (telemetry handlers, subscribers, the failure listener) must not stop or destroy
// the repo (docs/repo.md, "Threads").
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mishka/log.h"
#include "mishka/status.h"
#include "mishka/store.h"
#include "mishka/table_spec.h"
#include "mishka/value.h"

namespace mishka::telemetry {
class Telemetry;
}
namespace mishka::pubsub {
class PubSub;
}

namespace mishka {

class RepoHost;

// The topic and channel of the repo's pub/sub messages, and its identifier.
inline constexpr char kRepoTopic[] = "mishka:plugin:mnesia";
inline constexpr char kRepoChannel[] = "mnesia";
inline constexpr char kRepoIdentifier[] = "mishka_mnesia_repo";
// Every telemetry event of the repo starts with these two segments.
inline constexpr char kTelemetryApp[] = "mishka_installer";
inline constexpr char kTelemetryArea[] = "mnesia";

// The built-in essential tables of CONTRACT.md section 9: `installer` and `event`.
std::vector<TableSpec> default_essential_tables();

// ".mnesia/<env>" under the current working directory, <env> from MISHKA_ENV (else "dev").
// io_error when the working directory cannot be read; invalid_argument when MISHKA_ENV is not a
// plain name (it becomes a path segment).
Result<std::string> default_mnesia_dir();

struct RepoOptions {
  // --- CONTRACT.md section 2 ---
  // Where this node keeps everything durable. Empty: default_mnesia_dir() at start.
  std::string mnesia_dir;
  // Table specs created by a seed, copied by a joiner. Names must be distinct.
  std::vector<TableSpec> essential = default_essential_tables();
  // Empty ("auto"): a standalone seed. Otherwise the node names (NAME@HOST:PORT) of the
  // cluster this node joins; never this node's own name.
  std::vector<std::string> cluster_nodes;
  // Watch node events after boot; only when cluster_nodes is not empty (see dynamic()).
  bool dynamic_membership = true;
  // One waiting slice while tables load, and how many slices before tables_unavailable.
  std::chrono::milliseconds wait_timeout{60000};
  int wait_retries = 5;
  // Period of the health check; 0: no timer (health_check() on demand only).
  std::chrono::milliseconds health_interval{10000};

  // --- The node ---
  // This node's name; its port is the etcd client port.
  std::string node = "mishka@127.0.0.1:4370";
  // etcd's peer port; unset: the client port + 1.
  std::optional<std::uint16_t> peer_port;
  // The etcd binary (a path, or a name looked up on PATH).
  std::string etcd_binary = "etcd";
  // The cluster's shared secret (docs/security.md): the CA every etcd link is verified against
  // is derived from it, and the node's certificate lives in <mnesia_dir>/tls. Empty: no TLS
  // (plain HTTP between etcd members; a warning is logged at start).
  std::string cookie;
  // An operator's CA instead of the one derived from the cookie (PEM files; both or neither).
  std::string ca_cert_path;
  std::string ca_key_path;
  // With TLS, etcd's plain metrics listener on 127.0.0.1 (its health probe); unset: the client
  // port + 2.
  std::optional<std::uint16_t> metrics_port;
  // Voters the cluster aims at (1..7); a joiner beyond it is a replica without etcd member.
  int target_voters = 3;
  // Bounds one join attempt; the etcd member's start (health wait) of each attempt.
  std::chrono::milliseconds join_timeout{60000};
  std::chrono::milliseconds member_ready_timeout{30000};
  // The pending node's retry timer: backoff from retry_min, doubling up to retry_max.
  std::chrono::milliseconds retry_min{1000};
  std::chrono::milliseconds retry_max{30000};
  // How often configured peers are probed (pending joins, inconsistency).
  std::chrono::milliseconds probe_interval{1000};
  // Presence lease TTL (how soon others see this node down after it dies).
  std::int64_t presence_ttl_seconds = 5;
  // The deadline of each call the node makes to etcd outside writes (statuses, peer checks,
  // presence): how long a peer that is down can hold up a start or a stop.
  std::chrono::milliseconds call_timeout{5000};
  // How often the engine checks for its own removal and for a missing voter.
  std::chrono::milliseconds membership_interval{2000};
  // The etcd member gives up after this many failed restarts in a row (then the repo fails:
  // failure()). 0: never.
  int member_give_up_after = 0;

  // --- Collaborators, not owned; each must outlive the repo. nullptr: the repo makes its own.
  telemetry::Telemetry* telemetry = nullptr;
  // Give one to subscribe before the repo starts (then its node name must be `node`). It must
  // outlive the node: the host's, when a host is given (the node broadcasts through it).
  pubsub::PubSub* pubsub = nullptr;
  // Where the node is kept while no repo runs on it, so that a restarted repo finds it running
  // (the no-op restart of CONTRACT.md section 3). nullptr: the repo's own; stop() stops the node.
  RepoHost* host = nullptr;
  // Every line of the repo and of its node.
  LogSink log;
};

// Refused options: invalid_argument naming the key and what is wrong. Touches nothing.
Status validate_repo_options(const RepoOptions& options);

// Options from a map of key to value (the form config files and tests give): the keys of
// CONTRACT.md section 2 plus those of the node above, by their field names; durations in ms as
// integers; `cluster_nodes` the string "auto" or a list of strings; `essential` a list of table
// specs as table_spec_to_value() gives them. Keys absent keep `base`'s value. An unknown key, a
// value of the wrong type or out of range: invalid_argument naming the key.
Result<RepoOptions> repo_options_from_value(const Value& map, RepoOptions base = {});

enum class RepoStatus { starting, pending, synchronized, inconsistent, stopped };
std::string_view repo_status_name(RepoStatus status);

struct TableSchema {
  std::string name;
  StorageType storage = StorageType::disc_copies;
  bool local_content = false;
};

struct MemberInfo {
  std::string node;
  std::string role;  // "voter", "learner" or "replica"
  bool up = false;   // its presence key is there
};

struct RepoState {
  RepoStatus status = RepoStatus::starting;
  std::vector<std::string> tables;  // local tables, "schema" first, then by name
  std::vector<TableSchema> schemas;
  std::vector<std::string> essential;
  bool dynamic = false;
  std::string node;
  std::uint64_t cluster_id = 0;  // 0: not in a cluster (pending)
  std::string role;              // this node's; "" while pending
  std::vector<MemberInfo> members;
  std::string leader;          // the etcd leader's node name; "" when unknown
  std::string inconsistency;   // while inconsistent: the case, in words
  std::string pending_reason;  // while pending: the last join attempt's error
};
// As a map with the field names above (status and role as strings, cluster_id as hex text).
Value to_value(const RepoState& state);

struct HealthReport {
  bool healthy = false;
  std::vector<std::string> missing;  // essential tables not local
  std::int64_t table_count = 0;      // local tables, the schema included
  std::int64_t schema_count = 0;     // local tables without the schema
  std::string node;
  RepoStatus status = RepoStatus::starting;
  std::string role;
  std::string leader;
  bool member_healthy = false;    // the local etcd member answers and has a leader
  std::int64_t replica_lag = -1;  // etcd's revision minus the replica's; -1 unknown
  // Times this node's etcd member was started again after it exited (0 for a replica, which
  // runs no member).
  std::int64_t etcd_restarts = 0;
};
Value to_value(const HealthReport& report);

// The digest of a node's tables (docs/formats.md, "Digest") at a revision of its replica.
struct ReplicaDigest {
  std::string digest_hex;
  std::int64_t revision = 0;
};

// What a nodeup did (CONTRACT.md section 4).
struct NodeUpResult {
  std::string action;  // ignored, already_member, joined, pending, connected, unreachable, error
  std::string reason;  // for "error": why
};

class MnesiaRepo {
 public:
  // Validates the options, then boots (CONTRACT.md section 3) inside the `init` span and
  // returns when boot ended: synchronized, pending or inconsistent. Errors: invalid_argument
  // (options, naming the key; nothing on disk touched), node_name_mismatch, the node's start
  // errors, essential_table_failed (naming each table and why), tables_unavailable (naming the
  // tables still loading after wait_retries slices).
  static Result<std::unique_ptr<MnesiaRepo>> start(RepoOptions options);

  ~MnesiaRepo();  // stop()
  MnesiaRepo(const MnesiaRepo&) = delete;
  MnesiaRepo& operator=(const MnesiaRepo&) = delete;

  // Stops the repo's thread and watchers. The node is stopped too, unless options.host was
  // given: then it stays running in the host for the next repo on the same directory.
  // Idempotent.
  void stop();

  RepoState state() const;
  // The status alone: no etcd call (state() asks etcd for the members and the leader).
  RepoStatus status() const;
  // Every local table but the schema, by name; empty while pending.
  std::vector<TableSchema> schemas() const;
  // The health check now (CONTRACT.md section 5). Emits the health_check event, except while
  // pending (then nothing is checked: the report says every essential table is missing).
  HealthReport health_check();

  // What the node monitor calls on a node event, also open to programs with node discovery of
  // their own. Processed on the repo's thread in order, after boot; returns once handled.
  // unsupported when the repo is not dynamic (it stays passive: no event, nothing done);
  // engine_unavailable once stopped.
  Result<NodeUpResult> handle_nodeup(const std::string& peer);
  // Returns db_member? of the nodedown event.
  Result<bool> handle_nodedown(const std::string& peer);

  // A request by name: "state", "schemas" or "health_check", answered as a Value.
  // invalid_argument naming any other request, at once.
  Result<Value> call(std::string_view request);

  // The digest of this node's tables once its replica caught up with every write committed
  // anywhere before the call: nodes that hold the same data give the same digest (except for
  // the records of local_content tables, which differ per node by design). engine_unavailable
  // while pending; the errors of a consistent read (no_quorum, timeout).
  Result<ReplicaDigest> digest(std::chrono::milliseconds timeout);

  // The store; nullptr while pending. Valid until stop().
  Store* store() const;
  // The store, kept open with its node for as long as the caller holds it, even across stop()
  // (e.g. by a supervisor replacing a failed repo): the node then stops when the last holder
  // lets go, on that holder's thread. nullptr while pending. For code serving requests on
  // other threads (the admin HTTP) that must not race a stop; hold it for one call, not longer.
  std::shared_ptr<Store> shared_store() const;
  // Explicit removal of another node (CONTRACT.md section 11). Errors of LocalEngine's.
  Status remove_node(const std::string& node, std::chrono::milliseconds timeout);

  telemetry::Telemetry& telemetry() const;
  pubsub::PubSub& pubsub() const;
  const RepoOptions& options() const;

  // Set once the repo failed at run time (its etcd member gave up); a supervisor restarts it.
  std::optional<Status> failure() const;
  // Called once, on a repo thread, when failure() becomes set. Replaces the previous one.
  void on_failure(std::function<void(const Status&)> listener);

  class Impl;

 private:
  explicit MnesiaRepo(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The nodes that repos opened, by directory, kept running between two repos. Owned by the
// program; destroy it (or call stop_all) after every repo that uses it.
class RepoHost {
 public:
  RepoHost();
  ~RepoHost();  // stop_all()
  RepoHost(const RepoHost&) = delete;
  RepoHost& operator=(const RepoHost&) = delete;
  // Stops every node kept here.
  void stop_all();
  // The directories of the nodes kept here.
  std::vector<std::string> directories() const;

  class Impl;
  Impl& impl() { return *impl_; }

 private:
  std::unique_ptr<Impl> impl_;
};

// Restart policies, as OTP's: permanent restarts after any end, transient only after a failure,
// temporary never.
enum class RestartPolicy { permanent, transient, temporary };

struct SupervisorOptions {
  RestartPolicy restart = RestartPolicy::permanent;
  // More than max_restarts restarts within `period`: the supervisor gives up (given_up()).
  int max_restarts = 3;
  std::chrono::milliseconds period{60000};
  // Pause before each restart.
  std::chrono::milliseconds backoff{1000};
};

// Starts a MnesiaRepo as its child and restarts it by its policy when it fails (a failed boot
// included). It keeps the node in a RepoHost (the options' or its own), so a restart of a repo
// whose node still runs is the no-op re-announce.
class RepoSupervisor {
 public:
  // Starts the child and returns once its first boot ended. invalid_argument for bad options
  // (supervisor's or repo's); a failed first boot is not an error here: it is retried by the
  // policy (child() is nullptr meanwhile).
  static Result<std::unique_ptr<RepoSupervisor>> start(RepoOptions repo,
                                                       SupervisorOptions options = {});
  ~RepoSupervisor();  // stop()
  RepoSupervisor(const RepoSupervisor&) = delete;
  RepoSupervisor& operator=(const RepoSupervisor&) = delete;

  // The running child; nullptr between a failure and its restart. Shared so that a caller
  // holding it is safe across a restart (it is stopped, not destroyed, under the caller).
  std::shared_ptr<MnesiaRepo> child() const;
  // Stops the child and starts it again now (its node keeps running: the no-op re-announce).
  Status restart_child();
  int restarts() const;
  bool given_up() const;
  // The last boot or run-time failure, if any.
  std::optional<Status> last_failure() const;
  // Stops the child, then the nodes of its own host. Idempotent.
  void stop();

  class Impl;

 private:
  explicit RepoSupervisor(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace mishka
