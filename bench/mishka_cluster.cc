#include "mishka_cluster.h"

#include <cstdio>
#include <system_error>
#include <thread>
#include <utility>

#include "engine/child_process.h"
#include "engine/deadline.h"
#include "engine/join.h"
#include "etcd_cluster.h"
#include "store/catalog.h"

namespace mishka::bench {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

Result<std::unique_ptr<MishkaCluster>> MishkaCluster::start(const fs::path& root, int nodes,
                                                            MishkaClusterOptions options) {
  std::unique_ptr<MishkaCluster> cluster(new MishkaCluster(root, std::move(options)));
  for (int i = 0; i < nodes; ++i) {
    Result<NodeOpenTiming> opened = cluster->add_node(i == 0 ? std::vector<int>{} : std::vector{0});
    if (!opened.ok()) return opened.status();
  }
  return cluster;
}

MishkaCluster::~MishkaCluster() {
  for (auto it = slots_.rbegin(); it != slots_.rend(); ++it) {
    if ((*it)->node) (*it)->node->stop();
  }
}

Result<std::unique_ptr<MishkaCluster>> MishkaCluster::reopen(const fs::path& root,
                                                             const std::vector<NodeLayout>& layouts,
                                                             MishkaClusterOptions options) {
  std::unique_ptr<MishkaCluster> cluster(new MishkaCluster(root, std::move(options)));
  for (std::size_t i = 0; i < layouts.size(); ++i) {
    Result<NodeOpenTiming> opened =
        cluster->open_node(layouts[i], i == 0 ? std::vector<int>{} : std::vector{0},
                           /*fresh_dir=*/false);
    if (!opened.ok()) return opened.status();
  }
  return cluster;
}

Result<NodeOpenTiming> MishkaCluster::add_node(const std::vector<int>& peers) {
  Result<std::vector<std::uint16_t>> ports = engine::pick_free_loopback_ports(2);
  if (!ports.ok()) return ports.status();
  NodeLayout layout;
  layout.name = "n" + std::to_string(next_index_) + "@127.0.0.1:" + std::to_string((*ports)[0]);
  layout.client_port = (*ports)[0];
  layout.peer_port = (*ports)[1];
  return open_node(std::move(layout), peers, /*fresh_dir=*/true);
}

Result<NodeOpenTiming> MishkaCluster::open_node(NodeLayout layout, const std::vector<int>& peers,
                                                bool fresh_dir) {
  const int index = next_index_++;
  auto slot = std::make_unique<Slot>();
  slot->layout = std::move(layout);
  slot->dir = root_ / ("node" + std::to_string(index));

  store::LocalNodeConfig c;
  c.engine.node_name = slot->layout.name;
  c.engine.mnesia_dir = slot->dir.string();
  c.engine.etcd_binary = options_.etcd_binary;
  c.engine.client_port = slot->layout.client_port;
  c.engine.peer_port = slot->layout.peer_port;
  c.engine.target_voters = options_.target_voters;
  c.engine.stop_grace = milliseconds(5000);
  for (int p : peers) {
    c.engine.peers.push_back(slots_.at(static_cast<std::size_t>(p))->layout.name);
  }
  c.store.group_commit = options_.group_commit;
  c.store.max_in_flight = options_.max_in_flight;
  Slot* raw = slot.get();
  const bool verbose = options_.verbose;
  c.log = [raw, verbose](LogLevel level, std::string_view line) {
    if (line.find("joined cluster") != std::string_view::npos) {
      std::lock_guard<std::mutex> lock(raw->mu);
      if (!raw->joined_at) raw->joined_at = Clock::now();
    }
    if (level >= LogLevel::error || (verbose && level >= LogLevel::info)) {
      std::fprintf(stderr, "  [%.*s]\n", static_cast<int>(line.size()), line.data());
    }
  };

  const Clock::time_point began = Clock::now();
  Result<std::unique_ptr<store::LocalNode>> node = store::LocalNode::open(std::move(c));
  const Clock::time_point ended = Clock::now();
  if (!node.ok()) {
    if (fresh_dir) {  // a reopened directory keeps its data
      std::error_code ignored;
      fs::remove_all(slot->dir, ignored);
    }
    return node.status();
  }
  slot->node = std::move(node).value();
  NodeOpenTiming timing;
  timing.open_seconds = std::chrono::duration<double>(ended - began).count();
  {
    std::lock_guard<std::mutex> lock(slot->mu);
    if (slot->joined_at)
      timing.engine_joined_seconds =
          std::chrono::duration<double>(*slot->joined_at - began).count();
  }
  slots_.push_back(std::move(slot));
  return timing;
}

std::vector<int> MishkaCluster::etcd_pids() const {
  std::vector<int> pids;
  for (const auto& slot : slots_) {
    if (const engine::EtcdMember* member = slot->node->engine().member()) {
      pids.push_back(member->pid());
    }
  }
  return pids;
}

Status MishkaCluster::remove_last_node() {
  if (slots_.size() < 2) return invalid_argument("the seed stays");
  Slot& last = *slots_.back();
  const std::uint64_t member_id = last.node->engine().identity().member_id;
  last.node->stop();
  last.node.reset();
  if (member_id != 0) {
    MISHKA_RETURN_IF_ERROR(
        remove_member(node(0).engine().client(), member_id,
                      "member " + engine::hex_member_id(member_id) + " of " + last.layout.name));
  }
  std::error_code ignored;
  fs::remove_all(last.dir, ignored);
  slots_.pop_back();
  return Status::Ok();
}

std::size_t replica_count(const store::LocalNode& node, const std::string& table) {
  const replica::Replica::ReadView view = node.replica().read();
  const store::Table* t = view.catalog().find(table);
  return t == nullptr ? 0 : t->count();
}

Status wait_for_records(const store::LocalNode& node, const std::string& table,
                        std::int64_t records, milliseconds timeout) {
  const engine::Deadline deadline = engine::Deadline::after(timeout);
  while (replica_count(node, table) < static_cast<std::size_t>(records)) {
    if (deadline.expired()) {
      return Status(StatusCode::timeout, "the replica of " + node.node_name() + " holds " +
                                             std::to_string(replica_count(node, table)) + " of " +
                                             std::to_string(records) + " records of " + table);
    }
    std::this_thread::sleep_for(milliseconds(10));
  }
  return Status::Ok();
}

}  // namespace mishka::bench
