// Chaos, process level (issue 4): three nodes of one cluster, each a writer process
// (tests/node/crash_writer.cc) that runs its node on its own directory and logs every key it had
// acknowledged. For at least a minute a seeded random schedule picks a node every 2 to 5 s and
// either kills its process with SIGKILL (its etcd must die with it) and restarts it from its
// directory 1 to 3 s later, or freezes the process and its etcd with SIGSTOP and thaws both with
// SIGCONT 1 to 4 s later. One node at most is down at a time (a restarted node counts as down
// until it is ready again), so the other two keep a quorum and writes go on.
//
// At the end every process is stopped with SIGTERM and must exit 0, and no etcd may be left. The
// three directories, opened again as a cluster in this process, must converge on one digest (the
// digest of a fresh rebuild from etcd too) and hold every acknowledged key on every node.
//
// MISHKA_CHAOS_SECONDS (default 60) and MISHKA_CHAOS_SEED (default: random, printed) repeat a
// run; each action is printed with its time.

#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "cluster_harness.h"
#include "support/child_process.h"
#include "support/temp_dir.h"

namespace mishka::test {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using std::chrono::seconds;
using Clock = std::chrono::steady_clock;

constexpr int kNodes = 3;
constexpr int kDefaultChaosSeconds = 60;
constexpr int kWriterThreads = 2;
constexpr char kTable[] = "chaos";
// Enough that the test cannot pass without the cluster doing real work under the faults.
constexpr std::size_t kMinAcknowledged = 500;
constexpr int kMinKills = 3;
constexpr int kMinStops = 3;
// A (re)start of a writer: etcd, a join or catching up, the table.
constexpr milliseconds kReadyTimeout{90000};
// Starts of a node (or reopenings of the cluster) tried when a port is taken (see port_taken()).
constexpr int kStartAttempts = 4;
// SIGTERM to exit: the writers' calls in flight (10 s at most each), then the node's stop.
constexpr milliseconds kStopTimeout{30000};

int env_int(const char* name, int fallback) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? std::atoi(value) : fallback;
}

// Prints one line of the run's story, stamped with the seconds since the test began.
class EventLog {
 public:
  void say(const std::string& line) const {
    const double at = std::chrono::duration<double>(Clock::now() - began_).count();
    std::printf("[chaos %7.2f s] %s\n", at, line.c_str());
    std::fflush(stdout);
  }

 private:
  Clock::time_point began_ = Clock::now();
};

// One node: a writer process on its own directory. Each start gets a new run number, so its keys
// and its ack file are its own.
struct NodeProcess {
  std::string label;  // "n<i>"
  std::string name;   // n<i>@127.0.0.1:<client port>
  fs::path dir;
  std::uint16_t client_port = 0;
  std::uint16_t peer_port = 0;
  std::vector<std::string> peers;
  fs::path log_path;
  fs::path ready_path;
  std::vector<fs::path> ack_files;  // one per start, the current one last
  std::optional<ChildProcess> process;
  pid_t frozen_etcd = 0;  // an etcd this test stopped with SIGSTOP and has not resumed yet

  bool running() { return process.has_value() && !process->poll().has_value(); }
  std::string log_tail() const { return tail_of_file(log_path.string()); }
};

std::string join_commas(const std::vector<std::string>& parts) {
  std::string joined;
  for (const std::string& part : parts) joined += (joined.empty() ? "" : ",") + part;
  return joined;
}

// True when `output` says a listener could not bind its port. The ports come from the kernel's
// picks for port 0, which lie in the range it also hands out to outgoing connections: while a
// killed node is down, any connection on the machine may take one of its ports for a while.
bool port_taken(const std::string& output) {
  return output.find("address already in use") != std::string::npos;
}

// The node processes of the test, stopped by pid whatever way the test ends: SIGCONT for what it
// froze, then SIGTERM to every writer at once, SIGKILL after a grace period.
class NodeProcesses {
 public:
  explicit NodeProcesses(const fs::path& root) : root_(root) {
    Result<std::vector<std::uint16_t>> ports = pick_free_loopback_ports(2 * kNodes);
    if (!ports.ok()) {
      std::fprintf(stderr, "no free loopback ports: %s\n", ports.status().to_string().c_str());
      std::abort();
    }
    fs::create_directories(root / "acks");
    for (int i = 0; i < kNodes; ++i) {
      NodeProcess n;
      n.label = "n" + std::to_string(i);
      n.client_port = (*ports)[2 * i];
      n.peer_port = (*ports)[2 * i + 1];
      n.name = n.label + "@127.0.0.1:" + std::to_string(n.client_port);
      n.dir = root / ("node" + std::to_string(i));
      // The seed has no peers; each joiner joins through the nodes before it.
      for (const NodeProcess& before : nodes_) n.peers.push_back(before.name);
      n.log_path = root / (n.label + ".log");
      n.ready_path = root / (n.label + ".ready");
      nodes_.push_back(std::move(n));
    }
  }
  ~NodeProcesses() { stop_all(milliseconds(10000)); }
  NodeProcesses(const NodeProcesses&) = delete;
  NodeProcesses& operator=(const NodeProcesses&) = delete;

  NodeProcess& operator[](int i) { return nodes_.at(i); }

  // Spawns node i's writer (from the test's thread, which outlives it: see child_process.h).
  Status start(int i) {
    NodeProcess& n = nodes_.at(i);
    std::error_code ignored;
    fs::remove(n.ready_path, ignored);
    const std::string run = std::to_string(n.ack_files.size());
    n.ack_files.push_back(root_ / "acks" / (n.label + "." + run));
    SpawnOptions spawn;
    spawn.program = MISHKA_CRASH_WRITER;
    spawn.args = {"--dir",         n.dir.string(),
                  "--name",        n.name,
                  "--client-port", std::to_string(n.client_port),
                  "--peer-port",   std::to_string(n.peer_port),
                  "--ack-file",    n.ack_files.back().string(),
                  "--etcd",        etcd_binary(),
                  "--table",       kTable,
                  "--threads",     std::to_string(kWriterThreads),
                  "--run",         run,
                  "--ready-file",  n.ready_path.string()};
    if (!n.peers.empty()) {
      spawn.args.insert(spawn.args.end(), {"--peers", join_commas(n.peers)});
    }
    spawn.log_path = n.log_path.string();
    Result<ChildProcess> child = ChildProcess::spawn(spawn);
    if (!child.ok()) return child.status();
    n.process.emplace(std::move(child).value());
    return Status::Ok();
  }

  // True once node i's writer said it is ready; false when it exited or the time is up.
  bool wait_ready(int i, milliseconds timeout) {
    NodeProcess& n = nodes_.at(i);
    return eventually([&] { return fs::exists(n.ready_path) || !n.running(); }, timeout) &&
           n.running();
  }

  // Node i's etcd: the pid its member's pid file names, if a live process of that pid runs on
  // the node's etcd data directory; 0 otherwise.
  pid_t etcd_pid(int i) const {
    const NodeProcess& n = nodes_.at(i);
    const pid_t pid =
        static_cast<pid_t>(std::atol(read_bytes(n.dir / "etcd" / "etcd.pid").c_str()));
    const std::vector<pid_t> etcds = processes_mentioning(etcd_data_dir_of(n.dir));
    return pid > 0 && std::find(etcds.begin(), etcds.end(), pid) != etcds.end() ? pid : 0;
  }

  // Resumes what was frozen, sends SIGTERM to every writer still running, and waits for each
  // up to `grace` (then SIGKILL). Returns how each ended (nullopt: it was not running).
  std::vector<std::optional<ExitInfo>> stop_all(milliseconds grace) {
    for (NodeProcess& n : nodes_) {
      if (n.frozen_etcd > 0) ::kill(n.frozen_etcd, SIGCONT);
      n.frozen_etcd = 0;
      if (n.running()) {
        (void)n.process->signal(SIGCONT);
        (void)n.process->signal(SIGTERM);
      }
    }
    std::vector<std::optional<ExitInfo>> exits;
    const auto deadline = Clock::now() + grace;
    for (NodeProcess& n : nodes_) {
      if (!n.process) {
        exits.emplace_back();
        continue;
      }
      const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
      std::optional<ExitInfo> exit = n.process->wait_for(std::max(left, milliseconds(0)));
      exits.push_back(exit ? *exit : n.process->stop(milliseconds(0)));
      n.process.reset();
    }
    return exits;
  }

 private:
  fs::path root_;
  std::vector<NodeProcess> nodes_;
};

std::vector<std::string> acknowledged_keys(NodeProcesses& nodes) {
  std::vector<std::string> keys;
  for (int i = 0; i < kNodes; ++i) {
    for (const fs::path& file : nodes[i].ack_files) {
      const std::vector<std::string> lines = complete_lines(file);
      keys.insert(keys.end(), lines.begin(), lines.end());
    }
  }
  return keys;
}

// Starts node i's writer and waits until it is ready; a start that failed on a port taken
// meanwhile is tried again.
void start_until_ready(NodeProcesses& nodes, int i, const EventLog& log) {
  NodeProcess& n = nodes[i];
  for (int attempt = 1;; ++attempt) {
    const std::size_t logged_before = read_bytes(n.log_path).size();
    ASSERT_TRUE(nodes.start(i).ok());
    log.say("started " + n.label + " (pid " + std::to_string(n.process->pid()) + ")");
    if (nodes.wait_ready(i, kReadyTimeout)) return;
    const bool retry = attempt < kStartAttempts && !n.running() &&
                       port_taken(read_bytes(n.log_path).substr(logged_before));
    ASSERT_TRUE(retry) << n.label << " did not become ready:\n" << n.log_tail();
    log.say(n.label + " found a port of its own taken; starting it again in 2 s");
    std::this_thread::sleep_for(milliseconds(2000));
  }
}

// SIGKILL of node i's process: its etcd must go with it. The node is started again from its
// directory 1 to 3 s later, and this returns once it is ready.
void kill_and_restart(NodeProcesses& nodes, int i, std::mt19937& random, const EventLog& log) {
  NodeProcess& n = nodes[i];
  const pid_t etcd = nodes.etcd_pid(i);
  ASSERT_GT(etcd, 0) << n.label << " runs no etcd:\n" << n.log_tail();
  log.say("SIGKILL " + n.label + " (pid " + std::to_string(n.process->pid()) + ", etcd pid " +
          std::to_string(etcd) + ")");
  ASSERT_TRUE(n.process->signal(SIGKILL).ok());
  const std::optional<ExitInfo> exit = n.process->wait_for(milliseconds(10000));
  ASSERT_TRUE(exit.has_value()) << n.label << " was not reaped after SIGKILL";
  EXPECT_TRUE(exit->signaled && exit->code == SIGKILL) << n.label << ": " << exit->to_string();
  // Its command line empties before a dying process ends: wait for both.
  ASSERT_TRUE(eventually([&] { return process_ended(etcd); }, milliseconds(5000)))
      << n.label << "'s etcd, pid " << etcd << ", outlived its node process";
  ASSERT_TRUE(no_process_mentions(etcd_data_dir_of(n.dir), milliseconds(5000)))
      << "an etcd of " << n.label << " outlived its node process";
  log.say(n.label + " is gone, and so is its etcd");

  std::this_thread::sleep_for(milliseconds(std::uniform_int_distribution<int>(1000, 3000)(random)));
  const auto restarted = Clock::now();
  ASSERT_NO_FATAL_FAILURE(start_until_ready(nodes, i, log));
  log.say(
      n.label + " is ready again after " +
      std::to_string(std::chrono::duration_cast<milliseconds>(Clock::now() - restarted).count()) +
      " ms");
}

// SIGSTOP of node i's process and then of its etcd; 1 to 4 s later SIGCONT of both.
void freeze_and_thaw(NodeProcesses& nodes, int i, std::mt19937& random, const EventLog& log) {
  NodeProcess& n = nodes[i];
  // The process first: its member's supervisor then cannot replace etcd under us.
  ASSERT_TRUE(n.process->signal(SIGSTOP).ok());
  const pid_t etcd = nodes.etcd_pid(i);
  ASSERT_GT(etcd, 0) << n.label << " runs no etcd to stop:\n" << n.log_tail();
  ASSERT_EQ(::kill(etcd, SIGSTOP), 0);
  n.frozen_etcd = etcd;
  const int frozen_ms = std::uniform_int_distribution<int>(1000, 4000)(random);
  log.say("SIGSTOP " + n.label + " (pid " + std::to_string(n.process->pid()) + ", etcd pid " +
          std::to_string(etcd) + ") for " + std::to_string(frozen_ms) + " ms");
  std::this_thread::sleep_for(milliseconds(frozen_ms));
  ASSERT_EQ(::kill(etcd, SIGCONT), 0);
  n.frozen_etcd = 0;
  ASSERT_TRUE(n.process->signal(SIGCONT).ok());
  log.say("SIGCONT " + n.label);
}

// Every node process must still run: none may exit on its own under the faults.
void expect_all_running(NodeProcesses& nodes) {
  for (int i = 0; i < kNodes; ++i) {
    ASSERT_TRUE(nodes[i].running())
        << nodes[i].label << " exited on its own: " << nodes[i].process->poll()->to_string() << "\n"
        << nodes[i].log_tail();
  }
}

TEST(Chaos, KillsAndStopsOfNodeProcessesLoseNoAcknowledgedWrite) {
  const int chaos_seconds = std::max(env_int("MISHKA_CHAOS_SECONDS", kDefaultChaosSeconds), 1);
  const unsigned seed = env_int("MISHKA_CHAOS_SEED", 0) != 0
                            ? static_cast<unsigned>(env_int("MISHKA_CHAOS_SEED", 0))
                            : std::random_device{}();
  std::printf("chaos test: %d s, MISHKA_CHAOS_SEED=%u\n", chaos_seconds, seed);
  std::mt19937 random(seed);
  Watchdog watchdog(seconds(180 + chaos_seconds));
  const EventLog log;

  Result<TempDir> tmp = TempDir::Create("mishka-chaos-");
  ASSERT_TRUE(tmp.ok()) << tmp.status().to_string();
  NodeProcesses nodes(tmp->path());

  // The seed first (it creates the table), then each joiner once the one before is in.
  for (int i = 0; i < kNodes; ++i) {
    ASSERT_NO_FATAL_FAILURE(start_until_ready(nodes, i, log));
    log.say(nodes[i].label + " (" + nodes[i].name + ") is ready");
  }

  // Kills and stops come in pairs of random order, so that both reach their minimum.
  const auto chaos_end = Clock::now() + seconds(chaos_seconds);
  std::vector<bool> kill_bag;
  int kills = 0;
  int stops = 0;
  while (Clock::now() < chaos_end || kills < kMinKills || stops < kMinStops) {
    std::this_thread::sleep_for(
        milliseconds(std::uniform_int_distribution<int>(2000, 5000)(random)));
    ASSERT_NO_FATAL_FAILURE(expect_all_running(nodes));
    if (kill_bag.empty()) {
      kill_bag = {true, false};
      std::shuffle(kill_bag.begin(), kill_bag.end(), random);
    }
    const bool kill = kill_bag.back();
    kill_bag.pop_back();
    const int i = std::uniform_int_distribution<int>(0, kNodes - 1)(random);
    if (kill) {
      ASSERT_NO_FATAL_FAILURE(kill_and_restart(nodes, i, random, log));
      ++kills;
    } else {
      ASSERT_NO_FATAL_FAILURE(freeze_and_thaw(nodes, i, random, log));
      ++stops;
    }
    log.say(std::to_string(acknowledged_keys(nodes).size()) + " writes acknowledged so far");
  }
  log.say("chaos over: " + std::to_string(kills) + " kills, " + std::to_string(stops) + " stops");

  // Every node writes again (its current run acknowledges), then 2 s more.
  ASSERT_NO_FATAL_FAILURE(expect_all_running(nodes));
  for (int i = 0; i < kNodes; ++i) {
    ASSERT_TRUE(eventually([&] { return !complete_lines(nodes[i].ack_files.back()).empty(); },
                           milliseconds(30000)))
        << nodes[i].label << " acknowledges no write after the chaos:\n"
        << nodes[i].log_tail();
  }
  std::this_thread::sleep_for(milliseconds(2000));

  const std::vector<std::optional<ExitInfo>> exits = nodes.stop_all(kStopTimeout);
  for (int i = 0; i < kNodes; ++i) {
    ASSERT_TRUE(exits[i].has_value()) << nodes[i].label;
    EXPECT_TRUE(!exits[i]->signaled && exits[i]->code == 0)
        << nodes[i].label << " did not stop cleanly on SIGTERM: " << exits[i]->to_string() << "\n"
        << nodes[i].log_tail();
  }
  log.say("every node process stopped");
  for (int i = 0; i < kNodes; ++i) {
    EXPECT_TRUE(no_process_mentions(etcd_data_dir_of(nodes[i].dir), milliseconds(10000)))
        << "an etcd of " << nodes[i].label << " outlived its node process";
  }
  EXPECT_TRUE(no_process_mentions(tmp->path().string(), milliseconds(5000)))
      << "a process still runs on " << tmp->path();

  const std::vector<std::string> acked = acknowledged_keys(nodes);
  std::printf("chaos test: %zu acknowledged writes, %d kills, %d stops\n", acked.size(), kills,
              stops);
  EXPECT_GT(acked.size(), kMinAcknowledged);

  // The three directories, opened again together as a cluster in this process.
  ClusterHarness cluster;
  std::vector<int> all;
  for (int i = 0; i < kNodes; ++i) {
    all.push_back(
        cluster.adopt(nodes[i].dir, nodes[i].name, nodes[i].client_port, nodes[i].peer_port));
  }
  Status reopened = cluster.restart_together(all);
  for (int attempt = 1; !reopened.ok() && attempt < kStartAttempts; ++attempt) {
    ASSERT_TRUE(port_taken(reopened.message())) << reopened.to_string();
    log.say("a reopened node found a port of its own taken; opening it again in 2 s");
    std::this_thread::sleep_for(milliseconds(2000));
    std::vector<int> stopped;
    for (int i : all) {
      if (!cluster.running(i)) stopped.push_back(i);
    }
    reopened = cluster.restart_together(stopped);
  }
  ASSERT_TRUE(reopened.ok()) << reopened.to_string();
  const Result<std::string> digest = cluster.converge(milliseconds(60000));
  ASSERT_TRUE(digest.ok()) << digest.status().to_string();
  log.say("the reopened nodes converged on digest " + digest->substr(0, 16));
  for (int i : all) {
    const std::vector<std::string> missing = missing_keys(cluster.node(i), kTable, acked);
    EXPECT_TRUE(missing.empty()) << cluster.name(i) << " lacks " << missing.size() << " of "
                                 << acked.size() << " acknowledged keys, e.g. " << missing.front();
    const Result<DigestAt> fresh = fresh_rebuild_digest(cluster.node(i));
    ASSERT_TRUE(fresh.ok()) << fresh.status().to_string();
    EXPECT_EQ(fresh->digest_hex, *digest)
        << cluster.name(i) << ": the replicas differ from a rebuild from etcd";
  }
}

}  // namespace
}  // namespace mishka::test
