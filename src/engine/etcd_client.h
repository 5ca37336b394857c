// A small C++ face on etcd's v3 gRPC API (the generated client): KV, Txn, Watch, Lease,
// Cluster, Maintenance and Auth, with a deadline on every call and errors as values.
//
// Threading: an EtcdClient is thread-safe; any thread may call any method at once. A
// WatchStream is read by one thread; cancel() and request_progress() may come from any thread.
//
// Errors (Status codes): engine_unavailable (no connection to any endpoint, or the connection
// broke), timeout (the deadline passed), no_quorum (etcd answered that it has no leader, that
// the leader changed, or that the request timed out inside Raft), compacted (the revision asked
// for is gone), space_exceeded (etcd's NOSPACE alarm is raised: writes refused),
// invalid_argument (etcd refused the request as malformed, e.g. a key twice in one Txn, too
// many operations, a future revision), not_found (a lease, member, user or role that does not
// exist), already_exists (a user or role added twice), permission_denied (etcd's auth refused the
// call: no or a wrong user, password or token, or a role without the permission),
// internal (anything else etcd said; the message carries etcd's words). Every message names the
// operation and the endpoint.
//
// Endpoints: a call goes to the endpoint that answered last (at first the first one). When that
// endpoint has no connection, the call moves on to the next one within the same deadline.
// Calls that do no harm when repeated (range, member_list, alarms, disarm_alarm, keep-alive,
// watch creation) are also sent again, to the next endpoint or the same, after
// engine_unavailable, until their deadline. A write (put, erase, txn, compact, lease and
// membership changes) is never sent twice: engine_unavailable or timeout after sending means
// its outcome is unknown.
//
// Leader: put, erase, txn and linearizable ranges ask etcd to refuse them at once when the
// receiving member has no leader (gRPC metadata "hasleader"). Such a refusal means etcd never
// proposed the request, so the call goes on to the next endpoint, round after round, until
// its deadline; if the deadline passes, the call fails with no_quorum (even when the last
// endpoint tried was unreachable). This is how a node cut off from the majority answers
// no_quorum within the caller's deadline, and how writes ride out an election.
//
// Auth: with ClientOptions::credentials the client authenticates (once, lazily, on the first
// call) and sends etcd's token with every call and stream. When etcd answers that the token is
// invalid or stale, the client authenticates again and sends the call again if it is one of the
// calls above that may be repeated; a write then fails (permission_denied) and the next call
// uses the new token.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/deadline.h"
#include "mishka/status.h"

namespace mishka::engine {

struct KeyValue {
  std::string key;
  std::string value;
  std::int64_t create_revision = 0;
  std::int64_t mod_revision = 0;
  std::int64_t version = 0;
  std::int64_t lease = 0;
};

// What etcd's ResponseHeader says about the cluster at the time of a response.
struct Header {
  std::uint64_t cluster_id = 0;
  std::uint64_t member_id = 0;
  std::int64_t revision = 0;
  std::uint64_t raft_term = 0;
};

struct RangeOptions {
  std::string range_end;      // empty: the single key; "\0": every key >= key
  std::int64_t revision = 0;  // 0: the latest
  std::int64_t limit = 0;     // 0: no limit
  bool serializable = false;  // true: answer from the local member without a quorum round
  bool keys_only = false;
  bool count_only = false;
};

struct RangeResult {
  Header header;
  std::vector<KeyValue> kvs;
  bool more = false;
  std::int64_t count = 0;
};

// The end of the range of every key that starts with `prefix` (etcd's "prefix + 1").
std::string prefix_range_end(const std::string& prefix);

// One comparison of a Txn. `range_end` makes it hold for every key of a range.
struct Compare {
  enum class Target { version, create_revision, mod_revision, value };
  enum class Result { equal, greater, less, not_equal };
  std::string key;
  std::string range_end;
  Target target = Target::mod_revision;
  Result result = Result::equal;
  std::int64_t number = 0;  // for version, create_revision, mod_revision
  std::string value;        // for value
};

struct TxnOp {
  enum class Kind { put, erase, range };
  Kind kind = Kind::put;
  std::string key;
  std::string value;       // put
  std::string range_end;   // erase and range
  std::int64_t lease = 0;  // put
};

struct TxnRequest {
  std::vector<Compare> compares;
  std::vector<TxnOp> success;
  std::vector<TxnOp> failure;
};

struct TxnResult {
  Header header;  // header.revision is the revision the Txn committed at (when it wrote)
  bool succeeded = false;
  // One entry per operation of the branch that ran; RangeResult only for range operations.
  std::vector<std::optional<RangeResult>> responses;
};

// What LeaseTimeToLive says about a lease.
struct LeaseTtl {
  // header.raft_term is the answering member's term: etcd extends every lease's expiry when a
  // new leader takes over (lessor Promote), so two answers compare only within one term.
  Header header;
  // Seconds left before the lease expires, as the leader counts them (rounded down); -1 when
  // etcd does not know the lease (never granted, expired or revoked).
  std::int64_t ttl = -1;
  std::int64_t granted_ttl = 0;  // the TTL it was granted with
};

struct Member {
  std::uint64_t id = 0;
  std::string name;  // empty for a member added but not started yet
  std::vector<std::string> peer_urls;
  std::vector<std::string> client_urls;
  bool is_learner = false;
};

struct MemberAddResult {
  Header header;
  Member added;
  std::vector<Member> members;
};

struct EndpointStatus {
  Header header;
  std::string version;
  std::int64_t db_size = 0;
  std::int64_t db_size_in_use = 0;
  std::uint64_t leader = 0;  // member id; 0 when there is none
  std::uint64_t raft_index = 0;
  std::uint64_t raft_term = 0;
  std::vector<std::string> errors;
  bool is_learner = false;
};

enum class AlarmType { none, nospace, corrupt };
struct Alarm {
  std::uint64_t member_id = 0;
  AlarmType type = AlarmType::none;
};

struct WatchEvent {
  enum class Type { put, erase };
  Type type = Type::put;
  KeyValue kv;  // for erase: the key and mod_revision (the revision of the delete)
  // With WatchOptions::prev_kv: the key as it was before this event, if it existed.
  std::optional<KeyValue> prev_kv;
};

// One response of a watch: events of one or more revisions, in revision order, or a progress
// notification (no events).
//
// header.revision is etcd's revision when it sent the batch, not a promise about what was
// delivered: while a watch catches up on history, etcd sends it in chunks of up to 1000
// revisions, each with the current revision in its header, and events at or below that
// revision follow in later batches. delivered_revision is the promise.
struct WatchBatch {
  Header header;
  std::vector<WatchEvent> events;
  // Every event of the watched range at or below this revision has been delivered (by this
  // batch or an earlier one): the revision of the last event, or header.revision for a
  // periodic progress notification. 0 for a requested one (see requested_progress).
  std::int64_t delivered_revision = 0;
  // A progress notification that answers request_progress(). etcd 3.4.23 (Debian 12) sends
  // those ahead of events it has not delivered yet (etcd issue 15220, fixed in later 3.4
  // releases): its header.revision says what etcd has committed, and events at or below it
  // may still follow. Periodic notifications (WatchOptions::progress_notify) come in order.
  bool requested_progress = false;
};

struct WatchOptions {
  std::string key;
  std::string range_end;            // see RangeOptions
  std::int64_t start_revision = 0;  // 0: from now on
  // Periodic empty batches carrying the current revision, sent while the watch is quiet: every
  // 10 minutes unless etcd runs with --experimental-watch-progress-notify-interval.
  bool progress_notify = true;
  bool prev_kv = false;
  // etcd ends the stream (no_quorum) when its member loses the leader, instead of going quiet
  // while the rest of the cluster moves on.
  bool require_leader = true;
};

// Destroy it only once no next() is running (cancel() first to end one).
class WatchStream {
 public:
  virtual ~WatchStream() = default;
  // Blocks until the next batch. Errors: compacted (start_revision is gone; the message
  // carries the compact revision), engine_unavailable (the stream broke: open a new one from
  // the last delivered_revision + 1), no_quorum (require_leader, and etcd's member lost its
  // leader), and the status of cancel(). After an error, every later next() returns it again.
  virtual Result<WatchBatch> next() = 0;
  // Makes a blocked or later next() return timeout "cancelled". Any thread.
  virtual void cancel() = 0;
  // Asks etcd for a progress notification: a batch without events whose header.revision is
  // etcd's current revision (but see WatchBatch::requested_progress). Any thread; a no-op on a
  // broken or cancelled stream.
  virtual void request_progress() = 0;
};

struct TlsFiles {
  std::string ca_pem;    // the cluster CA, PEM text
  std::string cert_pem;  // this node's certificate, PEM text
  std::string key_pem;   // its private key, PEM text
};

// etcd's auth: a user name and its password (see EtcdClient::authenticate).
struct Credentials {
  std::string user;
  std::string password;
};

// What a role may do with a key range.
enum class Permission { read, write, readwrite };

struct ClientOptions {
  // "host:port" of etcd client endpoints, the preferred (normally the node's own member)
  // first; see "Endpoints" at the top.
  std::vector<std::string> endpoints;
  // Plain text when empty (tests on loopback); mutual TLS otherwise.
  std::optional<TlsFiles> tls;
  // HTTP/2 keep-alive pings on a connection with calls in flight (e.g. a watch), so that a dead
  // or stopped peer breaks the connection after about time + timeout. At least 1 s; below
  // etcd's --grpc-keepalive-min-time (default 5 s) etcd closes the connection ("too many
  // pings").
  std::chrono::milliseconds keepalive_time{10000};
  std::chrono::milliseconds keepalive_timeout{5000};
  // etcd's auth (only when etcd has auth enabled; see "Auth" at the top). Unset: no token.
  std::optional<Credentials> credentials{};
};

class EtcdClient {
 public:
  // Creates one channel per endpoint; does not wait for a connection (calls do, within their
  // deadline). invalid_argument when there is no endpoint, an endpoint is empty or repeated,
  // the TLS material is incomplete, or a keep-alive setting is out of range.
  static Result<std::unique_ptr<EtcdClient>> create(const ClientOptions& options);
  virtual ~EtcdClient() = default;

  virtual Result<RangeResult> range(const std::string& key, const RangeOptions& options,
                                    Deadline deadline) = 0;
  // Returns the header of the put (header.revision: the new revision).
  virtual Result<Header> put(const std::string& key, const std::string& value, std::int64_t lease,
                             Deadline deadline) = 0;
  // Returns how many keys were deleted.
  virtual Result<std::int64_t> erase(const std::string& key, const std::string& range_end,
                                     Deadline deadline) = 0;
  virtual Result<TxnResult> txn(const TxnRequest& request, Deadline deadline) = 0;
  // Compacts the history up to `revision`; `physical` waits until it is applied on disk.
  virtual Status compact(std::int64_t revision, bool physical, Deadline deadline) = 0;

  // Opens a watch stream and waits, until `deadline`, for etcd to confirm that the watch is
  // created. The stream itself has no deadline: it lasts until cancelled or broken (a dead peer
  // is noticed by keep-alive). It may outlive the client.
  virtual Result<std::unique_ptr<WatchStream>> watch(const WatchOptions& options,
                                                     Deadline deadline) = 0;
  // The same with kWatchOpenTimeout from now as the deadline.
  static constexpr std::chrono::milliseconds kWatchOpenTimeout{5000};
  Result<std::unique_ptr<WatchStream>> watch(const WatchOptions& options) {
    return watch(options, Deadline::after(kWatchOpenTimeout));
  }

  // Returns the lease id. ttl in seconds (etcd's granularity).
  virtual Result<std::int64_t> lease_grant(std::int64_t ttl_seconds, Deadline deadline) = 0;
  virtual Status lease_revoke(std::int64_t lease, Deadline deadline) = 0;
  // One keep-alive round trip; returns the new TTL in seconds (0: the lease is gone).
  // lease_revoke of an unknown lease: not_found.
  virtual Result<std::int64_t> lease_keep_alive(std::int64_t lease, Deadline deadline) = 0;
  // How long the lease has left (LeaseTimeToLive; a read: sent again like range). An unknown
  // lease is not an error: ttl -1.
  virtual Result<LeaseTtl> lease_time_to_live(std::int64_t lease, Deadline deadline) = 0;

  virtual Result<std::vector<Member>> member_list(Deadline deadline) = 0;
  virtual Result<MemberAddResult> member_add(const std::vector<std::string>& peer_urls,
                                             bool as_learner, Deadline deadline) = 0;
  virtual Status member_remove(std::uint64_t id, Deadline deadline) = 0;
  virtual Status member_promote(std::uint64_t id, Deadline deadline) = 0;

  // The status of the member serving `endpoint` (one of the options' endpoints; empty: the
  // first; another one: invalid_argument). status and defragment never move to another
  // endpoint.
  virtual Result<EndpointStatus> status(const std::string& endpoint, Deadline deadline) = 0;
  virtual Status defragment(const std::string& endpoint, Deadline deadline) = 0;
  virtual Result<std::vector<Alarm>> alarms(Deadline deadline) = 0;
  virtual Status disarm_alarm(const Alarm& alarm, Deadline deadline) = 0;
  // Moves Raft leadership to member `target` (used before stopping a leader). etcd accepts it
  // only from the leader: the call tries each endpoint until one serves the leader.
  virtual Status move_leader(std::uint64_t target, Deadline deadline) = 0;

  // etcd's Auth service, for operators and tests (mishka's own security is mutual TLS; see
  // docs/engine.md, "Auth"). auth_enable needs user "root" with role "root". All but
  // authenticate and user_list are writes: never sent twice.
  virtual Status auth_enable(Deadline deadline) = 0;
  virtual Status auth_disable(Deadline deadline) = 0;
  virtual Status user_add(const std::string& name, const std::string& password,
                          Deadline deadline) = 0;
  virtual Status user_delete(const std::string& name, Deadline deadline) = 0;
  virtual Result<std::vector<std::string>> user_list(Deadline deadline) = 0;
  virtual Status user_grant_role(const std::string& user, const std::string& role,
                                 Deadline deadline) = 0;
  virtual Status role_add(const std::string& role, Deadline deadline) = 0;
  virtual Status role_delete(const std::string& role, Deadline deadline) = 0;
  // Lets `role` read and/or write `key` (range_end as in RangeOptions).
  virtual Status role_grant_permission(const std::string& role, const std::string& key,
                                       const std::string& range_end, Permission permission,
                                       Deadline deadline) = 0;
  // Returns etcd's token for the user (what the client sends as gRPC metadata "token").
  // permission_denied for a wrong user or password; internal "authentication is not enabled"
  // when etcd's auth is off.
  virtual Result<std::string> authenticate(const std::string& user, const std::string& password,
                                           Deadline deadline) = 0;

  const std::vector<std::string>& endpoints() const { return endpoints_; }

 protected:
  explicit EtcdClient(std::vector<std::string> endpoints) : endpoints_(std::move(endpoints)) {}

 private:
  std::vector<std::string> endpoints_;
};

}  // namespace mishka::engine
