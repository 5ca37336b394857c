// Group commit (ARCHITECTURE.md, decision 4): commits prepared by concurrent callers are merged
// into one etcd Txn while the previous one is in flight, so that many transactions share one
// Raft round and one fsync.
//
// Commits are merged only when they are independent of each other: no key written by two of
// them (etcd refuses a key twice in one Txn), and no key one of them compares that another
// writes. The second rule keeps a merged Txn serializable: etcd evaluates every compare before
// any write, so a member whose read another member overwrites would otherwise commit on a stale
// read. The write marker and the table versions are written by (almost) everyone; they are put
// once per Txn and are no reason to keep two commits apart unless one of them compares a table
// version the other writes (a scan).
//
// When a merged Txn's compares fail, its failure branch has read every compared key, so the
// members whose own compares failed are told so (a conflict each) and the rest are sent again.
// If no member can be blamed (which etcd's semantics rule out), each is resent alone.
//
// ram_copies: a put whose lease is kRamLease goes under the cluster's ram lease
// (store/ram_lease.h), filled in when the Txn is sent. When etcd refuses the Txn because it
// does not know that lease, nothing of the Txn was applied, so it is sent again with another
// lease: the one exception to "a write is never sent twice" (see send()).
//
// Threading: commit() may be called from any thread at once; it blocks until the commit's
// result or its deadline. A commit that finds the queue empty and a Txn slot free is sent from
// its caller's thread; otherwise committer threads (StoreOptions::max_in_flight of them) send
// the batches. At most max_in_flight Txns are in flight either way.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "engine/deadline.h"
#include "engine/etcd_client.h"
#include "mishka/status.h"
#include "store/ram_lease.h"

namespace mishka::store {

// TxnOp::lease of a put that must carry the cluster's ram lease (ram_copies records).
inline constexpr std::int64_t kRamLease = -1;

// Builders for the parts of a Txn (the engine structs have more fields than a commit uses).
// `lease`: 0, or kRamLease for a ram_copies record.
inline engine::TxnOp put_op(std::string key, std::string value = {}, std::int64_t lease = 0) {
  engine::TxnOp op;
  op.kind = engine::TxnOp::Kind::put;
  op.key = std::move(key);
  op.value = std::move(value);
  op.lease = lease;
  return op;
}
// `range_end` empty: the single key.
inline engine::TxnOp erase_op(std::string key, std::string range_end = {}) {
  engine::TxnOp op;
  op.kind = engine::TxnOp::Kind::erase;
  op.key = std::move(key);
  op.range_end = std::move(range_end);
  return op;
}
inline engine::TxnOp range_op(std::string key) {
  engine::TxnOp op;
  op.kind = engine::TxnOp::Kind::range;
  op.key = std::move(key);
  return op;
}
inline engine::Compare compare_op(std::string key, engine::Compare::Target target,
                                  engine::Compare::Result result, std::int64_t number,
                                  std::string range_end = {}) {
  engine::Compare c;
  c.key = std::move(key);
  c.range_end = std::move(range_end);
  c.target = target;
  c.result = result;
  c.number = number;
  return c;
}

// One commit: compares on what was read, then its writes.
struct CommitRequest {
  // Compares on single keys (range_end empty), or, only for `exclusive` requests, on ranges.
  std::vector<engine::Compare> compares;
  // Puts and erases (an erase may cover a range). No key twice, no put inside an erased range.
  std::vector<engine::TxnOp> ops;
  // Table-version keys to put (docs/keyspace.md); the committer adds the write marker.
  std::vector<std::string> table_versions;
  // Never merged with other commits, and its failure is not explained (table operations).
  bool exclusive = false;
  engine::Deadline deadline = engine::Deadline::after(std::chrono::seconds(10));
};

struct CommitResult {
  CommitResult() = default;
  // A commit that did not reach a verdict.
  explicit CommitResult(Status error) : status(std::move(error)) {}
  CommitResult(bool ok, std::int64_t at, std::optional<std::size_t> failed)
      : succeeded(ok), revision(at), failed_compare(failed) {}

  // Not ok: etcd's error (engine_unavailable and timeout after sending: outcome unknown), or
  // timeout before sending (nothing was written).
  Status status;
  // The compares held and the writes were committed at `revision`.
  bool succeeded = false;
  // Succeeded: the commit's revision. Otherwise (status ok): the revision at which etcd found
  // a compare false; the replica must reach it before the caller reads again.
  std::int64_t revision = 0;
  // When a compare failed: the index (into CommitRequest::compares) of one that did not hold,
  // if known.
  std::optional<std::size_t> failed_compare;
};

struct GroupCommitOptions {
  bool enabled = true;    // false: every commit is sent alone, from the caller's thread
  int max_txn_ops = 128;  // per etcd Txn: compares, success ops, failure ops each
  int max_in_flight = 1;  // committer threads, each with at most one Txn in flight
  std::chrono::milliseconds call_timeout{5000};
  // Where puts marked kRamLease get their lease. Not owned; must outlive the committer.
  // nullptr: such puts are refused (invalid_argument, nothing sent).
  RamLease* ram_lease = nullptr;
  // Called after etcd committed a Txn, with the ops of its success branch and its revision,
  // before any commit of it is told: the store's replica applies its own node's commit from
  // there when it is current (Replica::apply_committed), so the caller need not wait for the
  // watch to bring it back. Runs on the thread that sent the Txn; must not block on commits.
  std::function<void(const std::vector<engine::TxnOp>& ops, std::int64_t revision)> on_committed;
};

struct GroupCommitStats {
  std::int64_t commits = 0;    // requests that got a result from etcd
  std::int64_t etcd_txns = 0;  // Txn requests sent
  std::int64_t merged_txns = 0;
  std::int64_t merged_txn_failures = 0;
  // Txns refused by etcd for an unknown ram lease and sent again with another.
  std::int64_t ram_lease_resends = 0;
};

class GroupCommitter {
 public:
  // `client` must outlive the committer. invalid_argument for options out of range.
  static Result<std::unique_ptr<GroupCommitter>> create(engine::EtcdClient* client,
                                                        std::string write_marker_key,
                                                        GroupCommitOptions options);
  // Stops the committer threads; commits still queued get engine_unavailable (not sent).
  ~GroupCommitter();

  // Commits `request`, merged with others when possible, and returns its own result. Blocks
  // until then or until request.deadline (timeout; "outcome unknown" if it was already sent).
  CommitResult commit(CommitRequest request);

  GroupCommitStats stats() const;

 private:
  struct Pending;
  struct Batch;
  GroupCommitter(engine::EtcdClient* client, std::string write_marker_key,
                 GroupCommitOptions options);
  void run();
  Batch take_batch(std::unique_lock<std::mutex>& lock);
  void send_from_here(std::unique_lock<std::mutex>& lock);
  void send(Batch& batch);
  void finish(const std::shared_ptr<Pending>& p, CommitResult result);

  engine::EtcdClient* client_;
  std::string marker_key_;
  GroupCommitOptions options_;

  mutable std::mutex mutex_;
  std::condition_variable queue_cv_;  // committers: the queue has work, or stop
  std::condition_variable done_cv_;   // callers: a result arrived
  std::deque<std::shared_ptr<Pending>> queue_;
  bool stopping_ = false;
  int in_flight_ = 0;  // batches being sent, by committers or callers
  GroupCommitStats stats_;
  std::vector<std::thread> threads_;
};

}  // namespace mishka::store
