// A mishka cluster for the benchmark: LocalNodes in this process, each in a directory of its own
// under a root and with its etcd member on free loopback ports. Node 0 is the seed, the others
// join through it; durable as in production (etcd fsyncs, maintenance on).
//
// Not thread-safe: one thread starts, grows and shrinks the cluster; the nodes (node(i)) may be
// used from any thread while they run.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "mishka/status.h"
#include "store/local_node.h"

namespace mishka::bench {

struct MishkaClusterOptions {
  std::string etcd_binary;
  bool group_commit = true;  // StoreOptions::group_commit of every node
  int max_in_flight = 1;     // StoreOptions::max_in_flight of every node
  int target_voters = 3;     // LocalEngineConfig::target_voters of every node
  bool verbose = false;      // node log lines at info and above on stderr (else errors only)
};

// How long a node's open() took, and when inside it the engine had joined (its etcd member a
// voter): the rest is the replica's load and the store's start.
struct NodeOpenTiming {
  double open_seconds = 0;
  std::optional<double> engine_joined_seconds;  // unset for a seed
};

// How a node is named and where it listens: what a later process needs to open the node again
// on the directory it left (its identity file and etcd member hold the name and the ports).
struct NodeLayout {
  std::string name;
  std::uint16_t client_port = 0;
  std::uint16_t peer_port = 0;
};

class MishkaCluster {
 public:
  // Opens `nodes` nodes one after the other (the seed, then joiners through node 0). On error
  // the nodes opened so far are stopped.
  static Result<std::unique_ptr<MishkaCluster>> start(const std::filesystem::path& root, int nodes,
                                                      MishkaClusterOptions options);
  // Opens again, one after the other, the nodes a cluster started on `root` by an earlier
  // process left there (node i on root/node<i> with layouts[i]); their data is kept. On error
  // the nodes opened so far are stopped.
  static Result<std::unique_ptr<MishkaCluster>> reopen(const std::filesystem::path& root,
                                                       const std::vector<NodeLayout>& layouts,
                                                       MishkaClusterOptions options);
  // Stops every node, the last opened first.
  ~MishkaCluster();
  MishkaCluster(const MishkaCluster&) = delete;
  MishkaCluster& operator=(const MishkaCluster&) = delete;

  int size() const { return static_cast<int>(slots_.size()); }
  store::LocalNode& node(int i) const { return *slots_.at(static_cast<std::size_t>(i))->node; }
  // The pids of the nodes' etcd members (for their CPU time).
  std::vector<int> etcd_pids() const;
  // Node i's name and ports.
  const NodeLayout& layout(int i) const { return slots_.at(static_cast<std::size_t>(i))->layout; }

  // Opens one more node, joining through the nodes `peers` (a seed when empty), and times it.
  Result<NodeOpenTiming> add_node(const std::vector<int>& peers);
  // Stops the last node, removes its etcd member from the cluster (through node 0) and deletes
  // its directory.
  Status remove_last_node();

 private:
  struct Slot {
    NodeLayout layout;
    std::filesystem::path dir;
    std::unique_ptr<store::LocalNode> node;
    std::mutex mu;
    std::optional<std::chrono::steady_clock::time_point> joined_at;  // guarded by mu
  };

  MishkaCluster(std::filesystem::path root, MishkaClusterOptions options)
      : root_(std::move(root)), options_(std::move(options)) {}
  // Opens the next node (root/node<index>) as `layout` says, joining through `peers`. When it
  // fails, a fresh directory is removed; a reopened one keeps its data.
  Result<NodeOpenTiming> open_node(NodeLayout layout, const std::vector<int>& peers,
                                   bool fresh_dir);

  std::filesystem::path root_;
  MishkaClusterOptions options_;
  int next_index_ = 0;  // names are never reused: a removed node's name stays in etcd's logs
  std::vector<std::unique_ptr<Slot>> slots_;
};

// How many records `table` holds in `node`'s replica (0 when it has no such table).
std::size_t replica_count(const store::LocalNode& node, const std::string& table);
// Waits until `node`'s replica holds at least `records` records of `table`: timeout naming the
// count it reached when `timeout` passes first.
Status wait_for_records(const store::LocalNode& node, const std::string& table,
                        std::int64_t records, std::chrono::milliseconds timeout);

}  // namespace mishka::bench
