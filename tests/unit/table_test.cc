#include "store/table.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace mishka::store {
namespace {

std::unique_ptr<Table> make_table(TableType type, std::vector<std::string> indexes = {"app"}) {
  TableSpec spec;
  spec.name = "t";
  spec.attributes = {"id", "app", "version"};
  spec.type = type;
  spec.indexes = std::move(indexes);
  auto table = Table::create(std::move(spec));
  EXPECT_TRUE(table.ok()) << table.status().to_string();
  return std::move(*table);
}

std::vector<Record> values(const std::vector<RecordRef>& refs) {
  std::vector<Record> out;
  for (const RecordRef& r : refs) out.push_back(*r);
  return out;
}

std::vector<Record> sorted(std::vector<Record> records) {
  std::sort(records.begin(), records.end());
  return records;
}

TEST(Table, CreateRefusesInvalidSpec) {
  TableSpec spec;
  spec.name = "t";
  spec.attributes = {"id"};
  spec.indexes = {"nope"};
  EXPECT_EQ(Table::create(spec).status().code(), StatusCode::invalid_argument);
}

TEST(Table, SetWriteReadReplace) {
  auto t = make_table(TableType::set);
  ASSERT_TRUE(t->write({1, "a", "1.0"}).ok());
  ASSERT_TRUE(t->write({2, "b", "1.0"}).ok());
  EXPECT_EQ(values(t->read(1)), (std::vector<Record>{{1, "a", "1.0"}}));
  ASSERT_TRUE(t->write({1, "c", "2.0"}).ok());
  EXPECT_EQ(values(t->read(1)), (std::vector<Record>{{1, "c", "2.0"}}));
  EXPECT_EQ(*t->get(2), (Record{2, "b", "1.0"}));
  EXPECT_EQ(t->get(3), nullptr);
  EXPECT_TRUE(t->read(3).empty());
  EXPECT_EQ(t->count(), 2u);
  EXPECT_EQ(t->key_count(), 2u);
}

TEST(Table, KeysOfDifferentKindsAreDifferent) {
  auto t = make_table(TableType::set);
  ASSERT_TRUE(t->write({1, "int", 0}).ok());
  ASSERT_TRUE(t->write({1.0, "double", 0}).ok());
  ASSERT_TRUE(t->write({"1", "string", 0}).ok());
  EXPECT_EQ(t->count(), 3u);
  EXPECT_EQ((*t->get(1.0))[1], Value("double"));
}

TEST(Table, WriteRefusesWrongArityAndKeepsContents) {
  auto t = make_table(TableType::set);
  ASSERT_TRUE(t->write({1, "a", "1.0"}).ok());
  Status s = t->write({1, "b"});
  EXPECT_EQ(s.code(), StatusCode::invalid_argument);
  EXPECT_NE(s.message().find("table 't'"), std::string::npos);
  EXPECT_EQ(*t->get(1), (Record{1, "a", "1.0"}));
  EXPECT_EQ(t->write(RecordRef()).code(), StatusCode::invalid_argument);
}

TEST(Table, EraseAndEraseObject) {
  auto t = make_table(TableType::set);
  ASSERT_TRUE(t->write({1, "a", "1.0"}).ok());
  ASSERT_TRUE(t->write({2, "a", "1.0"}).ok());
  EXPECT_EQ(t->erase(1), 1u);
  EXPECT_EQ(t->erase(1), 0u);
  EXPECT_FALSE(t->erase_object({2, "a", "9.9"}));  // not the stored record
  EXPECT_EQ(t->count(), 1u);
  EXPECT_TRUE(t->erase_object({2, "a", "1.0"}));
  EXPECT_EQ(t->count(), 0u);
  EXPECT_FALSE(t->erase_object({}));
  EXPECT_TRUE(t->index_read("app", "a")->empty());
}

TEST(Table, BagKeepsDistinctRecordsInInsertionOrder) {
  auto t = make_table(TableType::bag);
  ASSERT_TRUE(t->write({1, "b", "1"}).ok());
  ASSERT_TRUE(t->write({1, "a", "1"}).ok());
  ASSERT_TRUE(t->write({1, "b", "1"}).ok());  // duplicate: no change
  ASSERT_TRUE(t->write({2, "a", "1"}).ok());
  EXPECT_EQ(values(t->read(1)), (std::vector<Record>{{1, "b", "1"}, {1, "a", "1"}}));
  EXPECT_EQ(t->count(), 3u);
  EXPECT_EQ(t->key_count(), 2u);
  EXPECT_TRUE(t->erase_object({1, "b", "1"}));
  EXPECT_EQ(values(t->read(1)), (std::vector<Record>{{1, "a", "1"}}));
  EXPECT_EQ(t->erase(1), 1u);
  EXPECT_EQ(t->count(), 1u);
}

TEST(Table, IndexReadFollowsEveryChange) {
  for (TableType type : {TableType::set, TableType::ordered_set, TableType::bag}) {
    SCOPED_TRACE(std::string(table_type_name(type)));
    auto t = make_table(type);
    ASSERT_TRUE(t->write({3, "x", "1"}).ok());
    ASSERT_TRUE(t->write({1, "x", "1"}).ok());
    ASSERT_TRUE(t->write({2, "y", "1"}).ok());
    EXPECT_EQ(values(*t->index_read("app", "x")),
              (std::vector<Record>{{1, "x", "1"}, {3, "x", "1"}}));  // key order
    if (type == TableType::bag) {
      ASSERT_TRUE(t->write({1, "y", "2"}).ok());
      EXPECT_EQ(values(*t->index_read("app", "y")),
                (std::vector<Record>{{1, "y", "2"}, {2, "y", "1"}}));
      EXPECT_EQ(values(*t->index_read("app", "x")),
                (std::vector<Record>{{1, "x", "1"}, {3, "x", "1"}}));
      ASSERT_TRUE(t->erase_object({1, "x", "1"}));
    } else {
      ASSERT_TRUE(t->write({1, "y", "2"}).ok());  // moves key 1 from x to y
    }
    EXPECT_EQ(values(*t->index_read("app", "x")), (std::vector<Record>{{3, "x", "1"}}));
    EXPECT_EQ(values(*t->index_read("app", "y")),
              (std::vector<Record>{{1, "y", "2"}, {2, "y", "1"}}));
    t->erase(2);
    EXPECT_EQ(values(*t->index_read("app", "y")), (std::vector<Record>{{1, "y", "2"}}));
    t->clear();
    EXPECT_TRUE(t->index_read("app", "y")->empty());
    EXPECT_EQ(t->count(), 0u);
  }
}

TEST(Table, IndexReadErrorsAndKeyAttribute) {
  auto t = make_table(TableType::set);
  ASSERT_TRUE(t->write({1, "a", "v"}).ok());
  auto unknown = t->index_read("ghost", 1);
  EXPECT_EQ(unknown.status().code(), StatusCode::invalid_argument);
  EXPECT_NE(unknown.status().message().find("ghost"), std::string::npos);
  auto not_indexed = t->index_read("version", "v");
  EXPECT_EQ(not_indexed.status().code(), StatusCode::invalid_argument);
  EXPECT_NE(not_indexed.status().message().find("not indexed"), std::string::npos);
  EXPECT_EQ(values(*t->index_read("id", 1)), (std::vector<Record>{{1, "a", "v"}}));
}

TEST(Table, MatchObjectWithWildcards) {
  for (TableType type : {TableType::set, TableType::ordered_set, TableType::bag}) {
    SCOPED_TRACE(std::string(table_type_name(type)));
    auto t = make_table(type);
    ASSERT_TRUE(t->write({1, "a", "1"}).ok());
    ASSERT_TRUE(t->write({2, "a", "2"}).ok());
    ASSERT_TRUE(t->write({3, "b", "1"}).ok());
    EXPECT_EQ(sorted(values(*t->match_object({std::nullopt, "a", std::nullopt}))),
              (std::vector<Record>{{1, "a", "1"}, {2, "a", "2"}}));
    EXPECT_EQ(sorted(values(*t->match_object({std::nullopt, std::nullopt, "1"}))),
              (std::vector<Record>{{1, "a", "1"}, {3, "b", "1"}}));
    EXPECT_EQ(values(*t->match_object({2, std::nullopt, std::nullopt})),
              (std::vector<Record>{{2, "a", "2"}}));
    EXPECT_TRUE(t->match_object({2, "b", std::nullopt})->empty());
    EXPECT_EQ(t->match_object({std::nullopt, std::nullopt, std::nullopt})->size(), 3u);
    EXPECT_EQ(t->match_object({std::nullopt}).status().code(), StatusCode::invalid_argument);
  }
}

TEST(Table, SelectWithConditionsAndProjection) {
  for (TableType type : {TableType::set, TableType::ordered_set, TableType::bag}) {
    SCOPED_TRACE(std::string(table_type_name(type)));
    auto t = make_table(type);
    for (int i = 0; i < 10; ++i) ASSERT_TRUE(t->write({i, i % 2 ? "odd" : "even", i * 10}).ok());
    auto r = t->select(std::vector<Condition>{{"id", CompareOp::ge, 3}, {"id", CompareOp::lt, 6}});
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(sorted(values(*r)),
              (std::vector<Record>{{3, "odd", 30}, {4, "even", 40}, {5, "odd", 50}}));
    r = t->select(
        std::vector<Condition>{{"app", CompareOp::eq, "odd"}, {"version", CompareOp::gt, 60}});
    EXPECT_EQ(sorted(values(*r)), (std::vector<Record>{{7, "odd", 70}, {9, "odd", 90}}));
    r = t->select(std::vector<Condition>{{"id", CompareOp::gt, 3},
                                         {"id", CompareOp::ge, 3},
                                         {"id", CompareOp::le, 4},
                                         {"id", CompareOp::ne, 9}});
    EXPECT_EQ(sorted(values(*r)), (std::vector<Record>{{4, "even", 40}}));
    r = t->select(std::vector<Condition>{{"id", CompareOp::eq, 4}});
    EXPECT_EQ(values(*r), (std::vector<Record>{{4, "even", 40}}));
    EXPECT_EQ(t->select(std::vector<Condition>{})->size(), 10u);

    auto projected = t->select(SelectQuery{{{"id", CompareOp::le, 1}}, {"version", "id"}});
    ASSERT_TRUE(projected.ok());
    std::vector<Record> rows = *projected;
    std::sort(rows.begin(), rows.end());
    EXPECT_EQ(rows, (std::vector<Record>{{0, 0}, {10, 1}}));

    auto bad = t->select(std::vector<Condition>{{"ghost", CompareOp::eq, 1}});
    EXPECT_EQ(bad.status().code(), StatusCode::invalid_argument);
    auto bad_projection = t->select(SelectQuery{{}, {"ghost"}});
    EXPECT_EQ(bad_projection.status().code(), StatusCode::invalid_argument);
  }
}

TEST(Table, SelectComparesAcrossKindsByTotalOrder) {
  auto t = make_table(TableType::ordered_set);
  ASSERT_TRUE(t->write({1, "a", 0}).ok());
  ASSERT_TRUE(t->write({"k", "a", 0}).ok());
  ASSERT_TRUE(t->write({Value(), "a", 0}).ok());
  auto r = t->select(std::vector<Condition>{{"id", CompareOp::gt, 100}});
  EXPECT_EQ(values(*r), (std::vector<Record>{{"k", "a", 0}}));  // every string > every int
}

TEST(Table, OrderedSetIteration) {
  auto t = make_table(TableType::ordered_set);
  for (int k : {5, 1, 3}) ASSERT_TRUE(t->write({k, "a", 0}).ok());
  EXPECT_EQ(t->all_keys(), (std::vector<Value>{1, 3, 5}));
  EXPECT_EQ(t->first(), Value(1));
  EXPECT_EQ(t->last(), Value(5));
  EXPECT_EQ(*t->next(1), Value(3));
  EXPECT_EQ(*t->next(2), Value(3));  // absent key: next greater
  EXPECT_EQ(*t->next(5), std::nullopt);
  EXPECT_EQ(*t->prev(5), Value(3));
  EXPECT_EQ(*t->prev(4), Value(3));
  EXPECT_EQ(*t->prev(1), std::nullopt);
  std::vector<Value> walked;
  for (auto k = t->first(); k; k = *t->next(*k)) walked.push_back(*k);
  EXPECT_EQ(walked, (std::vector<Value>{1, 3, 5}));
}

TEST(Table, HashIterationVisitsEveryKeyOnce) {
  for (TableType type : {TableType::set, TableType::bag}) {
    auto t = make_table(type);
    for (int k = 0; k < 100; ++k) ASSERT_TRUE(t->write({k, "a", 0}).ok());
    std::vector<Value> walked;
    for (auto k = t->first(); k; k = *t->next(*k)) walked.push_back(*k);
    std::sort(walked.begin(), walked.end());
    std::vector<Value> expected;
    for (int k = 0; k < 100; ++k) expected.emplace_back(k);
    EXPECT_EQ(walked, expected);
    EXPECT_EQ(t->last(), t->first());
    EXPECT_EQ(*t->prev(*t->first()), *t->next(*t->first()));
    auto missing = t->next(1000);
    EXPECT_EQ(missing.status().code(), StatusCode::not_found);
  }
}

TEST(Table, EmptyTableIteration) {
  for (TableType type : {TableType::set, TableType::ordered_set, TableType::bag}) {
    auto t = make_table(type);
    EXPECT_FALSE(t->first().has_value());
    EXPECT_FALSE(t->last().has_value());
    EXPECT_TRUE(t->all_keys().empty());
  }
}

TEST(Table, ReadsShareStoredRecords) {
  auto t = make_table(TableType::set);
  ASSERT_TRUE(t->write({1, "a", "1"}).ok());
  RecordRef first = t->get(1);
  RecordRef second = t->get(1);
  EXPECT_EQ(first.get(), second.get());
  ASSERT_TRUE(t->write({1, "b", "1"}).ok());
  EXPECT_EQ((*first)[1], Value("a"));  // an old reference stays valid and unchanged
}

// ---- load(): the bulk path of the snapshot loader ----

std::vector<RecordRef> refs(const std::vector<Record>& records) {
  std::vector<RecordRef> out;
  for (const Record& r : records) out.push_back(std::make_shared<const Record>(r));
  return out;
}

// Everything observable: every record by key, in iteration order, and each index's answers.
void expect_same_contents(const Table& loaded, const Table& written,
                          const std::vector<Value>& app_values) {
  EXPECT_EQ(loaded.count(), written.count());
  EXPECT_EQ(loaded.key_count(), written.key_count());
  const std::vector<Value> keys = written.all_keys();
  const std::size_t step = keys.size() > 1000 ? 37 : 1;  // a sample of a large table
  for (std::size_t i = 0; i < keys.size(); i += step) {
    EXPECT_EQ(values(loaded.read(keys[i])), values(written.read(keys[i])))
        << keys[i].debug_string();
  }
  for (const Value& app : app_values) {
    EXPECT_EQ(values(*loaded.index_read("app", app)), values(*written.index_read("app", app)))
        << app.debug_string();
  }
}

// A few hundred records with repeated index values and keys of several kinds, in an order that
// is neither key order nor index order; large enough to take the two-thread path when `many`.
std::vector<Record> mixed_records(TableType type, int n) {
  std::vector<Record> out;
  for (int i = 0; i < n; ++i) {
    const int id = (i * 7919) % n;
    const Value key = id % 5 == 0 ? Value("k" + std::to_string(id)) : Value(id);
    const Value app = id % 3 == 0 ? Value(id % 11) : Value("app" + std::to_string(id % 13));
    out.push_back({key, app, "v" + std::to_string(i)});
    if (type == TableType::bag && id % 4 == 0)
      out.push_back({key, "bagged", "w" + std::to_string(i)});
  }
  return out;
}

std::vector<Value> app_values() {
  std::vector<Value> out = {"bagged", "none"};
  for (int i = 0; i < 13; ++i) out.push_back("app" + std::to_string(i));
  for (int i = 0; i < 11; ++i) out.push_back(i);
  return out;
}

TEST(TableLoad, EqualsWritingOneByOne) {
  for (TableType type : {TableType::set, TableType::ordered_set, TableType::bag}) {
    for (int n : {0, 1, 300, 20000}) {
      const std::vector<Record> records = mixed_records(type, n);
      auto written = make_table(type);
      for (const Record& r : records) ASSERT_TRUE(written->write(r).ok());
      auto loaded = make_table(type);
      ASSERT_TRUE(loaded->load(refs(records)).ok()) << n;
      expect_same_contents(*loaded, *written, app_values());
      if (type == TableType::ordered_set) {
        EXPECT_EQ(loaded->first(), written->first());
      }
      // Loaded tables stay writable like any other.
      ASSERT_TRUE(loaded->write({1, "later", "x"}).ok());
      EXPECT_EQ(values(*loaded->index_read("app", "later")).size(), 1u);
    }
  }
}

TEST(TableLoad, InLoadOrderAgainIsTheSameTable) {
  for (TableType type : {TableType::set, TableType::ordered_set, TableType::bag}) {
    for (const std::vector<std::string>& indexes :
         {std::vector<std::string>{}, std::vector<std::string>{"app"},
          std::vector<std::string>{"app", "version"}}) {
      auto written = make_table(type, indexes);
      for (const Record& r : mixed_records(type, 500)) ASSERT_TRUE(written->write(r).ok());
      std::vector<RecordRef> order;
      written->for_each_in_load_order([&](const RecordRef& r) { order.push_back(r); });
      ASSERT_EQ(order.size(), written->count());
      auto loaded = make_table(type, indexes);
      ASSERT_TRUE(loaded->load(order).ok());
      expect_same_contents(*loaded, *written,
                           indexes.empty() ? std::vector<Value>{} : app_values());
    }
  }
}

TEST(TableLoad, SetInLoadOrderFollowsItsFirstIndex) {
  auto t = make_table(TableType::set);
  ASSERT_TRUE(t->write({1, "b", "x"}).ok());
  ASSERT_TRUE(t->write({2, "a", "x"}).ok());
  ASSERT_TRUE(t->write({3, "b", "x"}).ok());
  ASSERT_TRUE(t->write(Record{0, 5, "x"}).ok());
  std::vector<Value> keys;
  t->for_each_in_load_order([&](const RecordRef& r) { keys.push_back((*r)[0]); });
  EXPECT_EQ(keys, (std::vector<Value>{0, 2, 1, 3}));  // 5 < "a" < "b"; then by key
}

TEST(TableLoad, RefusesWhatWritesWouldCollapseAndLeavesTheTableEmpty) {
  auto set = make_table(TableType::set);
  Status dup = set->load(refs({{1, "a", "x"}, {2, "b", "x"}, {1, "c", "x"}}));
  EXPECT_EQ(dup.code(), StatusCode::invalid_argument);
  EXPECT_NE(dup.message().find("record 2 repeats the key 1"), std::string::npos) << dup.message();
  EXPECT_EQ(set->count(), 0u);
  EXPECT_TRUE(set->index_read("app", "a")->empty());

  auto bag = make_table(TableType::bag);
  EXPECT_TRUE(bag->load(refs({{1, "a", "x"}, {1, "a", "y"}})).ok());
  auto bag2 = make_table(TableType::bag);
  Status same = bag2->load(refs({{1, "a", "x"}, {1, "a", "x"}}));
  EXPECT_EQ(same.code(), StatusCode::invalid_argument);
  EXPECT_EQ(bag2->count(), 0u);

  auto arity = make_table(TableType::set);
  Status wrong = arity->load(refs({{1, "a", "x"}, {2, "b"}}));
  EXPECT_EQ(wrong.code(), StatusCode::invalid_argument);
  EXPECT_NE(wrong.message().find("record 1"), std::string::npos) << wrong.message();
  EXPECT_EQ(arity->count(), 0u);

  auto full = make_table(TableType::set);
  ASSERT_TRUE(full->write({1, "a", "x"}).ok());
  EXPECT_EQ(full->load(refs({{2, "b", "x"}})).code(), StatusCode::invalid_argument);
  EXPECT_EQ(full->count(), 1u);

  // The same on the two-thread path: the duplicate comes last.
  std::vector<Record> many = mixed_records(TableType::set, 20000);
  many.push_back(many.front());
  auto large = make_table(TableType::set);
  EXPECT_EQ(large->load(refs(many)).code(), StatusCode::invalid_argument);
  EXPECT_EQ(large->count(), 0u);
  EXPECT_TRUE(large->index_read("app", "app1")->empty());
}

}  // namespace
}  // namespace mishka::store
