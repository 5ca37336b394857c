// What the cluster benchmark writes, on each side: one small record per mishka transaction or
// one put per raw etcd request (about 100-byte values, unique keys), and the preload of the
// join figures in batches of 100.
#pragma once

#include <cstdint>
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

// Creates the benchmark's set table `name` (attributes key, payload) through node 0.
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

// Writes `records` records into `table` in transactions of kPreloadBatch from kPreloadThreads
// threads spread over the nodes; returns the seconds it took.
Result<double> preload_mishka(MishkaCluster& cluster, const std::string& table,
                              std::int64_t records);
// The same for raw etcd: etcd Txns of kPreloadBatch puts under `prefix`.
Result<double> preload_etcd(EtcdCluster& cluster, const std::string& prefix, std::int64_t keys);

}  // namespace mishka::bench
