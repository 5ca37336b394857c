// The node's engine against the real etcd on loopback: first start and restart of a directory,
// the identity rules (another node name, a corrupt identity file, etcd data of another
// cluster), automatic compaction and defragmentation, the space quota alarm and its recovery,
// and the member killed under a stream of puts. Every test bounds its waits and checks by pid
// and by /proc that no etcd of its directory survives it.

#include "engine/local_engine.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "engine/deadline.h"
#include "support/child_process.h"
#include "support/file_checks.h"
#include "support/process_checks.h"
#include "support/temp_dir.h"

namespace mishka::engine {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using std::chrono::seconds;
using test::etcd_binary;
using test::eventually;
using test::hash_tree;
using test::process_ended;
using test::processes_with_arg;
using test::read_bytes;
using test::TempDir;
using test::write_bytes;

Deadline in(milliseconds timeout) {
  return Deadline::after(timeout);
}

RangeOptions at_revision(std::int64_t revision) {
  RangeOptions options;
  options.revision = revision;
  return options;
}

RangeOptions keys_under(const std::string& prefix) {
  RangeOptions options;
  options.range_end = prefix_range_end(prefix);
  options.keys_only = true;
  return options;
}

// Collects the engine's log lines and space alarm events; tests wait on them.
class Recorder {
 public:
  LogSink sink() {
    return [this](LogLevel level, std::string_view line) {
      std::lock_guard<std::mutex> lock(mu_);
      lines_.push_back(std::to_string(static_cast<int>(level)) + " " + std::string(line));
    };
  }
  std::function<void(const SpaceAlarmEvent&)> alarm_listener() {
    return [this](const SpaceAlarmEvent& event) {
      std::lock_guard<std::mutex> lock(mu_);
      alarms_.push_back(event);
      cv_.notify_all();
    };
  }
  bool wait_for_alarms(std::size_t n, milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return alarms_.size() >= n; });
  }
  std::vector<SpaceAlarmEvent> alarms() const {
    std::lock_guard<std::mutex> lock(mu_);
    return alarms_;
  }
  std::string log() const {
    std::lock_guard<std::mutex> lock(mu_);
    std::string out;
    for (const std::string& line : lines_) out += line + "\n";
    return out;
  }
  bool logged(const std::string& part) const {
    std::lock_guard<std::mutex> lock(mu_);
    return std::any_of(lines_.begin(), lines_.end(),
                       [&](const std::string& l) { return l.find(part) != std::string::npos; });
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> lines_;
  std::vector<SpaceAlarmEvent> alarms_;
};

class LocalEngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Result<TempDir> made = TempDir::Create("mishka-engine-");
    ASSERT_TRUE(made.ok()) << made.status().to_string();
    tmp_.emplace(std::move(made).value());
    config_ = base_config((tmp_->path() / "node").string());
  }

  void TearDown() override {
    for (const std::string& dir : dirs_) {
      const std::string arg = "--data-dir=" + data_dir_arg(dir);
      for (pid_t pid : processes_with_arg(arg)) {
        ADD_FAILURE() << "etcd " << pid << " of " << arg << " outlived its test";
        ::kill(pid, SIGKILL);
      }
    }
  }

  LocalEngineConfig base_config(const std::string& mnesia_dir) {
    LocalEngineConfig c;
    c.node_name = "alpha@127.0.0.1";
    c.mnesia_dir = mnesia_dir;
    c.etcd_binary = etcd_binary();
    c.ready_timeout = seconds(20);
    c.restart_backoff_min = milliseconds(50);
    c.restart_backoff_max = milliseconds(400);
    c.stop_grace = seconds(5);
    c.maintenance.interval = milliseconds(0);  // tests drive maintenance unless they say so
    c.log = recorder_.sink();
    c.space_alarm_listener = recorder_.alarm_listener();
    dirs_.push_back(mnesia_dir);
    return c;
  }

  static std::string data_dir_arg(const std::string& mnesia_dir) {
    std::error_code ignored;
    return (fs::weakly_canonical(fs::path(mnesia_dir) / "etcd", ignored) / "data").string();
  }

  // Opens `config` on fresh loopback ports; when a picked port was taken by another process
  // in the meantime, tries again with new ones. Other failures are returned.
  Result<std::unique_ptr<LocalEngine>> open(LocalEngineConfig config) {
    for (int attempt = 1;; ++attempt) {
      Result<std::vector<std::uint16_t>> ports = test::pick_free_loopback_ports(2);
      if (!ports.ok()) return ports.status();
      config.client_port = (*ports)[0];
      config.peer_port = (*ports)[1];
      Result<std::unique_ptr<LocalEngine>> engine = LocalEngine::open(config);
      if (engine.ok() || attempt == 3 ||
          engine.status().message().find("address already in use") == std::string::npos) {
        return engine;
      }
    }
  }

  std::unique_ptr<LocalEngine> open_ok(const LocalEngineConfig& config) {
    Result<std::unique_ptr<LocalEngine>> engine = open(config);
    EXPECT_TRUE(engine.ok()) << engine.status().to_string() << "\n" << recorder_.log();
    return engine.ok() ? std::move(engine).value() : nullptr;
  }

  // Stops the engine and checks that its etcd is gone.
  static void stop_and_check(std::unique_ptr<LocalEngine>& engine) {
    const pid_t pid = engine->member()->pid();
    engine->stop();
    EXPECT_TRUE(process_ended(pid)) << "etcd " << pid << " survived stop()";
    engine.reset();
  }

  std::optional<TempDir> tmp_;
  Recorder recorder_;
  LocalEngineConfig config_;
  std::vector<std::string> dirs_;
};

TEST_F(LocalEngineTest, FirstStartBootstrapsAndRecordsTheIdentity) {
  ASSERT_FALSE(fs::exists(config_.mnesia_dir));
  std::unique_ptr<LocalEngine> engine = open_ok(config_);
  ASSERT_NE(engine, nullptr);
  const Identity& id = engine->identity();
  EXPECT_EQ(id.node_name, config_.node_name);
  EXPECT_NE(id.member_id, 0u);
  EXPECT_NE(id.cluster_id, 0u);
  EXPECT_GT(id.created_unix_ms, 0);

  Result<std::optional<Identity>> stored = read_identity(config_.mnesia_dir);
  ASSERT_TRUE(stored.ok()) << stored.status().to_string();
  ASSERT_TRUE(stored->has_value());
  EXPECT_EQ(**stored, id);
  EXPECT_EQ(fs::status(config_.mnesia_dir).permissions() & fs::perms::all, fs::perms::owner_all);

  Result<EndpointStatus> status = engine->client().status("", in(seconds(5)));
  ASSERT_TRUE(status.ok()) << status.status().to_string();
  EXPECT_EQ(status->header.member_id, id.member_id);
  EXPECT_EQ(status->header.cluster_id, id.cluster_id);
  Result<std::vector<Member>> members = engine->client().member_list(in(seconds(5)));
  ASSERT_TRUE(members.ok()) << members.status().to_string();
  ASSERT_EQ(members->size(), 1u);
  EXPECT_EQ((*members)[0].id, id.member_id);
  EXPECT_EQ((*members)[0].name, config_.node_name);

  EXPECT_EQ(processes_with_arg("--data-dir=" + data_dir_arg(config_.mnesia_dir)),
            std::vector<pid_t>{engine->member()->pid()});
  EXPECT_TRUE(recorder_.logged("bootstrapped cluster")) << recorder_.log();
  stop_and_check(engine);
}

TEST_F(LocalEngineTest, BadConfigValuesAreRefusedAndCreateNothing) {
  const std::vector<std::pair<std::string, std::function<void(LocalEngineConfig&)>>> cases = {
      {"node_name", [](LocalEngineConfig& c) { c.node_name.clear(); }},
      {"mnesia_dir", [](LocalEngineConfig& c) { c.mnesia_dir.clear(); }},
      {"quota_backend_bytes", [](LocalEngineConfig& c) { c.quota_backend_bytes = 0; }},
      {"quota_backend_bytes",
       [](LocalEngineConfig& c) { c.quota_backend_bytes = kMaxQuotaBytes + 1; }},
      {"--quota-backend-bytes",
       [](LocalEngineConfig& c) { c.extra_etcd_args = {"--quota-backend-bytes=1"}; }},
      {"--data-dir", [](LocalEngineConfig& c) { c.extra_etcd_args = {"--data-dir=/tmp/x"}; }},
      {"--name",
       [](LocalEngineConfig& c) {
         c.extra_etcd_args = {"-name", "x"};
       }},
      {"defrag_ratio", [](LocalEngineConfig& c) { c.maintenance.defrag_ratio = 0.5; }},
      {"disarm_below_fraction",
       [](LocalEngineConfig& c) { c.maintenance.disarm_below_fraction = 0; }},
      {"compaction_min_step", [](LocalEngineConfig& c) { c.maintenance.compaction_min_step = 0; }},
      {"host", [](LocalEngineConfig& c) { c.host = "0.0.0.0"; }},  // EtcdMember's own check
  };
  for (const auto& [field, spoil] : cases) {
    SCOPED_TRACE(field);
    LocalEngineConfig c = config_;
    c.client_port = 40001;
    c.peer_port = 40002;
    spoil(c);
    Result<std::unique_ptr<LocalEngine>> opened = LocalEngine::open(c);
    ASSERT_FALSE(opened.ok());
    EXPECT_EQ(opened.status().code(), StatusCode::invalid_argument);
    EXPECT_NE(opened.status().message().find(field), std::string::npos)
        << opened.status().to_string();
    EXPECT_FALSE(fs::exists(config_.mnesia_dir));
  }
  // Accepted as they are: extra flags the engine does not own.
  config_.extra_etcd_args = {"--max-txn-ops=256", "--initial-election-tick-advance=false"};
  std::unique_ptr<LocalEngine> engine = open_ok(config_);
  ASSERT_NE(engine, nullptr);
  stop_and_check(engine);
}

TEST_F(LocalEngineTest, RestartReusesTheDirectory) {
  std::unique_ptr<LocalEngine> engine = open_ok(config_);
  ASSERT_NE(engine, nullptr);
  const Identity first = engine->identity();
  Result<Header> put = engine->client().put("/mishka/test/k", "kept", 0, in(seconds(5)));
  ASSERT_TRUE(put.ok()) << put.status().to_string();
  stop_and_check(engine);

  engine = open_ok(config_);  // other ports: the data, not the URLs, make the member
  ASSERT_NE(engine, nullptr);
  EXPECT_EQ(engine->identity(), first);
  Result<RangeResult> got = engine->client().range("/mishka/test/k", {}, in(seconds(5)));
  ASSERT_TRUE(got.ok()) << got.status().to_string();
  ASSERT_EQ(got->kvs.size(), 1u);
  EXPECT_EQ(got->kvs[0].value, "kept");
  EXPECT_EQ(got->header.cluster_id, first.cluster_id);
  EXPECT_EQ(got->header.member_id, first.member_id);
  EXPECT_GE(got->header.revision, put->revision);
  stop_and_check(engine);
}

TEST_F(LocalEngineTest, AnotherNodeNameTouchesNothing) {
  std::unique_ptr<LocalEngine> engine = open_ok(config_);
  ASSERT_NE(engine, nullptr);
  stop_and_check(engine);
  const auto before = hash_tree(config_.mnesia_dir);

  LocalEngineConfig other = config_;
  other.node_name = "beta@127.0.0.1";
  int member_events = 0;
  other.member_listener = [&](const MemberEvent&) { ++member_events; };
  Result<std::unique_ptr<LocalEngine>> opened = open(other);
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.status().code(), StatusCode::node_name_mismatch);
  EXPECT_NE(opened.status().message().find("alpha@127.0.0.1"), std::string::npos);
  EXPECT_NE(opened.status().message().find("beta@127.0.0.1"), std::string::npos);
  EXPECT_NE(opened.status().message().find(config_.mnesia_dir), std::string::npos);
  EXPECT_EQ(member_events, 0);
  EXPECT_EQ(hash_tree(config_.mnesia_dir), before);
  EXPECT_TRUE(processes_with_arg("--data-dir=" + data_dir_arg(config_.mnesia_dir)).empty());
}

TEST_F(LocalEngineTest, CorruptIdentityFileIsReportedAndNothingStarts) {
  std::unique_ptr<LocalEngine> engine = open_ok(config_);
  ASSERT_NE(engine, nullptr);
  stop_and_check(engine);
  const fs::path file = identity_path(config_.mnesia_dir);
  const std::string good = read_bytes(file);
  ASSERT_GT(good.size(), 16u);

  std::string flipped = good;
  flipped[flipped.size() / 2] = static_cast<char>(flipped[flipped.size() / 2] ^ 0x01);
  const std::vector<std::pair<std::string, std::string>> damages = {
      {"a flipped byte", flipped},
      {"truncated", good.substr(0, good.size() - 5)},
      {"empty", ""},
  };
  for (const auto& [what, bytes] : damages) {
    SCOPED_TRACE(what);
    write_bytes(file, bytes);
    const auto before = hash_tree(config_.mnesia_dir);
    LocalEngineConfig c = config_;
    int member_events = 0;
    c.member_listener = [&](const MemberEvent&) { ++member_events; };
    Result<std::unique_ptr<LocalEngine>> opened = open(c);
    ASSERT_FALSE(opened.ok());
    EXPECT_EQ(opened.status().code(), StatusCode::corrupt) << opened.status().to_string();
    EXPECT_NE(opened.status().message().find(file.string()), std::string::npos)
        << opened.status().to_string();
    EXPECT_EQ(member_events, 0);
    EXPECT_EQ(hash_tree(config_.mnesia_dir), before);
    EXPECT_TRUE(processes_with_arg("--data-dir=" + data_dir_arg(config_.mnesia_dir)).empty());
  }

  // No identity file next to etcd data: whose data it is cannot be told.
  fs::remove(file);
  Result<std::unique_ptr<LocalEngine>> opened = open(config_);
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.status().code(), StatusCode::corrupt);
  EXPECT_NE(opened.status().message().find(file.string()), std::string::npos);
  EXPECT_FALSE(fs::exists(file));

  // An identity with recorded ids but no etcd data: never bootstrap a new cluster over it.
  write_bytes(file, good);
  fs::remove_all(fs::path(config_.mnesia_dir) / "etcd" / "data");
  opened = open(config_);
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.status().code(), StatusCode::corrupt);
  EXPECT_NE(opened.status().message().find("missing"), std::string::npos);
  EXPECT_FALSE(fs::exists(fs::path(config_.mnesia_dir) / "etcd" / "data"));
  EXPECT_TRUE(processes_with_arg("--data-dir=" + data_dir_arg(config_.mnesia_dir)).empty());
}

TEST_F(LocalEngineTest, EtcdDataOfAnotherClusterIsCorrupt) {
  std::unique_ptr<LocalEngine> engine = open_ok(config_);
  ASSERT_NE(engine, nullptr);
  const Identity mine = engine->identity();
  stop_and_check(engine);

  // Another directory of the same node name bootstraps a cluster of its own ...
  LocalEngineConfig other = base_config((tmp_->path() / "other").string());
  engine = open_ok(other);
  ASSERT_NE(engine, nullptr);
  const Identity theirs = engine->identity();
  stop_and_check(engine);
  ASSERT_NE(mine.cluster_id, theirs.cluster_id);

  // ... and its etcd data ends up in ours.
  const fs::path data = fs::path(config_.mnesia_dir) / "etcd" / "data";
  fs::remove_all(data);
  fs::copy(fs::path(other.mnesia_dir) / "etcd" / "data", data, fs::copy_options::recursive);
  Result<std::unique_ptr<LocalEngine>> opened = open(config_);
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.status().code(), StatusCode::corrupt) << opened.status().to_string();
  char mine_hex[19];
  char theirs_hex[19];
  std::snprintf(mine_hex, sizeof mine_hex, "0x%016llx",
                static_cast<unsigned long long>(mine.cluster_id));
  std::snprintf(theirs_hex, sizeof theirs_hex, "0x%016llx",
                static_cast<unsigned long long>(theirs.cluster_id));
  EXPECT_NE(opened.status().message().find(mine_hex), std::string::npos);
  EXPECT_NE(opened.status().message().find(theirs_hex), std::string::npos);
  EXPECT_NE(opened.status().message().find(identity_path(config_.mnesia_dir)), std::string::npos);
  // The identity file still says what it said.
  Result<std::optional<Identity>> stored = read_identity(config_.mnesia_dir);
  ASSERT_TRUE(stored.ok() && stored->has_value());
  EXPECT_EQ(**stored, mine);
  EXPECT_TRUE(processes_with_arg("--data-dir=" + data_dir_arg(config_.mnesia_dir)).empty());
}

TEST_F(LocalEngineTest, CompactionKeepsTheHistoryBounded) {
  config_.maintenance.interval = milliseconds(100);
  config_.maintenance.retention_revisions = 1000;
  config_.maintenance.compaction_min_step = 100;
  std::unique_ptr<LocalEngine> engine = open_ok(config_);
  ASSERT_NE(engine, nullptr);

  // 20k puts of one key from 8 writers.
  constexpr int kWriters = 8;
  constexpr int kPutsEach = 2500;
  const auto began = std::chrono::steady_clock::now();
  std::atomic<int> failures{0};
  std::atomic<std::int64_t> max_compacted_during{0};
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      for (int i = 0; i < kPutsEach; ++i) {
        Result<Header> put = engine->client().put(
            "/mishka/test/hot", std::to_string(w * kPutsEach + i), 0, in(seconds(10)));
        if (!put.ok()) ++failures;
        if (w == 0 && i % 100 == 0) max_compacted_during.store(engine->compacted_revision());
      }
    });
  }
  for (std::thread& t : writers) t.join();
  const auto took = std::chrono::steady_clock::now() - began;
  EXPECT_EQ(failures.load(), 0);
  EXPECT_LT(took, seconds(90));

  Result<MaintenanceReport> report = engine->run_maintenance_once();
  ASSERT_TRUE(report.ok()) << report.status().to_string();
  const std::int64_t revision = report->revision;
  const std::int64_t compacted = engine->compacted_revision();
  EXPECT_GE(revision, kWriters * kPutsEach);
  EXPECT_GT(max_compacted_during.load(), 0) << "no compaction while the puts ran";
  EXPECT_GE(compacted, revision - 1000 - 100);
  EXPECT_LE(compacted, revision - 1000);

  // History before the compact revision is gone; the last 1000 revisions are there.
  WatchOptions from_start;
  from_start.key = "/mishka/test/hot";
  from_start.start_revision = 1;
  Result<std::unique_ptr<WatchStream>> watch = engine->client().watch(from_start);
  Status watched = watch.status();
  if (watch.ok()) watched = (*watch)->next().status();
  EXPECT_EQ(watched.code(), StatusCode::compacted) << watched.to_string();
  EXPECT_NE(watched.message().find("compact revision"), std::string::npos) << watched.to_string();
  Result<RangeResult> old =
      engine->client().range("/mishka/test/hot", at_revision(compacted - 1), in(seconds(5)));
  EXPECT_EQ(old.status().code(), StatusCode::compacted) << old.status().to_string();
  Result<RangeResult> kept =
      engine->client().range("/mishka/test/hot", at_revision(revision - 999), in(seconds(5)));
  EXPECT_TRUE(kept.ok()) << kept.status().to_string();
  std::printf("compaction: %d puts in %lld ms; revision %lld, compacted to %lld\n",
              kWriters * kPutsEach,
              static_cast<long long>(std::chrono::duration_cast<milliseconds>(took).count()),
              static_cast<long long>(revision), static_cast<long long>(compacted));
  stop_and_check(engine);
}

TEST_F(LocalEngineTest, CompactionByTimeKeepsTheWindow) {
  config_.maintenance.retention_revisions = 0;
  config_.maintenance.retention_time = milliseconds(400);
  config_.maintenance.compaction_min_step = 1;
  std::unique_ptr<LocalEngine> engine = open_ok(config_);
  ASSERT_NE(engine, nullptr);
  auto put_some = [&] {
    for (int i = 0; i < 10; ++i) {
      ASSERT_TRUE(
          engine->client().put("/mishka/test/t", std::to_string(i), 0, in(seconds(5))).ok());
    }
  };
  put_some();
  Result<MaintenanceReport> first = engine->run_maintenance_once();
  ASSERT_TRUE(first.ok()) << first.status().to_string();
  EXPECT_EQ(first->compacted_to, 0);  // nothing is 400 ms old yet
  put_some();
  Result<MaintenanceReport> early = engine->run_maintenance_once();
  ASSERT_TRUE(early.ok()) << early.status().to_string();
  EXPECT_EQ(early->compacted_to, 0);

  std::this_thread::sleep_for(milliseconds(500));
  put_some();
  Result<MaintenanceReport> later = engine->run_maintenance_once();
  ASSERT_TRUE(later.ok()) << later.status().to_string();
  // The newest revision seen at least 400 ms ago: the one of the second run.
  EXPECT_EQ(later->compacted_to, early->revision);
  EXPECT_EQ(engine->compacted_revision(), early->revision);
  stop_and_check(engine);
}

TEST_F(LocalEngineTest, DefragmentsWhenTheThresholdsAreMet) {
  config_.maintenance.retention_revisions = 1;
  config_.maintenance.compaction_min_step = 1;
  config_.maintenance.defrag_ratio = 1.5;
  config_.maintenance.defrag_min_free_bytes = 1 << 20;
  config_.maintenance.defrag_min_interval = milliseconds(0);
  std::unique_ptr<LocalEngine> engine = open_ok(config_);
  ASSERT_NE(engine, nullptr);

  const std::string value(100 * 1024, 'x');
  for (int i = 0; i < 60; ++i) {
    Result<Header> put =
        engine->client().put("/mishka/test/big/" + std::to_string(i), value, 0, in(seconds(5)));
    ASSERT_TRUE(put.ok()) << put.status().to_string();
  }
  // Everything is in use: no defragmentation.
  Result<MaintenanceReport> report = engine->run_maintenance_once();
  ASSERT_TRUE(report.ok()) << report.status().to_string();
  EXPECT_FALSE(report->defragmented);
  EXPECT_EQ(engine->defragment_count(), 0);

  // Deleted and compacted away, the space is free but the file keeps its size. etcd counts
  // the freed pages only after a few more backend commits, so writes go on meanwhile (as they
  // would in production), and a later run defragments.
  Result<std::int64_t> erased = engine->client().erase(
      "/mishka/test/big/", prefix_range_end("/mishka/test/big/"), in(seconds(5)));
  ASSERT_TRUE(erased.ok()) << erased.status().to_string();
  EXPECT_EQ(*erased, 60);
  std::int64_t compacted_to = 0;
  const Deadline give_up = in(seconds(15));
  int runs = 0;
  do {
    ASSERT_TRUE(
        engine->client().put("/mishka/test/marker", std::to_string(runs), 0, in(seconds(5))).ok());
    std::this_thread::sleep_for(milliseconds(150));
    report = engine->run_maintenance_once();
    ASSERT_TRUE(report.ok()) << report.status().to_string();
    compacted_to = std::max(compacted_to, report->compacted_to);
    ++runs;
  } while (!report->defragmented && !give_up.expired());
  EXPECT_GT(compacted_to, 0);
  ASSERT_TRUE(report->defragmented) << recorder_.log();
  EXPECT_EQ(engine->defragment_count(), 1);
  EXPECT_GE(report->db_size_before, 6 << 20);
  EXPECT_LT(report->db_size_after, report->db_size_before / 2);
  std::printf("defragmentation: after %d runs, %lld -> %lld bytes\n", runs,
              static_cast<long long>(report->db_size_before),
              static_cast<long long>(report->db_size_after));
  Result<EndpointStatus> status = engine->client().status("", in(seconds(5)));
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(status->db_size, report->db_size_after);
  EXPECT_TRUE(recorder_.logged("defragmented etcd's database")) << recorder_.log();

  // Nothing left to reclaim: no second one.
  report = engine->run_maintenance_once();
  ASSERT_TRUE(report.ok()) << report.status().to_string();
  EXPECT_FALSE(report->defragmented);
  EXPECT_EQ(engine->defragment_count(), 1);
  stop_and_check(engine);
}

TEST_F(LocalEngineTest, SpaceQuotaAlarmIsRaisedAndDisarmedAutomatically) {
  config_.quota_backend_bytes = 16 << 20;
  config_.maintenance.interval = milliseconds(200);
  // bbolt grows its file in steps, so the file that hits the quota may be mostly slack, and a
  // defragmentation alone may bring it under 90% of the quota (then the engine rightly disarms
  // without any delete). Under 4 MiB it cannot get while the data written stays.
  config_.maintenance.disarm_below_fraction = 0.25;
  std::unique_ptr<LocalEngine> engine = open_ok(config_);
  ASSERT_NE(engine, nullptr);

  // Fill the quota.
  const std::string value(512 * 1024, 'q');
  Status refused;
  int written = 0;
  for (int i = 0; i < 100 && refused.ok(); ++i) {
    Result<Header> put =
        engine->client().put("/mishka/test/fill/" + std::to_string(i), value, 0, in(seconds(5)));
    if (put.ok()) {
      ++written;
    } else {
      refused = put.status();
    }
  }
  ASSERT_EQ(refused.code(), StatusCode::space_exceeded) << refused.to_string();
  ASSERT_GT(written, 10);  // over 5 MiB of live data

  // Reported by the maintenance thread: log, listener, flag.
  ASSERT_TRUE(recorder_.wait_for_alarms(1, seconds(10))) << recorder_.log();
  EXPECT_EQ(recorder_.alarms()[0].kind, SpaceAlarmEvent::Kind::raised);
  EXPECT_EQ(recorder_.alarms()[0].quota, 16 << 20);
  EXPECT_TRUE(engine->space_alarm());
  EXPECT_TRUE(recorder_.logged("SPACE ALARM")) << recorder_.log();
  Result<Header> small = engine->client().put("/mishka/test/small", "x", 0, in(seconds(5)));
  EXPECT_EQ(small.status().code(), StatusCode::space_exceeded) << small.status().to_string();
  // The alarm stays while the data fills the quota, however often maintenance runs.
  std::this_thread::sleep_for(milliseconds(500));
  EXPECT_TRUE(engine->space_alarm()) << recorder_.log();
  EXPECT_EQ(recorder_.alarms().size(), 1u);

  // Deleting is allowed under the alarm; maintenance compacts, defragments and disarms.
  Result<std::int64_t> erased = engine->client().erase(
      "/mishka/test/fill/", prefix_range_end("/mishka/test/fill/"), in(seconds(5)));
  ASSERT_TRUE(erased.ok()) << erased.status().to_string();
  EXPECT_EQ(*erased, written);
  ASSERT_TRUE(recorder_.wait_for_alarms(2, seconds(15))) << recorder_.log();
  EXPECT_EQ(recorder_.alarms()[1].kind, SpaceAlarmEvent::Kind::cleared);
  EXPECT_FALSE(engine->space_alarm());
  EXPECT_GE(engine->defragment_count(), 1);
  Result<std::vector<Alarm>> alarms = engine->client().alarms(in(seconds(5)));
  ASSERT_TRUE(alarms.ok());
  EXPECT_TRUE(alarms->empty());

  Result<Header> again = engine->client().put("/mishka/test/small", "x", 0, in(seconds(5)));
  EXPECT_TRUE(again.ok()) << again.status().to_string();
  if (std::getenv("MISHKA_TEST_VERBOSE") != nullptr) std::printf("%s", recorder_.log().c_str());
  stop_and_check(engine);
}

TEST_F(LocalEngineTest, KilledMemberRestartsAndNoAcknowledgedPutIsLost) {
  std::unique_ptr<LocalEngine> engine = open_ok(config_);
  ASSERT_NE(engine, nullptr);

  using Clock = std::chrono::steady_clock;
  std::mutex mu;
  std::vector<std::pair<std::string, Clock::time_point>> acked;  // key, when acknowledged
  std::atomic<bool> stop_writing{false};
  std::thread writer([&] {
    for (int i = 0; !stop_writing.load(); ++i) {
      const std::string key = "/mishka/test/acked/" + std::to_string(i);
      if (engine->client().put(key, std::to_string(i), 0, in(seconds(3))).ok()) {
        std::lock_guard<std::mutex> lock(mu);
        acked.emplace_back(key, Clock::now());
      }
    }
  });
  auto acked_count = [&] {
    std::lock_guard<std::mutex> lock(mu);
    return acked.size();
  };
  auto acked_after = [&](Clock::time_point t) {
    std::lock_guard<std::mutex> lock(mu);
    return std::count_if(acked.begin(), acked.end(), [&](const auto& a) { return a.second > t; });
  };

  const bool warmed = eventually([&] { return acked_count() >= 200; }, seconds(20));
  const pid_t first = engine->member()->pid();
  const Clock::time_point killed = Clock::now();
  if (warmed) ::kill(first, SIGKILL);
  const bool resumed =
      warmed && eventually([&] { return acked_after(killed) >= 100; }, seconds(30));
  stop_writing = true;
  writer.join();
  ASSERT_TRUE(warmed) << recorder_.log();
  ASSERT_TRUE(resumed) << recorder_.log();

  Clock::time_point first_after = Clock::time_point::max();
  {
    std::lock_guard<std::mutex> lock(mu);
    for (const auto& a : acked) {
      if (a.second > killed) first_after = std::min(first_after, a.second);
    }
  }
  const auto resume_ms = std::chrono::duration_cast<milliseconds>(first_after - killed).count();
  EXPECT_LT(resume_ms, 15000);
  EXPECT_EQ(engine->member()->restart_count(), 1);
  EXPECT_TRUE(process_ended(first));
  EXPECT_NE(engine->member()->pid(), first);

  Result<RangeResult> all = engine->client().range(
      "/mishka/test/acked/", keys_under("/mishka/test/acked/"), in(seconds(10)));
  ASSERT_TRUE(all.ok()) << all.status().to_string();
  std::vector<std::string> present;
  for (const KeyValue& kv : all->kvs) present.push_back(kv.key);
  std::sort(present.begin(), present.end());
  std::size_t missing = 0;
  for (const auto& a : acked) {
    if (!std::binary_search(present.begin(), present.end(), a.first)) {
      ++missing;
      ADD_FAILURE() << "acknowledged " << a.first << " is missing";
      if (missing > 10) break;
    }
  }
  std::printf("kill under puts: %zu acknowledged, puts resumed %lld ms after SIGKILL\n",
              acked.size(), static_cast<long long>(resume_ms));
  stop_and_check(engine);
}

}  // namespace
}  // namespace mishka::engine
