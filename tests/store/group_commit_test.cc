// Group commit against a real etcd: many concurrent transactions share few etcd Txns, merged
// Txns respect etcd's operation limit, contended counters count every increment once, and a
// lone commit goes from its caller's thread and is applied without waiting for the watch.
#include "store/group_commit.h"

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <thread>
#include <vector>

#include "store_fixture.h"

namespace mishka::test {
namespace {

using std::chrono::milliseconds;

class GroupCommitTest : public StoreTest {
 protected:
  void SetUp() override {
    StoreTest::SetUp();
    ASSERT_TRUE(store().create_table(MakeSpec("t")).ok());
    ASSERT_TRUE(store().create_table(MakeSpec("c")).ok());
  }

  // Runs `per_thread` transactions on each of `threads` threads; returns the failures.
  int RunThreads(int threads, int per_thread,
                 const std::function<Status(int thread, int i, Transaction&)>& fn,
                 TransactionOptions options = {}) {
    std::atomic<int> failures{0};
    std::vector<std::thread> workers;
    for (int th = 0; th < threads; ++th) {
      workers.emplace_back([&, th] {
        for (int i = 0; i < per_thread; ++i) {
          Status s = store().transaction([&](Transaction& t) { return fn(th, i, t); }, options);
          if (!s.ok()) {
            ADD_FAILURE() << "thread " << th << " txn " << i << ": " << s.to_string();
            ++failures;
          }
        }
      });
    }
    for (std::thread& w : workers) w.join();
    return failures.load();
  }
};

TEST_F(GroupCommitTest, DisjointTransactionsShareEtcdTxns) {
  constexpr int kThreads = 16;
  constexpr int kPerThread = 25;
  const StoreStats before = store().stats();
  EXPECT_EQ(RunThreads(kThreads, kPerThread,
                       [](int th, int i, Transaction& t) {
                         auto r = t.read("t", th * 1000 + i);
                         if (!r.ok()) return r.status();
                         return t.write("t", {th * 1000 + i, "x", th});
                       }),
            0);
  const StoreStats after = store().stats();
  const std::int64_t txns = after.etcd_txns - before.etcd_txns;
  EXPECT_EQ(after.commits - before.commits, kThreads * kPerThread);
  EXPECT_EQ(a_->replica->read().catalog().find("t")->count(),
            static_cast<std::size_t>(kThreads * kPerThread));
  // Far fewer etcd Txns than transactions.
  EXPECT_LT(txns, kThreads * kPerThread / 3) << "etcd txns: " << txns;
  EXPECT_GT(after.merged_txns, 0);
  std::printf("group commit: %d transactions in %lld etcd Txns\n", kThreads * kPerThread,
              static_cast<long long>(txns));
}

// A commit that finds nobody sending goes from its caller's thread (seen through on_committed),
// and the caller's replica has it when commit() returns (Replica::apply_committed).
TEST_F(GroupCommitTest, ALoneCommitIsSentFromItsCallersThreadAndAppliedAtOnce) {
  std::mutex mu;
  std::vector<std::thread::id> senders;
  store::GroupCommitOptions options;
  options.on_committed = [&](const std::vector<engine::TxnOp>& ops, std::int64_t revision) {
    a_->replica->apply_committed(ops, revision);
    std::lock_guard lock(mu);
    senders.push_back(std::this_thread::get_id());
  };
  auto committer =
      store::GroupCommitter::create(a_->client.get(), keys_.write_marker_key(), std::move(options));
  ASSERT_TRUE(committer.ok()) << committer.status().to_string();
  for (int i = 0; i < 3; ++i) {
    store::CommitRequest request;
    request.ops.push_back(store::put_op(keys_.write_marker_key() + "-lone-" + std::to_string(i)));
    store::CommitResult r = (*committer)->commit(std::move(request));
    ASSERT_TRUE(r.status.ok()) << r.status.to_string();
    ASSERT_TRUE(r.succeeded);
    // Applied before commit() returned, by the caller (or by the watch, when its event came
    // before etcd's answer): nothing left to wait for. Nobody else writes to this etcd, so
    // apply_committed never finds the replica behind.
    EXPECT_GE(a_->replica->applied_revision(), r.revision);
  }
  std::lock_guard lock(mu);
  ASSERT_EQ(senders.size(), 3u);
  for (const std::thread::id& id : senders) EXPECT_EQ(id, std::this_thread::get_id());
}

TEST_F(GroupCommitTest, WithoutGroupCommitEachCommitIsOneTxn) {
  auto b = MakeNode("b@127.0.0.1", {.group_commit = false});
  ASSERT_NE(b, nullptr);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(b->store->dirty_write("t", {i, "x", i}).ok());
  EXPECT_EQ(b->store->stats().etcd_txns, 5);
  EXPECT_EQ(b->store->stats().commits, 5);
}

TEST_F(GroupCommitTest, CountersAreIncrementedExactlyOnce) {
  constexpr int kThreads = 8;
  constexpr int kPerThread = 50;
  ASSERT_TRUE(store().dirty_write("c", {"counter", "", 0}).ok());
  EXPECT_EQ(RunThreads(kThreads, kPerThread,
                       [](int th, int i, Transaction& t) {
                         auto r = t.read("c", "counter");
                         if (!r.ok()) return r.status();
                         const std::int64_t n = *(*r)[0]->at(2).get_int();
                         // Each transaction also writes a key of its own, so merges happen.
                         MISHKA_RETURN_IF_ERROR(t.write("t", {th * 1000 + i, "x", n}));
                         return t.write("c", {"counter", "", n + 1});
                       },
                       {.max_retries = 1000, .timeout = milliseconds(60000)}),
            0);
  EXPECT_EQ(*(*store().dirty_read("c", "counter"))[0]->at(2).get_int(), kThreads * kPerThread);
  EXPECT_EQ(a_->replica->read().catalog().find("t")->count(),
            static_cast<std::size_t>(kThreads * kPerThread));
  const StoreStats s = store().stats();
  EXPECT_GT(s.conflicts_retried, 0);
  std::printf("counter: %lld conflicts retried, %lld etcd Txns, %lld merged, %lld merged failed\n",
              static_cast<long long>(s.conflicts_retried), static_cast<long long>(s.etcd_txns),
              static_cast<long long>(s.merged_txns), static_cast<long long>(s.merged_txn_failures));
}

TEST_F(GroupCommitTest, ContendedCountersInMergedTxnsCountEveryIncrementOnce) {
  // Pairs of threads share a counter: a batch merges increments of different counters, and a
  // member that read a stale counter makes the merged Txn fail; only that member may lose.
  constexpr int kThreads = 16;
  constexpr int kCounters = 4;
  constexpr int kPerThread = 25;
  for (int k = 0; k < kCounters; ++k) ASSERT_TRUE(store().dirty_write("c", {k, "", 0}).ok());
  EXPECT_EQ(RunThreads(kThreads, kPerThread,
                       [](int th, int, Transaction& t) {
                         auto r = t.read("c", th % kCounters);
                         if (!r.ok()) return r.status();
                         return t.write("c", {th % kCounters, "", *(*r)[0]->at(2).get_int() + 1});
                       },
                       {.max_retries = 1000, .timeout = milliseconds(60000)}),
            0);
  for (int k = 0; k < kCounters; ++k) {
    EXPECT_EQ(*(*store().dirty_read("c", k))[0]->at(2).get_int(),
              kThreads / kCounters * kPerThread);
  }
  const StoreStats s = store().stats();
  EXPECT_GT(s.merged_txns, 0);
  std::printf("counters: %lld conflicts retried, %lld etcd Txns, %lld merged, %lld merged failed\n",
              static_cast<long long>(s.conflicts_retried), static_cast<long long>(s.etcd_txns),
              static_cast<long long>(s.merged_txns), static_cast<long long>(s.merged_txn_failures));
}

class SmallTxnLimitTest : public GroupCommitTest {
 protected:
  SmallTxnLimitTest() {
    etcd_options_.extra_args = {"--max-txn-ops=16"};
    options_.max_txn_ops = 16;
  }
};

TEST_F(SmallTxnLimitTest, MergedTxnsStayWithinEtcdsLimit) {
  // Each transaction: 2 compares on its key, 2 on the table's schema, 1 put; etcd refuses any
  // Txn above 16 operations or compares, so a failure here means a merge went over.
  EXPECT_EQ(RunThreads(16, 10,
                       [](int th, int i, Transaction& t) {
                         auto r = t.read("t", th * 1000 + i);
                         if (!r.ok()) return r.status();
                         return t.write("t", {th * 1000 + i, "x", i});
                       }),
            0);
  EXPECT_EQ(a_->replica->read().catalog().find("t")->count(), 160u);
  EXPECT_GT(store().stats().merged_txns, 0);
}

}  // namespace
}  // namespace mishka::test
