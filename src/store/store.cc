// The Store: table operations, dirty operations and the transaction loop (docs/store.md).
#include <chrono>
#include <mutex>
#include <random>
#include <thread>

#include "common/codec.h"
#include "store/group_commit.h"
#include "store/store_open.h"
#include "store/transaction_state.h"

namespace mishka {

using engine::Compare;
using engine::Deadline;
using engine::TxnOp;
using store::CommitRequest;
using store::CommitResult;

namespace {

// Table operations run again when their compares fail (the schema or a local_content record
// changed under them); this bounds it.
constexpr int kTableOpAttempts = 5;
// The longest random pause between two attempts of a transaction.
constexpr int kMaxBackoffMs = 32;

Status conflict(std::string message) {
  return Status(StatusCode::conflict, std::move(message));
}

std::string quoted(std::string_view name) {
  return "'" + std::string(name) + "'";
}

}  // namespace

struct StoreFactory {
  static std::unique_ptr<Store> make(std::unique_ptr<Store::Impl> impl) {
    return std::unique_ptr<Store>(new Store(std::move(impl)));
  }
};

class Store::Impl {
 public:
  Impl(store::StoreContext context, std::unique_ptr<store::GroupCommitter> committer)
      : ctx_(std::move(context)), committer_(std::move(committer)) {}

  Status create_table(const TableSpec& spec, const WriteOptions& options) {
    MISHKA_RETURN_IF_ERROR(spec.validate());
    const std::string where = "create_table " + quoted(spec.name);
    CommitRequest req;
    const std::string key = ctx_.keyspace.schema_key(spec.name);
    // Absent keys have create_revision 0: the put happens only if nobody created it first.
    req.compares.push_back(
        store::compare_op(key, Compare::Target::create_revision, Compare::Result::equal, 0));
    req.ops.push_back(store::put_op(key, encode_value(table_spec_to_value(spec))));
    req.exclusive = true;
    req.deadline = Deadline::after(options.timeout);
    CommitResult r = committer_->commit(std::move(req));
    if (!r.status.ok()) return r.status.with_context(where);
    if (!r.succeeded) return already_exists("table " + quoted(spec.name) + " already exists");
    count_commit();
    MISHKA_RETURN_IF_ERROR(applied(r.revision, Deadline::after(options.timeout), where));
    if (spec.storage == StorageType::ram_copies) {
      // Have the cluster's ram lease ready for the table's first write. Not essential: that
      // write gets one otherwise.
      auto lease = ctx_.ram_lease->acquire(Deadline::after(options.timeout));
      if (!lease.ok()) {
        log_to(ctx_.log, LogLevel::warning,
               where + ": no ram_copies lease yet (" + lease.status().to_string() +
                   "); the first write takes one");
      }
    }
    return Status::Ok();
  }

  // delete_table (`drop`) and clear_table: one Txn that removes every record of the table
  // (every node's, for local_content) and, for delete_table, its schema and version keys.
  Status remove_records(std::string_view name, bool drop, const WriteOptions& options) {
    const std::string where = (drop ? "delete_table " : "clear_table ") + quoted(name);
    const Deadline deadline = Deadline::after(options.timeout);
    for (int attempt = 0; attempt < kTableOpAttempts; ++attempt) {
      // Table operations are rare: see every table created anywhere before deciding.
      MISHKA_RETURN_IF_ERROR(ctx_.replica->sync(deadline).with_context(where));
      TableSpec spec;
      std::int64_t at = 0;
      {
        auto view = ctx_.replica->read();
        const store::Table* t = view.catalog().find(name);
        if (t == nullptr) return not_found("table " + quoted(name) + " does not exist");
        spec = t->spec();
        at = view.revision();
      }
      CommitRequest req;
      req.exclusive = true;
      req.deadline = deadline;
      const std::string schema = ctx_.keyspace.schema_key(name);
      req.compares.push_back(
          store::compare_op(schema, Compare::Target::mod_revision, Compare::Result::less, at + 1));
      req.compares.push_back(
          store::compare_op(schema, Compare::Target::version, Compare::Result::greater, 0));
      if (spec.local_content) {
        MISHKA_RETURN_IF_ERROR(add_local_ranges(spec, req, deadline).with_context(where));
      } else {
        std::string prefix = ctx_.keyspace.table_prefix(spec, ctx_.node_name);
        req.ops.push_back(store::erase_op(prefix, engine::prefix_range_end(prefix)));
      }
      if (drop) {
        req.ops.push_back(store::erase_op(schema));
        req.ops.push_back(store::erase_op(ctx_.keyspace.table_version_key(name)));
      } else {
        req.table_versions.push_back(ctx_.keyspace.table_version_key(name));
      }
      CommitResult r = committer_->commit(std::move(req));
      if (!r.status.ok()) return r.status.with_context(where);
      if (r.succeeded) {
        count_commit();
        return applied(r.revision, deadline, where);
      }
    }
    return conflict(where + ": the table kept changing during " + std::to_string(kTableOpAttempts) +
                    " attempts");
  }

  // Brings the replica up to every write committed before the call (Replica::sync).
  Status catch_up(Deadline deadline, std::string_view what) const {
    Status synced = ctx_.replica->sync(deadline);
    return synced.ok() ? synced : synced.with_context(std::string(what) + ": catching up");
  }

  Result<std::vector<RecordRef>> dirty_read(std::string_view table, const Value& key) const {
    auto view = ctx_.replica->read();
    const store::Table* t = view.catalog().find(table);
    if (t == nullptr) return not_found("table " + quoted(table) + " does not exist");
    return t->read(key);
  }

  Result<TableSpec> table_spec(std::string_view table) const {
    auto view = ctx_.replica->read();
    const store::Table* t = view.catalog().find(table);
    if (t == nullptr) return not_found("table " + quoted(table) + " does not exist");
    return t->spec();
  }

  // The transaction loop: run fn, commit, and on a lost compare wait for the replica to see
  // what changed and run fn again.
  Status run(const std::function<Status(Transaction&)>& fn, int max_retries, Deadline deadline,
             bool dirty) {
    if (max_retries < 0) return invalid_argument("transaction: max_retries must not be negative");
    std::minstd_rand rng(
        static_cast<std::uint32_t>(std::chrono::steady_clock::now().time_since_epoch().count() ^
                                   std::hash<std::thread::id>()(std::this_thread::get_id())));
    for (int attempt = 0;; ++attempt) {
      if (deadline.expired()) {
        return Status(StatusCode::timeout, "transaction: the deadline passed after " +
                                               std::to_string(attempt) + " attempts");
      }
      bump(&StoreStats::attempts);
      Transaction::State state(*ctx_.replica, ctx_.keyspace, ctx_.node_name, dirty);
      Status s;
      {
        Transaction txn(&state);
        s = fn(txn);
      }
      if (!state.error().ok()) return state.error();
      if (!s.ok()) return s;
      Transaction::State::Prepared prepared = state.prepare();
      // Reads all from one revision are a consistent state: nothing to ask etcd.
      if (!prepared.writes && (prepared.request.compares.empty() || prepared.single_revision)) {
        return Status::Ok();
      }
      prepared.request.deadline = deadline;
      CommitResult r = committer_->commit(std::move(prepared.request));
      if (!r.status.ok()) return r.status.with_context("transaction");
      if (r.succeeded) {
        if (!prepared.writes) return Status::Ok();
        count_commit();
        return applied(r.revision, deadline, "transaction");
      }
      std::string what = "something it read";
      if (r.failed_compare && *r.failed_compare < prepared.blame.size()) {
        what = prepared.blame[*r.failed_compare];
      }
      if (attempt >= max_retries) {
        bump(&StoreStats::conflicts_failed);
        return conflict("transaction: " + what + " changed; gave up after " +
                        std::to_string(attempt + 1) + " attempts");
      }
      bump(&StoreStats::conflicts_retried);
      MISHKA_RETURN_IF_ERROR(ctx_.replica->wait_for_revision(r.revision, deadline)
                                 .with_context("transaction: catching up after a conflict"));
      const int cap = 1 << std::min(attempt, 5);
      std::chrono::milliseconds pause(
          std::uniform_int_distribution<int>(0, std::min(cap, kMaxBackoffMs))(rng));
      std::this_thread::sleep_for(std::min(pause, deadline.remaining()));
    }
  }

  StoreStats stats() const {
    StoreStats s;
    {
      std::lock_guard lock(stats_mutex_);
      s = stats_;
    }
    store::GroupCommitStats g = committer_->stats();
    s.etcd_txns = g.etcd_txns;
    s.merged_txns = g.merged_txns;
    s.merged_txn_failures = g.merged_txn_failures;
    return s;
  }

 private:
  // Waits until the local replica applied a write's revision (read-your-writes).
  Status applied(std::int64_t revision, Deadline deadline, const std::string& where) {
    return ctx_.replica->wait_for_revision(revision, deadline)
        .with_context(where + ": committed at revision " + std::to_string(revision) +
                      ", but the local replica did not apply it");
  }

  // Every node's records of a local_content table: one range per node found under the
  // local prefix, and a compare that fails if any local record changed since they were listed
  // (so a node's first record written meanwhile is not left behind).
  Status add_local_ranges(const TableSpec& spec, CommitRequest& req, Deadline deadline) {
    const std::string local = ctx_.keyspace.root() + "l/";
    const std::string end = engine::prefix_range_end(local);
    std::string from = local;
    std::int64_t listed_at = 0;
    for (;;) {
      engine::RangeOptions ro;
      ro.range_end = end;
      ro.limit = 1;
      ro.keys_only = true;
      ro.revision = listed_at;
      auto page = ctx_.client->range(from, ro, deadline.capped(ctx_.options.call_timeout));
      if (!page.ok()) return page.status();
      if (listed_at == 0) listed_at = page->header.revision;
      if (page->kvs.empty()) break;
      replica::Keyspace::Parsed parsed = ctx_.keyspace.parse(page->kvs.front().key);
      if (parsed.node.empty()) break;
      std::string prefix = ctx_.keyspace.table_prefix(spec, parsed.node);
      req.ops.push_back(store::erase_op(prefix, engine::prefix_range_end(prefix)));
      from = engine::prefix_range_end(local + parsed.node + "/");
    }
    req.compares.push_back(store::compare_op(local, Compare::Target::mod_revision,
                                             Compare::Result::less, listed_at + 1, end));
    return Status::Ok();
  }

  void bump(std::int64_t StoreStats::*counter) {
    std::lock_guard lock(stats_mutex_);
    ++(stats_.*counter);
  }
  void count_commit() { bump(&StoreStats::commits); }

  store::StoreContext ctx_;
  std::unique_ptr<store::GroupCommitter> committer_;
  mutable std::mutex stats_mutex_;
  StoreStats stats_;
};

// ---- Store ----

Store::Store(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Store::~Store() = default;

Status Store::create_table(const TableSpec& spec, const WriteOptions& options) {
  return impl_->create_table(spec, options);
}
Status Store::delete_table(std::string_view name, const WriteOptions& options) {
  return impl_->remove_records(name, true, options);
}
Status Store::clear_table(std::string_view name, const WriteOptions& options) {
  return impl_->remove_records(name, false, options);
}

// Dirty operations are transactions whose reads are not validated; they are retried only when
// the table itself was deleted or created again under them.
constexpr int kDirtyRetries = 3;

Status Store::dirty_write(std::string_view table, const Record& record,
                          const WriteOptions& options) {
  return impl_->run([&](Transaction& t) { return t.write(table, record); }, kDirtyRetries,
                    Deadline::after(options.timeout), true);
}
Status Store::dirty_delete(std::string_view table, const Value& key, const WriteOptions& options) {
  return impl_->run([&](Transaction& t) { return t.erase(table, key); }, kDirtyRetries,
                    Deadline::after(options.timeout), true);
}
Status Store::dirty_delete_object(std::string_view table, const Record& record,
                                  const WriteOptions& options) {
  return impl_->run([&](Transaction& t) { return t.erase_object(table, record); }, kDirtyRetries,
                    Deadline::after(options.timeout), true);
}
Result<std::vector<RecordRef>> Store::dirty_read(std::string_view table, const Value& key,
                                                 const ReadOptions& options) const {
  if (options.consistent) {
    MISHKA_RETURN_IF_ERROR(impl_->catch_up(Deadline::after(options.timeout), "consistent read"));
  }
  return impl_->dirty_read(table, key);
}

Status Store::transaction(const std::function<Status(Transaction&)>& fn,
                          const TransactionOptions& options) {
  const Deadline deadline = Deadline::after(options.timeout);
  if (options.consistent) {
    MISHKA_RETURN_IF_ERROR(impl_->catch_up(deadline, "consistent transaction"));
  }
  return impl_->run(fn, options.max_retries, deadline, false);
}

Result<TableSpec> Store::table_spec(std::string_view name) const {
  return impl_->table_spec(name);
}

StoreStats Store::stats() const {
  return impl_->stats();
}

// ---- Opening ----

Result<std::unique_ptr<Store>> store::open_store(StoreContext context) {
  if (context.client == nullptr) return invalid_argument("store: no etcd client given");
  if (context.replica == nullptr) return invalid_argument("store: no replica given");
  if (context.node_name.empty()) return invalid_argument("store: empty node name");
  const StoreOptions& o = context.options;
  if (context.ram_lease == nullptr) {
    store::RamLeaseOptions ram;
    ram.client = context.client;
    ram.key = context.keyspace.ram_key();
    ram.write_marker_key = context.keyspace.write_marker_key();
    ram.log = context.log;
    auto made = store::RamLease::create(std::move(ram));
    if (!made.ok()) return made.status().with_context("store");
    context.ram_lease = std::move(*made);
  }
  store::GroupCommitOptions g{
      .enabled = o.group_commit,
      .max_txn_ops = o.max_txn_ops,
      .max_in_flight = o.max_in_flight,
      .call_timeout = o.call_timeout,
      .ram_lease = context.ram_lease.get(),
      .on_committed = [replica = context.replica](const std::vector<engine::TxnOp>& ops,
                                                  std::int64_t revision) {
        replica->apply_committed(ops, revision);
      }};
  auto committer =
      store::GroupCommitter::create(context.client, context.keyspace.write_marker_key(), g);
  if (!committer.ok()) return committer.status().with_context("store");
  return StoreFactory::make(
      std::make_unique<Store::Impl>(std::move(context), std::move(*committer)));
}

}  // namespace mishka
