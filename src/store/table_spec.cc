#include "mishka/table_spec.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

namespace mishka {
namespace {

constexpr std::size_t kMaxNameLength = 128;

// The decoder refuses more than 64 nested lists and maps (DecodeLimits::max_depth in
// src/common/codec.h), and a record is a list itself: a deeper value would be committed, then
// be unreadable on every node and fail every later start.
constexpr std::size_t kMaxValueNesting = 63;

// True when `value` nests at most kMaxValueNesting lists and maps. Iterative: the value may be
// deeper than the stack allows to recurse.
bool nesting_within_limit(const Value& value) {
  std::vector<std::pair<const Value*, std::size_t>> pending{{&value, 0}};
  while (!pending.empty()) {
    auto [v, depth] = pending.back();
    pending.pop_back();
    if (const List* list = v->get_list()) {
      if (depth + 1 > kMaxValueNesting) return false;
      for (const Value& item : *list) pending.emplace_back(&item, depth + 1);
    } else if (const Map* map = v->get_map()) {
      if (depth + 1 > kMaxValueNesting) return false;
      for (const auto& [key, item] : map->entries()) {
        pending.emplace_back(&key, depth + 1);
        pending.emplace_back(&item, depth + 1);
      }
    }
  }
  return true;
}

bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '.' || c == '-';
}

// Names reach etcd keys, file names and logs, hence the narrow alphabet.
Status check_name(std::string_view what, std::string_view name) {
  if (name.empty()) return invalid_argument(std::string(what) + " name is empty");
  if (name.size() > kMaxNameLength) {
    return invalid_argument(std::string(what) + " name '" + std::string(name.substr(0, 32)) +
                            "...' is longer than 128 characters");
  }
  const char first = name.front();
  if (!((first >= 'a' && first <= 'z') || (first >= 'A' && first <= 'Z'))) {
    return invalid_argument(std::string(what) + " name '" + std::string(name) +
                            "' must start with a letter");
  }
  if (!std::all_of(name.begin(), name.end(), is_name_char)) {
    return invalid_argument(std::string(what) + " name '" + std::string(name) +
                            "' may contain only letters, digits, '_', '.' and '-'");
  }
  return Status::Ok();
}

}  // namespace

std::string_view table_type_name(TableType type) {
  switch (type) {
    case TableType::set:
      return "set";
    case TableType::ordered_set:
      return "ordered_set";
    case TableType::bag:
      return "bag";
  }
  return "unknown";
}

std::string_view storage_type_name(StorageType storage) {
  switch (storage) {
    case StorageType::disc_copies:
      return "disc_copies";
    case StorageType::ram_copies:
      return "ram_copies";
  }
  return "unknown";
}

Result<TableType> parse_table_type(std::string_view name) {
  for (TableType t : {TableType::set, TableType::ordered_set, TableType::bag}) {
    if (table_type_name(t) == name) return t;
  }
  return invalid_argument("unknown table type '" + std::string(name) +
                          "' (expected set, ordered_set or bag)");
}

Result<StorageType> parse_storage_type(std::string_view name) {
  for (StorageType s : {StorageType::disc_copies, StorageType::ram_copies}) {
    if (storage_type_name(s) == name) return s;
  }
  return invalid_argument("unsupported storage type '" + std::string(name) +
                          "' (expected disc_copies or ram_copies)");
}

Status TableSpec::validate() const {
  MISHKA_RETURN_IF_ERROR(check_name("table", name));
  if (name == "schema") {
    return invalid_argument("table name 'schema' is reserved for the catalog");
  }
  const std::string where = " in table '" + name + "'";
  if (attributes.empty())
    return invalid_argument("no attributes" + where + " (need at least the key)");
  for (std::size_t i = 0; i < attributes.size(); ++i) {
    MISHKA_RETURN_IF_ERROR(
        check_name("attribute", attributes[i]).with_context("table '" + name + "'"));
    for (std::size_t j = 0; j < i; ++j) {
      if (attributes[j] == attributes[i]) {
        return invalid_argument("duplicate attribute '" + attributes[i] + "'" + where);
      }
    }
  }
  if (type != TableType::set && type != TableType::ordered_set && type != TableType::bag) {
    return invalid_argument("unknown table type" + where);
  }
  if (storage != StorageType::disc_copies && storage != StorageType::ram_copies) {
    return invalid_argument("unsupported storage type" + where);
  }
  for (std::size_t i = 0; i < indexes.size(); ++i) {
    const std::string& index = indexes[i];
    auto pos = attribute_position(index);
    if (!pos) return invalid_argument("index on unknown attribute '" + index + "'" + where);
    if (*pos == 0) {
      return invalid_argument("index on the key attribute '" + index + "'" + where +
                              " (the key is always indexed)");
    }
    for (std::size_t j = 0; j < i; ++j) {
      if (indexes[j] == index) return invalid_argument("duplicate index '" + index + "'" + where);
    }
  }
  return Status::Ok();
}

std::optional<std::size_t> TableSpec::attribute_position(std::string_view attribute) const {
  for (std::size_t i = 0; i < attributes.size(); ++i) {
    if (attributes[i] == attribute) return i;
  }
  return std::nullopt;
}

Status TableSpec::check_record(const Record& record) const {
  if (record.size() != attributes.size()) {
    return invalid_argument("record for table '" + name + "' has " + std::to_string(record.size()) +
                            " values, expected " + std::to_string(attributes.size()) +
                            " (one per attribute)");
  }
  for (std::size_t i = 0; i < record.size(); ++i) {
    if (!nesting_within_limit(record[i])) {
      return invalid_argument("record for table '" + name + "': attribute '" + attributes[i] +
                              "' nests lists and maps more than " +
                              std::to_string(kMaxValueNesting) + " levels deep");
    }
  }
  return Status::Ok();
}

namespace {

Value strings_to_value(const std::vector<std::string>& strings) {
  List list;
  list.reserve(strings.size());
  for (const std::string& s : strings) list.emplace_back(s);
  return Value(std::move(list));
}

Result<std::vector<std::string>> strings_from_value(const Value* value, std::string_view field) {
  if (value == nullptr) {
    return invalid_argument("table spec has no '" + std::string(field) + "'");
  }
  const List* list = value->get_list();
  if (list == nullptr) {
    return invalid_argument("table spec field '" + std::string(field) + "' is not a list");
  }
  std::vector<std::string> out;
  out.reserve(list->size());
  for (const Value& v : *list) {
    const std::string* s = v.get_string();
    if (s == nullptr) {
      return invalid_argument("table spec field '" + std::string(field) + "' holds a non-string " +
                              v.debug_string());
    }
    out.push_back(*s);
  }
  return out;
}

Result<std::string> string_field(const Map& map, std::string_view field) {
  const Value* v = map.find(Value(field));
  if (v == nullptr) return invalid_argument("table spec has no '" + std::string(field) + "'");
  const std::string* s = v->get_string();
  if (s == nullptr) {
    return invalid_argument("table spec field '" + std::string(field) + "' is not a string");
  }
  return *s;
}

}  // namespace

Value table_spec_to_value(const TableSpec& spec) {
  return Value(Map{
      {"name", spec.name},
      {"attributes", strings_to_value(spec.attributes)},
      {"type", table_type_name(spec.type)},
      {"storage", storage_type_name(spec.storage)},
      {"local_content", spec.local_content},
      {"indexes", strings_to_value(spec.indexes)},
  });
}

Result<TableSpec> table_spec_from_value(const Value& value) {
  const Map* map = value.get_map();
  if (map == nullptr) return invalid_argument("table spec is not a map: " + value.debug_string());
  static constexpr std::string_view kFields[] = {"name",    "attributes",    "type",
                                                 "storage", "local_content", "indexes"};
  for (const auto& [key, unused] : map->entries()) {
    const std::string* k = key.get_string();
    if (k == nullptr ||
        std::find(std::begin(kFields), std::end(kFields), *k) == std::end(kFields)) {
      return invalid_argument("table spec has an unknown field " + key.debug_string());
    }
  }
  TableSpec spec;
  auto name = string_field(*map, "name");
  if (!name) return name.status();
  spec.name = std::move(*name);
  auto attributes = strings_from_value(map->find(Value("attributes")), "attributes");
  if (!attributes) return attributes.status();
  spec.attributes = std::move(*attributes);
  auto type_name = string_field(*map, "type");
  if (!type_name) return type_name.status();
  auto type = parse_table_type(*type_name);
  if (!type) return type.status();
  spec.type = *type;
  auto storage_name = string_field(*map, "storage");
  if (!storage_name) return storage_name.status();
  auto storage = parse_storage_type(*storage_name);
  if (!storage) return storage.status();
  spec.storage = *storage;
  const Value* local = map->find(Value("local_content"));
  if (local == nullptr || local->get_bool() == nullptr) {
    return invalid_argument("table spec field 'local_content' is missing or not a bool");
  }
  spec.local_content = *local->get_bool();
  auto indexes = strings_from_value(map->find(Value("indexes")), "indexes");
  if (!indexes) return indexes.status();
  spec.indexes = std::move(*indexes);
  MISHKA_RETURN_IF_ERROR(spec.validate());
  return spec;
}

}  // namespace mishka
