// Faults in a 3-node cluster (label fault): the leader's node crashes; a majority's members
// are stopped (SIGSTOP) while the remaining node is used.
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <mutex>
#include <thread>

#include "cluster_harness.h"

namespace mishka::test {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

Record row(const std::string& id, std::int64_t n) {
  return Record{Value(id), Value("writer"), Value(n)};
}

// Writes unique keys from node `on` until stopped; keeps the acknowledged ones.
class Writer {
 public:
  Writer(ClusterHarness& c, int on, std::string prefix)
      : thread_([this, &c, on, prefix = std::move(prefix)] {
          WriteOptions options;
          options.timeout = milliseconds(5000);
          for (std::int64_t n = 0; !stop_.load(); ++n) {
            const std::string key = prefix + std::to_string(n);
            if (c.node(on).store().dirty_write("t", row(key, n), options).ok()) {
              std::lock_guard<std::mutex> lock(mu_);
              acked_.push_back(key);
            } else {
              failures_.fetch_add(1);
            }
          }
        }) {}
  ~Writer() { stop(); }
  void stop() {
    stop_.store(true);
    if (thread_.joinable()) thread_.join();
  }
  std::vector<std::string> acked() const {
    std::lock_guard<std::mutex> lock(mu_);
    return acked_;
  }
  int failures() const { return failures_.load(); }

 private:
  mutable std::mutex mu_;
  std::vector<std::string> acked_;
  std::atomic<bool> stop_{false};
  std::atomic<int> failures_{0};
  std::thread thread_;
};

TransactionOptions no_retry(milliseconds timeout) {
  TransactionOptions options;
  options.max_retries = 0;
  options.timeout = timeout;
  return options;
}

void three_nodes_with_table(ClusterHarness& c) {
  ASSERT_TRUE(c.add_started().ok());
  ASSERT_TRUE(c.add_started({0}).ok());
  ASSERT_TRUE(c.add_started({0, 1}).ok());
  ASSERT_TRUE(c.node(0).store().create_table(test_table("t")).ok());
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(c.node(i).wait_for_tables({"t"}, milliseconds(10000)).status.ok());
  }
}

void expect_everywhere(ClusterHarness& c, const std::vector<std::string>& keys) {
  for (int i = 0; i < c.size(); ++i) {
    if (!c.running(i)) continue;
    const std::vector<std::string> missing = missing_keys(c.node(i), "t", keys);
    EXPECT_TRUE(missing.empty()) << c.name(i) << " lacks " << missing.size() << " of "
                                 << keys.size() << " acknowledged keys, e.g. " << missing.front();
  }
}

TEST(ClusterFault, TheLeadersNodeCrashesAndNothingAcknowledgedIsLost) {
  Watchdog watchdog(milliseconds(180000));
  ClusterHarness c;
  three_nodes_with_table(c);
  const int leader = c.leader();
  ASSERT_GE(leader, 0);
  const int writer_node = (leader + 1) % 3;
  Writer writer(c, writer_node, "w");
  std::this_thread::sleep_for(milliseconds(1500));
  c.crash(leader);
  int next = -1;
  ASSERT_TRUE(eventually(
      [&] {
        next = c.leader();
        return next >= 0;
      },
      milliseconds(15000)));
  EXPECT_NE(next, leader);
  const std::size_t before = writer.acked().size();
  // Writes go on under the new leader.
  ASSERT_TRUE(eventually([&] { return writer.acked().size() > before + 50; }, milliseconds(15000)));
  writer.stop();

  // The old node comes back from its directory and catches up.
  Status back = c.start(leader, {writer_node});
  ASSERT_TRUE(back.ok()) << back.to_string() << c.log(leader).dump();
  auto digest = c.converge(milliseconds(30000));
  ASSERT_TRUE(digest.ok()) << digest.status().to_string();
  expect_everywhere(c, writer.acked());
  std::printf("acknowledged %zu writes, %d failed during the crash\n", writer.acked().size(),
              writer.failures());
}

TEST(ClusterFault, AMinorityRefusesWritesWithNoQuorumAndKeepsServingReads) {
  Watchdog watchdog(milliseconds(180000));
  ClusterHarness c;
  three_nodes_with_table(c);
  std::vector<std::string> acked;
  for (int k = 0; k < 50; ++k) {
    const std::string key = "before" + std::to_string(k);
    ASSERT_TRUE(c.node(k % 3).store().dirty_write("t", row(key, k)).ok());
    acked.push_back(key);
  }
  ASSERT_TRUE(c.converge(milliseconds(20000)).ok());

  // Node 0 stays; the members of nodes 1 and 2 (a majority) stop.
  ASSERT_TRUE(c.signal_member(1, SIGSTOP).ok());
  ASSERT_TRUE(c.signal_member(2, SIGSTOP).ok());
  // A write sent in the first moments may still be proposed by a member that believes it has
  // a leader (or leads) until its election timeout passes: its outcome is then unknown
  // (timeout), and it commits once the majority is back. Once the member knows it has no
  // leader, every write is refused unproposed: no_quorum.
  engine::EtcdMember& member = *c.node(0).engine().member();
  ASSERT_TRUE(eventually(
      [&] {
        auto status = c.node(0).engine().client().status(
            member.client_endpoint(), engine::Deadline::after(milliseconds(1000)));
        return status.ok() && status->leader == 0;
      },
      milliseconds(10000)));
  WriteOptions options;
  options.timeout = milliseconds(3000);
  const auto began = Clock::now();
  Status refused = c.node(0).store().dirty_write("t", row("during", 1), options);
  const auto took = std::chrono::duration_cast<milliseconds>(Clock::now() - began);
  EXPECT_EQ(refused.code(), StatusCode::no_quorum) << refused.to_string();
  // Bounded by its own timeout (plus the cancellation of one call), not by etcd's 7 s.
  EXPECT_LT(took.count(), 6000);
  Status transaction = c.node(0).store().transaction(
      [](Transaction& t) { return t.write("t", row("during-txn", 2)); },
      no_retry(milliseconds(3000)));
  EXPECT_EQ(transaction.code(), StatusCode::no_quorum) << transaction.to_string();
  // Local reads still answer, from RAM.
  EXPECT_TRUE(missing_keys(c.node(0), "t", acked).empty());

  ASSERT_TRUE(c.signal_member(1, SIGCONT).ok());
  ASSERT_TRUE(c.signal_member(2, SIGCONT).ok());
  ASSERT_TRUE(
      eventually([&] { return c.node(0).store().dirty_write("t", row("after", 3), options).ok(); },
                 milliseconds(20000)));
  acked.push_back("after");
  auto digest = c.converge(milliseconds(30000));
  ASSERT_TRUE(digest.ok()) << digest.status().to_string();
  expect_everywhere(c, acked);
  // The refused writes did not happen anywhere (the harness waits for every replica above).
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(missing_keys(c.node(i), "t", {"during", "during-txn"}).size(), 2u) << c.name(i);
  }
}

}  // namespace
}  // namespace mishka::test
