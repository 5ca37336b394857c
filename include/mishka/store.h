// The replicated table store of one node: table operations, dirty operations and optimistic
// transactions over the node's replica, committed through etcd (docs/store.md).
//
// A Store is made by the node layer, which owns the etcd client and the replica it runs on
// (src/store/store_open.h); the application reaches it through the node.
//
// Durability: every write (table operation, dirty write, committed transaction) returns ok only
// after etcd committed it (etcd fsyncs its log on a majority of members before it answers) AND
// the local replica applied the revision it committed at, so a read on this node that follows
// sees it. Another node sees it once its replica applied that revision (Replica::sync()).
//
// Errors common to every write: engine_unavailable, timeout and no_quorum from etcd, with the
// operation as context; space_exceeded when etcd's space quota is reached. engine_unavailable
// or timeout after the request was sent means the outcome is UNKNOWN: the write may or may not
// have been committed (it is never sent twice). The message says "outcome unknown" in that case.
//
// Threading: every method may be called from any thread at once. Calls block on etcd and on
// the local replica, each bounded by the timeout of its options.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>
#include <vector>

#include "mishka/query.h"
#include "mishka/status.h"
#include "mishka/table_spec.h"
#include "mishka/value.h"

namespace mishka {

struct StoreOptions {
  // Group commit (ARCHITECTURE.md, decision 4): concurrent commits with independent keys are
  // merged into one etcd Txn. false: one etcd Txn per commit.
  bool group_commit = true;
  // The most operations, and the most compares, one etcd Txn may carry: etcd's
  // --max-txn-ops (128 by default). Merged Txns stay within it; a single commit larger than
  // this is still sent (alone) and etcd decides. At least 4.
  int max_txn_ops = 128;
  // How many etcd Txns may be in flight at once (each one a batch of commits). At least 1.
  int max_in_flight = 1;
  // The deadline of one etcd request (each call is also bounded by its caller's timeout).
  std::chrono::milliseconds call_timeout{5000};
};

// Options of table operations and dirty writes.
struct WriteOptions {
  // Bounds the whole call: sending, etcd's commit and the local apply. When the deadline
  // passes while etcd has the commit, the call waits up to one more second for etcd's verdict:
  // no_quorum (the write was refused unproposed: it did not happen) or timeout (its outcome is
  // unknown).
  std::chrono::milliseconds timeout{10000};
};

// Options of reads outside transactions.
struct ReadOptions {
  // false: read this node's replica as it is (no etcd round trip; may lag writes committed on
  // other nodes by the time their watch events take to arrive). true: first catch the replica
  // up with every write committed anywhere in the cluster before the call began (one
  // linearizable etcd read, then a wait for the replica), so the read is linearizable; it then
  // fails as writes do when there is no quorum (no_quorum, timeout).
  bool consistent = false;
  // Bounds a consistent read's catching up.
  std::chrono::milliseconds timeout{10000};
};

struct TransactionOptions {
  // How many times the function is run again after a commit found that something it read had
  // changed. 0: a single attempt. Between attempts the caller waits until the local replica
  // has applied the revision that invalidated the attempt, plus a short random pause.
  int max_retries = 10;
  // Bounds the whole call, every attempt included.
  std::chrono::milliseconds timeout{10000};
  // Before the first attempt, catch this node's replica up with every write committed anywhere
  // before the call (as ReadOptions::consistent). A read-only transaction then sees the latest
  // committed state (linearizable); a read-write one already has its reads checked at commit,
  // and gains fewer retries.
  bool consistent = false;
};

// Counters since the store was opened (for health, benchmarks and tests).
struct StoreStats {
  std::int64_t commits = 0;              // commits that wrote (transactions, dirty ops, table ops)
  std::int64_t attempts = 0;             // transaction attempts, retries included
  std::int64_t conflicts_retried = 0;    // attempts that lost to a concurrent writer and were rerun
  std::int64_t conflicts_failed = 0;     // transactions that ended with StatusCode::conflict
  std::int64_t etcd_txns = 0;            // etcd Txn requests sent for commits
  std::int64_t merged_txns = 0;          // of those, Txns that carried more than one commit
  std::int64_t merged_txn_failures = 0;  // merged Txns whose compares failed (members resent)
};

class Transaction;

class Store {
 public:
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Creates a table cluster-wide. invalid_argument when the spec does not validate;
  // already_exists when a table of that name exists (compared in etcd, so two nodes creating
  // the same table at once get one success and one already_exists).
  Status create_table(const TableSpec& spec, const WriteOptions& options = {});
  // Removes a table and all its records (every node's, for a local_content table) in one etcd
  // Txn. not_found when there is no such table.
  Status delete_table(std::string_view name, const WriteOptions& options = {});
  // Removes every record of a table (every node's, for a local_content table); the table
  // stays. not_found when there is no such table.
  Status clear_table(std::string_view name, const WriteOptions& options = {});

  // Dirty operations: written without checking what anyone read (no conflicts), but committed
  // and applied locally like any write before they return. not_found (naming the table) for an
  // unknown table; invalid_argument when the record does not have one value per attribute
  // (nothing is sent).
  Status dirty_write(std::string_view table, const Record& record,
                     const WriteOptions& options = {});
  // Removes every record under `key`.
  Status dirty_delete(std::string_view table, const Value& key, const WriteOptions& options = {});
  // Removes the record equal to `record` (all attributes), if this node's replica has it.
  Status dirty_delete_object(std::string_view table, const Record& record,
                             const WriteOptions& options = {});
  // Every record under `key` in this node's replica. By default no etcd round trip: it may lag
  // writes made on other nodes until the replica applied them, and never blocks on etcd; with
  // options.consistent it first catches up (ReadOptions). not_found for an unknown table; an
  // absent key gives an empty vector; a consistent read adds the errors of catching up
  // (no_quorum, timeout, engine_unavailable).
  Result<std::vector<RecordRef>> dirty_read(std::string_view table, const Value& key,
                                            const ReadOptions& options = {}) const;

  // Runs `fn` as an optimistic transaction (docs/store.md): fn reads this node's replica and
  // stages writes on the Transaction it is given; when it returns ok, the writes are committed
  // in one etcd Txn that succeeds only if everything fn read is unchanged (keys, and for scans
  // the whole table). If something changed, fn runs again (up to options.max_retries times), so
  // fn must have no effects outside the Transaction and must not call the Store itself.
  //
  // Returns ok once the writes are committed and applied locally (a transaction that wrote
  // nothing returns after validating its reads). A non-ok status from fn aborts: nothing is
  // written and that status is returned. A failed write operation on the Transaction
  // (unknown table, wrong arity) also aborts with its status, even if fn ignores it.
  // conflict (naming a table and key that changed) when every attempt lost; timeout when
  // options.timeout passed first; and the errors of every write (see the top).
  //
  // fn runs on the calling thread; the Transaction is valid only during the call.
  Status transaction(const std::function<Status(Transaction&)>& fn,
                     const TransactionOptions& options = {});

  // The spec of table `name` as this node's replica has it (no etcd round trip): what a
  // caller needs to build or read records by attribute name. not_found naming the table when
  // the replica has no such table.
  Result<TableSpec> table_spec(std::string_view name) const;

  StoreStats stats() const;

  class Impl;

 private:
  friend struct StoreFactory;
  explicit Store(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// What a transaction function reads and writes through. Reads see this node's replica
// overlaid with the transaction's own pending writes and deletes (read-your-writes), for scans
// too. Every read is remembered and checked at commit. Not thread-safe: use it only on the
// thread running the function.
//
// Errors of every method: not_found naming the table when it does not exist.
class Transaction {
 public:
  ~Transaction();
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;

  // Every record under `key` (at most one for set and ordered_set); empty when none.
  Result<std::vector<RecordRef>> read(std::string_view table, const Value& key);
  // set / ordered_set: replaces the record with the same key. bag: adds it. invalid_argument
  // when the record does not have one value per attribute.
  Status write(std::string_view table, const Record& record);
  // Removes every record under `key`.
  Status erase(std::string_view table, const Value& key);
  // Removes the record equal to `record` (all attributes), if there is one.
  Status erase_object(std::string_view table, const Record& record);

  // Scans: each makes the commit depend on the whole table (no phantoms), except when it is
  // bound to one key (index_read of the key attribute, a match pattern with the key bound).
  // Orders and errors as store::Table's (src/store/table.h).
  Result<std::vector<RecordRef>> index_read(std::string_view table, std::string_view attribute,
                                            const Value& value);
  Result<std::vector<RecordRef>> match_object(std::string_view table, const Pattern& pattern);
  Result<std::vector<RecordRef>> select(std::string_view table,
                                        const std::vector<Condition>& where);
  Result<std::vector<Record>> select(std::string_view table, const SelectQuery& query);
  // Every key once (in key order for ordered_set).
  Result<std::vector<Value>> all_keys(std::string_view table);
  // Number of records (a bag counts each record).
  Result<std::size_t> count(std::string_view table);

  class State;

 private:
  friend class Store::Impl;
  explicit Transaction(State* state) : state_(state) {}
  State* state_;  // owned by the Store call running the function
};

}  // namespace mishka
