// Crash safety, process level (issue 3): a writer process (crash_writer.cc) runs a node on a
// directory and logs every acknowledged key; it is killed with SIGKILL at random moments, at
// least 20 times, each time restarted on the same directory. After each kill: no etcd of the
// directory is left, and a node opened on the directory holds every acknowledged key with the
// digest of a fresh rebuild from etcd.
//
// MISHKA_CRASH_KILLS (default 20) and MISHKA_CRASH_SEED (default: random, printed) repeat a run.

#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "engine/child_process.h"
#include "engine/deadline.h"
#include "node_support.h"
#include "store/local_node.h"
#include "support/temp_dir.h"

namespace mishka::store {
namespace {

namespace fs = std::filesystem;
using engine::ChildProcess;
using engine::Deadline;
using std::chrono::milliseconds;
using std::chrono::seconds;
using Clock = std::chrono::steady_clock;

int env_int(const char* name, int fallback) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? std::atoi(value) : fallback;
}

// Opens a node on the directory and checks it against the acknowledged keys and a fresh
// rebuild from etcd.
void verify_directory(const fs::path& dir, std::uint16_t client_port, std::uint16_t peer_port,
                      const std::vector<std::string>& acked, int kill) {
  test::LogRecorder log;
  LocalNodeConfig config = test::node_config(dir, "crash@127.0.0.1", client_port, peer_port);
  config.log = log.sink();
  auto node = LocalNode::open(config);
  ASSERT_TRUE(node.ok()) << "after kill " << kill << ": " << node.status().to_string() << "\n"
                         << log.dump();
  TablesWait ready = (*node)->wait_for_tables({"crash"}, milliseconds(10000));
  ASSERT_TRUE(ready.status.ok()) << "after kill " << kill << ": " << ready.status.to_string();

  const std::vector<std::string> missing = test::missing_keys(**node, "crash", acked);
  EXPECT_TRUE(missing.empty()) << "after kill " << kill << ": " << missing.size() << " of "
                               << acked.size() << " acknowledged keys are missing, e.g. "
                               << missing.front();
  auto digest = test::node_digest(**node);
  ASSERT_TRUE(digest.ok()) << digest.status().to_string();
  auto fresh = test::fresh_rebuild_digest(**node);
  ASSERT_TRUE(fresh.ok()) << fresh.status().to_string();
  EXPECT_EQ(digest->revision, fresh->revision) << "after kill " << kill;
  EXPECT_EQ(digest->digest_hex, fresh->digest_hex)
      << "after kill " << kill << ": the replica differs from a rebuild from etcd\n"
      << log.dump();
}

TEST(CrashSafety, SigkilledWriterLosesNoAcknowledgedWriteAndLeavesNoEtcd) {
  const int kills = std::max(env_int("MISHKA_CRASH_KILLS", 20), 1);
  const unsigned seed = static_cast<unsigned>(env_int("MISHKA_CRASH_SEED", 0)) != 0
                            ? static_cast<unsigned>(env_int("MISHKA_CRASH_SEED", 0))
                            : std::random_device{}();
  std::printf("crash test: %d kills, MISHKA_CRASH_SEED=%u\n", kills, seed);
  std::mt19937 random(seed);
  std::uniform_int_distribution<int> delay_ms(50, 500);

  test::Watchdog watchdog(milliseconds(60000) + kills * milliseconds(15000));
  auto tmp = test::TempDir::Create("mishka-crash-");
  ASSERT_TRUE(tmp.ok()) << tmp.status().to_string();
  const fs::path dir = tmp->path() / "node";
  const fs::path acks = tmp->path() / "acks";
  const fs::path writer_log = tmp->path() / "writer.log";
  const std::string etcd_dir = test::etcd_data_dir_of(dir);
  const auto [client_port, peer_port] = test::two_ports();

  const auto started = Clock::now();
  std::size_t acked_before = 0;
  for (int kill = 1; kill <= kills; ++kill) {
    engine::SpawnOptions spawn;
    spawn.program = MISHKA_CRASH_WRITER;
    spawn.args = {"--dir",         dir.string(),
                  "--name",        "crash@127.0.0.1",
                  "--client-port", std::to_string(client_port),
                  "--peer-port",   std::to_string(peer_port),
                  "--ack-file",    acks.string(),
                  "--etcd",        test::etcd_binary(),
                  "--threads",     "4"};
    spawn.log_path = writer_log.string();
    auto writer = ChildProcess::spawn(spawn);
    ASSERT_TRUE(writer.ok()) << writer.status().to_string();

    // Kill it at a random moment once it has acknowledged writes of its own.
    bool writing = test::eventually(
        [&] {
          return test::complete_lines(acks).size() > acked_before || writer->poll().has_value();
        },
        milliseconds(30000));
    ASSERT_TRUE(writing && !writer->poll().has_value())
        << "kill " << kill << ": the writer did not write\n"
        << engine::tail_of_file(writer_log.string());
    std::this_thread::sleep_for(milliseconds(delay_ms(random)));
    ASSERT_TRUE(writer->signal(SIGKILL).ok());
    std::optional<engine::ExitInfo> exit = writer->wait_for(milliseconds(10000));
    ASSERT_TRUE(exit.has_value()) << "kill " << kill << ": the writer was not reaped";
    EXPECT_TRUE(exit->signaled && exit->code == SIGKILL) << exit->to_string();

    ASSERT_TRUE(test::no_process_mentions(etcd_dir, seconds(5)))
        << "kill " << kill << ": an etcd of " << dir << " outlived its node";
    // Its listeners close a moment after its command line reads empty (seen in CI: the next
    // etcd found the peer port in use).
    ASSERT_TRUE(test::loopback_ports_free({client_port, peer_port}, seconds(5)))
        << "kill " << kill << ": the ports of a killed etcd stayed bound";

    const std::vector<std::string> acked = test::complete_lines(acks);
    ASSERT_GT(acked.size(), acked_before);
    acked_before = acked.size();
    verify_directory(dir, client_port, peer_port, acked, kill);
    if (HasFatalFailure() || HasFailure()) break;
  }
  const double took = std::chrono::duration<double>(Clock::now() - started).count();
  std::printf("crash test: %d kills, %zu acknowledged writes checked, %.1f s\n", kills,
              acked_before, took);
  EXPECT_TRUE(test::no_process_mentions(etcd_dir, seconds(5)));
}

}  // namespace
}  // namespace mishka::store
