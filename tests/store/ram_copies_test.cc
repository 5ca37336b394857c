// ram_copies tables against a real etcd: their records (and bag markers) are put under the
// cluster's ram lease, in dirty writes, transactions and merged group-commit Txns alike, while
// disc_copies records carry no lease; a lease etcd no longer knows is replaced and the write
// sent again; the replica applies the deletes of a revoked lease like any delete.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "common/codec.h"
#include "store/ram_lease.h"
#include "store_fixture.h"
#include "support/process_checks.h"

namespace mishka::test {
namespace {

using engine::Deadline;
using std::chrono::milliseconds;

TableSpec RamSpec(std::string name, TableType type = TableType::set) {
  TableSpec s = MakeSpec(std::move(name), type);
  s.storage = StorageType::ram_copies;
  return s;
}

class RamCopiesTest : public StoreTest {
 protected:
  // Every key under `prefix` with its lease.
  std::vector<engine::KeyValue> Keys(const std::string& prefix) {
    engine::RangeOptions o;
    o.range_end = engine::prefix_range_end(prefix);
    auto r = a_->client->range(prefix, o, Deadline::after(milliseconds(5000)));
    EXPECT_TRUE(r.ok()) << r.status().to_string();
    return r.ok() ? r->kvs : std::vector<engine::KeyValue>{};
  }

  // The lease the ram key is under (0: no key).
  std::int64_t RamKeyLease() {
    auto r = a_->client->range(keys_.ram_key(), {}, Deadline::after(milliseconds(5000)));
    EXPECT_TRUE(r.ok()) << r.status().to_string();
    if (!r.ok() || r->kvs.empty()) return 0;
    // The value names the lease the key is under.
    auto value = decode_value(r->kvs.front().value);
    EXPECT_TRUE(value.ok() && value->get_int() != nullptr);
    if (value.ok() && value->get_int() != nullptr) {
      EXPECT_EQ(*value->get_int(), r->kvs.front().lease);
    }
    return r->kvs.front().lease;
  }

  std::size_t Count(Node& node, const std::string& table) {
    auto view = node.replica->read();
    const store::Table* t = view.catalog().find(table);
    return t == nullptr ? 0 : t->count();
  }
};

TEST_F(RamCopiesTest, RamPutsCarryTheRamLeaseAndDiscPutsNone) {
  ASSERT_TRUE(store().create_table(MakeSpec("disc")).ok());
  EXPECT_EQ(RamKeyLease(), 0) << "no lease before a ram_copies table exists";
  ASSERT_TRUE(store().create_table(RamSpec("ram")).ok());
  ASSERT_TRUE(store().create_table(RamSpec("rambag", TableType::bag)).ok());
  const std::int64_t lease = RamKeyLease();
  ASSERT_NE(lease, 0) << "create_table of a ram_copies table takes the lease";

  // Dirty writes, a transaction over both kinds, bag records, and concurrent transactions
  // that group commit merges into shared Txns.
  ASSERT_TRUE(store().dirty_write("disc", {1, "d", 1}).ok());
  ASSERT_TRUE(store().dirty_write("ram", {1, "r", 1}).ok());
  ASSERT_TRUE(store()
                  .transaction([](Transaction& t) {
                    MISHKA_RETURN_IF_ERROR(t.write("disc", {2, "d", 2}));
                    MISHKA_RETURN_IF_ERROR(t.write("ram", {2, "r", 2}));
                    MISHKA_RETURN_IF_ERROR(t.write("rambag", {1, "a", 1}));
                    return t.write("rambag", {1, "b", 2});
                  })
                  .ok());
  const StoreStats before = store().stats();
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int th = 0; th < 8; ++th) {
    threads.emplace_back([&, th] {
      for (int i = 0; i < 10; ++i) {
        const int key = 100 + th * 10 + i;
        Status s = store().transaction([&](Transaction& t) {
          MISHKA_RETURN_IF_ERROR(t.write(th % 2 == 0 ? "ram" : "disc", {key, "m", i}));
          return t.write("rambag", {key, "m", i});
        });
        if (!s.ok()) ++failures;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_GT(store().stats().merged_txns, before.merged_txns) << "no merged Txn was exercised";

  const std::vector<engine::KeyValue> disc = Keys(keys_.table_prefix(MakeSpec("disc"), ""));
  ASSERT_EQ(disc.size(), 2u + 40u);
  for (const engine::KeyValue& kv : disc) EXPECT_EQ(kv.lease, 0) << kv.key;
  const std::vector<engine::KeyValue> ram = Keys(keys_.table_prefix(RamSpec("ram"), ""));
  ASSERT_EQ(ram.size(), 2u + 40u);
  for (const engine::KeyValue& kv : ram) EXPECT_EQ(kv.lease, lease) << kv.key;
  // A bag: each key's marker and its records.
  const std::vector<engine::KeyValue> bag = Keys(keys_.table_prefix(RamSpec("rambag"), ""));
  ASSERT_EQ(bag.size(), 3u + 2u * 80u);
  for (const engine::KeyValue& kv : bag) EXPECT_EQ(kv.lease, lease) << kv.key;
  // The write marker and the table versions carry none.
  for (const engine::KeyValue& kv : Keys(keys_.root() + "tabver/")) EXPECT_EQ(kv.lease, 0);
  for (const engine::KeyValue& kv : Keys(keys_.write_marker_key())) EXPECT_EQ(kv.lease, 0);

  // Another node adopts the same lease rather than granting its own.
  std::unique_ptr<Node> b = MakeNode("b@127.0.0.1");
  ASSERT_NE(b, nullptr);
  ASSERT_TRUE(b->store->dirty_write("ram", {500, "b", 1}).ok());
  const std::vector<engine::KeyValue> one = Keys(keys_.record_key(RamSpec("ram"), "", 500));
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one.front().lease, lease);
}

TEST_F(RamCopiesTest, ARevokedLeaseTakesItsRecordsAndTheNextWriteGetsANewOne) {
  // This node renews rarely, so that the write below finds the revoked lease still in use and
  // etcd refuses it ("requested lease not found"): the Txn is sent again with a new lease.
  store::RamLeaseOptions ram;
  ram.client = a_->client.get();
  ram.key = keys_.ram_key();
  ram.write_marker_key = keys_.write_marker_key();
  ram.keep_alive_period = milliseconds(60000);
  ram.stale_after = milliseconds(62000);
  auto lease = store::RamLease::create(std::move(ram));
  ASSERT_TRUE(lease.ok()) << lease.status().to_string();
  std::shared_ptr<store::RamLease> shared = std::move(*lease);
  a_->store.reset();
  auto store = store::open_store({.client = a_->client.get(),
                                  .replica = a_->replica.get(),
                                  .node_name = a_->name,
                                  .keyspace = keys_,
                                  .options = {},
                                  .log = {},
                                  .ram_lease = shared});
  ASSERT_TRUE(store.ok()) << store.status().to_string();
  a_->store = std::move(*store);

  ASSERT_TRUE(a_->store->create_table(RamSpec("ram")).ok());
  ASSERT_TRUE(a_->store->create_table(RamSpec("bag", TableType::bag)).ok());
  ASSERT_TRUE(a_->store->create_table(MakeSpec("disc")).ok());
  for (int k = 0; k < 5; ++k) {
    ASSERT_TRUE(a_->store->dirty_write("ram", {k, "r", k}).ok());
    ASSERT_TRUE(a_->store->dirty_write("bag", {k, "x", k}).ok());
    ASSERT_TRUE(a_->store->dirty_write("bag", {k, "y", k}).ok());
    ASSERT_TRUE(a_->store->dirty_write("disc", {k, "d", k}).ok());
  }
  const std::int64_t first = shared->current();
  ASSERT_NE(first, 0);
  ASSERT_EQ(Count(*a_, "ram"), 5u);
  ASSERT_EQ(Count(*a_, "bag"), 10u);

  // As when the lease expires: etcd deletes every key under it; the replica applies those
  // deletes like any other.
  ASSERT_TRUE(a_->client->lease_revoke(first, Deadline::after(milliseconds(5000))).ok());
  EXPECT_TRUE(eventually([&] { return Count(*a_, "ram") == 0 && Count(*a_, "bag") == 0; },
                         milliseconds(5000)));
  EXPECT_EQ(Count(*a_, "disc"), 5u);
  EXPECT_EQ(RamKeyLease(), 0) << "the key went with its lease";
  EXPECT_NE(a_->replica->read().catalog().find("ram"), nullptr) << "the table stays";

  ASSERT_TRUE(a_->store->dirty_write("ram", {7, "again", 7}).ok());
  const std::int64_t second = shared->current();
  EXPECT_NE(second, first);
  EXPECT_EQ(RamKeyLease(), second);
  const store::RamLeaseStats stats = shared->stats();
  EXPECT_EQ(stats.lost, 1);
  EXPECT_EQ(stats.granted, 2);
  const std::vector<engine::KeyValue> kvs = Keys(keys_.record_key(RamSpec("ram"), "", 7));
  ASSERT_EQ(kvs.size(), 1u);
  EXPECT_EQ(kvs.front().lease, second);
  EXPECT_EQ(Count(*a_, "ram"), 1u);
}

}  // namespace
}  // namespace mishka::test
