// Table specifications: what a table is called, its attributes, type, storage and indexes.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mishka/status.h"
#include "mishka/value.h"

namespace mishka {

// A record holds one value per attribute, in the order of TableSpec::attributes; the first
// value is the key.
using Record = std::vector<Value>;
// Records are immutable once stored; reads share them instead of copying.
using RecordRef = std::shared_ptr<const Record>;

// Never renumber: these reach the snapshot file and etcd.
enum class TableType : std::uint8_t {
  set = 0,          // one record per key, unordered iteration
  ordered_set = 1,  // one record per key, iteration in key order (Value's total order)
  bag = 2,          // several distinct records per key, kept in insertion order
};

enum class StorageType : std::uint8_t {
  disc_copies = 0,  // in RAM on every node, durable in etcd
  ram_copies = 1,   // in RAM on every node, gone when the whole cluster stops
};

std::string_view table_type_name(TableType type);
std::string_view storage_type_name(StorageType storage);
// Parse the names above ("set", "ordered_set", "bag"; "disc_copies", "ram_copies"). Anything
// else, e.g. Mnesia's "disc_only_copies", is refused with invalid_argument naming it.
Result<TableType> parse_table_type(std::string_view name);
Result<StorageType> parse_storage_type(std::string_view name);

struct TableSpec {
  std::string name;
  std::vector<std::string> attributes;  // the first one is the key
  TableType type = TableType::set;
  StorageType storage = StorageType::disc_copies;
  bool local_content = false;        // contents are per node, never replicated
  std::vector<std::string> indexes;  // names of indexed attributes (not the key)

  // ok, or invalid_argument saying what is wrong: a bad table or attribute name, no
  // attributes, a duplicate attribute, an index on an unknown attribute, on the key, or twice.
  // Names are 1 to 128 characters of [A-Za-z0-9_.-] starting with a letter; "schema" is
  // reserved for the catalog itself.
  Status validate() const;

  // Position of `attribute` in attributes, or nullopt.
  std::optional<std::size_t> attribute_position(std::string_view attribute) const;

  // Checks that `record` has one value per attribute, none nesting lists and maps more than 63
  // levels deep (what the record decoder accepts); invalid_argument naming the table (and the
  // attribute) otherwise.
  Status check_record(const Record& record) const;

  friend bool operator==(const TableSpec&, const TableSpec&) = default;
};

// The spec as a Value (a map with keys "name", "attributes", "type", "storage",
// "local_content", "indexes"), the form stored in snapshots and in etcd.
Value table_spec_to_value(const TableSpec& spec);
// The reverse; invalid_argument or corrupt-free: any malformed map is refused with
// invalid_argument naming the field, and the result is validated.
Result<TableSpec> table_spec_from_value(const Value& value);

}  // namespace mishka
