// One node's repo (CONTRACT.md sections 3 to 8): the scenarios of the original module's tests,
// in C++, plus the boot failures. Every node runs a real etcd member on loopback.
#include "mishka/repo.h"

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <stdexcept>

#include "mishka/pubsub.h"
#include "mishka/telemetry.h"
#include "repo/repo_support.h"

namespace mishka::test {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr milliseconds kWait{10000};

std::unique_ptr<pubsub::PubSub> make_pubsub(const std::string& node) {
  pubsub::PubSubOptions options;
  options.node_name = node;
  return std::move(pubsub::PubSub::create(std::move(options))).value();
}

bool has_table(const RepoState& state, const std::string& table) {
  return std::find(state.tables.begin(), state.tables.end(), table) != state.tables.end();
}

Record installer_record(const std::string& id) {
  Record r(12, Value());
  r[0] = Value(id);
  r[1] = Value("app-" + id);
  return r;
}

// A seed with its own telemetry and a pub/sub subscribed before it starts.
struct SeedFixture {
  RepoSlot slot = make_slot(0);
  telemetry::Telemetry telemetry;
  std::unique_ptr<pubsub::PubSub> pubsub = make_pubsub(slot.name);
  EventRecorder events{telemetry};
  MessageRecorder messages{*pubsub};
  Lines log;

  RepoOptions options(const std::vector<std::string>& peers = {}) {
    RepoOptions o = slot.options(peers, log.sink());
    o.telemetry = &telemetry;
    o.pubsub = pubsub.get();
    return o;
  }
};

TEST(RepoBoot, SeedBroadcastsSynchronizedWithTheEssentialTablesLocal) {
  SeedFixture f;
  Result<std::unique_ptr<MnesiaRepo>> repo = MnesiaRepo::start(f.options());
  ASSERT_TRUE(repo.ok()) << repo.status().to_string() << "\n" << f.log.dump();
  EXPECT_EQ((*repo)->state().status, RepoStatus::synchronized);

  std::optional<pubsub::Message> sync = f.messages.wait_for("synchronized", nullptr, kWait);
  ASSERT_TRUE(sync.has_value());
  EXPECT_EQ(string_field(sync->payload, "channel"), "mnesia");
  const Value& data = *field(sync->payload, "data");
  EXPECT_EQ(string_field(data, "identifier"), "mishka_mnesia_repo");
  EXPECT_EQ(string_field(data, "node"), f.slot.name);
  const List& tables = *field(data, "local_tables")->get_list();
  EXPECT_NE(std::find(tables.begin(), tables.end(), Value("installer")), tables.end());
  EXPECT_NE(std::find(tables.begin(), tables.end(), Value("event")), tables.end());
  EXPECT_EQ(field(data, "schemas")->get_list()->size(), 2u);
}

TEST(RepoBoot, InitSpanTableAndSynchronizedEvents) {
  SeedFixture f;
  Result<std::unique_ptr<MnesiaRepo>> repo = MnesiaRepo::start(f.options());
  ASSERT_TRUE(repo.ok()) << repo.status().to_string();

  std::vector<RecordedEvent> start = f.events.events("mishka_installer.mnesia.init.start");
  ASSERT_EQ(start.size(), 1u) << f.events.dump();
  EXPECT_TRUE(start[0].measurements.count("system_time"));
  EXPECT_TRUE(start[0].measurements.count("monotonic_time"));
  EXPECT_EQ(meta_string(start[0], "node"), f.slot.name);

  std::vector<RecordedEvent> stop = f.events.events("mishka_installer.mnesia.init.stop");
  ASSERT_EQ(stop.size(), 1u);
  EXPECT_GT(*stop[0].measurements.at("duration").get_int(), 0);
  EXPECT_TRUE(stop[0].measurements.count("monotonic_time"));
  EXPECT_EQ(meta_string(stop[0], "result"), "ok");
  EXPECT_EQ(meta_string(stop[0], "node"), f.slot.name);
  EXPECT_EQ(stop[0].metadata.at("tables").get_list()->size(), 3u);  // schema, event, installer

  std::vector<RecordedEvent> tables = f.events.events("mishka_installer.mnesia.table");
  ASSERT_EQ(tables.size(), 2u);
  for (const RecordedEvent& e : tables) {
    EXPECT_EQ(meta_string(e, "status"), "created") << meta_string(e, "table");
    EXPECT_TRUE(e.measurements.count("system_time"));
  }
  std::vector<RecordedEvent> sync = f.events.events("mishka_installer.mnesia.synchronized");
  ASSERT_EQ(sync.size(), 1u);
  EXPECT_EQ(meta_string(sync[0], "node"), f.slot.name);
}

TEST(RepoBoot, HealthStateAndSchemas) {
  SeedFixture f;
  Result<std::unique_ptr<MnesiaRepo>> repo = MnesiaRepo::start(f.options());
  ASSERT_TRUE(repo.ok()) << repo.status().to_string();

  HealthReport health = (*repo)->health_check();
  EXPECT_TRUE(health.healthy);
  EXPECT_TRUE(health.missing.empty());
  EXPECT_EQ(health.table_count, 3);
  EXPECT_EQ(health.schema_count, 2);
  EXPECT_EQ(health.role, "voter");
  EXPECT_EQ(health.leader, f.slot.name);
  EXPECT_TRUE(health.member_healthy);
  EXPECT_GE(health.replica_lag, 0);
  std::vector<RecordedEvent> checks = f.events.events("mishka_installer.mnesia.health_check");
  ASSERT_EQ(checks.size(), 1u);
  EXPECT_EQ(*checks[0].metadata.at("healthy?").get_bool(), true);
  EXPECT_TRUE(checks[0].metadata.at("missing").get_list()->empty());
  EXPECT_EQ(*checks[0].measurements.at("table_count").get_int(), 3);
  EXPECT_EQ(*checks[0].measurements.at("schema_count").get_int(), 2);

  RepoState state = (*repo)->state();
  EXPECT_TRUE(has_table(state, "installer"));
  EXPECT_EQ(state.essential, (std::vector<std::string>{"installer", "event"}));
  EXPECT_FALSE(state.dynamic);
  EXPECT_NE(state.cluster_id, 0u);
  ASSERT_EQ(state.members.size(), 1u);
  EXPECT_EQ(state.members[0].node, f.slot.name);
  EXPECT_EQ(state.members[0].role, "voter");
  EXPECT_EQ(state.leader, f.slot.name);

  std::vector<TableSchema> schemas = (*repo)->schemas();
  ASSERT_EQ(schemas.size(), 2u);
  EXPECT_EQ(schemas[0].name, "event");
  EXPECT_EQ(schemas[0].storage, StorageType::disc_copies);
  EXPECT_FALSE(schemas[0].local_content);

  Result<ReplicaDigest> digest = (*repo)->digest(kWait);
  ASSERT_TRUE(digest.ok()) << digest.status().to_string();
  EXPECT_EQ(digest->digest_hex.size(), 64u);
  EXPECT_GT(digest->revision, 0);

  Result<Value> bogus = (*repo)->call("reticulate");
  EXPECT_EQ(bogus.status().code(), StatusCode::invalid_argument);
  Result<Value> as_value = (*repo)->call("state");
  ASSERT_TRUE(as_value.ok());
  EXPECT_EQ(string_field(*as_value, "status"), "synchronized");
}

TEST(RepoBoot, TheHealthTimerChecksPeriodically) {
  SeedFixture f;
  RepoOptions o = f.options();
  o.health_interval = milliseconds(100);
  Result<std::unique_ptr<MnesiaRepo>> repo = MnesiaRepo::start(o);
  ASSERT_TRUE(repo.ok()) << repo.status().to_string();
  EXPECT_TRUE(eventually(
      [&] { return f.events.events("mishka_installer.mnesia.health_check").size() >= 3; }, kWait));
  for (const RecordedEvent& e : f.events.events("mishka_installer.mnesia.health_check")) {
    EXPECT_EQ(*e.metadata.at("healthy?").get_bool(), true);
  }
  (*repo)->stop();
  const std::size_t after_stop = f.events.events("mishka_installer.mnesia.health_check").size();
  std::this_thread::sleep_for(milliseconds(300));
  EXPECT_EQ(f.events.events("mishka_installer.mnesia.health_check").size(), after_stop);
}

TEST(RepoBoot, RestartOnTheSameDirectoryKeepsRecordsAndReannounces) {
  SeedFixture f;
  {
    Result<std::unique_ptr<MnesiaRepo>> repo = MnesiaRepo::start(f.options());
    ASSERT_TRUE(repo.ok()) << repo.status().to_string();
    ASSERT_TRUE((*repo)->store()->dirty_write("installer", installer_record("kept")).ok());
  }
  Result<std::unique_ptr<MnesiaRepo>> again = MnesiaRepo::start(f.options());
  ASSERT_TRUE(again.ok()) << again.status().to_string() << "\n" << f.log.dump();
  Result<std::vector<RecordRef>> read = (*again)->store()->dirty_read("installer", Value("kept"));
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(read->size(), 1u);
  EXPECT_EQ(f.events.events("mishka_installer.mnesia.synchronized").size(), 2u);
  std::vector<RecordedEvent> tables = f.events.events("mishka_installer.mnesia.table");
  ASSERT_EQ(tables.size(), 4u);
  EXPECT_EQ(meta_string(tables[2], "status"), "already_loaded");
  EXPECT_EQ(meta_string(tables[3], "status"), "already_loaded");
  EXPECT_TRUE(eventually([&] { return f.messages.messages("synchronized").size() == 2; }, kWait));
}

TEST(RepoBoot, RestartInTheSameProcessIsANoOpReannounce) {
  SeedFixture f;
  RepoHost host;
  RepoOptions o = f.options();
  o.host = &host;
  Result<std::unique_ptr<MnesiaRepo>> first = MnesiaRepo::start(o);
  ASSERT_TRUE(first.ok()) << first.status().to_string();
  const std::vector<pid_t> etcd = processes_mentioning(o.mnesia_dir);
  ASSERT_FALSE(etcd.empty());
  (*first)->stop();
  EXPECT_EQ(host.directories().size(), 1u);

  Result<std::unique_ptr<MnesiaRepo>> second = MnesiaRepo::start(o);
  ASSERT_TRUE(second.ok()) << second.status().to_string();
  EXPECT_EQ((*second)->state().status, RepoStatus::synchronized);
  EXPECT_EQ(processes_mentioning(o.mnesia_dir), etcd);  // the same etcd member
  // Nothing was created or loaded again; only the announcement.
  EXPECT_EQ(f.events.events("mishka_installer.mnesia.table").size(), 2u);
  EXPECT_EQ(f.events.events("mishka_installer.mnesia.synchronized").size(), 2u);
  EXPECT_TRUE(eventually([&] { return f.messages.messages("synchronized").size() == 2; }, kWait));
  (*second)->stop();
  host.stop_all();
  EXPECT_TRUE(no_process_mentions(o.mnesia_dir, kWait));
}

TEST(RepoNodeEvents, SeedStaysPassive) {
  SeedFixture f;
  Result<std::unique_ptr<MnesiaRepo>> repo = MnesiaRepo::start(f.options());
  ASSERT_TRUE(repo.ok()) << repo.status().to_string();
  EXPECT_EQ((*repo)->handle_nodeup("other@127.0.0.1:4370").status().code(),
            StatusCode::unsupported);
  EXPECT_EQ((*repo)->handle_nodedown("other@127.0.0.1:4370").status().code(),
            StatusCode::unsupported);
  EXPECT_TRUE(f.events.events("mishka_installer.mnesia.cluster.nodeup").empty());
  EXPECT_TRUE(f.events.events("mishka_installer.mnesia.cluster.nodedown").empty());
  EXPECT_EQ((*repo)->state().status, RepoStatus::synchronized);
}

// A joiner whose seed is not running: pending, dynamic, no tables, never broadcasts.
struct PendingFixture : SeedFixture {
  RepoSlot seed = make_slot(1);
  std::unique_ptr<MnesiaRepo> repo;
  void start() {
    RepoOptions o = options({seed.name});
    o.retry_min = seconds(30);  // the timer stays out of the way of the events under test
    o.retry_max = seconds(30);
    Result<std::unique_ptr<MnesiaRepo>> started = MnesiaRepo::start(o);
    ASSERT_TRUE(started.ok()) << started.status().to_string() << "\n" << log.dump();
    repo = std::move(started).value();
  }
};

TEST(RepoPending, JoinerWithAnUnreachableSeedIsPending) {
  PendingFixture f;
  ASSERT_NO_FATAL_FAILURE(f.start());
  RepoState state = f.repo->state();
  EXPECT_EQ(state.status, RepoStatus::pending);
  EXPECT_TRUE(state.dynamic);
  EXPECT_TRUE(state.tables.empty());
  EXPECT_FALSE(state.pending_reason.empty());
  EXPECT_EQ(f.repo->store(), nullptr);
  EXPECT_TRUE(f.repo->schemas().empty());
  EXPECT_EQ(f.repo->digest(kWait).status().code(), StatusCode::engine_unavailable);
  HealthReport health = f.repo->health_check();
  EXPECT_FALSE(health.healthy);
  EXPECT_TRUE(f.events.events("mishka_installer.mnesia.health_check").empty());
  EXPECT_TRUE(f.events.events("mishka_installer.mnesia.synchronized").empty());
  EXPECT_EQ(meta_string(f.events.events("mishka_installer.mnesia.init.stop").at(0), "result"),
            "ok");
  std::this_thread::sleep_for(milliseconds(300));
  EXPECT_TRUE(f.messages.messages("synchronized").empty());
}

TEST(RepoPending, NodeupFromAnUnconfiguredNodeIsIgnored) {
  PendingFixture f;
  ASSERT_NO_FATAL_FAILURE(f.start());
  Result<NodeUpResult> up = f.repo->handle_nodeup("stranger@127.0.0.1:4999");
  ASSERT_TRUE(up.ok()) << up.status().to_string();
  EXPECT_EQ(up->action, "ignored");
  std::vector<RecordedEvent> events = f.events.events("mishka_installer.mnesia.cluster.nodeup");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(meta_string(events[0], "action"), "ignored");
  EXPECT_EQ(meta_string(events[0], "peer"), "stranger@127.0.0.1:4999");
  EXPECT_EQ(meta_string(events[0], "node"), f.slot.name);
}

TEST(RepoPending, NodeupFromTheStillUnreachableSeedIsPending) {
  PendingFixture f;
  ASSERT_NO_FATAL_FAILURE(f.start());
  Result<NodeUpResult> up = f.repo->handle_nodeup(f.seed.name);
  ASSERT_TRUE(up.ok()) << up.status().to_string();
  EXPECT_EQ(up->action, "pending");
  EXPECT_EQ(f.repo->state().status, RepoStatus::pending);
  EXPECT_TRUE(f.events.wait_for(
      "mishka_installer.mnesia.cluster.nodeup",
      [](const RecordedEvent& e) { return meta_string(e, "action") == "pending"; }, kWait));
}

TEST(RepoPending, NodedownIsReportedAndTheRepoStaysUp) {
  PendingFixture f;
  ASSERT_NO_FATAL_FAILURE(f.start());
  Result<bool> down = f.repo->handle_nodedown("gone@127.0.0.1:4999");
  ASSERT_TRUE(down.ok());
  EXPECT_FALSE(*down);
  std::vector<RecordedEvent> events = f.events.events("mishka_installer.mnesia.cluster.nodedown");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(*events[0].metadata.at("db_member?").get_bool(), false);
  EXPECT_EQ(meta_string(events[0], "peer"), "gone@127.0.0.1:4999");
  EXPECT_EQ(f.repo->state().status, RepoStatus::pending);
}

TEST(RepoBootFailures, BadOptionsTouchNothing) {
  SeedFixture f;
  RepoOptions o = f.options();
  o.wait_retries = -1;
  Result<std::unique_ptr<MnesiaRepo>> repo = MnesiaRepo::start(o);
  EXPECT_EQ(repo.status().code(), StatusCode::invalid_argument);
  EXPECT_NE(repo.status().message().find("wait_retries"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(o.mnesia_dir));
}

TEST(RepoBootFailures, AThrowInsideBootIsTheExceptionEventAndAnErrorValue) {
  SeedFixture f;
  RepoOptions o = f.options();
  // The first line of boot (no cookie) throws; the sink is quiet after that.
  auto thrown = std::make_shared<std::atomic<bool>>(false);
  o.log = [thrown](LogLevel, std::string_view) {
    if (!thrown->exchange(true)) throw std::runtime_error("the log sink broke");
  };
  Result<std::unique_ptr<MnesiaRepo>> repo = MnesiaRepo::start(o);
  ASSERT_EQ(repo.status().code(), StatusCode::internal);
  EXPECT_NE(repo.status().message().find("the log sink broke"), std::string::npos);
  std::vector<RecordedEvent> failed = f.events.events("mishka_installer.mnesia.init.exception");
  ASSERT_EQ(failed.size(), 1u) << f.events.dump();
  EXPECT_EQ(meta_string(failed[0], "kind"), "error");
  EXPECT_EQ(meta_string(failed[0], "reason"), "the log sink broke");
  EXPECT_EQ(meta_string(failed[0], "node"), f.slot.name);
  EXPECT_TRUE(failed[0].measurements.count("duration"));
  EXPECT_TRUE(f.events.events("mishka_installer.mnesia.init.stop").empty());
  EXPECT_TRUE(no_process_mentions(o.mnesia_dir, kWait));
}

TEST(RepoBootFailures, AnotherNodesDirectoryIsNodeNameMismatch) {
  SeedFixture f;
  RepoOptions o = f.options();
  {
    Result<std::unique_ptr<MnesiaRepo>> repo = MnesiaRepo::start(o);
    ASSERT_TRUE(repo.ok()) << repo.status().to_string();
  }
  o.node = "other@127.0.0.1:" + std::to_string(f.slot.client_port);
  o.pubsub = nullptr;
  Result<std::unique_ptr<MnesiaRepo>> repo = MnesiaRepo::start(o);
  EXPECT_EQ(repo.status().code(), StatusCode::node_name_mismatch) << repo.status().to_string();
  EXPECT_EQ(meta_string(f.events.events("mishka_installer.mnesia.init.stop").back(), "result"),
            "stop");
}

TEST(RepoBootFailures, AnEssentialTableDefinedDifferentlyFails) {
  SeedFixture f;
  RepoOptions o = f.options();
  TableSpec installer = default_essential_tables()[0];
  installer.attributes.push_back("extra");
  o.essential = {installer};
  {
    Result<std::unique_ptr<MnesiaRepo>> repo = MnesiaRepo::start(o);
    ASSERT_TRUE(repo.ok()) << repo.status().to_string();
  }
  o.essential = default_essential_tables();
  Result<std::unique_ptr<MnesiaRepo>> repo = MnesiaRepo::start(o);
  ASSERT_EQ(repo.status().code(), StatusCode::essential_table_failed) << repo.status().to_string();
  EXPECT_NE(repo.status().message().find("installer"), std::string::npos);
  std::vector<RecordedEvent> tables = f.events.events("mishka_installer.mnesia.table");
  ASSERT_GE(tables.size(), 2u);
  EXPECT_EQ(meta_string(tables[tables.size() - 2], "status"), "error");
  EXPECT_EQ(meta_string(tables.back(), "status"), "created");  // event
  EXPECT_TRUE(no_process_mentions(o.mnesia_dir, kWait));
}

TEST(RepoBootFailures, TablesTheClusterDoesNotHaveAreUnavailable) {
  // A seed whose essential tables lack `event`; a joiner that needs it waits its slices, then
  // fails naming it.
  SeedFixture f;
  RepoOptions seed_options = f.options();
  seed_options.essential = {default_essential_tables()[0]};
  Result<std::unique_ptr<MnesiaRepo>> seed = MnesiaRepo::start(seed_options);
  ASSERT_TRUE(seed.ok()) << seed.status().to_string();

  RepoSlot joiner = make_slot(2);
  Lines log;
  RepoOptions o = joiner.options({f.slot.name}, log.sink());
  // As a replica (no etcd member), its failed boot leaves the seed's quorum alone, and both
  // stop at once.
  o.target_voters = 1;
  o.wait_timeout = milliseconds(300);
  o.wait_retries = 2;
  Result<std::unique_ptr<MnesiaRepo>> repo = MnesiaRepo::start(o);
  ASSERT_EQ(repo.status().code(), StatusCode::tables_unavailable) << repo.status().to_string();
  EXPECT_NE(repo.status().message().find("event"), std::string::npos);
  EXPECT_TRUE(log.has("tables still loading after slice 1 of 2")) << log.dump();
  EXPECT_TRUE(log.has("tables still loading after slice 2 of 2")) << log.dump();
  EXPECT_TRUE(no_process_mentions(o.mnesia_dir, kWait));
}

}  // namespace
}  // namespace mishka::test
