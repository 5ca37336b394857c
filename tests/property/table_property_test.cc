// Random operation sequences against a Table, each answer checked against TableModel, and at
// the end of each sequence the catalog digest checked against a copy built in another order.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "mishka/query.h"
#include "mishka/table_spec.h"
#include "property_support.h"
#include "store/catalog.h"
#include "store/table.h"
#include "table_model.h"

namespace mishka::store {
namespace {

using property::deref;
using property::describe;
using property::Rng;
using property::sorted;
using property::TableModel;

constexpr std::size_t kSequences = 200;  // per table type, times MISHKA_PROPERTY_SCALE
constexpr std::size_t kOpsPerSequence = 200;
constexpr std::size_t kFullCheckEvery = 50;

std::string render(const Value& value) {
  return value.debug_string();
}

std::string render(const std::optional<Value>& key) {
  return key ? key->debug_string() : std::string("end");
}

std::string render(const Record& record) {
  return describe({record});
}

// One sequence: a table in a catalog, its model, and the random source both are driven by.
class Sequence {
 public:
  Sequence(Rng& rng, Table& table, TableModel& model) : rng_(rng), table_(table), model_(model) {}

  void step(std::size_t n) {
    const std::size_t roll = rng_.below(1000);
    if (roll < 300) return write(n);
    if (roll < 310) return write_malformed(n);
    if (roll < 370) return erase(n);
    if (roll < 430) return erase_object(n);
    if (roll < 433) return clear(n);
    if (roll < 530) return check_read(n, random_key());
    if (roll < 610) return check_index_read(n);
    if (roll < 690) return check_match(n);
    if (roll < 850) return check_select(n, /*project=*/roll >= 770);
    if (roll < 910) return check_neighbours(n, random_key());
    if (roll < 940) return check_iteration(n);
    if (roll < 970) return check_keys(n);
    return check_counts(n);
  }

  // Everything observable at once: every key's records, every index entry, iteration, counts.
  void check_everything() {
    SCOPED_TRACE("full check");
    check_counts(kNoStep);
    check_keys(kNoStep);
    check_iteration(kNoStep);
    check_for_each();
    for (const Value& key : model_.keys()) check_read(kNoStep, key);
    for (const std::string& attribute : model_.spec().indexes) {
      for (const Value& value : property::attribute_domain()) check_index_read(attribute, value);
    }
  }

 private:
  // The step number of checks that are not a step of the sequence.
  static constexpr std::size_t kNoStep = static_cast<std::size_t>(-1);

  static std::string label(std::size_t n, const std::string& what) {
    return n == kNoStep ? what : "op " + std::to_string(n) + ": " + what;
  }

  const Value& random_key() { return rng_.pick(property::key_domain()); }

  // A value for a query: often one that is stored at `position`, so that queries find things.
  Value random_operand(std::size_t position) {
    if (model_.count() > 0 && rng_.chance(600)) return model_.random_stored(rng_)[position];
    return rng_.chance(500) ? rng_.pick(property::attribute_domain())
                            : rng_.pick(property::key_domain());
  }

  void write(std::size_t n) {
    Record record = property::random_record(rng_, model_.spec());
    SCOPED_TRACE(label(n, "write " + render(record)));
    model_.write(record);
    const Status status = rng_.chance(500)
                              ? table_.write(std::make_shared<const Record>(std::move(record)))
                              : table_.write(std::move(record));
    EXPECT_TRUE(status.ok()) << status.to_string();
  }

  void write_malformed(std::size_t n) {
    Record record = property::random_record(rng_, model_.spec());
    if (rng_.chance(500)) {
      record.pop_back();
    } else {
      record.push_back(Value(1));
    }
    SCOPED_TRACE(label(n, "write of the wrong arity " + render(record)));
    const std::size_t before = table_.count();
    const Status status = table_.write(std::move(record));
    EXPECT_EQ(status.code(), StatusCode::invalid_argument) << status.to_string();
    EXPECT_EQ(table_.count(), before);
  }

  void erase(std::size_t n) {
    const Value key =
        model_.count() > 0 && rng_.chance(600) ? model_.random_stored(rng_)[0] : random_key();
    SCOPED_TRACE(label(n, "erase " + render(key)));
    EXPECT_EQ(table_.erase(key), model_.erase(key));
  }

  void erase_object(std::size_t n) {
    Record record = model_.count() > 0 && rng_.chance(600)
                        ? model_.random_stored(rng_)
                        : property::random_record(rng_, model_.spec());
    SCOPED_TRACE(label(n, "erase_object " + render(record)));
    EXPECT_EQ(table_.erase_object(record), model_.erase_object(record));
  }

  void clear(std::size_t n) {
    SCOPED_TRACE(label(n, "clear"));
    table_.clear();
    model_.clear();
    EXPECT_EQ(table_.count(), 0u);
    EXPECT_EQ(table_.key_count(), 0u);
    EXPECT_FALSE(table_.first().has_value());
  }

  void check_read(std::size_t n, const Value& key) {
    SCOPED_TRACE(label(n, "read " + render(key)));
    const std::vector<Record> want = model_.read(key);
    EXPECT_EQ(deref(table_.read(key)), want);
    const RecordRef first = table_.get(key);
    if (want.empty()) {
      EXPECT_EQ(first, nullptr);
    } else if (first == nullptr) {
      ADD_FAILURE() << "get returned nothing; expected " << render(want.front());
    } else {
      EXPECT_EQ(*first, want.front());
    }
  }

  void check_index_read(std::size_t n) {
    const std::size_t which = rng_.below(model_.spec().attributes.size() + 2);
    if (which >= model_.spec().attributes.size()) {
      // An unindexed attribute, or one the table does not have.
      const std::string attribute = which == model_.spec().attributes.size() ? "c" : "nope";
      SCOPED_TRACE(label(n, "index_read on " + attribute));
      const auto result = table_.index_read(attribute, Value(0));
      EXPECT_EQ(result.status().code(), StatusCode::invalid_argument);
      return;
    }
    const std::string& attribute = model_.spec().attributes[which];
    const Value value = random_operand(which);
    SCOPED_TRACE(label(n, "index_read " + attribute + " = " + render(value)));
    if (attribute == "c") {
      const auto result = table_.index_read(attribute, value);
      EXPECT_EQ(result.status().code(), StatusCode::invalid_argument);
      return;
    }
    check_index_read(attribute, value);
  }

  void check_index_read(const std::string& attribute, const Value& value) {
    SCOPED_TRACE("index_read " + attribute + " = " + render(value));
    const auto result = table_.index_read(attribute, value);
    ASSERT_TRUE(result.ok()) << result.status().to_string();
    const std::vector<Record> got = deref(*result);
    for (std::size_t i = 1; i < got.size(); ++i) {
      EXPECT_LE(got[i - 1].front(), got[i].front()) << "index_read is not in key order";
    }
    const std::size_t position = *model_.spec().attribute_position(attribute);
    EXPECT_EQ(sorted(got), sorted(model_.scan_attribute(position, value)));
  }

  void check_match(std::size_t n) {
    const std::size_t arity = model_.spec().attributes.size();
    if (rng_.chance(30)) {
      SCOPED_TRACE(label(n, "match_object with a pattern of the wrong length"));
      const Pattern pattern(rng_.chance(500) ? arity - 1 : arity + 1);
      EXPECT_EQ(table_.match_object(pattern).status().code(), StatusCode::invalid_argument);
      return;
    }
    Pattern pattern(arity);
    std::string text = "match_object [";
    for (std::size_t i = 0; i < arity; ++i) {
      if (rng_.chance(500)) pattern[i] = random_operand(i);
      text += (i > 0 ? ", " : "") + (pattern[i] ? render(*pattern[i]) : std::string("_"));
    }
    SCOPED_TRACE(label(n, text + "]"));
    const auto result = table_.match_object(pattern);
    ASSERT_TRUE(result.ok()) << result.status().to_string();
    EXPECT_EQ(sorted(deref(*result)), sorted(model_.match(pattern)));
  }

  void check_select(std::size_t n, bool project) {
    const std::vector<std::string>& attributes = model_.spec().attributes;
    SelectQuery query;
    std::string text = "select where";
    bool valid = true;
    const std::size_t conditions = rng_.below(4);
    for (std::size_t i = 0; i < conditions; ++i) {
      Condition condition;
      const std::size_t position = rng_.below(attributes.size());
      condition.attribute = attributes[position];
      if (rng_.chance(20)) {
        condition.attribute = "nope";
        valid = false;
      }
      condition.op = static_cast<CompareOp>(rng_.below(6));
      condition.operand = random_operand(position);
      text += " " + condition.attribute + " " + std::string(property::op_name(condition.op)) + " " +
              render(condition.operand) + ";";
      query.where.push_back(std::move(condition));
    }
    if (project) {
      std::vector<std::string> fields = attributes;
      rng_.shuffle(fields);
      fields.resize(rng_.below(fields.size() + 1));
      if (rng_.chance(20)) {
        fields.push_back("nope");
        valid = false;
      }
      query.fields = fields;
      text += " fields";
      for (const std::string& field : fields) text += " " + field;
    }
    SCOPED_TRACE(label(n, text));
    if (!valid) {
      EXPECT_EQ(table_.select(query).status().code(), StatusCode::invalid_argument);
      return;
    }
    if (!project) {
      const auto refs = table_.select(query.where);
      ASSERT_TRUE(refs.ok()) << refs.status().to_string();
      EXPECT_EQ(sorted(deref(*refs)), sorted(model_.select(query)));
    }
    const auto records = table_.select(query);
    ASSERT_TRUE(records.ok()) << records.status().to_string();
    EXPECT_EQ(sorted(*records), sorted(model_.select(query)));
  }

  // next / prev of one key, present or not.
  void check_neighbours(std::size_t n, const Value& key) {
    SCOPED_TRACE(label(n, "next/prev of " + render(key)));
    const auto next = table_.next(key);
    const auto prev = table_.prev(key);
    if (model_.spec().type == TableType::ordered_set) {
      ASSERT_TRUE(next.ok()) << next.status().to_string();
      ASSERT_TRUE(prev.ok()) << prev.status().to_string();
      EXPECT_EQ(render(*next), render(model_.key_after(key)));
      EXPECT_EQ(render(*prev), render(model_.key_before(key)));
      return;
    }
    if (!model_.contains_key(key)) {
      EXPECT_EQ(next.status().code(), StatusCode::not_found);
      EXPECT_EQ(prev.status().code(), StatusCode::not_found);
      return;
    }
    ASSERT_TRUE(next.ok()) << next.status().to_string();
    ASSERT_TRUE(prev.ok()) << prev.status().to_string();
    EXPECT_EQ(render(*prev), render(*next)) << "prev is next for set and bag";
    if (next->has_value()) {
      EXPECT_TRUE(model_.contains_key(**next)) << "next gave an absent key " << render(*next);
      EXPECT_NE(**next, key);
    }
  }

  // first/next visits every key once (in key order for ordered_set); last/prev backwards.
  void check_iteration(std::size_t n) {
    SCOPED_TRACE(label(n, "iteration"));
    const std::vector<Value> keys = model_.keys();
    const bool ordered = model_.spec().type == TableType::ordered_set;
    std::vector<Value> forward;
    std::optional<Value> key = table_.first();
    while (key.has_value() && forward.size() <= keys.size()) {
      forward.push_back(*key);
      const auto next = table_.next(*key);
      ASSERT_TRUE(next.ok()) << "next(" << render(*key) << "): " << next.status().to_string();
      key = *next;
    }
    if (ordered) {
      EXPECT_EQ(forward, keys);
    } else {
      EXPECT_EQ(std::set<Value>(forward.begin(), forward.end()).size(), forward.size())
          << "a key was visited twice";
      EXPECT_EQ(sorted_keys(forward), keys);
    }
    if (!ordered) {
      EXPECT_EQ(render(table_.last()), render(table_.first())) << "last is first for set and bag";
      return;
    }
    std::vector<Value> backward;
    key = table_.last();
    while (key.has_value() && backward.size() <= keys.size()) {
      backward.push_back(*key);
      const auto prev = table_.prev(*key);
      ASSERT_TRUE(prev.ok()) << "prev(" << render(*key) << "): " << prev.status().to_string();
      key = *prev;
    }
    EXPECT_EQ(std::vector<Value>(backward.rbegin(), backward.rend()), keys);
  }

  void check_keys(std::size_t n) {
    SCOPED_TRACE(label(n, "all_keys"));
    const std::vector<Value> keys = table_.all_keys();
    if (model_.spec().type == TableType::ordered_set) {
      EXPECT_EQ(keys, model_.keys());
    } else {
      EXPECT_EQ(sorted_keys(keys), model_.keys());
    }
  }

  void check_counts(std::size_t n) {
    SCOPED_TRACE(label(n, "count"));
    EXPECT_EQ(table_.count(), model_.count());
    EXPECT_EQ(table_.key_count(), model_.key_count());
  }

  void check_for_each() {
    std::vector<Record> visited;
    table_.for_each([&](const RecordRef& record) {
      visited.push_back(record ? *record : Record{Value("<null RecordRef>")});
    });
    if (model_.spec().type == TableType::ordered_set) {
      EXPECT_EQ(visited, model_.all_records());
    } else {
      EXPECT_EQ(sorted(visited), sorted(model_.all_records()));
    }
    // Within a key, a bag visits its records in insertion order, as read() returns them.
    std::size_t i = 0;
    table_.for_each_key([&](const Value& key, const RecordRef* records, std::size_t count) {
      EXPECT_EQ(deref(std::vector<RecordRef>(records, records + count)), model_.read(key))
          << "for_each_key of " << render(key);
      ++i;
    });
    EXPECT_EQ(i, model_.key_count());
  }

  static std::vector<Value> sorted_keys(std::vector<Value> keys) {
    std::sort(keys.begin(), keys.end());
    return keys;
  }

  Rng& rng_;
  Table& table_;
  TableModel& model_;
};

// A copy of the model's contents written in another order (after some records that are
// written and erased again) has the same digest; any change of a record changes it, and
// undoing the change restores it.
void check_digest(Rng& rng, const Catalog& catalog, const TableModel& model) {
  SCOPED_TRACE("digest");
  const std::string digest = catalog.digest_hex();
  EXPECT_EQ(digest.size(), 64u);

  Catalog copy;
  ASSERT_TRUE(copy.create_table(model.spec()).ok());
  Table& table = *copy.find(model.spec().name);
  for (std::size_t i = rng.below(6); i > 0; --i) {
    const Record noise = property::random_record(rng, model.spec());
    ASSERT_TRUE(table.write(noise).ok());
    table.erase(noise.front());
  }
  std::vector<Record> records = model.all_records();
  rng.shuffle(records);
  for (const Record& record : records) {
    ASSERT_TRUE(table.write(record).ok());
  }
  ASSERT_EQ(copy.digest_hex(), digest) << "same contents written in another order";
  EXPECT_EQ(table_digest(table), table_digest(*catalog.find(model.spec().name)));

  if (records.empty()) {
    const Record added = property::random_record(rng, model.spec());
    ASSERT_TRUE(table.write(added).ok());
    EXPECT_NE(copy.digest_hex(), digest) << "added " << render(added);
    table.erase(added.front());
    EXPECT_EQ(copy.digest_hex(), digest) << "after erasing " << render(added);
    return;
  }

  const Record original = rng.pick(records);
  Record changed = original;
  const std::size_t position = rng.below(changed.size());
  const std::vector<Value>& domain =
      position == 0 ? property::key_domain() : property::attribute_domain();
  do {
    changed[position] = rng.pick(domain);
  } while (changed[position] == original[position]);
  SCOPED_TRACE("changed " + render(original) + " into " + render(changed));

  const bool changed_was_stored = model.contains(changed);
  const bool replaces = !model.is_bag() && model.contains_key(changed.front());
  const std::vector<Record> displaced = model.read(changed.front());
  ASSERT_TRUE(table.erase_object(original));
  ASSERT_TRUE(table.write(changed).ok());
  EXPECT_NE(copy.digest_hex(), digest);

  // Undo: remove what the change added, put back what it removed or replaced.
  if (!changed_was_stored) {
    ASSERT_TRUE(table.erase_object(changed));
  }
  if (replaces) {
    for (const Record& record : displaced) {
      ASSERT_TRUE(table.write(record).ok());
    }
  }
  ASSERT_TRUE(table.write(original).ok());
  EXPECT_EQ(copy.digest_hex(), digest) << "after undoing the change";
}

void run_sequence(TableType type, std::uint64_t seed) {
  // The same seed drives different choices for each table type.
  Rng rng(seed ^ (0x9E3779B97F4A7C15u * (static_cast<std::uint64_t>(type) + 1)));
  Catalog catalog;
  const TableSpec spec = property::model_spec("t", type);
  ASSERT_TRUE(catalog.create_table(spec).ok());
  Table* table = catalog.find(spec.name);
  ASSERT_NE(table, nullptr);
  TableModel model(spec);
  Sequence sequence(rng, *table, model);
  for (std::size_t n = 0; n < kOpsPerSequence; ++n) {
    sequence.step(n);
    if (n % kFullCheckEvery == kFullCheckEvery - 1) sequence.check_everything();
    if (::testing::Test::HasFailure()) return;
  }
  sequence.check_everything();
  if (::testing::Test::HasFailure()) return;
  check_digest(rng, catalog, model);
}

class TablePropertyTest : public ::testing::TestWithParam<TableType> {};

TEST_P(TablePropertyTest, RandomOperationsMatchTheModel) {
  const std::size_t sequences = kSequences * property::scale();
  for (std::size_t i = 0; i < sequences; ++i) {
    const std::uint64_t seed = property::first_seed() + i;
    SCOPED_TRACE(property::seed_trace(seed));
    run_sequence(GetParam(), seed);
    if (HasFailure()) return;  // the first failing seed is the one to look at
  }
}

INSTANTIATE_TEST_SUITE_P(AllTableTypes, TablePropertyTest,
                         ::testing::Values(TableType::set, TableType::ordered_set, TableType::bag),
                         [](const ::testing::TestParamInfo<TableType>& param) {
                           return std::string(table_type_name(param.param));
                         });

}  // namespace
}  // namespace mishka::store
