#include "store/table.h"

#include <absl/container/btree_map.h>
#include <absl/container/btree_set.h>
#include <absl/container/flat_hash_map.h>
#include <absl/container/inlined_vector.h>

#include <algorithm>
#include <compare>
#include <cstdint>
#include <iterator>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "store/run_beside.h"

namespace mishka::store {
namespace {

struct ValueLess {
  bool operator()(const Value& a, const Value& b) const { return a < b; }
};

// The records stored under one key: exactly one for set and ordered_set, one or more distinct
// records in insertion order for bag. Inline storage keeps the common single record out of a
// separate allocation.
using Slot = absl::InlinedVector<RecordRef, 1>;
using HashRows = absl::flat_hash_map<Value, Slot>;
using OrderedRows = absl::btree_map<Value, Slot, ValueLess>;

// A secondary index is one ordered set of (attribute value, key) pairs: an index read is a
// range scan over the pairs whose first element equals the value, and yields keys in order.
// The probe makes that range reachable without constructing sentinel keys.
struct IndexProbe {
  const Value* value;
};
struct IndexLess {
  using is_transparent = void;
  using Entry = std::pair<Value, Value>;
  bool operator()(const Entry& a, const Entry& b) const { return a < b; }
  bool operator()(const Entry& a, const IndexProbe& p) const { return a.first < *p.value; }
  bool operator()(const IndexProbe& p, const Entry& a) const { return *p.value < a.first; }
};
using Index = absl::btree_set<std::pair<Value, Value>, IndexLess>;

bool compare(const Value& v, CompareOp op, const Value& operand) {
  switch (op) {
    case CompareOp::eq:
      return v == operand;
    case CompareOp::ne:
      return v != operand;
    case CompareOp::lt:
      return v < operand;
    case CompareOp::le:
      return v <= operand;
    case CompareOp::gt:
      return v > operand;
    case CompareOp::ge:
      return v >= operand;
  }
  return false;
}

// A condition with its attribute resolved to a position.
struct BoundCondition {
  std::size_t position;
  CompareOp op;
  const Value* operand;
};

bool holds(const Record& record, const std::vector<BoundCondition>& conditions) {
  for (const BoundCondition& c : conditions) {
    if (!compare(record[c.position], c.op, *c.operand)) return false;
  }
  return true;
}

bool matches(const Record& record, const Pattern& pattern) {
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i].has_value() && !(record[i] == *pattern[i])) return false;
  }
  return true;
}

// Value's order (operator<=>), with the kinds that index entries and keys usually hold
// compared inline: sorting a million index entries spends most of its time comparing.
std::strong_ordering fast_compare(const Value& a, const Value& b) {
  const std::string* sa = a.get_string();
  const std::string* sb = b.get_string();
  if (sa != nullptr && sb != nullptr) return *sa <=> *sb;
  const std::int64_t* ia = a.get_int();
  const std::int64_t* ib = b.get_int();
  if (ia != nullptr && ib != nullptr) return *ia <=> *ib;
  return a <=> b;
}

// Below this many records a load stays on the calling thread: a thread costs more than it saves.
constexpr std::size_t kParallelLoadRecords = 16384;

bool index_entry_less(const std::pair<Value, Value>& a, const std::pair<Value, Value>& b) {
  const std::strong_ordering first = fast_compare(a.first, b.first);
  if (first != 0) return first < 0;
  return fast_compare(a.second, b.second) < 0;
}

}  // namespace

class Table::Impl {
 public:
  explicit Impl(TableSpec spec) : spec_(std::move(spec)) {
    if (spec_.type == TableType::ordered_set) {
      rows_.emplace<OrderedRows>();
    } else {
      rows_.emplace<HashRows>();
    }
    for (const std::string& name : spec_.indexes) {
      indexes_.push_back(IndexOn{*spec_.attribute_position(name), Index()});
    }
  }

  const TableSpec& spec() const { return spec_; }

  Status write(RecordRef record) {
    if (record == nullptr) return invalid_argument("null record for table '" + spec_.name + "'");
    MISHKA_RETURN_IF_ERROR(spec_.check_record(*record));
    std::visit([&](auto& rows) { write_into(rows, std::move(record)); }, rows_);
    return Status::Ok();
  }

  Status load(std::vector<RecordRef> records) {
    if (record_count_ != 0) {
      return invalid_argument("cannot load table '" + spec_.name + "': it already holds " +
                              std::to_string(record_count_) + " records");
    }
    for (std::size_t i = 0; i < records.size(); ++i) {
      if (records[i] == nullptr) {
        return invalid_argument("null record " + std::to_string(i) + " for table '" + spec_.name +
                                "'");
      }
      Status fits = spec_.check_record(*records[i]);
      if (!fits.ok())
        return invalid_argument("record " + std::to_string(i) + ": " + fits.message());
    }
    // The rows and the indexes are separate structures built from the same records: with
    // enough records, the indexes are built on a second thread meanwhile. The rows take the
    // references over (no reference count is touched); the indexes read the records through
    // plain pointers, which stay valid because the records are owned throughout.
    std::vector<const Record*> plain;
    if (!indexes_.empty()) {
      plain.reserve(records.size());
      for (const RecordRef& r : records) plain.push_back(r.get());
    }
    Status loaded;
    auto build_rows = [&] {
      loaded = std::visit([&](auto& rows) { return load_rows(rows, records); }, rows_);
    };
    auto build_indexes = [&] {
      for (IndexOn& index : indexes_) build_index(index, plain);
    };
    if (indexes_.empty() || records.size() < kParallelLoadRecords) {
      build_rows();
      if (loaded.ok()) build_indexes();
    } else {
      run_beside(build_indexes, build_rows);
    }
    if (!loaded.ok()) {
      clear();
      return loaded;
    }
    record_count_ = records.size();
    return Status::Ok();
  }

  void for_each_in_load_order(const std::function<void(const RecordRef&)>& fn) const {
    // A set holds one record per key, so each (value, key) entry of an index names exactly
    // one record, and every record has exactly one entry (checked by the count, cheaply).
    if (spec_.type != TableType::set || indexes_.empty() ||
        indexes_.front().entries.size() != record_count_) {
      for_each_record(fn);
      return;
    }
    for (const auto& [value, key] : indexes_.front().entries) fn(find_slot(key)->front());
  }

  const Slot* find_slot(const Value& key) const {
    return std::visit(
        [&](const auto& rows) -> const Slot* {
          auto it = rows.find(key);
          return it == rows.end() ? nullptr : &it->second;
        },
        rows_);
  }

  std::size_t erase(const Value& key) {
    return std::visit(
        [&](auto& rows) -> std::size_t {
          auto it = rows.find(key);
          if (it == rows.end()) return 0;
          const std::size_t n = it->second.size();
          for (const RecordRef& r : it->second) unindex_all(*r, it->first);
          rows.erase(it);
          record_count_ -= n;
          return n;
        },
        rows_);
  }

  bool erase_object(const Record& record) {
    if (record.empty()) return false;
    return std::visit(
        [&](auto& rows) -> bool {
          auto it = rows.find(record[0]);
          if (it == rows.end()) return false;
          Slot& slot = it->second;
          auto pos = std::find_if(slot.begin(), slot.end(),
                                  [&](const RecordRef& r) { return *r == record; });
          if (pos == slot.end()) return false;
          RecordRef removed = std::move(*pos);
          slot.erase(pos);
          --record_count_;
          for (IndexOn& index : indexes_) {
            const Value& v = (*removed)[index.position];
            // In a bag another record under the key may still carry the same value.
            bool still_there = std::any_of(slot.begin(), slot.end(), [&](const RecordRef& r) {
              return (*r)[index.position] == v;
            });
            if (!still_there) index.entries.erase(std::make_pair(v, it->first));
          }
          if (slot.empty()) rows.erase(it);
          return true;
        },
        rows_);
  }

  Result<std::vector<RecordRef>> index_read(std::string_view attribute, const Value& value) const {
    auto pos = spec_.attribute_position(attribute);
    if (!pos) {
      return invalid_argument("index_read on unknown attribute '" + std::string(attribute) +
                              "' of table '" + spec_.name + "'");
    }
    std::vector<RecordRef> out;
    if (*pos == 0) {
      append_slot(value, out);
      return out;
    }
    const Index* index = index_at(*pos);
    if (index == nullptr) {
      return invalid_argument("attribute '" + std::string(attribute) + "' of table '" + spec_.name +
                              "' is not indexed");
    }
    collect_indexed(*index, *pos, value, out);
    return out;
  }

  Result<std::vector<RecordRef>> match_object(const Pattern& pattern) const {
    if (pattern.size() != spec_.attributes.size()) {
      return invalid_argument("pattern for table '" + spec_.name + "' has " +
                              std::to_string(pattern.size()) + " entries, expected " +
                              std::to_string(spec_.attributes.size()));
    }
    std::vector<RecordRef> candidates;
    if (pattern[0].has_value()) {
      append_slot(*pattern[0], candidates);
    } else if (const IndexOn* index = bound_index(pattern)) {
      collect_indexed(index->entries, index->position, *pattern[index->position], candidates);
    } else {
      std::vector<RecordRef> out;
      for_each_record([&](const RecordRef& r) {
        if (matches(*r, pattern)) out.push_back(r);
      });
      return out;
    }
    std::erase_if(candidates, [&](const RecordRef& r) { return !matches(*r, pattern); });
    return candidates;
  }

  Result<std::vector<RecordRef>> select(const std::vector<Condition>& where) const {
    std::vector<BoundCondition> bound;
    bound.reserve(where.size());
    for (const Condition& c : where) {
      auto pos = spec_.attribute_position(c.attribute);
      if (!pos) {
        return invalid_argument("select on unknown attribute '" + c.attribute + "' of table '" +
                                spec_.name + "'");
      }
      bound.push_back(BoundCondition{*pos, c.op, &c.operand});
    }
    std::vector<RecordRef> out;
    // Narrow the candidates with the key or an index when an equality allows it.
    for (const BoundCondition& c : bound) {
      if (c.op != CompareOp::eq) continue;
      if (c.position == 0) {
        append_slot(*c.operand, out);
      } else if (const Index* index = index_at(c.position)) {
        collect_indexed(*index, c.position, *c.operand, out);
      } else {
        continue;
      }
      std::erase_if(out, [&](const RecordRef& r) { return !holds(*r, bound); });
      return out;
    }
    if (const auto* ordered = std::get_if<OrderedRows>(&rows_)) {
      scan_key_range(*ordered, bound, out);
      return out;
    }
    for_each_record([&](const RecordRef& r) {
      if (holds(*r, bound)) out.push_back(r);
    });
    return out;
  }

  std::vector<Value> all_keys() const {
    std::vector<Value> keys;
    std::visit(
        [&](const auto& rows) {
          keys.reserve(rows.size());
          for (const auto& [key, slot] : rows) keys.push_back(key);
        },
        rows_);
    return keys;
  }

  std::optional<Value> first() const {
    return std::visit(
        [](const auto& rows) -> std::optional<Value> {
          if (rows.empty()) return std::nullopt;
          return rows.begin()->first;
        },
        rows_);
  }

  std::optional<Value> last() const {
    if (const auto* ordered = std::get_if<OrderedRows>(&rows_)) {
      if (ordered->empty()) return std::nullopt;
      return std::prev(ordered->end())->first;
    }
    return first();
  }

  Result<std::optional<Value>> next(const Value& key) const {
    if (const auto* ordered = std::get_if<OrderedRows>(&rows_)) {
      auto it = ordered->upper_bound(key);
      if (it == ordered->end()) return std::optional<Value>();
      return std::optional<Value>(it->first);
    }
    const HashRows& rows = std::get<HashRows>(rows_);
    auto it = rows.find(key);
    if (it == rows.end()) {
      return not_found("key " + key.debug_string() + " is not in table '" + spec_.name + "'");
    }
    ++it;
    if (it == rows.end()) return std::optional<Value>();
    return std::optional<Value>(it->first);
  }

  Result<std::optional<Value>> prev(const Value& key) const {
    if (const auto* ordered = std::get_if<OrderedRows>(&rows_)) {
      auto it = ordered->lower_bound(key);
      if (it == ordered->begin()) return std::optional<Value>();
      return std::optional<Value>(std::prev(it)->first);
    }
    return next(key);
  }

  std::size_t count() const { return record_count_; }

  std::size_t key_count() const {
    return std::visit([](const auto& rows) { return rows.size(); }, rows_);
  }

  void clear() {
    std::visit([](auto& rows) { rows.clear(); }, rows_);
    for (IndexOn& index : indexes_) index.entries.clear();
    record_count_ = 0;
  }

  void for_each_key(
      const std::function<void(const Value&, const RecordRef*, std::size_t)>& fn) const {
    std::visit(
        [&](const auto& rows) {
          for (const auto& [key, slot] : rows) fn(key, slot.data(), slot.size());
        },
        rows_);
  }

 private:
  struct IndexOn {
    std::size_t position;
    Index entries;
  };

  // The rows of load(): one insert per record into an empty container sized up front.
  template <typename Rows>
  Status load_rows(Rows& rows, std::vector<RecordRef>& records) {
    constexpr bool kOrdered = std::is_same_v<Rows, OrderedRows>;
    if constexpr (!kOrdered) rows.reserve(records.size());
    for (std::size_t i = 0; i < records.size(); ++i) {
      RecordRef& record = records[i];
      const Value& key = (*record)[0];
      typename Rows::iterator it;
      bool inserted = false;
      if constexpr (kOrdered) {
        // A snapshot lists an ordered_set in key order: appending at the end is then free.
        if (rows.empty() || std::prev(rows.end())->first < key) {
          it = rows.emplace_hint(rows.end(), key, Slot());
          inserted = true;
        } else {
          std::tie(it, inserted) = rows.try_emplace(key);
        }
      } else {
        std::tie(it, inserted) = rows.try_emplace(key);
      }
      if (!inserted) {
        if (spec_.type != TableType::bag) return duplicate(i, "key " + key.debug_string());
        for (const RecordRef& r : it->second) {
          if (*r == *record) return duplicate(i, "record with key " + key.debug_string());
        }
      }
      it->second.push_back(std::move(record));
    }
    return Status::Ok();
  }

  Status duplicate(std::size_t i, const std::string& what) const {
    return invalid_argument("cannot load table '" + spec_.name + "': record " + std::to_string(i) +
                            " repeats the " + what);
  }

  // Sorts every (value, key) pair once and appends them in order: appending sorted entries
  // to a B-tree costs little, where a million inserts in hash order each walk the tree.
  static void build_index(IndexOn& index, const std::vector<const Record*>& records) {
    const std::size_t pos = index.position;
    auto entry_less = [pos](const Record* a, const Record* b) {
      const std::strong_ordering first = fast_compare((*a)[pos], (*b)[pos]);
      if (first != 0) return first < 0;
      return fast_compare((*a)[0], (*b)[0]) < 0;
    };
    // Sorting a million entries costs several times the rest of a load, so the snapshot lists
    // a set's records in the order of its first index (for_each_in_load_order): checking that
    // they are sorted is cheap, and sorted entries are appended to the tree without a search.
    if (std::is_sorted(records.begin(), records.end(), entry_less)) {
      for (const Record* r : records)
        index.entries.emplace_hint(index.entries.end(), (*r)[pos], (*r)[0]);
      return;
    }
    std::vector<std::pair<Value, Value>> entries;
    entries.reserve(records.size());
    for (const Record* r : records) entries.emplace_back((*r)[pos], (*r)[0]);
    std::sort(entries.begin(), entries.end(), index_entry_less);
    // A bag may yield the same pair twice; the set keeps one.
    index.entries.insert(std::make_move_iterator(entries.begin()),
                         std::make_move_iterator(entries.end()));
  }

  template <typename Rows>
  void write_into(Rows& rows, RecordRef record) {
    const Value& key = (*record)[0];
    auto it = rows.find(key);
    if (it == rows.end()) {
      for (IndexOn& index : indexes_) index.entries.emplace((*record)[index.position], key);
      rows.emplace(key, Slot{std::move(record)});
      ++record_count_;
      return;
    }
    Slot& slot = it->second;
    if (spec_.type == TableType::bag) {
      // A bag holds distinct records: writing one that is there already changes nothing.
      for (const RecordRef& r : slot) {
        if (*r == *record) return;
      }
      for (IndexOn& index : indexes_) index.entries.emplace((*record)[index.position], it->first);
      slot.push_back(std::move(record));
      ++record_count_;
      return;
    }
    const Record& old = *slot.front();
    for (IndexOn& index : indexes_) {
      const Value& before = old[index.position];
      const Value& after = (*record)[index.position];
      if (before == after) continue;
      index.entries.erase(std::make_pair(before, it->first));
      index.entries.emplace(after, it->first);
    }
    slot.front() = std::move(record);
  }

  void unindex_all(const Record& record, const Value& key) {
    for (IndexOn& index : indexes_) {
      index.entries.erase(std::make_pair(record[index.position], key));
    }
  }

  const Index* index_at(std::size_t position) const {
    for (const IndexOn& index : indexes_) {
      if (index.position == position) return &index.entries;
    }
    return nullptr;
  }

  const IndexOn* bound_index(const Pattern& pattern) const {
    for (const IndexOn& index : indexes_) {
      if (pattern[index.position].has_value()) return &index;
    }
    return nullptr;
  }

  void append_slot(const Value& key, std::vector<RecordRef>& out) const {
    if (const Slot* slot = find_slot(key)) out.insert(out.end(), slot->begin(), slot->end());
  }

  // Appends, in key order, the records under keys whose indexed attribute equals `value`; in a
  // bag only those records of the key that carry the value.
  void collect_indexed(const Index& index, std::size_t position, const Value& value,
                       std::vector<RecordRef>& out) const {
    auto [begin, end] = index.equal_range(IndexProbe{&value});
    for (auto it = begin; it != end; ++it) {
      const Slot* slot = find_slot(it->second);
      if (slot == nullptr) continue;  // cannot happen while the index is exact
      for (const RecordRef& r : *slot) {
        if ((*r)[position] == value) out.push_back(r);
      }
    }
  }

  // ordered_set: conditions on the key bound the scan. The scan starts at the tightest lower
  // bound and stops at the first key past an upper bound (keys only grow from there); every
  // condition is still checked on each record.
  void scan_key_range(const OrderedRows& rows, const std::vector<BoundCondition>& bound,
                      std::vector<RecordRef>& out) const {
    const BoundCondition* lower = nullptr;
    for (const BoundCondition& c : bound) {
      if (c.position != 0 || (c.op != CompareOp::gt && c.op != CompareOp::ge)) continue;
      if (lower == nullptr || *lower->operand < *c.operand ||
          (*lower->operand == *c.operand && c.op == CompareOp::gt)) {
        lower = &c;
      }
    }
    auto it = rows.begin();
    if (lower != nullptr) {
      it = lower->op == CompareOp::gt ? rows.upper_bound(*lower->operand)
                                      : rows.lower_bound(*lower->operand);
    }
    for (; it != rows.end(); ++it) {
      if (past_upper_bound(it->first, bound)) break;
      for (const RecordRef& r : it->second) {
        if (holds(*r, bound)) out.push_back(r);
      }
    }
  }

  static bool past_upper_bound(const Value& key, const std::vector<BoundCondition>& bound) {
    for (const BoundCondition& c : bound) {
      if (c.position != 0) continue;
      if ((c.op == CompareOp::lt || c.op == CompareOp::le) && !compare(key, c.op, *c.operand)) {
        return true;
      }
    }
    return false;
  }

  template <typename Fn>
  void for_each_record(Fn&& fn) const {
    std::visit(
        [&](const auto& rows) {
          for (const auto& [key, slot] : rows) {
            for (const RecordRef& r : slot) fn(r);
          }
        },
        rows_);
  }

  TableSpec spec_;
  std::variant<HashRows, OrderedRows> rows_;
  std::vector<IndexOn> indexes_;
  std::size_t record_count_ = 0;
};

Result<std::unique_ptr<Table>> Table::create(TableSpec spec) {
  MISHKA_RETURN_IF_ERROR(spec.validate());
  return std::unique_ptr<Table>(new Table(std::make_unique<Impl>(std::move(spec))));
}

Table::Table(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Table::~Table() = default;

const TableSpec& Table::spec() const {
  return impl_->spec();
}

Status Table::write(Record record) {
  return impl_->write(std::make_shared<const Record>(std::move(record)));
}
Status Table::write(RecordRef record) {
  return impl_->write(std::move(record));
}
Status Table::load(std::vector<RecordRef> records) {
  return impl_->load(std::move(records));
}
void Table::for_each_in_load_order(const std::function<void(const RecordRef&)>& fn) const {
  impl_->for_each_in_load_order(fn);
}

std::vector<RecordRef> Table::read(const Value& key) const {
  const Slot* slot = impl_->find_slot(key);
  if (slot == nullptr) return {};
  return std::vector<RecordRef>(slot->begin(), slot->end());
}

RecordRef Table::get(const Value& key) const {
  const Slot* slot = impl_->find_slot(key);
  return slot == nullptr ? nullptr : slot->front();
}

std::size_t Table::erase(const Value& key) {
  return impl_->erase(key);
}
bool Table::erase_object(const Record& record) {
  return impl_->erase_object(record);
}

Result<std::vector<RecordRef>> Table::index_read(std::string_view attribute,
                                                 const Value& value) const {
  return impl_->index_read(attribute, value);
}

Result<std::vector<RecordRef>> Table::match_object(const Pattern& pattern) const {
  return impl_->match_object(pattern);
}

Result<std::vector<RecordRef>> Table::select(const std::vector<Condition>& where) const {
  return impl_->select(where);
}

Result<std::vector<Record>> Table::select(const SelectQuery& query) const {
  auto positions = projection_positions(spec(), query.fields);
  if (!positions) return positions.status();
  auto records = impl_->select(query.where);
  if (!records) return records.status();
  return project(*records, *positions);
}

Result<std::vector<std::size_t>> projection_positions(const TableSpec& spec,
                                                      const std::vector<std::string>& fields) {
  std::vector<std::size_t> positions;
  positions.reserve(fields.size());
  for (const std::string& field : fields) {
    auto pos = spec.attribute_position(field);
    if (!pos) {
      return invalid_argument("select projects unknown attribute '" + field + "' of table '" +
                              spec.name + "'");
    }
    positions.push_back(*pos);
  }
  return positions;
}

std::vector<Record> project(const std::vector<RecordRef>& records,
                            const std::vector<std::size_t>& positions) {
  std::vector<Record> out;
  out.reserve(records.size());
  for (const RecordRef& r : records) {
    if (positions.empty()) {
      out.push_back(*r);
      continue;
    }
    Record projected;
    projected.reserve(positions.size());
    for (std::size_t pos : positions) projected.push_back((*r)[pos]);
    out.push_back(std::move(projected));
  }
  return out;
}

std::vector<Value> Table::all_keys() const {
  return impl_->all_keys();
}
std::optional<Value> Table::first() const {
  return impl_->first();
}
std::optional<Value> Table::last() const {
  return impl_->last();
}
Result<std::optional<Value>> Table::next(const Value& key) const {
  return impl_->next(key);
}
Result<std::optional<Value>> Table::prev(const Value& key) const {
  return impl_->prev(key);
}
std::size_t Table::count() const {
  return impl_->count();
}
std::size_t Table::key_count() const {
  return impl_->key_count();
}
void Table::clear() {
  impl_->clear();
}

void Table::for_each_key(
    const std::function<void(const Value&, const RecordRef*, std::size_t)>& fn) const {
  impl_->for_each_key(fn);
}

}  // namespace mishka::store
