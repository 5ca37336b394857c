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

}  // namespace
}  // namespace mishka::store
