// A cluster of nodes in one test process (ARCHITECTURE.md, "Tests as a layer of their own"):
// N LocalNodes, each with its own directory and etcd member on loopback ports, a seed and
// joiners, with fault injection on the members (SIGKILL, SIGSTOP/SIGCONT) and checks that the
// replicas converge.
//
// Not thread-safe: one test thread starts, stops and signals nodes; the nodes themselves
// (node(i)) may be used from any thread while they run.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/local_engine.h"
#include "mishka/status.h"
#include "node_support.h"
#include "store/local_node.h"
#include "support/temp_dir.h"

namespace mishka::test {

struct HarnessOptions {
  int target_voters = 3;
  // The cluster's cookie: every node derives the CA from it and runs with mutual TLS. Empty:
  // plain text (faster to start; most tests).
  std::string cookie;
  std::chrono::milliseconds join_timeout{60000};
  // LocalNodeConfig::presence_ttl_seconds of every node (0: no presence keys).
  std::int64_t presence_ttl_seconds = 2;
};

class ClusterHarness {
 public:
  explicit ClusterHarness(HarnessOptions options = {});
  // Stops every running node, the last started first.
  ~ClusterHarness();
  ClusterHarness(const ClusterHarness&) = delete;
  ClusterHarness& operator=(const ClusterHarness&) = delete;

  // A new node slot: a name "n<i>@127.0.0.1:<client port>", a directory and free ports. The
  // node does not run yet. Returns its index.
  int add_node();
  // A node slot for a directory made elsewhere (by node processes, say) with that name and
  // those ports. The node does not run yet. Returns its index.
  int adopt(const std::filesystem::path& dir, const std::string& name, std::uint16_t client_port,
            std::uint16_t peer_port);
  // The config start() would use (tests adjust it and pass it to start_with()).
  store::LocalNodeConfig config(int i, const std::vector<int>& peers) const;
  // Starts node i: a seed when `peers` is empty, else a joiner through those nodes.
  Status start(int i, const std::vector<int>& peers = {});
  Status start_with(int i, store::LocalNodeConfig config);
  // Restarts the nodes `nodes` from their directories, all at once: a member is healthy only
  // with a quorum, so the nodes of a stopped cluster cannot be started one after the other.
  // Returns the first error; the nodes that opened run.
  Status restart_together(const std::vector<int>& nodes);
  // Node i uses `cookie` instead of the cluster's (HarnessOptions::cookie must be set).
  void set_cookie(int i, std::string cookie) { slots_.at(i).cookie = std::move(cookie); }
  // add_node() + start().
  Result<int> add_started(const std::vector<int>& peers = {});

  // A clean stop (snapshot file written, member stopped).
  void stop(int i);
  // SIGKILL of the node's etcd member first, then the node object is torn down: what the
  // cluster sees of a node whose machine died.
  void crash(int i);
  // Sends `signal` to node i's etcd member (SIGSTOP / SIGCONT for a partition).
  Status signal_member(int i, int signal);

  bool running(int i) const { return slots_.at(i).node != nullptr; }
  store::LocalNode& node(int i) const { return *slots_.at(i).node; }
  const std::string& name(int i) const { return slots_.at(i).name; }
  const std::filesystem::path& dir(int i) const { return slots_.at(i).dir; }
  LogRecorder& log(int i) const { return *slots_.at(i).log; }
  std::vector<engine::ClusterMismatch> mismatches(int i) const;
  int size() const { return static_cast<int>(slots_.size()); }

  // The index of the running node whose member leads, or -1.
  int leader() const;
  // Waits until every running node's replica has the same digest (after a sync with etcd). Returns
  // that digest; timeout with each node's digest otherwise.
  Result<std::string> converge(std::chrono::milliseconds timeout) const;

 private:
  struct Slot {
    std::string name;
    std::filesystem::path dir;
    std::uint16_t client_port = 0;
    std::uint16_t peer_port = 0;
    std::uint16_t metrics_port = 0;
    std::string cookie;  // empty: the cluster's
    std::unique_ptr<LogRecorder> log;
    std::shared_ptr<std::vector<engine::ClusterMismatch>> mismatches;
    std::shared_ptr<std::mutex> mismatch_mu;
    std::unique_ptr<store::LocalNode> node;
  };

  // Opens node i with `config` (adding its TLS material when the cluster has a cookie).
  Result<std::unique_ptr<store::LocalNode>> open_node(int i, store::LocalNodeConfig config) const;

  HarnessOptions options_;
  TempDir root_;
  std::vector<Slot> slots_;
  std::vector<int> start_order_;
};

}  // namespace mishka::test
