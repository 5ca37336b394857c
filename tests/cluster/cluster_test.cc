// Clusters of nodes in one process (label cluster): membership, joins, replication.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <mutex>
#include <set>
#include <thread>

#include "cluster_harness.h"
#include "engine/deadline.h"
#include "engine/etcd_client.h"
#include "mishka/pubsub.h"

namespace mishka::test {
namespace {

using engine::Deadline;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr milliseconds kConverge{30000};

HarnessOptions voters_target(int target) {
  HarnessOptions options;
  options.target_voters = target;
  return options;
}

Record row(const std::string& id, const std::string& writer, std::int64_t n) {
  return Record{Value(id), Value(writer), Value(n)};
}

// The members etcd lists, seen from node i.
std::vector<engine::Member> members_of(ClusterHarness& c, int i) {
  auto listed = c.node(i).engine().client().member_list(Deadline::after(milliseconds(5000)));
  EXPECT_TRUE(listed.ok()) << listed.status().to_string();
  return listed.ok() ? *listed : std::vector<engine::Member>{};
}

// Creates `spec` from node `on` and waits until every running node has it (a table created
// elsewhere appears in a replica once applied, as with Mnesia's wait_for_tables).
void create_everywhere_but(ClusterHarness& c, int on, const TableSpec& spec,
                           const std::set<int>& skip);
void create_everywhere(ClusterHarness& c, int on, const TableSpec& spec) {
  create_everywhere_but(c, on, spec, {});
}

void create_everywhere_but(ClusterHarness& c, int on, const TableSpec& spec,
                           const std::set<int>& skip) {
  Status created = c.node(on).store().create_table(spec);
  ASSERT_TRUE(created.ok()) << created.to_string();
  for (int i = 0; i < c.size(); ++i) {
    if (!c.running(i) || skip.count(i) > 0) continue;
    store::TablesWait waited = c.node(i).wait_for_tables({spec.name}, milliseconds(10000));
    ASSERT_TRUE(waited.status.ok()) << c.name(i) << ": " << waited.status.to_string();
  }
}

int voters(const std::vector<engine::Member>& members) {
  int n = 0;
  for (const auto& m : members) n += m.is_learner ? 0 : 1;
  return n;
}

// Writes `count` records in transactions of `batch` from node i.
void fill(ClusterHarness& c, int i, const std::string& table, int count, int batch) {
  for (int base = 0; base < count; base += batch) {
    Status done = c.node(i).store().transaction([&](Transaction& t) -> Status {
      for (int k = base; k < std::min(count, base + batch); ++k) {
        MISHKA_RETURN_IF_ERROR(t.write(table, row("k" + std::to_string(k), "fill", k)));
      }
      return Status::Ok();
    });
    ASSERT_TRUE(done.ok()) << done.to_string();
  }
}

TEST(Cluster, ThreeNodesWriteAnywhereReadEverywhere) {
  Watchdog watchdog(milliseconds(120000));
  ClusterHarness c;
  auto seed = c.add_started();
  ASSERT_TRUE(seed.ok()) << seed.status().to_string();
  auto j1 = c.add_started({0});
  ASSERT_TRUE(j1.ok()) << j1.status().to_string() << c.log(1).dump();
  auto j2 = c.add_started({0, 1});
  ASSERT_TRUE(j2.ok()) << j2.status().to_string() << c.log(2).dump();

  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(c.node(i).engine().role(), engine::NodeRole::voter) << c.name(i);
    EXPECT_EQ(c.node(i).engine().identity().cluster_id, c.node(0).engine().identity().cluster_id);
  }
  EXPECT_EQ(voters(members_of(c, 0)), 3);

  create_everywhere(c, 1, test_table("t"));
  for (int i = 0; i < 3; ++i) {
    for (int k = 0; k < 20; ++k) {
      const std::string key = c.name(i) + "/" + std::to_string(k);
      Status wrote = k % 2 == 0 ? c.node(i).store().dirty_write("t", row(key, c.name(i), k))
                                : c.node(i).store().transaction([&](Transaction& t) {
                                    return t.write("t", row(key, c.name(i), k));
                                  });
      ASSERT_TRUE(wrote.ok()) << wrote.to_string();
    }
  }
  auto digest = c.converge(kConverge);
  ASSERT_TRUE(digest.ok()) << digest.status().to_string();
  for (int i = 0; i < 3; ++i) {
    for (int w = 0; w < 3; ++w) {
      auto got = c.node(i).store().dirty_read("t", Value(c.name(w) + "/7"));
      ASSERT_TRUE(got.ok());
      ASSERT_EQ(got->size(), 1u) << c.name(i) << " lacks a record of " << c.name(w);
    }
  }
}

TEST(Cluster, ConsistentReadsSeeWritesCommittedElsewhere) {
  Watchdog watchdog(milliseconds(120000));
  ClusterHarness c;
  ASSERT_TRUE(c.add_started().ok());
  ASSERT_TRUE(c.add_started({0}).ok());
  ASSERT_TRUE(c.add_started({0}).ok());
  create_everywhere(c, 0, test_table("t"));
  ReadOptions consistent;
  consistent.consistent = true;
  TransactionOptions consistent_txn;
  consistent_txn.consistent = true;
  for (int k = 0; k < 100; ++k) {
    const std::string key = "k" + std::to_string(k);
    ASSERT_TRUE(c.node(k % 2).store().dirty_write("t", row(key, "w", k)).ok());
    // The write returned: a consistent read anywhere sees it.
    auto got = c.node(2).store().dirty_read("t", Value(key), consistent);
    ASSERT_TRUE(got.ok()) << got.status().to_string();
    ASSERT_EQ(got->size(), 1u) << key;
    std::size_t seen = 0;
    Status read_only = c.node(2).store().transaction(
        [&](Transaction& t) -> Status {
          auto r = t.read("t", Value(key));
          if (!r.ok()) return r.status();
          seen = r->size();
          return Status::Ok();
        },
        consistent_txn);
    ASSERT_TRUE(read_only.ok()) << read_only.to_string();
    ASSERT_EQ(seen, 1u) << key;
  }
}

TEST(Cluster, TwoJoinersAtTheSameMomentBothGetIn) {
  Watchdog watchdog(milliseconds(120000));
  ClusterHarness c;
  ASSERT_TRUE(c.add_started().ok());
  const int a = c.add_node();
  const int b = c.add_node();
  auto ca = c.config(a, {0});
  auto cb = c.config(b, {0});
  Status sa, sb;
  std::thread ta([&] { sa = c.start_with(a, ca); });
  std::thread tb([&] { sb = c.start_with(b, cb); });
  ta.join();
  tb.join();
  ASSERT_TRUE(sa.ok()) << sa.to_string() << c.log(a).dump();
  ASSERT_TRUE(sb.ok()) << sb.to_string() << c.log(b).dump();
  EXPECT_EQ(voters(members_of(c, 0)), 3);
  // One of them waited for the other's join.
  EXPECT_TRUE(c.log(a).has_line_with({"waiting for", "to finish joining"}) ||
              c.log(b).has_line_with({"waiting for", "to finish joining"}))
      << c.log(a).dump() << c.log(b).dump();
  create_everywhere(c, a, test_table("t"));
  Status wrote = c.node(b).store().dirty_write("t", row("x", "b", 1));
  ASSERT_TRUE(wrote.ok()) << wrote.to_string();
  ASSERT_TRUE(c.converge(kConverge).ok());
}

TEST(Cluster, BeyondTheVoterTargetANodeJoinsAsAReplica) {
  Watchdog watchdog(milliseconds(120000));
  ClusterHarness c(voters_target(1));
  ASSERT_TRUE(c.add_started().ok());
  auto r = c.add_started({0});
  ASSERT_TRUE(r.ok()) << r.status().to_string() << c.log(1).dump();
  EXPECT_EQ(c.node(1).engine().role(), engine::NodeRole::replica);
  EXPECT_EQ(c.node(1).engine().member(), nullptr);
  EXPECT_EQ(members_of(c, 0).size(), 1u);

  create_everywhere(c, 0, test_table("t"));
  ASSERT_TRUE(c.node(1).store().dirty_write("t", row("from-replica", "r", 1)).ok());
  ASSERT_TRUE(c.node(0).store().dirty_write("t", row("from-core", "c", 2)).ok());
  ASSERT_TRUE(c.converge(kConverge).ok());

  // A replica restarts from its directory as a replica again.
  c.stop(1);
  Status restarted = c.start(1, {0});
  ASSERT_TRUE(restarted.ok()) << restarted.to_string() << c.log(1).dump();
  EXPECT_EQ(c.node(1).engine().role(), engine::NodeRole::replica);
  auto got = c.node(1).store().dirty_read("t", Value("from-core"));
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->size(), 1u);
}

TEST(Cluster, AJoinThatFailsPartWayIsCleanedUpAndCanBeRetried) {
  Watchdog watchdog(milliseconds(120000));
  ClusterHarness c;
  ASSERT_TRUE(c.add_started().ok());
  const int j = c.add_node();
  auto broken = c.config(j, {0});
  broken.engine.etcd_binary = "/bin/false";  // the learner's member never starts
  broken.engine.ready_timeout = milliseconds(3000);
  Status failed = c.start_with(j, broken);
  ASSERT_FALSE(failed.ok());
  EXPECT_TRUE(c.log(j).has_line_with({"removed learner"})) << c.log(j).dump();
  for (const auto& m : members_of(c, 0)) EXPECT_FALSE(m.is_learner) << m.id;
  EXPECT_EQ(members_of(c, 0).size(), 1u);

  Status retried = c.start(j, {0});
  ASSERT_TRUE(retried.ok()) << retried.to_string() << c.log(j).dump();
  EXPECT_EQ(voters(members_of(c, 0)), 2);
}

TEST(Cluster, AFourthNodeJoinsAClusterHolding100kRecords) {
  Watchdog watchdog(milliseconds(300000));
  ClusterHarness c(voters_target(4));
  ASSERT_TRUE(c.add_started().ok());
  ASSERT_TRUE(c.add_started({0}).ok());
  ASSERT_TRUE(c.add_started({0}).ok());
  create_everywhere(c, 0, test_table("big"));
  fill(c, 0, "big", 100000, 100);
  auto before = c.converge(kConverge);
  ASSERT_TRUE(before.ok()) << before.status().to_string();

  const auto began = std::chrono::steady_clock::now();
  auto fourth = c.add_started({1, 2});
  ASSERT_TRUE(fourth.ok()) << fourth.status().to_string() << c.log(3).dump();
  const auto took = std::chrono::steady_clock::now() - began;
  std::printf("4th node joined 100k records in %lld ms\n",
              static_cast<long long>(std::chrono::duration_cast<milliseconds>(took).count()));
  EXPECT_EQ(c.node(3).engine().role(), engine::NodeRole::voter);
  auto after = c.converge(kConverge);
  ASSERT_TRUE(after.ok()) << after.status().to_string();
  EXPECT_EQ(*after, *before);
}

TEST(Cluster, TwoClustersMeetingAreReportedOnBothSidesAndNothingMoves) {
  Watchdog watchdog(milliseconds(120000));
  ClusterHarness c;
  ASSERT_TRUE(c.add_started().ok());  // seed of cluster A
  ASSERT_TRUE(c.add_started().ok());  // seed of cluster B, bootstrapped apart
  ASSERT_TRUE(c.node(0).store().create_table(test_table("a")).ok());
  ASSERT_TRUE(c.node(1).store().create_table(test_table("b")).ok());
  ASSERT_TRUE(c.node(0).store().dirty_write("a", row("only-a", "a", 1)).ok());
  const std::uint64_t cluster_a = c.node(0).engine().identity().cluster_id;
  const std::uint64_t cluster_b = c.node(1).engine().identity().cluster_id;
  ASSERT_NE(cluster_a, cluster_b);

  // Each now configured with the other as a peer: both see the mismatch at start.
  c.stop(1);
  Status restarted = c.start(1, {0});
  ASSERT_TRUE(restarted.ok()) << restarted.to_string() << c.log(1).dump();
  c.stop(0);
  ASSERT_TRUE(c.start(0, {1}).ok()) << c.log(0).dump();
  for (int i = 0; i < 2; ++i) {
    auto seen = c.mismatches(i);
    ASSERT_EQ(seen.size(), 1u) << c.log(i).dump();
    EXPECT_EQ(seen[0].peer, c.name(1 - i));
    EXPECT_EQ(seen[0].local_cluster, i == 0 ? cluster_a : cluster_b);
    EXPECT_EQ(seen[0].peer_cluster, i == 0 ? cluster_b : cluster_a);
    EXPECT_TRUE(c.log(i).has_line_with({"cluster mismatch"}));
    EXPECT_EQ(c.node(i).engine().identity().cluster_id, i == 0 ? cluster_a : cluster_b);
  }
  // Nothing moved: each keeps its own tables only.
  EXPECT_TRUE(c.node(0).wait_for_tables({"a"}, milliseconds(5000)).status.ok());
  EXPECT_FALSE(c.node(0).wait_for_tables({"b"}, milliseconds(500)).status.ok());
  EXPECT_FALSE(c.node(1).wait_for_tables({"a"}, milliseconds(500)).status.ok());
  EXPECT_EQ(members_of(c, 0).size(), 1u);
  EXPECT_EQ(members_of(c, 1).size(), 1u);
}

TEST(Cluster, ARemovedVoterStopsSaysSoAndCannotComeBackUnlessWiped) {
  Watchdog watchdog(milliseconds(180000));
  ClusterHarness c;
  ASSERT_TRUE(c.add_started().ok());
  ASSERT_TRUE(c.add_started({0}).ok());
  ASSERT_TRUE(c.add_started({0}).ok());
  engine::LocalEngine& operator_node = c.node(0).engine();
  const auto deadline = [] { return Deadline::after(milliseconds(10000)); };
  EXPECT_EQ(operator_node.remove_node(c.name(0), deadline()).code(), StatusCode::invalid_argument);
  EXPECT_EQ(operator_node.remove_node("nobody@127.0.0.1:1", deadline()).code(),
            StatusCode::not_found);

  Status removed = operator_node.remove_node(c.name(2), deadline());
  ASSERT_TRUE(removed.ok()) << removed.to_string();
  ASSERT_TRUE(eventually([&] { return c.node(2).engine().removed(); }, milliseconds(10000)))
      << c.log(2).dump();
  EXPECT_TRUE(c.log(2).has_line_with({"REMOVED", "an operator removed"})) << c.log(2).dump();
  EXPECT_FALSE(c.node(2).engine().member()->running());
  EXPECT_EQ(members_of(c, 0).size(), 2u);
  // The two others still write.
  create_everywhere_but(c, 0, test_table("t"), {2});
  ASSERT_TRUE(c.node(1).store().dirty_write("t", row("after-removal", "n1", 1)).ok());

  // Its directory does not bring it back...
  c.stop(2);
  Status back = c.start(2, {0});
  EXPECT_EQ(back.code(), StatusCode::removed) << back.to_string();
  // ...a wiped one does.
  std::filesystem::remove_all(c.dir(2));
  Status rejoined = c.start(2, {0, 1});
  ASSERT_TRUE(rejoined.ok()) << rejoined.to_string() << c.log(2).dump();
  EXPECT_EQ(voters(members_of(c, 0)), 3);
  ASSERT_TRUE(c.converge(kConverge).ok());
}

TEST(Cluster, AReplicaTakesThePlaceOfARemovedVoter) {
  Watchdog watchdog(milliseconds(180000));
  ClusterHarness c(voters_target(2));
  ASSERT_TRUE(c.add_started().ok());
  ASSERT_TRUE(c.add_started({0}).ok());
  auto replica = c.add_started({0});
  ASSERT_TRUE(replica.ok()) << replica.status().to_string();
  ASSERT_EQ(c.node(2).engine().role(), engine::NodeRole::replica);
  EXPECT_EQ(c.node(0).engine().remove_node(c.name(0), Deadline::after(milliseconds(1000))).code(),
            StatusCode::invalid_argument);

  Status removed = c.node(0).engine().remove_node(c.name(1), Deadline::after(milliseconds(10000)));
  ASSERT_TRUE(removed.ok()) << removed.to_string() << c.log(0).dump() << c.log(1).dump();
  ASSERT_TRUE(eventually([&] { return c.node(2).engine().role() == engine::NodeRole::voter; },
                         milliseconds(60000)))
      << c.log(2).dump();
  EXPECT_EQ(voters(members_of(c, 0)), 2);
  EXPECT_NE(c.node(2).engine().member(), nullptr);
  // Restarted, it is a voter from its directory.
  c.stop(2);
  ASSERT_TRUE(c.start(2, {0}).ok()) << c.log(2).dump();
  EXPECT_EQ(c.node(2).engine().role(), engine::NodeRole::voter);
}

TEST(Cluster, MutualTlsFromTheCookieAndAWrongCookieIsRefused) {
  Watchdog watchdog(milliseconds(120000));
  HarnessOptions options;
  options.cookie = "the-right-cookie-0123456789";
  options.join_timeout = milliseconds(5000);
  ClusterHarness c(options);
  ASSERT_TRUE(c.add_started().ok()) << c.log(0).dump();
  auto joined = c.add_started({0});
  ASSERT_TRUE(joined.ok()) << joined.status().to_string() << c.log(1).dump();
  create_everywhere(c, 0, test_table("t"));
  ASSERT_TRUE(c.node(1).store().dirty_write("t", row("secret", "n1", 1)).ok());
  ASSERT_TRUE(c.converge(kConverge).ok());
  // Every file holding a key is private.
  for (int i = 0; i < 2; ++i) {
    const auto key = c.dir(i) / "tls" / "node.key";
    EXPECT_EQ(std::filesystem::status(key).permissions() & std::filesystem::perms::all,
              std::filesystem::perms::owner_read | std::filesystem::perms::owner_write)
        << key;
  }

  const int intruder = c.add_node();
  c.set_cookie(intruder, "a-wrong-cookie-9876543210");
  Status refused = c.start(intruder, {0, 1});
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.message().find("TLS"), std::string::npos) << refused.to_string();
  EXPECT_TRUE(c.log(intruder).has_line_with({"cookie (or CA) differs"})) << c.log(intruder).dump();
  EXPECT_EQ(members_of(c, 0).size(), 2u) << "nothing was added";
}

TEST(Cluster, ABroadcastReachesEverySubscriberOnEveryNodeOnce) {
  Watchdog watchdog(milliseconds(120000));
  // Declared before the harness: the buses must outlive the nodes using them.
  std::mutex mu;
  std::vector<std::vector<std::string>> got(3);
  std::vector<std::unique_ptr<pubsub::PubSub>> buses;
  ClusterHarness c;
  for (int i = 0; i < 3; ++i) {
    pubsub::PubSubOptions options;
    options.node_name = "n" + std::to_string(i);
    auto bus = pubsub::PubSub::create(options);
    ASSERT_TRUE(bus.ok()) << bus.status().to_string();
    // Subscribed before the node starts.
    ASSERT_TRUE((*bus)
                    ->subscribe("mishka:plugin:mnesia",
                                [&mu, &got, i](const pubsub::Message& m) {
                                  std::lock_guard<std::mutex> lock(mu);
                                  got[i].push_back(m.sender + ":" + *m.payload.get_string());
                                })
                    .ok());
    buses.push_back(std::move(*bus));
    const int index = c.add_node();
    auto config = c.config(index, index == 0 ? std::vector<int>{} : std::vector<int>{0});
    config.pubsub = buses.back().get();
    ASSERT_TRUE(c.start_with(index, config).ok()) << c.log(index).dump();
  }
  for (int k = 0; k < 5; ++k) {
    ASSERT_TRUE(buses[1]->broadcast("mishka:plugin:mnesia", Value("m" + std::to_string(k))).ok());
  }
  ASSERT_TRUE(buses[2]->broadcast("mishka:plugin:mnesia", Value("from-2")).ok());
  const std::vector<std::string> expected = {"n1:m0", "n1:m1", "n1:m2",
                                             "n1:m3", "n1:m4", "n2:from-2"};
  ASSERT_TRUE(eventually(
      [&] {
        std::lock_guard<std::mutex> lock(mu);
        return got[0].size() >= 6 && got[1].size() >= 6 && got[2].size() >= 6;
      },
      milliseconds(10000)));
  std::this_thread::sleep_for(milliseconds(300));  // nothing more may come
  std::lock_guard<std::mutex> lock(mu);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(got[i], expected) << "node " << i;
}

// ram_copies (CONTRACT.md section 10): records replicated to every node and kept while any
// node runs, gone once every node stopped; the tables' definitions and disc_copies records
// stay. One three-node cluster for every step (a node alone of three has no quorum).
TEST(Cluster, RamCopiesLiveWhileAnyNodeRunsAndGoWithTheWholeCluster) {
  Watchdog watchdog(milliseconds(150000));
  ClusterHarness c;
  ASSERT_TRUE(c.add_started().ok());
  ASSERT_TRUE(c.add_started({0}).ok()) << c.log(1).dump();
  ASSERT_TRUE(c.add_started({0, 1}).ok()) << c.log(2).dump();
  TableSpec ram = test_table("ram");
  ram.storage = StorageType::ram_copies;
  create_everywhere(c, 0, test_table("disc"));
  create_everywhere(c, 1, ram);

  auto count = [&](int i, const std::string& table) -> std::int64_t {
    const auto view = c.node(i).replica().read();
    const store::Table* t = view.catalog().find(table);
    return t == nullptr ? -1 : static_cast<std::int64_t>(t->count());
  };
  auto write = [&](int i, const std::string& table, const std::string& key) {
    Status wrote = c.node(i).store().dirty_write(table, row(key, c.name(i), 1));
    ASSERT_TRUE(wrote.ok()) << wrote.to_string();
  };
  // Node 2 writes no ram_copies record: it renews the lease all the same, since it has the
  // table.
  for (int i = 0; i < 3; ++i) {
    write(i, i < 2 ? "ram" : "disc", "r" + std::to_string(i));
    write(i, "disc", "d" + std::to_string(i));
  }
  ASSERT_TRUE(c.converge(kConverge).ok());
  const std::int64_t lease = c.node(0).ram_lease().current();
  ASSERT_NE(lease, 0);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(count(i, "ram"), 2) << c.name(i);
    EXPECT_TRUE(
        eventually([&] { return c.node(i).ram_lease().current() == lease; }, milliseconds(5000)))
        << c.name(i) << " does not renew the cluster's lease";
  }

  // The node that created the lease stops and comes back while the others run: they kept the
  // lease alive, it sees them renew it and adopts it; the records are all there, with one
  // written while it was down.
  c.stop(1);
  write(0, "ram", "while-down");
  const auto reopening = std::chrono::steady_clock::now();
  ASSERT_TRUE(c.start(1, {0, 2}).ok()) << c.log(1).dump();
  const auto reopened = std::chrono::steady_clock::now() - reopening;
  ASSERT_TRUE(c.converge(kConverge).ok());
  EXPECT_EQ(count(1, "ram"), 3);
  EXPECT_EQ(c.node(1).ram_lease().current(), lease);
  EXPECT_EQ(c.node(1).ram_lease().stats().revoked_stale, 0);
  EXPECT_TRUE(
      c.log(1).has_line_with({"adopted lease " + std::to_string(lease), "another node keeps it"}))
      << c.log(1).dump();
  std::printf("a node rejoining a running cluster with ram_copies records opened in %lld ms\n",
              static_cast<long long>(std::chrono::duration_cast<milliseconds>(reopened).count()));

  // Every node stops, then they start again: the records are gone everywhere.
  c.stop(1);
  c.stop(2);
  c.stop(0);
  Status back = c.restart_together({0, 1, 2});
  ASSERT_TRUE(back.ok()) << back.to_string() << c.log(0).dump();
  ASSERT_TRUE(c.converge(kConverge).ok());
  int revoked = 0;
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(count(i, "ram"), 0) << c.name(i) << " kept ram_copies records";
    EXPECT_EQ(count(i, "disc"), 4) << c.name(i);
    EXPECT_NE(c.node(i).ram_lease().current(), lease) << c.name(i);
    revoked += c.node(i).ram_lease().stats().revoked_stale;
  }
  EXPECT_GE(revoked, 1);

  // The table works again, on every node.
  write(1, "ram", "after");
  ASSERT_TRUE(c.converge(kConverge).ok());
  for (int i = 0; i < 3; ++i) EXPECT_EQ(count(i, "ram"), 1) << c.name(i);
}

TEST(Cluster, AWipedSeedBootstrapsANewClusterId) {
  Watchdog watchdog(milliseconds(60000));
  ClusterHarness c;
  ASSERT_TRUE(c.add_started().ok());
  const std::uint64_t first = c.node(0).engine().identity().cluster_id;
  c.stop(0);
  std::filesystem::remove_all(c.dir(0));
  ASSERT_TRUE(c.start(0).ok());
  EXPECT_NE(c.node(0).engine().identity().cluster_id, first);
}

}  // namespace
}  // namespace mishka::test
