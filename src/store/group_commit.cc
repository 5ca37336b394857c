#include "store/group_commit.h"

#include <algorithm>
#include <unordered_map>
#include <unordered_set>

namespace mishka::store {

using engine::Compare;
using engine::Deadline;
using engine::TxnOp;

// How far a committer looks down the queue for commits to merge; bounds the work per batch.
constexpr std::size_t kMaxQueueScan = 1024;

struct GroupCommitter::Pending {
  CommitRequest request;
  bool taken = false;  // in a batch being sent
  bool alone = false;  // resend without merging
  bool done = false;
  CommitResult result;
};

namespace {

bool unbounded(const std::string& end) {
  return end.size() == 1 && end[0] == '\0';
}

// Whether `key` lies in [begin, end).
bool in_range(const std::string& key, const std::string& begin, const std::string& end) {
  return key >= begin && (unbounded(end) || key < end);
}

bool ranges_overlap(const TxnOp& a, const TxnOp& b) {
  const bool a_before_b_end = unbounded(b.range_end) || a.key < b.range_end;
  const bool b_before_a_end = unbounded(a.range_end) || b.key < a.range_end;
  return a_before_b_end && b_before_a_end;
}

bool holds(const Compare& c, const engine::KeyValue* kv) {
  std::int64_t actual = 0;
  if (kv != nullptr) {
    switch (c.target) {
      case Compare::Target::version:
        actual = kv->version;
        break;
      case Compare::Target::create_revision:
        actual = kv->create_revision;
        break;
      case Compare::Target::mod_revision:
        actual = kv->mod_revision;
        break;
      case Compare::Target::value:
        return false;  // not used by mishka's commits
    }
  }
  switch (c.result) {
    case Compare::Result::equal:
      return actual == c.number;
    case Compare::Result::greater:
      return actual > c.number;
    case Compare::Result::less:
      return actual < c.number;
    case Compare::Result::not_equal:
      return actual != c.number;
  }
  return false;
}

// The first compare of `request` that does not hold against the keys read by the failure
// branch, or nullopt.
std::optional<std::size_t> first_failing(
    const CommitRequest& request,
    const std::unordered_map<std::string, const engine::KeyValue*>& read) {
  for (std::size_t i = 0; i < request.compares.size(); ++i) {
    const Compare& c = request.compares[i];
    if (!c.range_end.empty()) continue;
    auto it = read.find(c.key);
    if (it == read.end()) continue;  // not read: cannot tell
    if (!holds(c, it->second)) return i;
  }
  return std::nullopt;
}

// How long a commit whose deadline passed while its etcd call was in flight waits for that
// call's own answer (gRPC cancels it at the same deadline).
constexpr std::chrono::milliseconds kVerdictGrace{1000};

bool outcome_unknown(const Status& s) {
  return s.code() == StatusCode::engine_unavailable || s.code() == StatusCode::timeout;
}

// etcd's answer to a put under a lease it does not know (rpctypes.ErrGRPCLeaseNotFound).
bool lease_not_found(const Status& s) {
  return s.code() == StatusCode::not_found &&
         s.message().find("requested lease not found") != std::string::npos;
}

// How many times one batch is sent with a new ram lease after etcd did not know the last one.
constexpr int kRamLeaseRounds = 3;

}  // namespace

// The commits of one etcd Txn and what they touch, to decide whether another one may join.
struct GroupCommitter::Batch {
  std::vector<std::shared_ptr<Pending>> members;
  std::unordered_set<std::string> write_points;
  std::vector<const TxnOp*> write_ranges;
  std::unordered_set<std::string> read_points;
  std::unordered_set<std::string> table_versions;
  std::size_t compares = 0;
  std::size_t ops = 0;

  bool written(const std::string& key) const {
    if (write_points.count(key) != 0 || table_versions.count(key) != 0) return true;
    for (const TxnOp* r : write_ranges) {
      if (in_range(key, r->key, r->range_end)) return true;
    }
    return false;
  }

  bool independent_of(const CommitRequest& r) const {
    for (const TxnOp& op : r.ops) {
      if (op.range_end.empty()) {
        if (written(op.key) || read_points.count(op.key) != 0) return false;
        continue;
      }
      for (const TxnOp* w : write_ranges) {
        if (ranges_overlap(op, *w)) return false;
      }
      for (const auto* keys : {&write_points, &read_points}) {
        for (const std::string& k : *keys) {
          if (in_range(k, op.key, op.range_end)) return false;
        }
      }
    }
    for (const std::string& tv : r.table_versions) {
      if (read_points.count(tv) != 0) return false;
    }
    for (const Compare& c : r.compares) {
      if (!c.range_end.empty() || written(c.key)) return false;
    }
    return true;
  }

  std::size_t new_table_versions(const CommitRequest& r) const {
    std::size_t n = 0;
    for (const std::string& tv : r.table_versions) n += table_versions.count(tv) == 0 ? 1 : 0;
    return n;
  }

  void add(std::shared_ptr<Pending> p) {
    const CommitRequest& r = p->request;
    for (const TxnOp& op : r.ops) {
      if (op.range_end.empty()) {
        write_points.insert(op.key);
      } else {
        write_ranges.push_back(&op);
      }
    }
    for (const Compare& c : r.compares) read_points.insert(c.key);
    table_versions.insert(r.table_versions.begin(), r.table_versions.end());
    compares += r.compares.size();
    ops += r.ops.size();
    members.push_back(std::move(p));
  }
};

Result<std::unique_ptr<GroupCommitter>> GroupCommitter::create(engine::EtcdClient* client,
                                                               std::string write_marker_key,
                                                               GroupCommitOptions options) {
  if (client == nullptr) return invalid_argument("group commit: no etcd client given");
  if (options.max_txn_ops < 4) {
    return invalid_argument("group commit: max_txn_ops must be at least 4, got " +
                            std::to_string(options.max_txn_ops));
  }
  if (options.max_in_flight < 1) {
    return invalid_argument("group commit: max_in_flight must be at least 1, got " +
                            std::to_string(options.max_in_flight));
  }
  if (options.call_timeout <= std::chrono::milliseconds(0)) {
    return invalid_argument("group commit: call_timeout must be positive");
  }
  return std::unique_ptr<GroupCommitter>(
      new GroupCommitter(client, std::move(write_marker_key), options));
}

GroupCommitter::GroupCommitter(engine::EtcdClient* client, std::string write_marker_key,
                               GroupCommitOptions options)
    : client_(client), marker_key_(std::move(write_marker_key)), options_(options) {
  if (options_.enabled) {
    for (int i = 0; i < options_.max_in_flight; ++i) threads_.emplace_back([this] { run(); });
  }
}

GroupCommitter::~GroupCommitter() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  queue_cv_.notify_all();
  for (std::thread& t : threads_) t.join();
  std::unique_lock lock(mutex_);
  // A caller may still be sending its own commit (send_from_here): it uses this object.
  done_cv_.wait(lock, [this] { return in_flight_ == 0; });
  for (const auto& p : queue_) {
    p->done = true;
    p->result.status =
        Status(StatusCode::engine_unavailable, "the store is closing; the commit was not sent");
  }
  queue_.clear();
  done_cv_.notify_all();
}

GroupCommitStats GroupCommitter::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

CommitResult GroupCommitter::commit(CommitRequest request) {
  auto p = std::make_shared<Pending>();
  p->request = std::move(request);
  const Deadline deadline = p->request.deadline;
  if (!options_.enabled || p->request.exclusive) {
    Batch batch;
    p->taken = true;
    batch.add(p);
    send(batch);
    std::lock_guard lock(mutex_);
    return p->result;
  }
  std::unique_lock lock(mutex_);
  if (stopping_) {
    return CommitResult(
        Status(StatusCode::engine_unavailable, "the store is closing; the commit was not sent"));
  }
  queue_.push_back(p);
  if (queue_.size() == 1 && in_flight_ < options_.max_in_flight) {
    // Nothing waits and a Txn may go: send it from this thread. Waking a committer and being
    // woken by it again costs two thread hand-offs, about a tenth of a lone commit's time.
    send_from_here(lock);
  } else {
    queue_cv_.notify_one();
  }
  while (!p->done) {
    if (done_cv_.wait_until(lock, deadline.when()) == std::cv_status::timeout && !p->done) {
      if (!p->taken) {
        queue_.erase(std::find(queue_.begin(), queue_.end(), p));
        return CommitResult(
            Status(StatusCode::timeout, "commit: the deadline passed before it was sent"));
      }
      // The etcd call is bounded by the same deadline and answers just after it: wait that
      // moment for its verdict (no_quorum, for one, says the write never happened), rather
      // than report an unknown outcome.
      if (done_cv_.wait_until(lock, deadline.when() + kVerdictGrace, [&] { return p->done; })) {
        break;
      }
      return CommitResult(Status(
          StatusCode::timeout, "commit: the deadline passed while etcd had it (outcome unknown)"));
    }
  }
  return p->result;
}

void GroupCommitter::run() {
  std::unique_lock lock(mutex_);
  for (;;) {
    queue_cv_.wait(lock, [this] {
      return stopping_ || (!queue_.empty() && in_flight_ < options_.max_in_flight);
    });
    if (stopping_) return;
    send_from_here(lock);
  }
}

// Called with mutex_ held (and held again on return). Takes a batch from the queue and sends
// it, counting it among the Txns in flight; then hands the queue to a committer if work waits.
void GroupCommitter::send_from_here(std::unique_lock<std::mutex>& lock) {
  Batch batch = take_batch(lock);
  if (batch.members.empty()) return;
  ++in_flight_;
  lock.unlock();
  // Gives the slot back even if send() throws (out of memory), so later commits still go.
  struct SlotReturn {
    GroupCommitter* self;
    std::unique_lock<std::mutex>& lock;
    ~SlotReturn() {
      lock.lock();
      --self->in_flight_;
      if (!self->queue_.empty()) self->queue_cv_.notify_one();
      self->done_cv_.notify_all();  // the destructor waits for in_flight_ to reach 0
    }
  } slot_return{this, lock};
  send(batch);
}

// Called with mutex_ held and a non-empty queue. Takes the first live commit and every later
// one (in queue order) that is independent of those taken and keeps the Txn within limits.
GroupCommitter::Batch GroupCommitter::take_batch(std::unique_lock<std::mutex>& /*lock*/) {
  Batch batch;
  const auto limit = static_cast<std::size_t>(options_.max_txn_ops);
  std::size_t scanned = 0;
  for (auto it = queue_.begin(); it != queue_.end() && scanned < kMaxQueueScan; ++scanned) {
    const std::shared_ptr<Pending>& p = *it;
    const CommitRequest& r = p->request;
    if (r.deadline.expired()) {
      p->done = true;
      p->result.status =
          Status(StatusCode::timeout, "commit: the deadline passed before it was sent");
      done_cv_.notify_all();
      it = queue_.erase(it);
      continue;
    }
    bool take = batch.members.empty();
    if (!take && !p->alone && !batch.members.front()->alone) {
      const std::size_t ops =
          batch.ops + r.ops.size() + batch.table_versions.size() + batch.new_table_versions(r) + 1;
      take = batch.compares + r.compares.size() + 1 <= limit && ops <= limit &&
             batch.independent_of(r);
    }
    if (take) {
      p->taken = true;
      batch.add(p);
      it = queue_.erase(it);
      if (batch.members.front()->alone) break;
    } else {
      ++it;
    }
  }
  return batch;
}

void GroupCommitter::finish(const std::shared_ptr<Pending>& p, CommitResult result) {
  std::lock_guard lock(mutex_);
  p->result = std::move(result);
  p->done = true;
  ++stats_.commits;
  done_cv_.notify_all();
}

void GroupCommitter::send(Batch& batch) {
  engine::TxnRequest txn;
  Deadline deadline = batch.members.front()->request.deadline;
  std::unordered_set<std::string> compared;
  for (const auto& p : batch.members) {
    const CommitRequest& r = p->request;
    if (r.deadline.when() > deadline.when()) deadline = r.deadline;
    txn.compares.insert(txn.compares.end(), r.compares.begin(), r.compares.end());
    txn.success.insert(txn.success.end(), r.ops.begin(), r.ops.end());
    if (r.exclusive) continue;
    for (const Compare& c : r.compares) {
      // The failure branch reads every compared key, to tell which commit lost.
      if (compared.insert(c.key).second) {
        txn.failure.push_back(range_op(c.key));
      }
    }
  }
  // The write marker's revision on failure is what the replica must reach to have seen the
  // write that made a compare fail (every mishka write puts it: docs/keyspace.md).
  if (!txn.failure.empty() && txn.failure.size() < static_cast<std::size_t>(options_.max_txn_ops)) {
    txn.failure.push_back(range_op(marker_key_));
  }
  // A commit that only validates reads writes nothing, not even the marker.
  const bool wrote = !txn.success.empty() || !batch.table_versions.empty();
  if (wrote) txn.success.push_back(put_op(marker_key_));
  for (const std::string& tv : batch.table_versions) {
    txn.success.push_back(put_op(tv));
  }
  {
    std::lock_guard lock(mutex_);
    if (batch.members.size() > 1) ++stats_.merged_txns;
  }

  // ram_copies puts carry the cluster's ram lease, which is known only now.
  std::vector<std::size_t> ram_puts;
  for (std::size_t i = 0; i < txn.success.size(); ++i) {
    if (txn.success[i].kind == TxnOp::Kind::put && txn.success[i].lease == kRamLease) {
      ram_puts.push_back(i);
    }
  }
  auto send_txn = [&]() -> Result<engine::TxnResult> {
    std::int64_t lease = 0;
    for (int round = 1;; ++round) {
      if (!ram_puts.empty()) {
        if (options_.ram_lease == nullptr) {
          return invalid_argument("commit: a ram_copies write, but the store has no ram lease");
        }
        auto got = lease == 0 ? options_.ram_lease->acquire(deadline)
                              : options_.ram_lease->replace(lease, deadline);
        if (!got.ok()) return got.status().with_context("commit (not sent)");
        lease = *got;
        for (std::size_t i : ram_puts) txn.success[i].lease = lease;
      }
      {
        std::lock_guard lock(mutex_);
        ++stats_.etcd_txns;
      }
      auto sent = client_->txn(txn, deadline.capped(options_.call_timeout));
      // Writes are otherwise never sent twice, but this refusal is safe to resend: etcd checks
      // the lease of every put of the branch it takes before it applies anything of the Txn
      // (applierV3backend.checkRequestPut in etcd 3.4), so a Txn refused with "requested lease
      // not found" changed nothing. It goes again with another lease.
      if (ram_puts.empty() || sent.ok() || !lease_not_found(sent.status()) ||
          round >= kRamLeaseRounds || deadline.expired()) {
        return sent;
      }
      std::lock_guard lock(mutex_);
      ++stats_.ram_lease_resends;
    }
  };
  auto result = send_txn();
  if (!result.ok()) {
    Status s = result.status();
    if (outcome_unknown(s)) s = s.with_context("commit (sent; outcome unknown)");
    for (const auto& p : batch.members) finish(p, CommitResult(s));
    return;
  }
  if (result->succeeded) {
    // Only a Txn that wrote has a revision of its own: a read-only one answers with etcd's
    // current revision, whose writes are someone else's.
    if (wrote && options_.on_committed) options_.on_committed(txn.success, result->header.revision);
    for (const auto& p : batch.members) {
      finish(p, CommitResult(true, result->header.revision, std::nullopt));
    }
    return;
  }

  // Which compares failed: evaluate each member's against the keys the failure branch read.
  std::unordered_map<std::string, const engine::KeyValue*> read;
  for (std::size_t i = 0; i < txn.failure.size() && i < result->responses.size(); ++i) {
    const auto& range = result->responses[i];
    if (!range) continue;
    read[txn.failure[i].key] = range->kvs.empty() ? nullptr : &range->kvs.front();
  }
  std::int64_t at = result->header.revision;
  if (auto marker = read.find(marker_key_); marker != read.end() && marker->second != nullptr) {
    at = marker->second->mod_revision;
  }
  if (batch.members.size() == 1) {
    finish(batch.members.front(),
           CommitResult(false, at, first_failing(batch.members.front()->request, read)));
    return;
  }
  std::vector<std::shared_ptr<Pending>> resend;
  bool blamed = false;
  for (const auto& p : batch.members) {
    auto failing = first_failing(p->request, read);
    if (failing) {
      blamed = true;
      finish(p, CommitResult(false, at, failing));
    } else {
      resend.push_back(p);
    }
  }
  std::lock_guard lock(mutex_);
  ++stats_.merged_txn_failures;
  // Back to the front of the queue, in their order, ahead of newer commits.
  for (auto it = resend.rbegin(); it != resend.rend(); ++it) {
    (*it)->taken = false;
    (*it)->alone = !blamed;
    queue_.push_front(*it);
  }
  if (stopping_) {
    // The destructor already drained the queue; nobody would send these.
    for (const auto& p : resend) {
      p->done = true;
      p->result.status =
          Status(StatusCode::engine_unavailable, "the store is closing; the commit was not sent");
    }
    std::erase_if(queue_, [](const auto& p) { return p->done; });
    done_cv_.notify_all();
  }
  queue_cv_.notify_all();
}

}  // namespace mishka::store
