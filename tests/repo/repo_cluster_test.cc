// Clusters of repos (label cluster): real etcd members on loopback, one directory and one set
// of ports per node. A joiner that waits pending until its seed starts; a seed and two joiners
// that hold the same contents; a joiner restarted while the seed is down; two seeds configured
// as one cluster (inconsistent_database on both sides); node events between members over TLS;
// a cold restart of a whole cluster.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "engine/identity.h"
#include "mishka/pubsub.h"
#include "mishka/repo.h"
#include "mishka/store.h"
#include "mishka/telemetry.h"
#include "repo/repo_support.h"
#include "support/watchdog.h"

namespace mishka::test {
namespace {

using std::chrono::milliseconds;

constexpr char kSynchronizedEvent[] = "mishka_installer.mnesia.synchronized";
constexpr char kTableEvent[] = "mishka_installer.mnesia.table";
constexpr char kNodeUpEvent[] = "mishka_installer.mnesia.cluster.nodeup";
constexpr char kInconsistentEvent[] = "mishka_installer.mnesia.inconsistent_database";
constexpr milliseconds kJoinWait{30000};

// Log lines with their level (the critical line of an inconsistency). Thread-safe.
class LevelLines {
 public:
  LogSink sink() {
    return [this](LogLevel level, std::string_view line) {
      std::lock_guard<std::mutex> lock(mu_);
      lines_.emplace_back(level, std::string(line));
    };
  }
  bool has(LogLevel level, const std::string& part) const {
    std::lock_guard<std::mutex> lock(mu_);
    return std::any_of(lines_.begin(), lines_.end(), [&](const auto& line) {
      return line.first == level && line.second.find(part) != std::string::npos;
    });
  }
  // The last `count` lines, for a failure's message.
  std::string tail(std::size_t count) const {
    std::lock_guard<std::mutex> lock(mu_);
    std::string out;
    const std::size_t from = lines_.size() > count ? lines_.size() - count : 0;
    for (std::size_t i = from; i < lines_.size(); ++i) out += lines_[i].second + "\n";
    return out;
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::pair<LogLevel, std::string>> lines_;
};

// One run of a repo: its telemetry and pub/sub are made before it, so that the recorders see
// every event and message of its boot. Destroyed repo first.
struct Run {
  std::unique_ptr<telemetry::Telemetry> telemetry;
  std::unique_ptr<pubsub::PubSub> pubsub;
  std::unique_ptr<EventRecorder> events;
  std::unique_ptr<MessageRecorder> messages;
  std::unique_ptr<MnesiaRepo> repo;

  ~Run() { stop(); }
  void stop() {
    if (repo != nullptr) repo->stop();
    repo.reset();
    messages.reset();
    events.reset();
    pubsub.reset();
    telemetry.reset();
  }
};

// A node of a test: its slot (directory, ports, name) and its current run.
class TestNode {
 public:
  explicit TestNode(int index) : slot_(make_slot(index)) {}

  const std::string& name() const { return slot_.name; }
  std::string dir() const { return (slot_.dir.path() / "node").string(); }
  LevelLines& lines() { return lines_; }

  // Starts a repo on this node's directory (a seed when `peers` is empty).
  Status start(const std::vector<std::string>& peers,
               const std::function<void(RepoOptions&)>& adjust = nullptr) {
    stop();
    auto run = std::make_unique<Run>();
    run->telemetry = std::make_unique<telemetry::Telemetry>();
    Result<std::unique_ptr<pubsub::PubSub>> created = pubsub::PubSub::create(
        pubsub::PubSubOptions{.node_name = slot_.name, .log = lines_.sink()});
    if (!created.ok()) return created.status();
    run->pubsub = std::move(created).value();
    run->events = std::make_unique<EventRecorder>(*run->telemetry);
    run->messages = std::make_unique<MessageRecorder>(*run->pubsub);
    RepoOptions options = slot_.options(peers, lines_.sink());
    options.telemetry = run->telemetry.get();
    options.pubsub = run->pubsub.get();
    if (adjust) adjust(options);
    Result<std::unique_ptr<MnesiaRepo>> started = MnesiaRepo::start(std::move(options));
    if (!started.ok()) return started.status();
    run->repo = std::move(started).value();
    run_ = std::move(run);
    return Status::Ok();
  }

  // Stops the repo, its node and its etcd member.
  void stop() {
    if (run_ != nullptr) run_->stop();
    run_.reset();
  }
  bool running() const { return run_ != nullptr; }

  Run& run() { return *run_; }
  MnesiaRepo& repo() { return *run_->repo; }
  Store& store() {
    Store* store = run_->repo->store();
    if (store == nullptr) std::abort();  // callers check synchronized first
    return *store;
  }
  EventRecorder& events() { return *run_->events; }
  MessageRecorder& messages() { return *run_->messages; }

 private:
  RepoSlot slot_;
  LevelLines lines_;  // outlives every run
  std::unique_ptr<Run> run_;
};

// A record of the `installer` table (12 attributes, the key first).
Record installer_record(const std::string& id, const std::string& writer) {
  return Record{Value(id),
                Value("app-" + writer),
                Value("0.1.8"),
                Value("git"),
                Value("/srv/" + id),
                Value("v1"),
                Value("asset-" + id),
                Value("sum-" + id),
                Value(List{Value("dep")}),
                Value(List{}),
                Value(std::int64_t{1700000000}),
                Value(std::int64_t{1700000001})};
}

Status write(TestNode& node, const std::string& id, const std::string& writer) {
  return node.store().dirty_write("installer", installer_record(id, writer),
                                  WriteOptions{.timeout = milliseconds(10000)});
}

// The record `id` of `installer` on `node`, read consistently (the replica caught up with the
// cluster first); nullopt when absent, the error's text in `error` when the read failed.
std::optional<Record> read(TestNode& node, const std::string& id, std::string* error = nullptr) {
  Result<std::vector<RecordRef>> found = node.store().dirty_read(
      "installer", Value(id), ReadOptions{.consistent = true, .timeout = milliseconds(10000)});
  if (!found.ok()) {
    if (error != nullptr) *error = found.status().to_string();
    return std::nullopt;
  }
  if (found->empty()) return std::nullopt;
  return *found->front();
}

// The statuses of the `table` events of a run, by table.
std::map<std::string, std::string> table_statuses(TestNode& node) {
  std::map<std::string, std::string> out;
  for (const RecordedEvent& e : node.events().events(kTableEvent)) {
    out[meta_string(e, "table")] = meta_string(e, "status");
  }
  return out;
}

class RepoCluster : public ::testing::Test {
 protected:
  TestNode& add(int index) {
    nodes_.push_back(std::make_unique<TestNode>(index));
    return *nodes_.back();
  }

  // The etcd leader first (its leadership moves to a running follower at once), then the
  // others together, while they still have a quorum for their last etcd calls. A node stopped
  // alone after the quorum left waits about 10 s (its presence lease cannot be revoked), and an
  // etcd leader stopped while its followers stop too waits about 7 s for a leadership transfer
  // that cannot happen (etcd's request timeout): the cheapest order known.
  void stop_all() {
    std::vector<TestNode*> running;
    for (auto& node : nodes_) {
      if (node->running()) running.push_back(node.get());
    }
    if (running.size() > 2) {
      const std::string leader = running.front()->repo().state().leader;
      for (TestNode* node : running) {
        if (node->name() == leader) node->stop();
      }
    }
    std::vector<std::thread> stoppers;
    for (TestNode* node : running) {
      if (node->running()) stoppers.emplace_back([node] { node->stop(); });
    }
    for (std::thread& t : stoppers) t.join();
  }

  void TearDown() override {
    if (HasFailure()) {
      for (auto& node : nodes_) {
        std::fprintf(stderr, "--- last log lines of %s\n%s", node->name().c_str(),
                     node->lines().tail(60).c_str());
        if (node->running()) {
          std::fprintf(stderr, "--- events of %s\n%s", node->name().c_str(),
                       node->events().dump().c_str());
        }
      }
    }
    stop_all();
  }

  // Bounds each test, its teardown included (destroyed after the nodes).
  Watchdog watchdog_{milliseconds(120000)};
  std::vector<std::unique_ptr<TestNode>> nodes_;
};

#define ASSERT_OK(expr)                               \
  do {                                                \
    const ::mishka::Status status_ = (expr);          \
    ASSERT_TRUE(status_.ok()) << status_.to_string(); \
  } while (false)

// 1. A joiner whose seed is not running waits pending, then joins by itself once it starts.
TEST_F(RepoCluster, JoinerWaitsPendingThenJoinsWhenTheSeedStarts) {
  TestNode& seed = add(1);
  TestNode& joiner = add(2);

  // A join attempt waits for a connection to its peer until its deadline: a short one keeps
  // the pending boot and each retry short (a join on loopback takes well under a second).
  ASSERT_OK(
      joiner.start({seed.name()}, [](RepoOptions& o) { o.join_timeout = milliseconds(2500); }));
  {
    const RepoState state = joiner.repo().state();
    EXPECT_EQ(state.status, RepoStatus::pending) << repo_status_name(state.status);
    EXPECT_FALSE(state.pending_reason.empty());
    EXPECT_TRUE(state.tables.empty());
    EXPECT_EQ(state.cluster_id, 0u);
    EXPECT_EQ(joiner.repo().store(), nullptr);
  }
  EXPECT_EQ(joiner.repo().state().status, RepoStatus::pending);
  EXPECT_TRUE(joiner.messages().messages("synchronized").empty());
  EXPECT_TRUE(joiner.events().events(kSynchronizedEvent).empty());

  ASSERT_OK(seed.start({}));
  ASSERT_EQ(seed.repo().state().status, RepoStatus::synchronized);
  ASSERT_OK(write(seed, "before-join", "seed"));

  ASSERT_TRUE(joiner.events().wait_for(kSynchronizedEvent, nullptr, kJoinWait))
      << "the joiner did not synchronize by itself";
  const RepoState state = joiner.repo().state();
  EXPECT_EQ(state.status, RepoStatus::synchronized);
  EXPECT_EQ(state.tables, (std::vector<std::string>{"schema", "event", "installer"}));
  EXPECT_NE(state.cluster_id, 0u);
  EXPECT_EQ(state.cluster_id, seed.repo().state().cluster_id);
  ASSERT_NE(joiner.repo().store(), nullptr);

  EXPECT_TRUE(joiner.events().wait_for(
      kNodeUpEvent,
      [&](const RecordedEvent& e) {
        return meta_string(e, "action") == "joined" && meta_string(e, "node") == joiner.name();
      },
      milliseconds(0)));
  const std::map<std::string, std::string> tables = table_statuses(joiner);
  EXPECT_EQ(tables,
            (std::map<std::string, std::string>{{"event", "copied"}, {"installer", "copied"}}));
  EXPECT_TRUE(joiner.messages().wait_for(
      "synchronized",
      [&](const Value& data) { return string_field(data, "node") == joiner.name(); },
      milliseconds(5000)));
  EXPECT_TRUE(joiner.messages().wait_for(
      "cluster_changed",
      [&](const Value& data) {
        return string_field(data, "node") == joiner.name() &&
               string_field(data, "peer") == seed.name();
      },
      milliseconds(5000)));
  // Broadcast cluster-wide: the seed's subscribers hear that the joiner is ready.
  EXPECT_TRUE(seed.messages().wait_for(
      "synchronized",
      [&](const Value& data) { return string_field(data, "node") == joiner.name(); },
      milliseconds(5000)));

  ASSERT_OK(write(seed, "after-join", "seed"));
  for (const std::string id : {"before-join", "after-join"}) {
    std::string error;
    const std::optional<Record> found = read(joiner, id, &error);
    ASSERT_TRUE(found.has_value()) << id << " " << error;
    EXPECT_EQ(*found, installer_record(id, "seed"));
  }
}

// 2. A seed and two joiners, written to from every node, hold the same contents.
TEST_F(RepoCluster, SeedAndTwoJoinersHoldTheSameContents) {
  TestNode& seed = add(1);
  TestNode& j1 = add(2);
  TestNode& j2 = add(3);
  ASSERT_OK(seed.start({}));
  ASSERT_OK(j1.start({seed.name()}));
  ASSERT_OK(j2.start({seed.name()}));
  std::vector<TestNode*> all{&seed, &j1, &j2};
  for (TestNode* node : all) {
    ASSERT_EQ(node->repo().state().status, RepoStatus::synchronized) << node->name();
  }

  // 67 records from each node, the three writers at once.
  constexpr int kPerNode = 67;
  std::vector<std::string> ids;
  std::vector<Status> results(all.size());
  std::vector<std::thread> writers;
  for (std::size_t n = 0; n < all.size(); ++n) {
    for (int k = 0; k < kPerNode; ++k)
      ids.push_back("r" + std::to_string(n) + "-" + std::to_string(k));
    writers.emplace_back([&, n] {
      for (int k = 0; k < kPerNode && results[n].ok(); ++k) {
        results[n] =
            write(*all[n], "r" + std::to_string(n) + "-" + std::to_string(k), all[n]->name());
      }
    });
  }
  for (std::thread& t : writers) t.join();
  for (const Status& result : results) ASSERT_OK(result);

  std::set<std::string> names;
  for (TestNode* node : all) names.insert(node->name());
  const std::uint64_t cluster = seed.repo().state().cluster_id;
  ASSERT_NE(cluster, 0u);
  for (TestNode* node : all) {
    const RepoState state = node->repo().state();
    EXPECT_EQ(state.cluster_id, cluster) << node->name();
    EXPECT_EQ(state.role, "voter") << node->name();
    std::set<std::string> listed;
    for (const MemberInfo& m : state.members) {
      listed.insert(m.node);
      EXPECT_EQ(m.role, "voter") << node->name() << " lists " << m.node;
    }
    EXPECT_EQ(listed, names) << node->name();
    EXPECT_EQ(state.members.size(), 3u) << node->name();

    // Every key, read consistently, and nothing else in the table.
    for (std::size_t n = 0; n < all.size(); ++n) {
      for (int k = 0; k < kPerNode; ++k) {
        const std::string id = "r" + std::to_string(n) + "-" + std::to_string(k);
        std::string error;
        const std::optional<Record> found = read(*node, id, &error);
        ASSERT_TRUE(found.has_value()) << node->name() << " misses " << id << " " << error;
        ASSERT_EQ(*found, installer_record(id, all[n]->name())) << node->name() << " " << id;
      }
    }
    std::vector<Value> keys;
    ASSERT_OK(node->store().transaction(
        [&](Transaction& t) -> Status {
          Result<std::vector<Value>> listed_keys = t.all_keys("installer");
          if (!listed_keys.ok()) return listed_keys.status();
          keys = std::move(listed_keys).value();
          return Status::Ok();
        },
        TransactionOptions{.consistent = true}));
    EXPECT_EQ(keys.size(), ids.size()) << node->name();
  }
  // And the digests of the three replicas are equal (nothing is written any more).
  std::set<std::string> digests;
  for (TestNode* node : all) {
    Result<ReplicaDigest> digest = node->repo().digest(milliseconds(10000));
    ASSERT_TRUE(digest.ok()) << node->name() << ": " << digest.status().to_string();
    digests.insert(digest->digest_hex);
  }
  EXPECT_EQ(digests.size(), 1u);
}

// 3. A joiner restarted while the seed is down comes up on its own directory (the other joiner
// gives the quorum), keeps its data, and catches up once the seed is back.
TEST_F(RepoCluster, JoinerRestartedWhileTheSeedIsDownKeepsItsData) {
  TestNode& seed = add(1);
  TestNode& j1 = add(2);
  TestNode& j2 = add(3);
  ASSERT_OK(seed.start({}));
  ASSERT_OK(j1.start({seed.name()}));
  ASSERT_OK(j2.start({seed.name()}));

  ASSERT_OK(write(seed, "R1", "seed"));
  ASSERT_TRUE(read(j1, "R1").has_value());
  const std::uint64_t cluster = j1.repo().state().cluster_id;
  ASSERT_NE(cluster, 0u);
  Result<std::optional<engine::Identity>> before = engine::check_identity(j1.dir(), j1.name());
  ASSERT_TRUE(before.ok() && before->has_value()) << before.status().to_string();
  ASSERT_NE((*before)->member_id, 0u);

  j1.stop();
  ASSERT_OK(write(seed, "R2", "seed"));
  seed.stop();
  // A clean stop writes the replica's snapshot file: the next start loads from it.
  ASSERT_TRUE(std::filesystem::exists(j1.dir() + "/replica.snapshot"));

  ASSERT_OK(j1.start({seed.name()}));
  const RepoState restarted = j1.repo().state();
  ASSERT_EQ(restarted.status, RepoStatus::synchronized)
      << repo_status_name(restarted.status) << " " << restarted.pending_reason;
  EXPECT_EQ(restarted.cluster_id, cluster);
  Result<std::optional<engine::Identity>> after = engine::check_identity(j1.dir(), j1.name());
  ASSERT_TRUE(after.ok() && after->has_value()) << after.status().to_string();
  EXPECT_EQ(**after, **before) << "the joiner's identity changed: its directory was wiped";
  EXPECT_EQ(table_statuses(j1), (std::map<std::string, std::string>{
                                    {"event", "already_loaded"}, {"installer", "already_loaded"}}));
  for (const std::string id : {"R1", "R2"}) {
    std::string error;
    const std::optional<Record> found = read(j1, id, &error);
    ASSERT_TRUE(found.has_value()) << id << " " << error;
    EXPECT_EQ(*found, installer_record(id, "seed"));
  }

  ASSERT_OK(seed.start({}));
  ASSERT_EQ(seed.repo().state().status, RepoStatus::synchronized);
  EXPECT_EQ(seed.repo().state().cluster_id, cluster);
  ASSERT_OK(write(seed, "R3", "seed"));
  std::string error;
  const std::optional<Record> r3 = read(j1, "R3", &error);
  ASSERT_TRUE(r3.has_value()) << error;
  EXPECT_EQ(*r3, installer_record("R3", "seed"));
}

// 4. Two nodes that each bootstrapped as a seed, then configured as one cluster: both report
// inconsistent_database about the other, and nothing is merged or wiped.
TEST_F(RepoCluster, TwoSeedsConfiguredAsOneClusterAreInconsistent) {
  TestNode& a = add(1);
  TestNode& b = add(2);
  std::map<TestNode*, std::uint64_t> clusters;
  for (TestNode* node : {&a, &b}) {
    ASSERT_OK(node->start({}));
    ASSERT_EQ(node->repo().state().status, RepoStatus::synchronized);
    ASSERT_OK(write(*node, "only-" + node->name(), node->name()));
    clusters[node] = node->repo().state().cluster_id;
    node->stop();
  }
  ASSERT_NE(clusters[&a], clusters[&b]);

  // a comes back first (b is down: nothing to compare yet), then b, which finds a at boot;
  // a finds b when its probe sees b up.
  ASSERT_OK(a.start({b.name()}));
  ASSERT_OK(b.start({a.name()}));
  for (auto [node, other] : {std::pair{&a, &b}, std::pair{&b, &a}}) {
    const std::optional<RecordedEvent> reported = node->events().wait_for(
        kInconsistentEvent,
        [&](const RecordedEvent& e) { return meta_string(e, "node") == other->name(); },
        milliseconds(10000));
    ASSERT_TRUE(reported.has_value()) << node->name() << " did not report " << other->name();
    EXPECT_FALSE(meta_string(*reported, "context").empty());
    const RepoState state = node->repo().state();
    EXPECT_EQ(state.status, RepoStatus::inconsistent) << node->name();
    EXPECT_FALSE(state.inconsistency.empty());
    EXPECT_EQ(state.cluster_id, clusters[node]) << node->name();
    EXPECT_TRUE(node->lines().has(LogLevel::critical, "inconsistent database")) << node->name();

    ASSERT_NE(node->repo().store(), nullptr);
    const std::optional<Record> own = read(*node, "only-" + node->name());
    ASSERT_TRUE(own.has_value()) << node->name() << " lost its own record";
    EXPECT_EQ(*own, installer_record("only-" + node->name(), node->name()));
    EXPECT_FALSE(read(*node, "only-" + other->name()).has_value())
        << node->name() << " holds " << other->name() << "'s record";
  }
}

}  // namespace
}  // namespace mishka::test

namespace mishka::test {
namespace {

constexpr char kNodeDownEvent[] = "mishka_installer.mnesia.cluster.nodedown";
constexpr char kCookie[] = "repo-cluster-test-cookie-0123456789";

bool has_nodeup(TestNode& node, const std::string& peer, const std::string& action,
                milliseconds timeout) {
  return node.events()
      .wait_for(
          kNodeUpEvent,
          [&](const RecordedEvent& e) {
            return meta_string(e, "peer") == peer && meta_string(e, "action") == action;
          },
          timeout)
      .has_value();
}

// 5. Node events between members, over mutual TLS from the cookie: a member known at boot is
// `already_member`, a configured peer that joins later is `connected`, a member that stops is
// a nodedown with db_member? true; the seed stays passive. A local_content table is defined on
// every node and holds each node's own records.
TEST_F(RepoCluster, NodeEventsBetweenMembersOverTls) {
  TestNode& seed = add(1);
  TestNode& j1 = add(2);
  TestNode& j2 = add(3);
  auto with_cookie = [](RepoOptions& o) { o.cookie = kCookie; };
  ASSERT_OK(seed.start({}, with_cookie));
  ASSERT_OK(j1.start({seed.name(), j2.name()}, with_cookie));
  ASSERT_EQ(j1.repo().state().status, RepoStatus::synchronized);
  EXPECT_TRUE(has_nodeup(j1, seed.name(), "already_member", milliseconds(5000)))
      << j1.events().dump();
  EXPECT_TRUE(j1.messages().wait_for(
      "cluster_changed",
      [&](const Value& data) { return string_field(data, "peer") == seed.name(); },
      milliseconds(5000)));

  ASSERT_OK(j2.start({seed.name(), j1.name()}, with_cookie));
  ASSERT_EQ(j2.repo().state().status, RepoStatus::synchronized);
  EXPECT_TRUE(has_nodeup(j1, j2.name(), "connected", milliseconds(10000))) << j1.events().dump();
  EXPECT_TRUE(has_nodeup(j2, j1.name(), "already_member", milliseconds(5000)))
      << j2.events().dump();
  EXPECT_TRUE(j1.messages().wait_for(
      "cluster_changed", [&](const Value& data) { return string_field(data, "peer") == j2.name(); },
      milliseconds(5000)));
  EXPECT_TRUE(seed.events().events(kNodeUpEvent).empty());

  // local_content: one definition, each node's own contents.
  TableSpec scratch{.name = "scratch",
                    .attributes = {"id", "owner"},
                    .type = TableType::set,
                    .storage = StorageType::disc_copies,
                    .local_content = true,
                    .indexes = {}};
  ASSERT_OK(seed.store().create_table(scratch));
  for (TestNode* node : {&seed, &j1, &j2}) {
    // The joiners' replicas apply the new table asynchronously (a CI run wrote before that).
    ASSERT_TRUE(
        eventually([&] { return node->store().table_spec("scratch").ok(); }, milliseconds(10000)))
        << node->name();
    ASSERT_OK(node->store().dirty_write("scratch", Record{Value("k"), Value(node->name())}));
  }
  for (TestNode* node : {&seed, &j1, &j2}) {
    Result<std::vector<RecordRef>> mine = node->store().dirty_read(
        "scratch", Value("k"), ReadOptions{.consistent = true, .timeout = milliseconds(10000)});
    ASSERT_TRUE(mine.ok()) << mine.status().to_string();
    ASSERT_EQ(mine->size(), 1u);
    EXPECT_EQ((*mine->front())[1], Value(node->name()));
    const std::vector<TableSchema> schemas = node->repo().schemas();
    EXPECT_TRUE(std::any_of(schemas.begin(), schemas.end(), [](const TableSchema& s) {
      return s.name == "scratch" && s.local_content;
    }));
  }

  j2.stop();
  const std::optional<RecordedEvent> down = j1.events().wait_for(
      kNodeDownEvent, [&](const RecordedEvent& e) { return meta_string(e, "peer") == j2.name(); },
      milliseconds(10000));
  ASSERT_TRUE(down.has_value()) << j1.events().dump();
  EXPECT_EQ(*down->metadata.at("db_member?").get_bool(), true);
  EXPECT_EQ(j1.repo().state().status, RepoStatus::synchronized);
  // Never evicted: j2 is still a member of the cluster.
  const RepoState state = j1.repo().state();
  EXPECT_TRUE(std::any_of(state.members.begin(), state.members.end(),
                          [&](const MemberInfo& m) { return m.node == j2.name() && !m.up; }));
}

// 6. Every node of a two-voter cluster stopped, then started again joiner first: the joiner
// cannot reach a majority alone and waits pending; the seed's start and the joiner's next
// attempt overlap, and both come back with their data.
TEST_F(RepoCluster, ColdRestartOfTheWholeClusterJoinerFirst) {
  TestNode& seed = add(1);
  TestNode& joiner = add(2);
  auto quick = [](RepoOptions& o) { o.member_ready_timeout = milliseconds(4000); };
  ASSERT_OK(seed.start({}, quick));
  ASSERT_OK(joiner.start({seed.name()}, quick));
  ASSERT_OK(write(seed, "kept", "seed"));
  const std::uint64_t cluster = seed.repo().state().cluster_id;
  std::thread joiner_stop([&] { joiner.stop(); });
  seed.stop();
  joiner_stop.join();

  ASSERT_OK(joiner.start({seed.name()}, quick));
  EXPECT_EQ(joiner.repo().state().status, RepoStatus::pending);
  ASSERT_OK(seed.start({}, [](RepoOptions& o) { o.member_ready_timeout = milliseconds(20000); }));
  EXPECT_EQ(seed.repo().state().status, RepoStatus::synchronized);
  ASSERT_TRUE(joiner.events().wait_for(kSynchronizedEvent, nullptr, kJoinWait));
  EXPECT_EQ(joiner.repo().state().cluster_id, cluster);
  for (TestNode* node : {&seed, &joiner}) {
    std::string error;
    const std::optional<Record> found = read(*node, "kept", &error);
    ASSERT_TRUE(found.has_value()) << node->name() << " " << error;
  }
}

}  // namespace
}  // namespace mishka::test
