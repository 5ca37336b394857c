// The replica against a real etcd: full load, watch apply, snapshot file reuse, damaged and
// stale snapshot files, and other nodes' local_content.
#include "replica/replica.h"

#include <gtest/gtest.h>

#include <fstream>
#include <mutex>

#include "common/codec.h"
#include "store/snapshot.h"
#include "support/etcd_process.h"
#include "support/temp_dir.h"

namespace mishka::replica {
namespace {

using engine::Deadline;
using std::chrono::milliseconds;

TableSpec spec(std::string name, TableType type = TableType::set, bool local = false) {
  TableSpec s;
  s.name = std::move(name);
  s.attributes = {"id", "app", "n"};
  s.type = type;
  s.local_content = local;
  s.indexes = {"app"};
  return s;
}

class ReplicaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto etcd = test::EtcdProcess::Start();
    ASSERT_TRUE(etcd.ok()) << etcd.status().to_string();
    etcd_ = std::move(*etcd);
    auto client = engine::EtcdClient::create({.endpoints = {etcd_->client_endpoint()}, .tls = {}});
    ASSERT_TRUE(client.ok()) << client.status().to_string();
    client_ = std::move(*client);
    auto dir = test::TempDir::Create("mishka-replica");
    ASSERT_TRUE(dir.ok());
    dir_ = std::make_unique<test::TempDir>(std::move(*dir));
  }

  std::string snapshot_path() const { return (dir_->path() / "replica.snapshot").string(); }

  std::unique_ptr<Replica> make_replica(std::string node = "a@127.0.0.1:1") {
    ReplicaOptions o;
    o.client = client_.get();
    o.node_name = std::move(node);
    o.snapshot_path = snapshot_path();
    o.load_page = 7;  // several pages even for small tables
    o.log = [this](LogLevel level, std::string_view line) {
      std::lock_guard lock(log_mutex_);
      if (level >= LogLevel::warning) warnings_.emplace_back(line);
    };
    auto r = Replica::create(std::move(o));
    EXPECT_TRUE(r.ok()) << r.status().to_string();
    return std::move(*r);
  }

  std::int64_t put(const std::string& key, const std::string& value) {
    auto h = client_->put(key, value, 0, Deadline::after(milliseconds(5000)));
    EXPECT_TRUE(h.ok()) << h.status().to_string();
    return h.ok() ? h->revision : 0;
  }
  std::int64_t create(const TableSpec& s) {
    return put(keys_.schema_key(s.name), encode_value(table_spec_to_value(s)));
  }
  std::int64_t write(const TableSpec& s, const Record& r, std::string node = "a@127.0.0.1:1") {
    if (s.type == TableType::bag) {
      put(keys_.record_key(s, node, r[0]), "");
      return put(keys_.bag_record_key(s, node, r), encode_record(r));
    }
    return put(keys_.record_key(s, node, r[0]), encode_record(r));
  }
  std::int64_t erase(const std::string& key) {
    auto n = client_->erase(key, "", Deadline::after(milliseconds(5000)));
    EXPECT_TRUE(n.ok()) << n.status().to_string();
    auto now = client_->range(key, {}, Deadline::after(milliseconds(5000)));
    return now.ok() ? now->header.revision : 0;
  }

  std::vector<std::string> warnings() {
    std::lock_guard lock(log_mutex_);
    return warnings_;
  }

  std::unique_ptr<test::EtcdProcess> etcd_;
  std::unique_ptr<engine::EtcdClient> client_;
  std::unique_ptr<test::TempDir> dir_;
  Keyspace keys_;
  std::mutex log_mutex_;
  std::vector<std::string> warnings_;
};

TEST_F(ReplicaTest, FullLoadThenWatch) {
  TableSpec t = spec("t");
  TableSpec b = spec("b", TableType::bag);
  create(t);
  create(b);
  for (int i = 0; i < 20; ++i) write(t, {i, "x", i});
  write(b, {1, "x", 1});
  write(b, {1, "y", 2});

  auto replica = make_replica();
  ASSERT_TRUE(replica->start(Deadline::after(milliseconds(10000))).ok());
  {
    auto view = replica->read();
    ASSERT_NE(view.catalog().find("t"), nullptr);
    EXPECT_EQ(view.catalog().find("t")->count(), 20u);
    EXPECT_EQ(view.catalog().find("b")->count(), 2u);
  }
  EXPECT_EQ(replica->stats().full_loads, 1);

  std::int64_t rev = write(t, {100, "new", 0});
  erase(keys_.record_key(t, "", 3));
  Record gone = {1, "x", 1};
  rev = erase(keys_.bag_record_key(b, "", gone));
  ASSERT_TRUE(replica->wait_for_revision(rev, Deadline::after(milliseconds(5000))).ok());
  auto view = replica->read();
  const store::Table& tt = *view.catalog().find("t");
  EXPECT_EQ(tt.count(), 20u);
  EXPECT_EQ(tt.get(3), nullptr);
  EXPECT_EQ((*tt.get(100))[1], Value("new"));
  EXPECT_EQ(tt.index_read("app", "new")->size(), 1u);
  std::vector<RecordRef> rest = view.catalog().find("b")->read(1);
  ASSERT_EQ(rest.size(), 1u);
  EXPECT_EQ((*rest[0])[1], Value("y"));
}

TEST_F(ReplicaTest, SchemaDeleteDropsTheTable) {
  TableSpec t = spec("t");
  create(t);
  write(t, {1, "x", 1});
  auto replica = make_replica();
  ASSERT_TRUE(replica->start(Deadline::after(milliseconds(10000))).ok());
  std::int64_t rev = erase(keys_.schema_key("t"));
  ASSERT_TRUE(replica->wait_for_revision(rev, Deadline::after(milliseconds(5000))).ok());
  EXPECT_EQ(replica->read().catalog().find("t"), nullptr);
}

TEST_F(ReplicaTest, OtherNodesLocalContentIsNotLoaded) {
  TableSpec l = spec("l", TableType::set, /*local=*/true);
  create(l);
  write(l, {1, "mine", 0}, "a@127.0.0.1:1");
  std::int64_t rev = write(l, {2, "theirs", 0}, "b@127.0.0.1:2");
  auto replica = make_replica("a@127.0.0.1:1");
  ASSERT_TRUE(replica->start(Deadline::after(milliseconds(10000))).ok());
  ASSERT_TRUE(replica->wait_for_revision(rev, Deadline::after(milliseconds(5000))).ok());
  auto view = replica->read();
  EXPECT_EQ(view.catalog().find("l")->count(), 1u);
  EXPECT_NE(view.catalog().find("l")->get(1), nullptr);
}

TEST_F(ReplicaTest, RestartUsesTheSnapshotFileAndReadsOnlyChanges) {
  TableSpec t = spec("t");
  create(t);
  for (int i = 0; i < 50; ++i) write(t, {i, "x", i});
  std::string digest;
  {
    auto replica = make_replica();
    ASSERT_TRUE(replica->start(Deadline::after(milliseconds(10000))).ok());
    digest = replica->read().catalog().digest_hex();
    replica->stop();
    EXPECT_EQ(replica->stats().snapshots_written, 1);
  }
  std::int64_t rev = write(t, {7, "changed", 0});
  auto replica = make_replica();
  ASSERT_TRUE(replica->start(Deadline::after(milliseconds(10000))).ok());
  ASSERT_TRUE(replica->wait_for_revision(rev, Deadline::after(milliseconds(5000))).ok());
  ReplicaStats stats = replica->stats();
  EXPECT_GT(stats.loaded_from_snapshot_revision, 0);
  EXPECT_EQ(stats.full_loads, 0);
  EXPECT_EQ(stats.events_applied, 1);  // only what changed since the file
  EXPECT_EQ((*replica->read().catalog().find("t")->get(7))[1], Value("changed"));
}

TEST_F(ReplicaTest, DamagedSnapshotFileIsReportedAndRebuiltFromEtcd) {
  TableSpec t = spec("t");
  create(t);
  for (int i = 0; i < 10; ++i) write(t, {i, "x", i});
  std::string digest;
  {
    auto replica = make_replica();
    ASSERT_TRUE(replica->start(Deadline::after(milliseconds(10000))).ok());
    digest = replica->read().catalog().digest_hex();
  }
  {
    std::fstream f(snapshot_path(), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(40);
    f.put('\x7f');
  }
  auto replica = make_replica();
  ASSERT_TRUE(replica->start(Deadline::after(milliseconds(10000))).ok());
  EXPECT_EQ(replica->stats().full_loads, 1);
  EXPECT_EQ(replica->read().catalog().digest_hex(), digest);
  bool reported = false;
  for (const std::string& w : warnings()) {
    if (w.find(snapshot_path()) != std::string::npos) reported = true;
  }
  EXPECT_TRUE(reported) << "no warning names " << snapshot_path();
}

TEST_F(ReplicaTest, SnapshotAheadOfEtcdIsDiscarded) {
  TableSpec t = spec("t");
  create(t);
  write(t, {1, "x", 1});
  {
    // A file claiming a revision etcd has not reached: the data it was taken from is gone.
    store::Catalog ahead;
    ASSERT_TRUE(ahead.create_table(t).ok());
    ASSERT_TRUE(ahead.find("t")->write({99, "ghost", 0}).ok());
    std::ofstream(snapshot_path(), std::ios::binary) << store::encode_snapshot(ahead, 1000000);
  }
  auto replica = make_replica();
  ASSERT_TRUE(replica->start(Deadline::after(milliseconds(10000))).ok());
  EXPECT_EQ(replica->stats().full_loads, 1);
  auto view = replica->read();
  EXPECT_EQ(view.catalog().find("t")->get(99), nullptr);
  EXPECT_NE(view.catalog().find("t")->get(1), nullptr);
  bool reported = false;
  for (const std::string& w : warnings()) {
    if (w.find("ahead of etcd") != std::string::npos) reported = true;
  }
  EXPECT_TRUE(reported);
}

TEST_F(ReplicaTest, SnapshotOlderThanCompactionTriggersAFullLoad) {
  TableSpec t = spec("t");
  create(t);
  write(t, {1, "x", 1});
  {
    auto replica = make_replica();
    ASSERT_TRUE(replica->start(Deadline::after(milliseconds(10000))).ok());
  }
  write(t, {2, "x", 2});
  std::int64_t rev = write(t, {1, "y", 1});
  ASSERT_TRUE(client_->compact(rev, true, Deadline::after(milliseconds(5000))).ok());
  auto replica = make_replica();
  ASSERT_TRUE(replica->start(Deadline::after(milliseconds(10000))).ok());
  ASSERT_TRUE(replica->wait_for_revision(rev, Deadline::after(milliseconds(5000))).ok());
  EXPECT_EQ(replica->stats().full_loads, 1);
  auto view = replica->read();
  EXPECT_EQ(view.catalog().find("t")->count(), 2u);
  EXPECT_EQ((*view.catalog().find("t")->get(1))[1], Value("y"));
}

TEST_F(ReplicaTest, SyncWaitsForTheLatestWrite) {
  TableSpec t = spec("t");
  create(t);
  auto replica = make_replica();
  ASSERT_TRUE(replica->start(Deadline::after(milliseconds(10000))).ok());
  // A writer commits a record and the write marker in one transaction, as mishka's writes do.
  engine::TxnRequest txn;
  txn.success.push_back({.kind = engine::TxnOp::Kind::put,
                         .key = keys_.record_key(t, "", 1),
                         .value = encode_record({1, "x", 1}),
                         .range_end = {},
                         .lease = 0});
  txn.success.push_back({.kind = engine::TxnOp::Kind::put,
                         .key = keys_.write_marker_key(),
                         .value = {},
                         .range_end = {},
                         .lease = 0});
  auto committed = client_->txn(txn, Deadline::after(milliseconds(5000)));
  ASSERT_TRUE(committed.ok()) << committed.status().to_string();
  ASSERT_TRUE(replica->sync(Deadline::after(milliseconds(5000))).ok());
  EXPECT_GE(replica->applied_revision(), committed->header.revision);
  EXPECT_NE(replica->read().catalog().find("t")->get(1), nullptr);
}

engine::TxnOp put_op(std::string key, std::string value) {
  return {.kind = engine::TxnOp::Kind::put,
          .key = std::move(key),
          .value = std::move(value),
          .range_end = {},
          .lease = 0};
}

// The committer's fast path: the replica applies a commit from its own request when it has
// applied everything before it, and the watch then skips that revision. Nobody else writes to
// this etcd, so the revision the ops are applied at is the one etcd then gives them.
TEST_F(ReplicaTest, AppliesItsOwnCommitWhenCurrentAndTheWatchSkipsIt) {
  TableSpec t = spec("t");
  create(t);
  write(t, {1, "x", 1});
  auto replica = make_replica();
  ASSERT_TRUE(replica->start(Deadline::after(milliseconds(10000))).ok());
  const std::int64_t current = replica->applied_revision();
  std::vector<engine::TxnOp> ops = {put_op(keys_.record_key(t, "", 2), encode_record({2, "y", 2})),
                                    put_op(keys_.write_marker_key(), "")};

  // Not the next revision: refused, nothing changes.
  EXPECT_FALSE(replica->apply_committed(ops, current + 2));
  EXPECT_FALSE(replica->apply_committed(ops, current));
  EXPECT_EQ(replica->read().catalog().find("t")->get(2), nullptr);
  // A range erase is left to the watch.
  std::vector<engine::TxnOp> range = {
      {.kind = engine::TxnOp::Kind::erase,
       .key = keys_.record_key(t, "", 1),
       .value = {},
       .range_end = engine::prefix_range_end(keys_.record_key(t, "", 1)),
       .lease = 0},
      put_op(keys_.write_marker_key(), "")};
  EXPECT_FALSE(replica->apply_committed(range, current + 1));
  EXPECT_NE(replica->read().catalog().find("t")->get(1), nullptr);
  // Without the write marker the revision may be etcd's current one (a read-only Txn), not
  // the ops' own: refused.
  EXPECT_FALSE(replica->apply_committed({ops.front()}, current + 1));
  EXPECT_FALSE(replica->apply_committed({}, current + 1));
  EXPECT_EQ(replica->read().catalog().find("t")->get(2), nullptr);

  ASSERT_TRUE(replica->apply_committed(ops, current + 1));
  EXPECT_EQ(replica->applied_revision(), current + 1);
  EXPECT_NE(replica->read().catalog().find("t")->get(2), nullptr);
  EXPECT_EQ(replica->stats().own_commits_applied, 1);

  engine::TxnRequest txn;
  txn.success = ops;
  auto committed = client_->txn(txn, Deadline::after(milliseconds(5000)));
  ASSERT_TRUE(committed.ok()) << committed.status().to_string();
  ASSERT_EQ(committed->header.revision, current + 1);
  // The watch brings revision current+1 (skipped) and then a write of someone else's.
  const std::int64_t later = write(t, {3, "z", 3});
  ASSERT_TRUE(replica->wait_for_revision(later, Deadline::after(milliseconds(5000))).ok());
  auto view = replica->read();
  const store::Table& tt = *view.catalog().find("t");
  EXPECT_EQ(tt.count(), 3u);
  EXPECT_EQ(tt.index_read("app", "y")->size(), 1u);
  EXPECT_TRUE(warnings().empty());
}

TEST_F(ReplicaTest, WaitForRevisionTimesOut) {
  auto replica = make_replica();
  ASSERT_TRUE(replica->start(Deadline::after(milliseconds(10000))).ok());
  Status s = replica->wait_for_revision(replica->applied_revision() + 1000,
                                        Deadline::after(milliseconds(200)));
  EXPECT_EQ(s.code(), StatusCode::timeout);
}

}  // namespace
}  // namespace mishka::replica
