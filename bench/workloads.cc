#include "workloads.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <functional>
#include <mutex>
#include <thread>
#include <utility>

#include "engine/deadline.h"
#include "mishka/store.h"
#include "mishka/table_spec.h"

namespace mishka::bench {

using engine::Deadline;
using std::chrono::milliseconds;

namespace {

constexpr milliseconds kCommitTimeout{5000};
constexpr milliseconds kPreloadTimeout{30000};
constexpr milliseconds kTableWait{10000};

TransactionOptions transaction_options(milliseconds timeout) {
  TransactionOptions options;
  options.timeout = timeout;
  return options;
}

const std::string& payload() {
  static const std::string value(kValueBytes, 'v');
  return value;
}

std::string padded(std::int64_t n, int width) {
  char text[32];
  std::snprintf(text, sizeof text, "%0*lld", width, static_cast<long long>(n));
  return text;
}

// Runs `batch(thread, first, end)` over [0, items) in slices of kPreloadBatch from
// kPreloadThreads threads; stops at the first error. Returns the seconds it took.
Result<double> run_batches(std::int64_t items,
                           const std::function<Status(int, std::int64_t, std::int64_t)>& batch) {
  std::atomic<std::int64_t> next{0};
  std::mutex mu;
  Status first_error;
  const auto began = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (int t = 0; t < kPreloadThreads; ++t) {
    threads.emplace_back([&, t] {
      for (;;) {
        const std::int64_t first = next.fetch_add(kPreloadBatch);
        if (first >= items) return;
        Status done = batch(t, first, std::min(first + kPreloadBatch, items));
        if (!done.ok()) {
          std::lock_guard<std::mutex> lock(mu);
          if (first_error.ok()) first_error = done;
          next = items;  // the others stop after their current batch
          return;
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  if (!first_error.ok()) return first_error;
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count();
}

}  // namespace

std::string mishka_preload_key(std::int64_t i) {
  return "k" + padded(i, 9);
}

std::string etcd_preload_key(const std::string& prefix, std::int64_t i) {
  return prefix + padded(i, 9);
}

Status create_bench_table(MishkaCluster& cluster, const std::string& name) {
  TableSpec spec;
  spec.name = name;
  spec.attributes = {"key", "payload"};
  MISHKA_RETURN_IF_ERROR(cluster.node(0).store().create_table(spec));
  // create_table returns once node 0 applied it; writers on the other nodes need it there too.
  for (int i = 1; i < cluster.size(); ++i) {
    const store::TablesWait waited = cluster.node(i).wait_for_tables({name}, kTableWait);
    MISHKA_RETURN_IF_ERROR(waited.status);
  }
  return Status::Ok();
}

WriteOp mishka_commit_op(MishkaCluster& cluster, std::string table, std::string tag) {
  return [&cluster, table = std::move(table), tag = std::move(tag)](int w, std::int64_t seq) {
    const Record record = {Value(tag + "-w" + padded(w, 2) + "-" + padded(seq, 9)),
                           Value(payload())};
    Store& store = cluster.node(w % cluster.size()).store();
    return store.transaction([&](Transaction& txn) { return txn.write(table, record); },
                             transaction_options(kCommitTimeout));
  };
}

Result<std::vector<std::unique_ptr<engine::EtcdClient>>> etcd_clients(const EtcdCluster& cluster,
                                                                      int writers) {
  std::vector<std::unique_ptr<engine::EtcdClient>> clients;
  for (int w = 0; w < writers; ++w) {
    Result<std::unique_ptr<engine::EtcdClient>> client = connect(cluster.endpoints(w));
    if (!client.ok()) return client.status();
    clients.push_back(std::move(client).value());
  }
  return clients;
}

WriteOp etcd_put_op(const std::vector<std::unique_ptr<engine::EtcdClient>>& clients,
                    std::string tag) {
  return [&clients, tag = std::move(tag)](int w, std::int64_t seq) -> Status {
    const std::string key = "/bench/" + tag + "/w" + padded(w, 2) + "/" + padded(seq, 9);
    Result<engine::Header> put = clients[static_cast<std::size_t>(w)]->put(
        key, payload(), /*lease=*/0, Deadline::after(kCommitTimeout));
    return put.status();
  };
}

Result<double> preload_mishka(MishkaCluster& cluster, const std::string& table,
                              std::int64_t records) {
  return run_batches(records, [&](int thread, std::int64_t first, std::int64_t end) {
    Store& store = cluster.node(thread % cluster.size()).store();
    return store.transaction(
        [&](Transaction& txn) {
          for (std::int64_t i = first; i < end; ++i) {
            MISHKA_RETURN_IF_ERROR(
                txn.write(table, Record{Value(mishka_preload_key(i)), Value(payload())}));
          }
          return Status::Ok();
        },
        transaction_options(kPreloadTimeout));
  });
}

Result<double> preload_etcd(EtcdCluster& cluster, const std::string& prefix, std::int64_t keys) {
  Result<std::vector<std::unique_ptr<engine::EtcdClient>>> clients =
      etcd_clients(cluster, kPreloadThreads);
  if (!clients.ok()) return clients.status();
  return run_batches(keys, [&](int thread, std::int64_t first, std::int64_t end) -> Status {
    engine::TxnRequest txn;
    for (std::int64_t i = first; i < end; ++i) {
      engine::TxnOp put;
      put.key = etcd_preload_key(prefix, i);
      put.value = payload();
      txn.success.push_back(std::move(put));
    }
    Result<engine::TxnResult> done =
        (*clients)[static_cast<std::size_t>(thread)]->txn(txn, Deadline::after(kPreloadTimeout));
    return done.status();
  });
}

Result<MishkaJoinCluster> start_mishka_join_cluster(const std::filesystem::path& root,
                                                    MishkaClusterOptions options,
                                                    std::int64_t records) {
  progress("starting a 3-node mishka cluster (target_voters=" +
           std::to_string(options.target_voters) + ")");
  MishkaJoinCluster out;
  Result<std::unique_ptr<MishkaCluster>> cluster =
      MishkaCluster::start(root, 3, std::move(options));
  if (!cluster.ok()) return cluster.status().with_context("mishka cluster");
  out.cluster = std::move(cluster).value();
  out.formed = std::chrono::steady_clock::now();
  MISHKA_RETURN_IF_ERROR(create_bench_table(*out.cluster, kJoinTable));
  Result<double> loaded = preload_mishka(*out.cluster, kJoinTable, records);
  if (!loaded.ok()) return loaded.status().with_context("mishka preload");
  progress("mishka preload: " + std::to_string(records) + " records in " +
           format_number(*loaded, 1) + " s");
  return out;
}

Result<EtcdJoinCluster> start_etcd_join_cluster(const std::filesystem::path& root,
                                                const std::string& etcd_binary,
                                                std::int64_t records) {
  progress("starting a 3-member etcd cluster");
  EtcdJoinCluster out;
  Result<std::unique_ptr<EtcdCluster>> cluster = EtcdCluster::start(root, 3, etcd_binary);
  if (!cluster.ok()) return cluster.status().with_context("etcd cluster");
  out.cluster = std::move(cluster).value();
  out.formed = std::chrono::steady_clock::now();
  Result<double> loaded = preload_etcd(*out.cluster, kJoinPrefix, records);
  if (!loaded.ok()) return loaded.status().with_context("etcd preload");
  progress("etcd preload: " + std::to_string(records) + " keys in " + format_number(*loaded, 1) +
           " s");
  return out;
}

Result<NodeOpenTiming> join_node_through_1_and_2(MishkaCluster& cluster, const std::string& table,
                                                 std::int64_t records) {
  const auto began = std::chrono::steady_clock::now();
  Result<NodeOpenTiming> timing = cluster.add_node({1, 2});
  if (!timing.ok()) return timing.status();
  MISHKA_RETURN_IF_ERROR(
      wait_for_records(cluster.node(cluster.size() - 1), table, records, kJoinTimeout));
  timing->open_seconds = seconds_since(began);
  return timing;
}

}  // namespace mishka::bench
