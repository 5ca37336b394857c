#include "boot_data.h"

#include <atomic>
#include <chrono>
#include <fstream>
#include <memory>
#include <system_error>
#include <vector>

#include "bench_support.h"
#include "engine/deadline.h"
#include "etcd_cluster.h"
#include "mishka_cluster.h"
#include "store/local_node.h"
#include "workloads.h"

namespace mishka::bench {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

namespace {

constexpr char kMarkerFile[] = "complete";
constexpr char kLayoutFile[] = "layout";
constexpr char kTable[] = "boot";
constexpr char kEtcdPrefix[] = "/boot/";
// Bounds the wait for every record once the node (or member) is up: a full load of 1M records
// from etcd takes seconds, not minutes.
constexpr milliseconds kReadyTimeout{120000};
// Etcd Txns in flight while preloading: a setting of the node's store, not of its data.
constexpr int kPreloadInFlight = 4;

Status fresh_directory(const fs::path& dir) {
  std::error_code error;
  fs::remove_all(dir, error);
  if (!error) fs::create_directories(dir, error);
  if (error) return io_error("cannot make a fresh " + dir.string() + ": " + error.message());
  return Status::Ok();
}

Status write_file(const fs::path& file, const std::string& text) {
  std::ofstream out(file, std::ios::trunc);
  out << text;
  out.close();
  if (!out) return io_error("cannot write " + file.string());
  return Status::Ok();
}

Result<std::ifstream> open_layout(const fs::path& dir) {
  std::ifstream in(dir / kLayoutFile);
  if (!in) return io_error("cannot read " + (dir / kLayoutFile).string());
  return in;
}

Status bad_layout(const fs::path& dir) {
  return Status(StatusCode::corrupt, "unreadable " + (dir / kLayoutFile).string() +
                                         ": delete the data set's marker to rebuild it");
}

MishkaClusterOptions node_options(const BootSettings& settings) {
  MishkaClusterOptions options;
  options.etcd_binary = settings.etcd_binary;
  options.verbose = settings.verbose;
  return options;
}

}  // namespace

bool boot_set_complete(const fs::path& dir) {
  std::error_code ignored;
  return fs::exists(dir / kMarkerFile, ignored);
}

Result<double> ensure_mishka_boot_set(const fs::path& dir, std::int64_t records,
                                      const BootSettings& settings) {
  if (boot_set_complete(dir)) return 0.0;
  const Clock::time_point began = Clock::now();
  MISHKA_RETURN_IF_ERROR(fresh_directory(dir));
  MishkaClusterOptions options = node_options(settings);
  options.max_in_flight = kPreloadInFlight;
  Result<std::unique_ptr<MishkaCluster>> cluster = MishkaCluster::start(dir, 1, options);
  if (!cluster.ok()) return cluster.status().with_context("mishka node of " + dir.string());
  MISHKA_RETURN_IF_ERROR(create_bench_table(**cluster, kTable));
  Result<double> loaded = preload_mishka(**cluster, kTable, records);
  if (!loaded.ok()) return loaded.status().with_context("preloading " + dir.string());
  progress("mishka preload of " + std::to_string(records) +
           " records: " + format_number(*loaded, 1) + " s (" + format_number(records / *loaded, 0) +
           " records/s)");
  const NodeLayout layout = (*cluster)->layout(0);
  const std::string snapshot = (*cluster)->node(0).snapshot_path();
  const Clock::time_point stopping = Clock::now();
  cluster->reset();  // a clean stop: the replica writes its snapshot file
  progress("mishka node stopped in " + format_number(seconds_since(stopping), 1) + " s");
  std::error_code error;
  if (!fs::exists(snapshot, error)) {
    return Status(StatusCode::io_error, "the stopped node left no snapshot file " + snapshot);
  }
  MISHKA_RETURN_IF_ERROR(
      write_file(dir / kLayoutFile, layout.name + " " + std::to_string(layout.client_port) + " " +
                                        std::to_string(layout.peer_port) + "\n"));
  MISHKA_RETURN_IF_ERROR(write_file(dir / kMarkerFile, std::to_string(records) + "\n"));
  return seconds_since(began);
}

Result<double> ensure_etcd_boot_set(const fs::path& dir, std::int64_t records,
                                    const BootSettings& settings) {
  if (boot_set_complete(dir)) return 0.0;
  const Clock::time_point began = Clock::now();
  MISHKA_RETURN_IF_ERROR(fresh_directory(dir));
  Result<std::unique_ptr<EtcdCluster>> etcd = EtcdCluster::start(dir, 1, settings.etcd_binary);
  if (!etcd.ok()) return etcd.status().with_context("etcd member of " + dir.string());
  Result<double> loaded = preload_etcd(**etcd, kEtcdPrefix, records);
  if (!loaded.ok()) return loaded.status().with_context("preloading " + dir.string());
  progress("etcd preload of " + std::to_string(records) + " keys: " + format_number(*loaded, 1) +
           " s (" + format_number(records / *loaded, 0) + " keys/s)");
  const EtcdMemberPorts ports = (*etcd)->ports().at(0);
  etcd->reset();  // stops the member by pid (SIGTERM)
  MISHKA_RETURN_IF_ERROR(write_file(
      dir / kLayoutFile, std::to_string(ports.client) + " " + std::to_string(ports.peer) + "\n"));
  MISHKA_RETURN_IF_ERROR(write_file(dir / kMarkerFile, std::to_string(records) + "\n"));
  return seconds_since(began);
}

Result<BootTiming> time_mishka_boot(const fs::path& dir, std::int64_t records,
                                    const BootSettings& settings) {
  Result<std::ifstream> in = open_layout(dir);
  if (!in.ok()) return in.status();
  NodeLayout layout;
  if (!(*in >> layout.name >> layout.client_port >> layout.peer_port)) return bad_layout(dir);

  const Clock::time_point began = Clock::now();
  Result<std::unique_ptr<MishkaCluster>> cluster =
      MishkaCluster::reopen(dir, {layout}, node_options(settings));
  if (!cluster.ok()) return cluster.status().with_context("reopening the node of " + dir.string());
  MISHKA_RETURN_IF_ERROR(wait_for_records((*cluster)->node(0), kTable, records, kReadyTimeout));
  BootTiming timing;
  timing.seconds = seconds_since(began);
  const replica::ReplicaStats stats = (*cluster)->node(0).replica().stats();
  timing.note = stats.loaded_from_snapshot_revision > 0 ? "replica_from_snapshot_file"
                                                        : "replica_full_load_from_etcd";
  const Clock::time_point stopping = Clock::now();
  cluster->reset();
  progress("mishka node stopped in " + format_number(seconds_since(stopping), 1) + " s");
  return timing;
}

Result<BootTiming> time_etcd_boot(const fs::path& dir, std::int64_t records,
                                  const BootSettings& settings) {
  Result<std::ifstream> in = open_layout(dir);
  if (!in.ok()) return in.status();
  EtcdMemberPorts ports;
  if (!(*in >> ports.client >> ports.peer)) return bad_layout(dir);

  const Clock::time_point began = Clock::now();
  Result<std::unique_ptr<EtcdCluster>> etcd =
      EtcdCluster::reopen(dir, {ports}, settings.etcd_binary);
  if (!etcd.ok()) return etcd.status().with_context("restarting the member of " + dir.string());
  const std::atomic<bool> never{false};
  const std::optional<double> serving =
      wait_until_serving((*etcd)->endpoints().at(0), kEtcdPrefix, records, began,
                         engine::Deadline::after(kReadyTimeout), never);
  if (!serving) {
    return Status(StatusCode::timeout, "the member of " + dir.string() + " did not count " +
                                           std::to_string(records) + " keys in time");
  }
  BootTiming timing;
  timing.seconds = *serving;
  return timing;
}

}  // namespace mishka::bench
