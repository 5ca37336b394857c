// A whole node on one directory against the real etcd: restart from the snapshot file, damaged
// snapshot and identity files, a start that fails after etcd started, and wait_for_tables.
// Every test checks by /proc that no etcd of its directory is left.

#include "store/local_node.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/codec.h"
#include "engine/deadline.h"
#include "engine/local_engine.h"
#include "node_support.h"
#include "replica/replica.h"
#include "store/store_open.h"
#include "support/temp_dir.h"

namespace mishka::store {
namespace {

namespace fs = std::filesystem;
using engine::Deadline;
using std::chrono::milliseconds;
using std::chrono::seconds;
using test::LogRecorder;

Record make_record(const std::string& id, std::int64_t n) {
  return {Value(id), Value("w"), Value(n)};
}

TableSpec ram_table(std::string name) {
  TableSpec spec = test::test_table(std::move(name));
  spec.storage = StorageType::ram_copies;
  return spec;
}

std::int64_t now_ms() {
  return std::chrono::duration_cast<milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

class LocalNodeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    watchdog_.emplace(milliseconds(120000));
    auto tmp = test::TempDir::Create("mishka-node-");
    ASSERT_TRUE(tmp.ok()) << tmp.status().to_string();
    tmp_.emplace(std::move(*tmp));
    dir_ = tmp_->path() / "node";
    std::tie(client_port_, peer_port_) = test::two_ports();
  }

  void TearDown() override {
    node_.reset();
    EXPECT_TRUE(test::no_process_mentions(test::etcd_data_dir_of(dir_), seconds(10)))
        << "an etcd of " << dir_ << " is left";
    tmp_.reset();
    watchdog_.reset();
  }

  LocalNodeConfig config() {
    LocalNodeConfig c = test::node_config(dir_, "alpha@127.0.0.1", client_port_, peer_port_);
    c.log = log_.sink();
    return c;
  }

  Result<std::unique_ptr<LocalNode>> open() { return LocalNode::open(config()); }

  // With the node down: runs `fn` on a client of the node's etcd (the engine alone, started
  // and stopped again).
  void with_etcd(const std::function<void(engine::EtcdClient&)>& fn) {
    LocalNodeConfig c = config();
    c.engine.log = log_.sink();
    c.log = {};
    auto engine = engine::LocalEngine::open(c.engine);
    ASSERT_TRUE(engine.ok()) << engine.status().to_string();
    fn((*engine)->client());
    (*engine)->stop();
  }

  // The records of `table` in the node's replica; -1 when the table does not exist.
  std::int64_t count(const std::string& table) const {
    const auto view = node_->replica().read();
    const Table* t = view.catalog().find(table);
    return t == nullptr ? -1 : static_cast<std::int64_t>(t->count());
  }

  void open_ok() {
    auto node = open();
    ASSERT_TRUE(node.ok()) << node.status().to_string() << "\n" << log_.dump();
    node_ = std::move(*node);
  }

  // Writes `n` records: most in transactions of 25 from 4 threads, the rest as dirty writes.
  void write_records(int n) {
    constexpr int kThreads = 4;
    constexpr int kPerTxn = 25;
    const int dirty = n / 10;
    const int in_txns = n - dirty;
    std::atomic<int> next{0};
    std::atomic<int> failures{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&] {
        for (;;) {
          const int first = next.fetch_add(kPerTxn);
          if (first >= in_txns) return;
          const int last = std::min(first + kPerTxn, in_txns);
          Status s = node_->store().transaction([&](Transaction& txn) {
            for (int i = first; i < last; ++i) {
              MISHKA_RETURN_IF_ERROR(txn.write("t", make_record("k" + std::to_string(i), i)));
            }
            return Status::Ok();
          });
          if (!s.ok()) ++failures;
        }
      });
    }
    for (auto& thread : threads) thread.join();
    for (int i = in_txns; i < n; ++i) {
      if (!node_->store().dirty_write("t", make_record("k" + std::to_string(i), i)).ok()) {
        ++failures;
      }
    }
    EXPECT_EQ(failures.load(), 0);
  }

  // Opens the node, creates table "t" with `n` records, keeps the replica's digest, stops the
  // node (which writes its snapshot file) and waits until its etcd is gone.
  void fill_and_stop(int n, std::optional<test::DigestAt>* digest) {
    open_ok();
    ASSERT_TRUE(node_->store().create_table(test::test_table("t")).ok());
    write_records(n);
    auto taken = test::node_digest(*node_);
    ASSERT_TRUE(taken.ok()) << taken.status().to_string();
    *digest = *taken;
    node_->stop();
    node_.reset();
    ASSERT_TRUE(fs::exists(dir_ / kReplicaSnapshotFile));
    ASSERT_TRUE(test::no_process_mentions(test::etcd_data_dir_of(dir_), seconds(5)));
  }

  std::optional<test::Watchdog> watchdog_;
  std::optional<test::TempDir> tmp_;
  fs::path dir_;
  std::uint16_t client_port_ = 0;
  std::uint16_t peer_port_ = 0;
  LogRecorder log_;
  std::unique_ptr<LocalNode> node_;
};

TEST_F(LocalNodeTest, RestartLoadsTheSnapshotFileAndReadsOnlyWhatChanged) {
  constexpr int kRecords = 5000;
  std::optional<test::DigestAt> before;
  ASSERT_NO_FATAL_FAILURE(fill_and_stop(kRecords, &before));

  open_ok();
  replica::ReplicaStats stats = node_->replica().stats();
  EXPECT_EQ(stats.loaded_from_snapshot_revision, before->revision);
  EXPECT_EQ(stats.full_loads, 0);
  EXPECT_EQ(stats.events_applied, 0) << "nothing changed in etcd while the node was down";
  EXPECT_EQ(stats.applied_revision, before->revision);
  auto after = test::node_digest(*node_);
  ASSERT_TRUE(after.ok()) << after.status().to_string();
  EXPECT_EQ(after->digest_hex, before->digest_hex);
  EXPECT_EQ(after->revision, before->revision);
  {
    const auto view = node_->replica().read();
    ASSERT_NE(view.catalog().find("t"), nullptr);
  }
  std::vector<std::string> all;
  for (int i = 0; i < kRecords; ++i) all.push_back("k" + std::to_string(i));
  EXPECT_TRUE(test::missing_keys(*node_, "t", all).empty());
  auto fresh = test::fresh_rebuild_digest(*node_);
  ASSERT_TRUE(fresh.ok()) << fresh.status().to_string();
  EXPECT_EQ(fresh->digest_hex, before->digest_hex);

  // A change after the restart arrives through the watch resumed at the file's revision (the
  // writer's replica may apply it from the commit first: Replica::apply_committed; the watch's
  // event still comes, and is counted, after).
  ASSERT_TRUE(node_->store().dirty_write("t", make_record("after", 1)).ok());
  EXPECT_TRUE(
      test::eventually([&] { return node_->replica().stats().events_applied > 0; }, seconds(5)));
  stats = node_->replica().stats();
  EXPECT_GT(stats.applied_revision, before->revision);
  auto read = node_->store().dirty_read("t", Value("after"));
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(read->size(), 1U);
  const std::int64_t stopped_at = node_->replica().applied_revision();
  node_.reset();

  // Changes made while the node is down (by the engine of its directory, with a replica and a
  // store of their own, as another node of the cluster would) are all the next start reads.
  constexpr int kWhileDown = 20;
  {
    LocalNodeConfig c = config();
    c.engine.log = log_.sink();
    auto engine = engine::LocalEngine::open(c.engine);
    ASSERT_TRUE(engine.ok()) << engine.status().to_string();
    replica::ReplicaOptions ro;
    ro.client = &(*engine)->client();
    ro.node_name = "beta@127.0.0.1";
    auto other = replica::Replica::create(std::move(ro));
    ASSERT_TRUE(other.ok());
    ASSERT_TRUE((*other)->start(Deadline::after(seconds(10))).ok());
    StoreContext context;
    context.client = &(*engine)->client();
    context.replica = other->get();
    context.node_name = "beta@127.0.0.1";
    auto store = open_store(std::move(context));
    ASSERT_TRUE(store.ok());
    for (int i = 0; i < kWhileDown; ++i) {
      ASSERT_TRUE((*store)->dirty_write("t", make_record("down" + std::to_string(i), i)).ok());
    }
    store->reset();
    (*other)->stop();
  }
  open_ok();
  stats = node_->replica().stats();
  EXPECT_EQ(stats.loaded_from_snapshot_revision, stopped_at);
  EXPECT_EQ(stats.full_loads, 0);
  // Each dirty write is one revision of a few events (the record, the write marker, the
  // table's version): only those were read.
  EXPECT_GE(stats.events_applied, kWhileDown);
  EXPECT_LE(stats.events_applied, 4 * kWhileDown);
  std::vector<std::string> down;
  for (int i = 0; i < kWhileDown; ++i) down.push_back("down" + std::to_string(i));
  EXPECT_TRUE(test::missing_keys(*node_, "t", down).empty());
  auto rebuilt = test::fresh_rebuild_digest(*node_);
  auto current = test::node_digest(*node_);
  ASSERT_TRUE(rebuilt.ok() && current.ok());
  EXPECT_EQ(current->digest_hex, rebuilt->digest_hex);
}

enum class Damage { flipped_byte, truncated, empty };

std::string damage(std::string bytes, Damage how) {
  switch (how) {
    case Damage::flipped_byte:
      bytes[bytes.size() / 2] = static_cast<char>(bytes[bytes.size() / 2] ^ 0x5a);
      return bytes;
    case Damage::truncated:
      return bytes.substr(0, bytes.size() * 2 / 3);
    case Damage::empty:
      return {};
  }
  return bytes;
}

class DamagedFileTest : public LocalNodeTest, public ::testing::WithParamInterface<Damage> {};

TEST_P(DamagedFileTest, SnapshotFileIsReportedWithItsPathAndRebuiltFromEtcd) {
  open_ok();
  ASSERT_TRUE(node_->store().create_table(test::test_table("t")).ok());
  write_records(500);
  auto before = test::node_digest(*node_);
  ASSERT_TRUE(before.ok()) << before.status().to_string();
  node_.reset();
  const fs::path file = dir_ / kReplicaSnapshotFile;
  test::write_bytes(file, damage(test::read_bytes(file), GetParam()));

  open_ok();
  EXPECT_TRUE(log_.has_line_with({"node alpha@127.0.0.1: replica:", file.string()})) << log_.dump();
  const replica::ReplicaStats stats = node_->replica().stats();
  EXPECT_EQ(stats.loaded_from_snapshot_revision, 0);
  EXPECT_EQ(stats.full_loads, 1);
  auto after = test::node_digest(*node_);
  ASSERT_TRUE(after.ok()) << after.status().to_string();
  EXPECT_EQ(after->digest_hex, before->digest_hex);
  EXPECT_EQ(after->revision, before->revision);

  // The stop writes a good file again: the next start uses it.
  node_.reset();
  open_ok();
  EXPECT_EQ(node_->replica().stats().loaded_from_snapshot_revision, before->revision);
}

TEST_P(DamagedFileTest, IdentityFileFailsWithItsPathAndStartsNothing) {
  open_ok();
  ASSERT_TRUE(node_->store().create_table(test::test_table("t")).ok());
  write_records(100);
  node_.reset();
  const fs::path file = dir_ / "identity";
  ASSERT_TRUE(fs::exists(file));
  test::write_bytes(file, damage(test::read_bytes(file), GetParam()));
  const auto tree = test::hash_tree(dir_);

  auto node = open();
  ASSERT_FALSE(node.ok());
  EXPECT_EQ(node.status().code(), StatusCode::corrupt) << node.status().to_string();
  EXPECT_NE(node.status().message().find(file.string()), std::string::npos)
      << node.status().to_string();
  EXPECT_NE(node.status().message().find("alpha@127.0.0.1"), std::string::npos);
  EXPECT_TRUE(test::processes_mentioning(test::etcd_data_dir_of(dir_)).empty());
  EXPECT_EQ(test::hash_tree(dir_), tree) << "the directory was changed";
}

std::string damage_name(const ::testing::TestParamInfo<Damage>& param) {
  switch (param.param) {
    case Damage::flipped_byte:
      return "FlippedByte";
    case Damage::truncated:
      return "Truncated";
    case Damage::empty:
      return "Empty";
  }
  return "Unknown";
}

INSTANTIATE_TEST_SUITE_P(Damages, DamagedFileTest,
                         ::testing::Values(Damage::flipped_byte, Damage::truncated, Damage::empty),
                         damage_name);

// The replica's start fails after the engine started: the node stops the engine again, so no
// etcd runs and nothing is half open.
// The snapshot file is read and decoded while the etcd member starts (LocalNode::start); a
// damaged one is still reported, removed and replaced by a full load from etcd.
TEST_F(LocalNodeTest, ADamagedSnapshotFileReadWhileEtcdStartsIsDiscardedAndRebuilt) {
  constexpr int kRecords = 200;
  std::optional<test::DigestAt> before;
  ASSERT_NO_FATAL_FAILURE(fill_and_stop(kRecords, &before));
  const fs::path file = dir_ / kReplicaSnapshotFile;
  {
    std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(fs::file_size(file) / 2));
    f.put('\x5a');
    f.put('\xa5');
  }

  open_ok();
  const replica::ReplicaStats stats = node_->replica().stats();
  EXPECT_EQ(stats.loaded_from_snapshot_revision, 0);
  EXPECT_EQ(stats.full_loads, 1);
  EXPECT_TRUE(log_.has_line_with({"discarding snapshot file", kReplicaSnapshotFile}))
      << log_.dump();
  auto after = test::node_digest(*node_);
  ASSERT_TRUE(after.ok()) << after.status().to_string();
  EXPECT_EQ(after->digest_hex, before->digest_hex);
}

TEST_F(LocalNodeTest, AReplicaThatCannotLoadStopsTheEngine) {
  open_ok();
  ASSERT_TRUE(node_->store().create_table(test::test_table("t")).ok());
  const replica::Keyspace keys;
  const std::string bad_key = keys.table_prefix(test::test_table("t"), "") + "\xc1";
  ASSERT_TRUE(
      node_->engine().client().put(bad_key, "\xc1\xc1", 0, Deadline::after(seconds(5))).ok());
  node_.reset();
  fs::remove(dir_ / kReplicaSnapshotFile);

  auto node = open();
  ASSERT_FALSE(node.ok());
  EXPECT_EQ(node.status().code(), StatusCode::corrupt) << node.status().to_string();
  EXPECT_NE(node.status().message().find("replica"), std::string::npos);
  EXPECT_TRUE(test::no_process_mentions(test::etcd_data_dir_of(dir_), seconds(5)))
      << "the engine was left running";
  EXPECT_FALSE(fs::exists(dir_ / kReplicaSnapshotFile));
}

TEST_F(LocalNodeTest, ALogOfTheEngineAsWellIsRejected) {
  LocalNodeConfig c = config();
  c.engine.log = log_.sink();
  auto node = LocalNode::open(c);
  ASSERT_FALSE(node.ok());
  EXPECT_EQ(node.status().code(), StatusCode::invalid_argument);
  EXPECT_FALSE(fs::exists(dir_));
}

TEST_F(LocalNodeTest, WaitForTables) {
  open_ok();
  ASSERT_TRUE(node_->store().create_table(test::test_table("a")).ok());
  ASSERT_TRUE(node_->store().create_table(test::test_table("b")).ok());

  TablesWait present = node_->wait_for_tables({"a", "b"}, milliseconds(2000));
  EXPECT_TRUE(present.status.ok()) << present.status.to_string();
  EXPECT_TRUE(present.missing.empty());
  EXPECT_TRUE(node_->wait_for_tables({}, milliseconds(0)).status.ok());

  // Another writer (a second replica and store on the same etcd, as another node would be)
  // creates "c" while this node waits for it.
  replica::ReplicaOptions other_options;
  other_options.client = &node_->engine().client();
  other_options.node_name = "beta@127.0.0.1";
  auto other_replica = replica::Replica::create(std::move(other_options));
  ASSERT_TRUE(other_replica.ok());
  ASSERT_TRUE((*other_replica)->start(Deadline::after(seconds(10))).ok());
  StoreContext context;
  context.client = &node_->engine().client();
  context.replica = other_replica->get();
  context.node_name = "beta@127.0.0.1";
  auto other_store = open_store(std::move(context));
  ASSERT_TRUE(other_store.ok());
  std::thread creator([&] {
    std::this_thread::sleep_for(milliseconds(300));
    EXPECT_TRUE((*other_store)->create_table(test::test_table("c")).ok());
  });
  const auto started = std::chrono::steady_clock::now();
  TablesWait created = node_->wait_for_tables({"a", "c"}, milliseconds(10000));
  creator.join();
  EXPECT_TRUE(created.status.ok()) << created.status.to_string();
  EXPECT_TRUE(created.missing.empty());
  EXPECT_LT(std::chrono::steady_clock::now() - started, seconds(5));
  other_store->reset();
  (*other_replica)->stop();

  // Missing tables: a timeout naming exactly those, within the deadline.
  const auto waited_from = std::chrono::steady_clock::now();
  TablesWait missing = node_->wait_for_tables({"x", "a", "y", "x", "c"}, milliseconds(500));
  const auto waited = std::chrono::steady_clock::now() - waited_from;
  EXPECT_EQ(missing.status.code(), StatusCode::timeout) << missing.status.to_string();
  EXPECT_EQ(missing.missing, (std::vector<std::string>{"x", "y"}));
  EXPECT_NE(missing.status.message().find("'x', 'y'"), std::string::npos)
      << missing.status.to_string();
  EXPECT_GE(waited, milliseconds(500));
  EXPECT_LT(waited, milliseconds(800));
}

// ram_copies (CONTRACT.md section 10): the records live while a node of the cluster runs. The
// only node stopped and started again finds the lease it left in etcd, sees nobody renewing it
// (etcd extended it when its member became leader again), revokes it: the records are gone,
// the table's definition and the disc_copies records stay.
TEST_F(LocalNodeTest, RamCopiesRecordsDoNotSurviveARestartOfTheOnlyNode) {
  open_ok();
  ASSERT_TRUE(node_->store().create_table(test::test_table("disc")).ok());
  ASSERT_TRUE(node_->store().create_table(ram_table("ram")).ok());
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(node_->store().dirty_write("disc", make_record("d" + std::to_string(i), i)).ok());
    ASSERT_TRUE(node_->store().dirty_write("ram", make_record("r" + std::to_string(i), i)).ok());
  }
  ASSERT_TRUE(node_->store()
                  .transaction([](Transaction& t) {
                    MISHKA_RETURN_IF_ERROR(t.write("ram", make_record("txn", 1)));
                    return t.write("disc", make_record("txn", 1));
                  })
                  .ok());
  auto read = node_->store().dirty_read("ram", Value("r7"));
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(read->size(), 1U);
  EXPECT_EQ(count("ram"), 21);
  const std::int64_t first_lease = node_->ram_lease().current();
  EXPECT_NE(first_lease, 0);
  node_.reset();

  const auto opening = std::chrono::steady_clock::now();
  open_ok();
  const auto took = std::chrono::steady_clock::now() - opening;
  EXPECT_EQ(count("ram"), 0) << "ram_copies records survived a stop of the whole cluster";
  EXPECT_EQ(count("disc"), 21);
  EXPECT_EQ(node_->ram_lease().stats().revoked_stale, 1);
  EXPECT_TRUE(log_.has_line_with({"revoked lease " + std::to_string(first_lease)})) << log_.dump();
  // The judgement takes about ram_lease_stale_after (5 s).
  EXPECT_GE(took, milliseconds(4000));
  EXPECT_LT(took, seconds(20));
  // The node renews a new lease from its start, since a ram_copies table exists.
  EXPECT_NE(node_->ram_lease().current(), 0);
  EXPECT_NE(node_->ram_lease().current(), first_lease);

  // The table is usable: a write after the restart is read back.
  ASSERT_TRUE(node_->store().dirty_write("ram", make_record("after", 2)).ok());
  read = node_->store().dirty_read("ram", Value("after"));
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(read->size(), 1U);
  EXPECT_EQ(count("ram"), 1);
}

// Without ram_copies tables a node writes nothing for them, and a start does not wait.
TEST_F(LocalNodeTest, WithoutRamCopiesTablesThereIsNoRamLease) {
  open_ok();
  ASSERT_TRUE(node_->store().create_table(test::test_table("disc")).ok());
  ASSERT_TRUE(node_->store().dirty_write("disc", make_record("d", 1)).ok());
  EXPECT_EQ(node_->ram_lease().current(), 0);
  const replica::Keyspace keys;
  auto ram = node_->engine().client().range(keys.ram_key(), {}, Deadline::after(seconds(5)));
  ASSERT_TRUE(ram.ok());
  EXPECT_TRUE(ram->kvs.empty());
  const std::int64_t revision = node_->replica().applied_revision();
  node_.reset();
  const auto opening = std::chrono::steady_clock::now();
  open_ok();
  EXPECT_LT(std::chrono::steady_clock::now() - opening, seconds(4));
  EXPECT_EQ(node_->replica().applied_revision(), revision) << "the start wrote something";
}

// "<root>meta" (docs/keyspace.md): written once by the seed, checked at every start.
TEST_F(LocalNodeTest, TheSeedWritesTheKeyspaceLayout) {
  const replica::Keyspace keys;
  const std::int64_t before = now_ms();
  open_ok();
  const std::int64_t after = now_ms();
  auto read = [&]() -> std::optional<engine::KeyValue> {
    auto r = node_->engine().client().range(keys.meta_key(), {}, Deadline::after(seconds(5)));
    EXPECT_TRUE(r.ok()) << r.status().to_string();
    if (!r.ok() || r->kvs.empty()) return std::nullopt;
    return r->kvs.front();
  };
  auto meta = read();
  ASSERT_TRUE(meta.has_value());
  auto value = decode_value(meta->value);
  ASSERT_TRUE(value.ok()) << value.status().to_string();
  ASSERT_NE(value->get_map(), nullptr);
  const Map& map = *value->get_map();
  ASSERT_NE(map.find(Value("layout")), nullptr);
  EXPECT_EQ(*map.find(Value("layout")), Value(1));
  ASSERT_NE(map.find(Value("cluster")), nullptr);
  EXPECT_EQ(*map.find(Value("cluster")), Value("alpha@127.0.0.1"));
  ASSERT_NE(map.find(Value("created_ms")), nullptr);
  ASSERT_NE(map.find(Value("created_ms"))->get_int(), nullptr);
  EXPECT_GE(*map.find(Value("created_ms"))->get_int(), before);
  EXPECT_LE(*map.find(Value("created_ms"))->get_int(), after);

  // A restart finds it and writes nothing.
  node_.reset();
  open_ok();
  auto again = read();
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->mod_revision, meta->mod_revision);

  // A cluster made before the key existed: the next start writes it.
  ASSERT_TRUE(
      node_->engine().client().erase(keys.meta_key(), "", Deadline::after(seconds(5))).ok());
  node_.reset();
  open_ok();
  auto created = read();
  ASSERT_TRUE(created.has_value());
  EXPECT_GT(created->mod_revision, meta->mod_revision);
  auto decoded = decode_value(created->value);
  ASSERT_TRUE(decoded.ok() && decoded->get_map() != nullptr);
  EXPECT_EQ(*decoded->get_map()->find(Value("layout")), Value(1));
}

// Another layout, or a record that cannot be decoded: the node refuses to start, stops its
// etcd again, and leaves the key and its snapshot file as they were. (Every shape of the record
// is checked in tests/store, layout_test.cc.)
TEST_F(LocalNodeTest, AnUnknownOrUndecodableKeyspaceLayoutIsRefused) {
  const replica::Keyspace keys;
  struct Case {
    std::string bytes;
    StatusCode code;
    std::string says;
  };
  const std::vector<Case> cases = {
      {encode_value(Value(Map{{Value("layout"), Value(2)},
                              {Value("cluster"), Value("other@127.0.0.1")},
                              {Value("created_ms"), Value(1)}})),
       StatusCode::unsupported, "layout 2"},
      {std::string("\xc1\xc1 not messagepack"), StatusCode::corrupt, "undecodable"},
  };
  // The first case is put while the node runs; each next one, with the engine alone, checks
  // that the refusal left the previous case's key as it was.
  open_ok();
  ASSERT_TRUE(node_->store().create_table(test::test_table("t")).ok());
  ASSERT_TRUE(node_->engine()
                  .client()
                  .put(keys.meta_key(), cases.front().bytes, 0, Deadline::after(seconds(5)))
                  .ok());
  node_.reset();
  const fs::path snapshot = dir_ / kReplicaSnapshotFile;
  const std::string snapshot_bytes = test::read_bytes(snapshot);
  const std::string* previous = &cases.front().bytes;
  auto put_meta = [&](const std::string& bytes) {
    with_etcd([&](engine::EtcdClient& client) {
      if (previous != nullptr) {
        auto meta = client.range(keys.meta_key(), {}, Deadline::after(seconds(5)));
        ASSERT_TRUE(meta.ok() && meta->kvs.size() == 1);
        EXPECT_EQ(meta->kvs.front().value, *previous) << "the key was changed";
      }
      ASSERT_TRUE(client.put(keys.meta_key(), bytes, 0, Deadline::after(seconds(5))).ok());
    });
  };
  for (const Case& c : cases) {
    if (&c != &cases.front()) put_meta(c.bytes);
    previous = &c.bytes;
    auto node = open();
    ASSERT_FALSE(node.ok()) << c.says;
    EXPECT_EQ(node.status().code(), c.code) << node.status().to_string();
    for (const std::string& part :
         {keys.meta_key(), c.says, std::string("this build knows layout 1"),
          std::string("alpha@127.0.0.1")}) {
      EXPECT_NE(node.status().message().find(part), std::string::npos)
          << part << " not in: " << node.status().to_string();
    }
    EXPECT_TRUE(test::no_process_mentions(test::etcd_data_dir_of(dir_), seconds(5)))
        << "the engine was left running";
    EXPECT_EQ(test::read_bytes(snapshot), snapshot_bytes) << "the snapshot file was touched";
  }

  // Put right, the node starts again.
  put_meta(encode_value(Value(Map{{Value("layout"), Value(1)}})));
  open_ok();
  EXPECT_NE(node_->replica().read().catalog().find("t"), nullptr);
}

}  // namespace
}  // namespace mishka::store
