// The store's operations against a real etcd: table operations, dirty operations, errors, and
// a second node seeing the first one's writes.
#include <gtest/gtest.h>

#include "store_fixture.h"

namespace mishka::test {
namespace {

using engine::Deadline;
using std::chrono::milliseconds;

std::vector<Record> Records(const Result<std::vector<RecordRef>>& r) {
  std::vector<Record> out;
  if (!r.ok()) return out;
  for (const RecordRef& p : *r) out.push_back(*p);
  return out;
}

TEST_F(StoreTest, CreateTableTwiceIsAlreadyExists) {
  ASSERT_TRUE(store().create_table(MakeSpec("t")).ok());
  Status again = store().create_table(MakeSpec("t"));
  EXPECT_EQ(again.code(), StatusCode::already_exists) << again.to_string();
  EXPECT_NE(again.message().find("'t'"), std::string::npos);
  // Read-your-writes: the table is in the local replica when create_table returns.
  EXPECT_NE(a_->replica->read().catalog().find("t"), nullptr);

  TableSpec bad = MakeSpec("bad");
  bad.indexes = {"nope"};
  EXPECT_EQ(store().create_table(bad).code(), StatusCode::invalid_argument);
}

TEST_F(StoreTest, DirtyWriteReadDelete) {
  ASSERT_TRUE(store().create_table(MakeSpec("t")).ok());
  ASSERT_TRUE(store().dirty_write("t", {1, "x", 10}).ok());
  EXPECT_EQ(Records(store().dirty_read("t", 1)), (std::vector<Record>{{1, "x", 10}}));
  ASSERT_TRUE(store().dirty_write("t", {1, "y", 11}).ok());
  EXPECT_EQ(Records(store().dirty_read("t", 1)), (std::vector<Record>{{1, "y", 11}}));

  // delete_object of another record leaves it; of the record itself removes it.
  ASSERT_TRUE(store().dirty_delete_object("t", {1, "x", 10}).ok());
  EXPECT_EQ(Records(store().dirty_read("t", 1)).size(), 1u);
  ASSERT_TRUE(store().dirty_delete_object("t", {1, "y", 11}).ok());
  EXPECT_TRUE(Records(store().dirty_read("t", 1)).empty());

  ASSERT_TRUE(store().dirty_write("t", {2, "z", 0}).ok());
  ASSERT_TRUE(store().dirty_delete("t", 2).ok());
  EXPECT_TRUE(Records(store().dirty_read("t", 2)).empty());
  EXPECT_EQ(CountKeys(keys_.table_prefix(MakeSpec("t"), "")), 0);
}

TEST_F(StoreTest, EveryWritePutsTheMarkerAndTheTableVersion) {
  ASSERT_TRUE(store().create_table(MakeSpec("t")).ok());
  ASSERT_TRUE(store().dirty_write("t", {1, "x", 10}).ok());
  const std::int64_t rec = ModRevision(keys_.record_key(MakeSpec("t"), "", 1));
  EXPECT_GT(rec, 0);
  EXPECT_EQ(ModRevision(keys_.write_marker_key()), rec);
  EXPECT_EQ(ModRevision(keys_.table_version_key("t")), rec);
  EXPECT_GE(a_->replica->applied_revision(), rec);
}

TEST_F(StoreTest, ArityIsCheckedBeforeAnythingIsSent) {
  ASSERT_TRUE(store().create_table(MakeSpec("t")).ok());
  const std::int64_t before = EtcdRevision();
  Status s = store().dirty_write("t", {1, "x"});
  EXPECT_EQ(s.code(), StatusCode::invalid_argument) << s.to_string();
  EXPECT_NE(s.message().find("'t'"), std::string::npos) << s.to_string();
  EXPECT_EQ(store().dirty_delete_object("t", {1}).code(), StatusCode::invalid_argument);
  EXPECT_EQ(EtcdRevision(), before);
}

TEST_F(StoreTest, UnknownTableIsNotFoundWithItsName) {
  for (Status s : {store().dirty_write("nope", {1, 2, 3}), store().dirty_delete("nope", 1),
                   store().delete_table("nope"), store().clear_table("nope"),
                   store().dirty_read("nope", 1).status(), store().transaction([](Transaction& t) {
                     return t.read("nope", 1).status();
                   })}) {
    EXPECT_EQ(s.code(), StatusCode::not_found) << s.to_string();
    EXPECT_NE(s.message().find("'nope'"), std::string::npos) << s.to_string();
  }
}

TEST_F(StoreTest, ClearTableKeepsTheTable) {
  ASSERT_TRUE(store().create_table(MakeSpec("t")).ok());
  ASSERT_TRUE(store().create_table(MakeSpec("other")).ok());
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(store().dirty_write("t", {i, "x", i}).ok());
  ASSERT_TRUE(store().dirty_write("other", {1, "x", 1}).ok());
  ASSERT_TRUE(store().clear_table("t").ok());
  {
    auto view = a_->replica->read();
    ASSERT_NE(view.catalog().find("t"), nullptr);
    EXPECT_EQ(view.catalog().find("t")->count(), 0u);
    EXPECT_EQ(view.catalog().find("other")->count(), 1u);
  }
  EXPECT_EQ(CountKeys(keys_.table_prefix(MakeSpec("t"), "")), 0);
  ASSERT_TRUE(store().dirty_write("t", {1, "x", 1}).ok());
  EXPECT_EQ(Records(store().dirty_read("t", 1)).size(), 1u);
}

TEST_F(StoreTest, DeleteTableRemovesEverythingAndCanBeCreatedAgain) {
  ASSERT_TRUE(store().create_table(MakeSpec("t")).ok());
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(store().dirty_write("t", {i, "x", i}).ok());
  ASSERT_TRUE(store().delete_table("t").ok());
  EXPECT_EQ(a_->replica->read().catalog().find("t"), nullptr);
  EXPECT_EQ(CountKeys(keys_.table_prefix(MakeSpec("t"), "")), 0);
  EXPECT_EQ(ModRevision(keys_.schema_key("t")), 0);
  EXPECT_EQ(ModRevision(keys_.table_version_key("t")), 0);
  EXPECT_EQ(store().delete_table("t").code(), StatusCode::not_found);
  EXPECT_EQ(store().dirty_write("t", {1, "x", 1}).code(), StatusCode::not_found);

  ASSERT_TRUE(store().create_table(MakeSpec("t", TableType::bag)).ok());
  EXPECT_TRUE(Records(store().dirty_read("t", 1)).empty());
}

TEST_F(StoreTest, LocalContentIsPerNode) {
  auto b = MakeNode("b@127.0.0.1");
  ASSERT_NE(b, nullptr);
  TableSpec spec = MakeSpec("loc", TableType::set, true);
  ASSERT_TRUE(store().create_table(spec).ok());
  ASSERT_TRUE(b->replica->sync(Deadline::after(milliseconds(5000))).ok());
  ASSERT_TRUE(store().dirty_write("loc", {1, "a", 1}).ok());
  ASSERT_TRUE(b->store->dirty_write("loc", {1, "b", 2}).ok());
  ASSERT_TRUE(a_->replica->sync(Deadline::after(milliseconds(5000))).ok());
  EXPECT_EQ(Records(store().dirty_read("loc", 1)), (std::vector<Record>{{1, "a", 1}}));
  EXPECT_EQ(Records(b->store->dirty_read("loc", 1)), (std::vector<Record>{{1, "b", 2}}));
  EXPECT_EQ(CountKeys(keys_.table_prefix(spec, a_->name)), 1);
  EXPECT_EQ(CountKeys(keys_.table_prefix(spec, b->name)), 1);

  // Clearing and deleting reach every node's records.
  ASSERT_TRUE(store().clear_table("loc").ok());
  EXPECT_EQ(CountKeys(keys_.table_prefix(spec, b->name)), 0);
  ASSERT_TRUE(b->store->dirty_write("loc", {2, "b", 2}).ok());
  ASSERT_TRUE(store().delete_table("loc").ok());
  EXPECT_EQ(CountKeys(keys_.root() + "l/"), 0);
  ASSERT_TRUE(b->replica->sync(Deadline::after(milliseconds(5000))).ok());
  EXPECT_EQ(b->replica->read().catalog().find("loc"), nullptr);
}

TEST_F(StoreTest, SecondNodeSeesWritesAfterSync) {
  auto b = MakeNode("b@127.0.0.1");
  ASSERT_NE(b, nullptr);
  ASSERT_TRUE(store().create_table(MakeSpec("t")).ok());
  ASSERT_TRUE(store().create_table(MakeSpec("bag", TableType::bag)).ok());
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(store().dirty_write("t", {i, "x", i}).ok());
  ASSERT_TRUE(store().dirty_write("bag", {1, "x", 1}).ok());
  ASSERT_TRUE(store().dirty_write("bag", {1, "y", 2}).ok());
  ASSERT_TRUE(b->replica->sync(Deadline::after(milliseconds(5000))).ok());
  auto view = b->replica->read();
  ASSERT_NE(view.catalog().find("t"), nullptr);
  EXPECT_EQ(view.catalog().find("t")->count(), 20u);
  EXPECT_EQ(view.catalog().find("bag")->count(), 2u);
  EXPECT_EQ(view.catalog().digest_hex(), a_->replica->read().catalog().digest_hex());
}

TEST_F(StoreTest, ClientErrorsPassThroughWithContext) {
  ASSERT_TRUE(store().create_table(MakeSpec("t")).ok());
  etcd_->Stop();
  Status s = store().dirty_write("t", {1, "x", 1}, {.timeout = milliseconds(1500)});
  EXPECT_TRUE(s.code() == StatusCode::engine_unavailable || s.code() == StatusCode::timeout)
      << s.to_string();
  Status t = store().create_table(MakeSpec("u"), {.timeout = milliseconds(1500)});
  EXPECT_TRUE(t.code() == StatusCode::engine_unavailable || t.code() == StatusCode::timeout)
      << t.to_string();
  EXPECT_NE(t.message().find("create_table 'u'"), std::string::npos) << t.to_string();
}

}  // namespace
}  // namespace mishka::test
