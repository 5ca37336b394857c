// Transactions against a real etcd: read-your-writes, aborts, conflicts between two nodes'
// transactions (made deterministic by committing the other one from inside the first), phantoms,
// deletes, bags.
#include <gtest/gtest.h>

#include <algorithm>

#include "store_fixture.h"

namespace mishka::test {
namespace {

using engine::Deadline;
using std::chrono::milliseconds;

std::vector<Record> Records(const std::vector<RecordRef>& r) {
  std::vector<Record> out;
  for (const RecordRef& p : r) out.push_back(*p);
  return out;
}

class TransactionTest : public StoreTest {
 protected:
  void SetUp() override {
    StoreTest::SetUp();
    ASSERT_TRUE(store().create_table(MakeSpec("t")).ok());
    ASSERT_TRUE(store().create_table(MakeSpec("o", TableType::ordered_set)).ok());
    ASSERT_TRUE(store().create_table(MakeSpec("bag", TableType::bag)).ok());
    b_ = MakeNode("b@127.0.0.1");
    ASSERT_NE(b_, nullptr);
  }
  void TearDown() override {
    b_.reset();
    StoreTest::TearDown();
  }
  // Commits `fn` on node b, once; used from inside a transaction of node a to make it lose.
  void OtherNodeCommits(const std::function<Status(Transaction&)>& fn) {
    Status s = b_->store->transaction(fn);
    ASSERT_TRUE(s.ok()) << s.to_string();
  }
  std::unique_ptr<Node> b_;
};

TEST_F(TransactionTest, ReadsSeeTheTransactionsOwnWrites) {
  ASSERT_TRUE(store().dirty_write("o", {1, "x", 1}).ok());
  ASSERT_TRUE(store().dirty_write("o", {2, "x", 2}).ok());
  ASSERT_TRUE(store().dirty_write("o", {3, "y", 3}).ok());
  Status s = store().transaction([](Transaction& t) {
    EXPECT_TRUE(t.write("o", {4, "x", 4}).ok());
    EXPECT_TRUE(t.erase("o", 1).ok());
    EXPECT_TRUE(t.write("o", {3, "x", 30}).ok());
    EXPECT_EQ(Records(*t.read("o", 4)), (std::vector<Record>{{4, "x", 4}}));
    EXPECT_TRUE(t.read("o", 1)->empty());
    EXPECT_EQ(Records(*t.index_read("o", "app", "x")),
              (std::vector<Record>{{2, "x", 2}, {3, "x", 30}, {4, "x", 4}}));
    EXPECT_TRUE(t.index_read("o", "app", "y")->empty());
    EXPECT_EQ(Records(*t.match_object("o", {std::nullopt, "x", std::nullopt})).size(), 3u);
    EXPECT_EQ(Records(*t.match_object("o", {Value(3), std::nullopt, std::nullopt})),
              (std::vector<Record>{{3, "x", 30}}));
    auto sel = t.select("o", std::vector<Condition>{{"n", CompareOp::ge, 4}});
    EXPECT_EQ(Records(*sel), (std::vector<Record>{{3, "x", 30}, {4, "x", 4}}));
    auto projected = t.select("o", SelectQuery{{{"n", CompareOp::ge, 4}}, {"n"}});
    EXPECT_EQ(*projected, (std::vector<Record>{{30}, {4}}));
    EXPECT_EQ(*t.all_keys("o"), (std::vector<Value>{2, 3, 4}));
    EXPECT_EQ(*t.count("o"), 3u);
    return Status::Ok();
  });
  ASSERT_TRUE(s.ok()) << s.to_string();
  auto view = a_->replica->read();
  EXPECT_EQ(view.catalog().find("o")->all_keys(), (std::vector<Value>{2, 3, 4}));
}

TEST_F(TransactionTest, AbortWritesNothing) {
  const std::int64_t before = EtcdRevision();
  Status s = store().transaction([](Transaction& t) {
    EXPECT_TRUE(t.write("t", {1, "x", 1}).ok());
    return Status(StatusCode::invalid_argument, "changed my mind");
  });
  EXPECT_EQ(s.code(), StatusCode::invalid_argument);
  EXPECT_EQ(s.message(), "changed my mind");
  // A failed write aborts even when the function ignores it.
  s = store().transaction([](Transaction& t) {
    EXPECT_TRUE(t.write("t", {2, "x", 2}).ok());
    (void)t.write("t", {3});
    return Status::Ok();
  });
  EXPECT_EQ(s.code(), StatusCode::invalid_argument) << s.to_string();
  EXPECT_EQ(EtcdRevision(), before);
  EXPECT_EQ(a_->replica->read().catalog().find("t")->count(), 0u);
}

TEST_F(TransactionTest, ConcurrentWriteIsDetectedAndRetried) {
  ASSERT_TRUE(store().dirty_write("t", {1, "x", 0}).ok());
  int attempts = 0;
  std::int64_t seen_on_retry = -1;
  Status s = store().transaction([&](Transaction& t) {
    auto r = t.read("t", 1);
    if (!r.ok()) return r.status();
    const std::int64_t n = *(*r)[0]->at(2).get_int();
    if (++attempts == 1) {
      OtherNodeCommits([](Transaction& o) { return o.write("t", {1, "x", 100}); });
    } else {
      seen_on_retry = n;
    }
    return t.write("t", {1, "x", n + 1});
  });
  ASSERT_TRUE(s.ok()) << s.to_string();
  EXPECT_EQ(attempts, 2);
  EXPECT_EQ(seen_on_retry, 100);
  EXPECT_EQ(*(*store().dirty_read("t", 1))[0]->at(2).get_int(), 101);
  EXPECT_EQ(store().stats().conflicts_retried, 1);
}

TEST_F(TransactionTest, WithoutRetriesAConflictNamesTableAndKey) {
  ASSERT_TRUE(store().dirty_write("t", {7, "x", 0}).ok());
  Status s = store().transaction(
      [&](Transaction& t) {
        auto r = t.read("t", 7);
        if (!r.ok()) return r.status();
        OtherNodeCommits([](Transaction& o) { return o.write("t", {7, "x", 100}); });
        return t.write("t", {7, "x", 1});
      },
      {.max_retries = 0});
  EXPECT_EQ(s.code(), StatusCode::conflict) << s.to_string();
  EXPECT_NE(s.message().find("table 't', key 7"), std::string::npos) << s.to_string();
  EXPECT_EQ(*(*store().dirty_read("t", 7))[0]->at(2).get_int(), 100);
  EXPECT_EQ(store().stats().conflicts_failed, 1);
}

TEST_F(TransactionTest, DeleteIsDetected) {
  ASSERT_TRUE(store().dirty_write("t", {1, "x", 5}).ok());
  int attempts = 0;
  bool absent_on_retry = false;
  Status s = store().transaction([&](Transaction& t) {
    auto r = t.read("t", 1);
    if (!r.ok()) return r.status();
    if (++attempts == 1) {
      OtherNodeCommits([](Transaction& o) { return o.erase("t", 1); });
    } else {
      absent_on_retry = r->empty();
    }
    return t.write("t", {2, "copy", r->empty() ? Value() : (*r)[0]->at(2)});
  });
  ASSERT_TRUE(s.ok()) << s.to_string();
  EXPECT_EQ(attempts, 2);
  EXPECT_TRUE(absent_on_retry);
  EXPECT_TRUE((*store().dirty_read("t", 2))[0]->at(2).is_null());
}

TEST_F(TransactionTest, PhantomsThroughIndexReadAndSelectAreDetected) {
  for (int variant = 0; variant < 2; ++variant) {
    const Value key = 100 + variant;
    const std::string app = "phantom" + std::to_string(variant);
    int attempts = 0;
    std::size_t seen_on_retry = 0;
    Status s = store().transaction([&](Transaction& t) {
      Result<std::vector<RecordRef>> found =
          variant == 0 ? t.index_read("t", "app", app)
                       : t.select("t", std::vector<Condition>{{"app", CompareOp::eq, app}});
      if (!found.ok()) return found.status();
      if (++attempts == 1) {
        EXPECT_TRUE(found->empty());
        OtherNodeCommits([&](Transaction& o) { return o.write("t", {key, app, 1}); });
      } else {
        seen_on_retry = found->size();
      }
      return t.write("t", {"summary", "s", static_cast<std::int64_t>(found->size())});
    });
    ASSERT_TRUE(s.ok()) << s.to_string();
    EXPECT_EQ(attempts, 2) << "variant " << variant;
    EXPECT_EQ(seen_on_retry, 1u);
  }
}

TEST_F(TransactionTest, ScanOfAnotherTableConflictsOnlyWithItsWriters) {
  // A point read is not invalidated by a write to another key of the same table.
  ASSERT_TRUE(store().dirty_write("t", {1, "x", 1}).ok());
  int attempts = 0;
  Status s = store().transaction([&](Transaction& t) {
    auto r = t.read("t", 1);
    if (!r.ok()) return r.status();
    if (++attempts == 1) {
      OtherNodeCommits([](Transaction& o) { return o.write("t", {2, "x", 2}); });
    }
    return t.write("o", {1, "x", 1});
  });
  ASSERT_TRUE(s.ok()) << s.to_string();
  EXPECT_EQ(attempts, 1);
}

TEST_F(TransactionTest, BagSemanticsAcrossEtcd) {
  TableSpec bag = MakeSpec("bag", TableType::bag);
  ASSERT_TRUE(store().dirty_write("bag", {1, "x", 1}).ok());
  ASSERT_TRUE(store().dirty_write("bag", {1, "y", 2}).ok());
  ASSERT_TRUE(store().dirty_write("bag", {1, "y", 2}).ok());     // the same record: no second copy
  ASSERT_TRUE(b_->store->dirty_write("bag", {1, "z", 3}).ok());  // another node, blind
  ASSERT_TRUE(a_->replica->sync(Deadline::after(milliseconds(5000))).ok());
  EXPECT_EQ(store().dirty_read("bag", 1)->size(), 3u);
  // The marker and one key per record.
  EXPECT_EQ(CountKeys(keys_.record_key(bag, "", 1)), 4);

  Status s = store().transaction([](Transaction& t) {
    EXPECT_TRUE(t.erase_object("bag", {1, "x", 1}).ok());
    EXPECT_EQ(t.read("bag", 1)->size(), 2u);
    EXPECT_TRUE(t.write("bag", {1, "w", 4}).ok());
    EXPECT_EQ(*t.count("bag"), 3u);
    return Status::Ok();
  });
  ASSERT_TRUE(s.ok()) << s.to_string();
  EXPECT_EQ(Records(*store().dirty_read("bag", 1)),
            (std::vector<Record>{{1, "y", 2}, {1, "z", 3}, {1, "w", 4}}));

  // Erased as a whole and written again in one transaction.
  s = store().transaction([](Transaction& t) {
    EXPECT_TRUE(t.erase("bag", 1).ok());
    EXPECT_TRUE(t.read("bag", 1)->empty());
    EXPECT_TRUE(t.write("bag", {1, "z", 3}).ok());
    EXPECT_TRUE(t.write("bag", {1, "v", 5}).ok());
    return Status::Ok();
  });
  ASSERT_TRUE(s.ok()) << s.to_string();
  EXPECT_EQ(Records(*store().dirty_read("bag", 1)),
            (std::vector<Record>{{1, "z", 3}, {1, "v", 5}}));
  EXPECT_EQ(CountKeys(keys_.record_key(bag, "", 1)), 3);

  // Erased as a whole: nothing left under the key in etcd.
  ASSERT_TRUE(store().dirty_delete("bag", 1).ok());
  EXPECT_EQ(CountKeys(keys_.record_key(bag, "", 1)), 0);

  // Another node's fresh replica agrees.
  ASSERT_TRUE(store().dirty_write("bag", {2, "a", 1}).ok());
  ASSERT_TRUE(store().dirty_write("bag", {2, "b", 1}).ok());
  auto c = MakeNode("c@127.0.0.1");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->replica->read().catalog().digest_hex(), a_->replica->read().catalog().digest_hex());
}

TEST_F(TransactionTest, BagReadConflictsWithAChangeUnderItsKey) {
  ASSERT_TRUE(store().dirty_write("bag", {1, "x", 1}).ok());
  int attempts = 0;
  Status s = store().transaction([&](Transaction& t) {
    auto r = t.read("bag", 1);
    if (!r.ok()) return r.status();
    if (++attempts == 1) {
      OtherNodeCommits([](Transaction& o) { return o.write("bag", {1, "y", 2}); });
    }
    return t.write("t", {"bagsize", "", static_cast<std::int64_t>(r->size())});
  });
  ASSERT_TRUE(s.ok()) << s.to_string();
  EXPECT_EQ(attempts, 2);
  EXPECT_EQ(*(*store().dirty_read("t", "bagsize"))[0]->at(2).get_int(), 2);
}

TEST_F(TransactionTest, ReadOnlyTransactionWritesNothing) {
  ASSERT_TRUE(store().dirty_write("t", {1, "x", 1}).ok());
  const std::int64_t before = EtcdRevision();
  Status s = store().transaction([](Transaction& t) {
    EXPECT_EQ(t.read("t", 1)->size(), 1u);
    EXPECT_EQ(*t.count("t"), 1u);
    return Status::Ok();
  });
  ASSERT_TRUE(s.ok()) << s.to_string();
  EXPECT_EQ(EtcdRevision(), before);
}

TEST_F(TransactionTest, WritingIntoATableDeletedMeanwhileFails) {
  int attempts = 0;
  Status s = store().transaction([&](Transaction& t) {
    if (++attempts == 1) {
      EXPECT_TRUE(t.write("t", {1, "x", 1}).ok());
      Status dropped = b_->store->delete_table("t");
      EXPECT_TRUE(dropped.ok()) << dropped.to_string();
      return Status::Ok();
    }
    return t.write("t", {1, "x", 1});
  });
  EXPECT_EQ(s.code(), StatusCode::not_found) << s.to_string();
  EXPECT_EQ(attempts, 2);
  EXPECT_EQ(CountKeys(keys_.table_prefix(MakeSpec("t"), "")), 0);
}

}  // namespace
}  // namespace mishka::test
