// The reference the property tests hold a Table to: a std::map from key to the records under
// it, so that key order is Value's total order by construction. A set or ordered_set keeps at
// most one record per key; a bag keeps distinct records per key in insertion order.
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <utility>
#include <vector>

#include "mishka/query.h"
#include "mishka/table_spec.h"
#include "mishka/value.h"
#include "property_support.h"

namespace mishka::property {

class TableModel {
 public:
  explicit TableModel(TableSpec spec) : spec_(std::move(spec)) {}

  const TableSpec& spec() const { return spec_; }
  bool is_bag() const { return spec_.type == TableType::bag; }

  void write(const Record& record);
  std::size_t erase(const Value& key);
  bool erase_object(const Record& record);
  void clear() { data_.clear(); }

  bool contains_key(const Value& key) const { return data_.count(key) != 0; }
  bool contains(const Record& record) const;
  std::vector<Record> read(const Value& key) const;
  // Every record: key order, insertion order within a key.
  std::vector<Record> all_records() const;
  std::vector<Value> keys() const;
  std::size_t count() const;
  std::size_t key_count() const { return data_.size(); }

  // A stored record chosen at random; the model must not be empty.
  const Record& random_stored(Rng& rng) const;

  // Reference answers: the records, in key order, that a full scan finds.
  std::vector<Record> scan_attribute(std::size_t position, const Value& value) const;
  std::vector<Record> match(const Pattern& pattern) const;
  // Conditions and fields must name attributes of the spec.
  std::vector<Record> select(const SelectQuery& query) const;

  // The smallest key greater than `key` / the greatest key smaller than `key`.
  std::optional<Value> key_after(const Value& key) const;
  std::optional<Value> key_before(const Value& key) const;

 private:
  TableSpec spec_;
  std::map<Value, std::vector<Record>> data_;
};

}  // namespace mishka::property
