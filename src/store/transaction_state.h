// What one attempt of a transaction read and staged, and how it becomes one etcd commit
// (docs/store.md, docs/keyspace.md "Why the marker and the table version").
//
// Reads come from the replica, each from the view current at that read: the commit compares
// every key (or table version) read against the revision of the view it was read from, so a
// commit succeeds only if everything read is still what etcd holds at the commit's revision.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mishka/store.h"
#include "replica/keyspace.h"
#include "replica/replica.h"
#include "store/group_commit.h"

namespace mishka {

class Transaction::State {
 public:
  // `dirty`: reads are not validated (dirty operations); writes still compare the schema.
  State(replica::Replica& replica, const replica::Keyspace& keyspace, std::string node, bool dirty)
      : replica_(replica), keyspace_(keyspace), node_(std::move(node)), dirty_(dirty) {}

  Result<std::vector<RecordRef>> read(std::string_view table, const Value& key);
  Status write(std::string_view table, const Record& record);
  Status erase(std::string_view table, const Value& key);
  Status erase_object(std::string_view table, const Record& record);
  Result<std::vector<RecordRef>> index_read(std::string_view table, std::string_view attribute,
                                            const Value& value);
  Result<std::vector<RecordRef>> match_object(std::string_view table, const Pattern& pattern);
  Result<std::vector<RecordRef>> select(std::string_view table,
                                        const std::vector<Condition>& where);
  Result<std::vector<Record>> select(std::string_view table, const SelectQuery& query);
  Result<std::vector<Value>> all_keys(std::string_view table);
  Result<std::size_t> count(std::string_view table);

  // The first failure of a write operation: it aborts the transaction.
  const Status& error() const { return error_; }

  struct Prepared {
    store::CommitRequest request;
    // For each compare of the request, what it protects, for a conflict's message:
    // "table 't', key 5".
    std::vector<std::string> blame;
    bool writes = false;  // false: a read-only transaction (request.ops empty)
    // Every read came from one replica revision (a read-only transaction is then consistent
    // without asking etcd).
    bool single_revision = true;
  };
  Prepared prepare();

 private:
  // What the transaction did to one key of one table.
  struct PendingKey {
    bool cleared = false;         // erased as a whole: the replica's records no longer count
    std::vector<Record> added;    // set: the record written (at most one)
    std::vector<Record> removed;  // bag, not cleared: records erased one by one
  };
  struct TableState {
    TableSpec spec;
    std::int64_t schema_revision = 0;  // the view revision the spec was found at
    std::map<Value, PendingKey> pending;
    std::optional<std::int64_t> scanned_at;  // the earliest revision of a scan
  };
  struct KeyRead {
    std::string table;
    Value key;
    std::int64_t revision = 0;  // the earliest view revision it was read at
    bool existed = false;       // present at that read
  };

  // The table's state, looked up in `view` the first time; not_found when it does not exist.
  Result<TableState*> table(const replica::Replica::ReadView& view, std::string_view name);
  void note_revision(std::int64_t revision);
  void note_key_read(TableState& t, const Value& key, std::int64_t revision, bool existed);
  void note_scan(TableState& t, std::int64_t revision);
  Status fail(Status status);

  // The records under `key` as this transaction sees them, given the replica's.
  static std::vector<RecordRef> overlay(const std::vector<RecordRef>& base, const PendingKey& p);
  // A scan's result: the replica's (`base`, from `table` in the same view) with every pending
  // key's records replaced by the transaction's, filtered by `query` run on a table of them.
  using Query = std::function<Result<std::vector<RecordRef>>(const store::Table&)>;
  Result<std::vector<RecordRef>> overlay_scan(const store::Table& table, TableState& t,
                                              const Query& query, bool key_order);

  replica::Replica& replica_;
  const replica::Keyspace& keyspace_;
  std::string node_;
  bool dirty_;
  std::map<std::string, TableState, std::less<>> tables_;
  std::map<std::string, KeyRead> key_reads_;  // by etcd key (a bag key's marker)
  std::optional<std::int64_t> first_revision_;
  bool single_revision_ = true;
  Status error_;
};

}  // namespace mishka
