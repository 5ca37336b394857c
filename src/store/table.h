// One table of records in RAM, with its secondary indexes.
//
// Threading: a Table is not synchronized. Any number of threads may call the const methods at
// once; a non-const call needs exclusive access (the replica holds the lock).
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include "mishka/query.h"
#include "mishka/status.h"
#include "mishka/table_spec.h"
#include "mishka/value.h"

namespace mishka::store {

class Table {
 public:
  // invalid_argument when the spec does not validate.
  static Result<std::unique_ptr<Table>> create(TableSpec spec);
  ~Table();
  Table(const Table&) = delete;
  Table& operator=(const Table&) = delete;

  const TableSpec& spec() const;

  // set / ordered_set: replaces the record with the same key. bag: adds the record unless an
  // equal record is already stored under its key. invalid_argument when the record does not
  // have one value per attribute; the table is then unchanged.
  Status write(Record record);
  Status write(RecordRef record);

  // Fills a table that is still empty with `records`, as writing them one by one in this
  // order would, but faster: the hash table is sized once, each record is inserted without a
  // prior lookup, and each index is built by sorting its entries instead of one tree insert
  // per record. Meant for loading a snapshot. Unlike write(), it refuses records that would
  // collapse: invalid_argument naming the record when a key repeats (set, ordered_set) or an
  // equal record repeats under its key (bag), when a record does not have one value per
  // attribute, or when the table is not empty; the table is then left empty.
  Status load(std::vector<RecordRef> records);
  // Calls fn(const RecordRef&) for every record in the order that load() takes fastest, which
  // the snapshot writes: for a set with indexes, the order of its first index (that index then
  // needs no sorting when loaded); otherwise the order of for_each (key order for ordered_set,
  // insertion order under each key for bag).
  void for_each_in_load_order(const std::function<void(const RecordRef&)>& fn) const;

  // Every record stored under `key` (at most one for set and ordered_set; insertion order for
  // bag); empty when there is none.
  std::vector<RecordRef> read(const Value& key) const;
  // The first record under `key`, or nullptr. The fast path for set and ordered_set.
  RecordRef get(const Value& key) const;

  // Removes every record under `key`; returns how many were removed.
  std::size_t erase(const Value& key);
  // Removes the record equal to `record` (all attributes); returns whether it was there.
  bool erase_object(const Record& record);

  // Records whose `attribute` equals `value`, ordered by key. invalid_argument when the
  // attribute is unknown or not indexed (reading the key attribute is allowed and is a read).
  Result<std::vector<RecordRef>> index_read(std::string_view attribute, const Value& value) const;

  // Records matching the pattern (one entry per attribute). Uses the key or an index when the
  // pattern binds them. invalid_argument when the pattern has the wrong length.
  Result<std::vector<RecordRef>> match_object(const Pattern& pattern) const;

  // Records satisfying every condition. invalid_argument naming an unknown attribute.
  Result<std::vector<RecordRef>> select(const std::vector<Condition>& where) const;
  // The same, projected onto query.fields (the whole record when empty).
  Result<std::vector<Record>> select(const SelectQuery& query) const;

  // Every key once (ordered for ordered_set).
  std::vector<Value> all_keys() const;

  // Iteration. ordered_set: key order, and `key` need not be present (the next greater / previous
  // smaller key is returned). set and bag: an unspecified order that stays stable while the
  // table is not modified; as in Mnesia, last() is first() and prev() is next(), and `key`
  // must be present (not_found otherwise). nullopt means the end of the table.
  std::optional<Value> first() const;
  std::optional<Value> last() const;
  Result<std::optional<Value>> next(const Value& key) const;
  Result<std::optional<Value>> prev(const Value& key) const;

  // Number of records (a bag counts each record).
  std::size_t count() const;
  // Number of distinct keys.
  std::size_t key_count() const;
  void clear();

  // Calls fn(const RecordRef&) for every record (key order for ordered_set).
  template <typename Fn>
  void for_each(Fn&& fn) const;

  // Calls fn(key, records, count) once per key, with the `count` records stored under it
  // (key order for ordered_set).
  void for_each_key(
      const std::function<void(const Value&, const RecordRef*, std::size_t)>& fn) const;

 private:
  class Impl;
  explicit Table(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The positions of `fields` in `spec` for a projection (empty fields: whole records);
// invalid_argument naming an unknown attribute.
Result<std::vector<std::size_t>> projection_positions(const TableSpec& spec,
                                                      const std::vector<std::string>& fields);
// Each record reduced to the values at `positions`, in that order (empty: copied whole).
std::vector<Record> project(const std::vector<RecordRef>& records,
                            const std::vector<std::size_t>& positions);

template <typename Fn>
void Table::for_each(Fn&& fn) const {
  for_each_key([&](const Value&, const RecordRef* records, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) fn(records[i]);
  });
}

}  // namespace mishka::store
