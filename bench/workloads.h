// What the cluster benchmark writes, on each side: one small record per mishka transaction or
// one put per raw etcd request (about 100-byte values, unique keys), and the preload of the
// join figures in batches of 100.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "bench_support.h"
#include "engine/etcd_client.h"
#include "etcd_cluster.h"
#include "mishka/status.h"
#include "mishka_cluster.h"

namespace mishka::bench {

inline constexpr std::size_t kValueBytes = 100;
// Records per transaction (or puts per etcd Txn) of a preload: within etcd's --max-txn-ops.
inline constexpr int kPreloadBatch = 100;
inline constexpr int kPreloadThreads = 4;
// Bounds a 4th node's or member's join.
inline constexpr std::chrono::milliseconds kJoinTimeout{60000};
// etcd defers a membership change until its leader has heard from every voter for 5 s: joins
// start at least this long after their cluster formed.
inline constexpr std::chrono::milliseconds kMembershipSettle{6000};

// Creates the benchmark's set table `name` (attributes key, payload) through node 0 and waits
// until every node's replica has it.
Status create_bench_table(MishkaCluster& cluster, const std::string& name);

// Writer w commits, on node w % size, transactions that each write one record with a new key
// ("<tag>-w<w>-<seq>") and a 100-byte payload into `table`.
WriteOp mishka_commit_op(MishkaCluster& cluster, std::string table, std::string tag);

// One client per writer, writer w's preferring member w % size, as mishka's writers prefer
// their node's member.
Result<std::vector<std::unique_ptr<engine::EtcdClient>>> etcd_clients(const EtcdCluster& cluster,
                                                                      int writers);
// Writer w puts a 100-byte value under a new key ("/bench/<tag>/w<w>/<seq>") through
// clients[w]. `clients` must outlive the op.
WriteOp etcd_put_op(const std::vector<std::unique_ptr<engine::EtcdClient>>& clients,
                    std::string tag);

// The key of preloaded record i: a string Value "k<i in 9 digits>" on the mishka side,
// "<prefix><i in 9 digits>" on the etcd side.
std::string mishka_preload_key(std::int64_t i);
std::string etcd_preload_key(const std::string& prefix, std::int64_t i);

// Writes `records` records into `table` in transactions of kPreloadBatch from kPreloadThreads
// threads spread over the nodes; returns the seconds it took.
Result<double> preload_mishka(MishkaCluster& cluster, const std::string& table,
                              std::int64_t records);
// The same for raw etcd: etcd Txns of kPreloadBatch puts under `prefix`.
Result<double> preload_etcd(EtcdCluster& cluster, const std::string& prefix, std::int64_t keys);

// The 3-node clusters of the join figures, ready to be joined: started, preloaded with `records`
// records of the set table kJoinTable (mishka) or keys under kJoinPrefix (etcd), and when they
// formed: a membership change asked before formed + kMembershipSettle is refused for a while.
// Progress goes to stderr. The mishka cluster's options should set target_voters above 3, so
// that a 4th node becomes a voter.
inline constexpr char kJoinTable[] = "joinbench";
inline constexpr char kJoinPrefix[] = "/join/";
struct MishkaJoinCluster {
  std::unique_ptr<MishkaCluster> cluster;
  std::chrono::steady_clock::time_point formed;
};
struct EtcdJoinCluster {
  std::unique_ptr<EtcdCluster> cluster;
  std::chrono::steady_clock::time_point formed;
};
Result<MishkaJoinCluster> start_mishka_join_cluster(const std::filesystem::path& root,
                                                    MishkaClusterOptions options,
                                                    std::int64_t records);
Result<EtcdJoinCluster> start_etcd_join_cluster(const std::filesystem::path& root,
                                                const std::string& etcd_binary,
                                                std::int64_t records);

// Opens a node joining `cluster` through its nodes 1 and 2 and times it until its replica holds
// the `records` records of `table` (open_seconds counts both).
Result<NodeOpenTiming> join_node_through_1_and_2(MishkaCluster& cluster, const std::string& table,
                                                 std::int64_t records);

}  // namespace mishka::bench
