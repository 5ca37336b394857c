// The cluster-wide lease that ram_copies records live under (CONTRACT.md section 10;
// docs/store.md, "ram_copies"; docs/keyspace.md, "/mishka/v1/ram").
//
// Every running node keeps the lease named by the key "<root>ram" alive, and every put of a
// ram_copies record carries it, so the records stay while any node runs. The key itself is put
// under the same lease. The first node that needs a lease grants one and creates the key with a
// create-if-absent Txn; a node that loses that race adopts the winner's lease.
//
// The trap: etcd extends every lease by its full TTL when a leader is elected, in particular
// after the whole cluster stopped and started again, so a lease nobody renews any more still
// looks alive for a while. A node therefore adopts, at its start, a lease it finds in the key
// only if it sees another node renewing it (start(): the lease's remaining TTL, sampled for a
// few seconds, does not fall as fast as time passes). Otherwise the lease is left over from a
// stopped cluster: the node revokes it (its records go, as deletes through the watch) and puts
// the write marker, so that a replica started afterwards has applied those deletes once its
// sync returns.
//
// Threading: every method may be called from any thread; start() and stop() by the owner.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "engine/deadline.h"
#include "engine/etcd_client.h"
#include "mishka/log.h"
#include "mishka/status.h"

namespace mishka::store {

struct RamLeaseOptions {
  engine::EtcdClient* client = nullptr;  // not owned; must outlive the object
  std::string key = "/mishka/v1/ram";    // Keyspace::ram_key()
  std::string write_marker_key = "/mishka/v1/seq";
  // The TTL of a lease this node grants. It bounds how long ram records outlive the last
  // renewal while etcd runs (e.g. every node cut off from the quorum); a stop of the whole
  // cluster is handled at the next start, whatever the TTL.
  std::int64_t ttl_seconds = 10;
  // How often the node renews the lease. start()'s judgement relies on every node renewing at
  // least this often: keep it the same on every node (it is not a per-node setting).
  std::chrono::milliseconds keep_alive_period{1000};
  // start(): the pause between two reads of the lease's remaining TTL, and how long a lease
  // must be seen not renewed before it counts as left over. Must exceed keep_alive_period by
  // at least 2 s (etcd's TTL is counted in whole seconds) plus the renewal's latency.
  std::chrono::milliseconds sample_interval{250};
  std::chrono::milliseconds stale_after{5000};
  std::chrono::milliseconds call_timeout{5000};
  LogSink log;
};

struct RamLeaseStats {
  int granted = 0;        // leases this node granted and put in the key
  int adopted = 0;        // leases found in the key and kept alive
  int revoked_stale = 0;  // leases left over from a stopped cluster, revoked by start()
  int lost = 0;           // leases found gone (expired or revoked) while in use
};

class RamLease {
 public:
  // invalid_argument for a missing client, an empty key or out-of-range timings.
  static Result<std::unique_ptr<RamLease>> create(RamLeaseOptions options);
  ~RamLease();  // stop()
  RamLease(const RamLease&) = delete;
  RamLease& operator=(const RamLease&) = delete;

  // At node start, before the replica starts: reads the key; when it names a lease, adopts it
  // if another node renews it and revokes it otherwise (see the top). Nothing is written when
  // the key is absent. Takes up to about stale_after (more if etcd's leader changes meanwhile)
  // when the key exists. Errors: the client's; timeout when no verdict could be reached.
  Status start(engine::Deadline deadline);

  // The lease to put ram records under: the one in use, else the key's (adopted), else a new
  // one (granted, and the key created with a create-if-absent Txn; the loser of that race
  // adopts the winner's). Errors: the client's.
  Result<std::int64_t> acquire(engine::Deadline deadline);

  // etcd refused a write carrying `lost` ("requested lease not found"): forgets it and returns
  // another one as acquire() does, replacing the key if it still names `lost`.
  Result<std::int64_t> replace(std::int64_t lost, engine::Deadline deadline);

  // From now on, every keep_alive_period, when the node holds no lease and `wanted()` says it
  // needs one (the node has a ram_copies table), acquire()s it: every running node with
  // ram_copies tables renews the lease, including a node that never writes to them and one
  // whose lease ended. `wanted` runs on the renewal thread; it must be cheap. Call after
  // start().
  void keep_when(std::function<bool()> wanted);

  // The lease in use; 0 when none.
  std::int64_t current() const;

  // Stops renewing. The lease is not revoked: other nodes may still use it; when none does, it
  // expires, or the next start of the cluster revokes it. Idempotent.
  void stop();
  // The first half of stop(), which does not wait: asks the renewal thread to end (a renewal
  // in flight still ends at its deadline), so that the node's other stop steps overlap it.
  void begin_stop();

  RamLeaseStats stats() const;

 private:
  explicit RamLease(RamLeaseOptions options) : options_(std::move(options)) {}

  enum class Verdict { live, stale, gone };
  // Samples the remaining TTL of `lease` until it proves renewed (live), or has not been
  // renewed for stale_after (stale), or is gone.
  Result<Verdict> probe(std::int64_t lease, engine::Deadline deadline);
  // Revokes a lease left over by a stopped cluster (not_found counts as done).
  Status revoke_stale(std::int64_t lease, engine::Deadline deadline);
  // acquire() and replace(), with establish_mu_ held. `bad`: a lease not to adopt (0: none).
  Result<std::int64_t> establish(std::int64_t bad, engine::Deadline deadline);
  void adopt(std::int64_t lease, bool granted);
  // With mu_ held: starts the renewal thread unless it runs or the object stops.
  void start_thread_locked();
  void keep_alive_loop();
  void log(LogLevel level, const std::string& message) const;

  RamLeaseOptions options_;
  std::mutex establish_mu_;  // one establish() at a time
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::int64_t lease_ = 0;
  std::function<bool()> wanted_;
  RamLeaseStats stats_;
  std::thread thread_;  // started with the first lease adopted, or by keep_when()
};

}  // namespace mishka::store
