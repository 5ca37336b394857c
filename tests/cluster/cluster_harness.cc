#include "cluster_harness.h"

#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <optional>
#include <thread>

#include "engine/child_process.h"
#include "engine/deadline.h"
#include "engine/tls_material.h"

namespace mishka::test {
namespace {

namespace fs = std::filesystem;
using engine::Deadline;
using std::chrono::milliseconds;

TempDir make_root() {
  Result<TempDir> dir = TempDir::Create("mishka-cluster-");
  if (!dir.ok()) {
    std::fprintf(stderr, "cluster harness: %s\n", dir.status().to_string().c_str());
    std::abort();
  }
  return std::move(dir).value();
}

}  // namespace

ClusterHarness::ClusterHarness(HarnessOptions options)
    : options_(std::move(options)), root_(make_root()) {}

ClusterHarness::~ClusterHarness() {
  for (auto it = start_order_.rbegin(); it != start_order_.rend(); ++it) {
    if (running(*it)) stop(*it);
  }
}

int ClusterHarness::add_node() {
  Result<std::vector<std::uint16_t>> ports = engine::pick_free_loopback_ports(3);
  if (!ports.ok()) {
    std::fprintf(stderr, "no free loopback ports: %s\n", ports.status().to_string().c_str());
    std::abort();
  }
  const std::string index = std::to_string(size());
  const int i =
      adopt(root_.path() / ("node" + index),
            "n" + index + "@127.0.0.1:" + std::to_string((*ports)[0]), (*ports)[0], (*ports)[1]);
  slots_.at(i).metrics_port = (*ports)[2];
  return i;
}

int ClusterHarness::adopt(const fs::path& dir, const std::string& name, std::uint16_t client_port,
                          std::uint16_t peer_port) {
  Slot slot;
  slot.client_port = client_port;
  slot.peer_port = peer_port;
  slot.name = name;
  slot.dir = dir;
  slot.log = std::make_unique<LogRecorder>();
  slot.mismatches = std::make_shared<std::vector<engine::ClusterMismatch>>();
  slot.mismatch_mu = std::make_shared<std::mutex>();
  slots_.push_back(std::move(slot));
  return size() - 1;
}

store::LocalNodeConfig ClusterHarness::config(int i, const std::vector<int>& peers) const {
  const Slot& slot = slots_.at(i);
  store::LocalNodeConfig c = node_config(slot.dir, slot.name, slot.client_port, slot.peer_port);
  for (int p : peers) c.engine.peers.push_back(slots_.at(p).name);
  c.engine.target_voters = options_.target_voters;
  c.engine.join_timeout = options_.join_timeout;
  c.engine.membership_interval = milliseconds(500);
  c.presence_ttl_seconds = options_.presence_ttl_seconds;
  c.log = slot.log->sink();
  auto list = slot.mismatches;
  auto mu = slot.mismatch_mu;
  c.engine.mismatch_listener = [list, mu](const engine::ClusterMismatch& m) {
    std::lock_guard<std::mutex> lock(*mu);
    list->push_back(m);
  };
  return c;
}

std::vector<engine::ClusterMismatch> ClusterHarness::mismatches(int i) const {
  const Slot& slot = slots_.at(i);
  std::lock_guard<std::mutex> lock(*slot.mismatch_mu);
  return *slot.mismatches;
}

Status ClusterHarness::start(int i, const std::vector<int>& peers) {
  return start_with(i, config(i, peers));
}

Status ClusterHarness::start_with(int i, store::LocalNodeConfig c) {
  Slot& slot = slots_.at(i);
  if (slot.node) return invalid_argument("node " + slot.name + " runs already");
  Result<std::unique_ptr<store::LocalNode>> node = open_node(i, std::move(c));
  if (!node.ok()) return node.status();
  slot.node = std::move(node).value();
  start_order_.push_back(i);
  return Status::Ok();
}

Status ClusterHarness::restart_together(const std::vector<int>& nodes) {
  for (int i : nodes) {
    if (running(i)) return invalid_argument("node " + name(i) + " runs already");
  }
  std::vector<std::optional<Result<std::unique_ptr<store::LocalNode>>>> opened(nodes.size());
  std::vector<std::thread> threads;
  for (std::size_t k = 0; k < nodes.size(); ++k) {
    // open_node() is const and each thread fills its own element. The members' supervisor
    // threads outlive these threads, so etcd's parent-death signal is unaffected.
    threads.emplace_back([this, &opened, k, i = nodes[k], c = config(nodes[k], {})]() mutable {
      opened[k].emplace(open_node(i, std::move(c)));
    });
  }
  for (std::thread& thread : threads) thread.join();
  Status first = Status::Ok();
  for (std::size_t k = 0; k < nodes.size(); ++k) {
    if (!opened[k]->ok()) {
      if (first.ok()) first = opened[k]->status().with_context("restarting " + name(nodes[k]));
      continue;
    }
    slots_.at(nodes[k]).node = std::move(*opened[k]).value();
    start_order_.push_back(nodes[k]);
  }
  return first;
}

Result<std::unique_ptr<store::LocalNode>> ClusterHarness::open_node(
    int i, store::LocalNodeConfig c) const {
  const Slot& slot = slots_.at(i);
  if (!options_.cookie.empty()) {
    Result<engine::CaMaterial> ca =
        engine::derive_cluster_ca(slot.cookie.empty() ? options_.cookie : slot.cookie);
    if (!ca.ok()) return ca.status();
    Result<engine::NodeTls> tls =
        engine::ensure_node_tls((slot.dir / "tls").string(), *ca, slot.name, "127.0.0.1");
    if (!tls.ok()) return tls.status();
    c.engine.tls = tls->files;
    c.engine.member_tls = tls->paths;
    c.engine.metrics_port = slot.metrics_port;
  }
  return store::LocalNode::open(std::move(c));
}

Result<int> ClusterHarness::add_started(const std::vector<int>& peers) {
  const int i = add_node();
  Status started = start(i, peers);
  if (!started.ok()) return started;
  return i;
}

void ClusterHarness::stop(int i) {
  Slot& slot = slots_.at(i);
  if (!slot.node) return;
  slot.node->stop();
  slot.node.reset();
}

void ClusterHarness::crash(int i) {
  Slot& slot = slots_.at(i);
  if (!slot.node) return;
  if (engine::EtcdMember* member = slot.node->engine().member()) {
    if (const pid_t pid = member->pid(); pid > 0) ::kill(pid, SIGKILL);
  }
  slot.node->stop();
  slot.node.reset();
}

Status ClusterHarness::signal_member(int i, int signal) {
  engine::EtcdMember* member = node(i).engine().member();
  if (member == nullptr) return invalid_argument(name(i) + " has no etcd member");
  const pid_t pid = member->pid();
  if (pid <= 0) return invalid_argument(name(i) + "'s etcd member is not running");
  if (::kill(pid, signal) != 0) return io_error("kill failed");
  return Status::Ok();
}

int ClusterHarness::leader() const {
  for (int i = 0; i < size(); ++i) {
    if (!running(i) || node(i).engine().member() == nullptr) continue;
    engine::EtcdMember& member = *node(i).engine().member();
    Result<engine::EndpointStatus> status = node(i).engine().client().status(
        member.client_endpoint(), Deadline::after(milliseconds(2000)));
    if (status.ok() && status->leader != 0 && status->leader == status->header.member_id) {
      return i;
    }
  }
  return -1;
}

Result<std::string> ClusterHarness::converge(std::chrono::milliseconds timeout) const {
  const Deadline deadline = Deadline::after(timeout);
  std::string last;
  while (true) {
    std::vector<DigestAt> digests;
    last.clear();
    bool all = true;
    for (int i = 0; i < size(); ++i) {
      if (!running(i)) continue;
      Result<DigestAt> d = node_digest(node(i));
      if (!d.ok()) {
        all = false;
        last += name(i) + ": " + d.status().to_string() + "; ";
        continue;
      }
      last += name(i) + ": " + d->digest_hex.substr(0, 16) + " at " + std::to_string(d->revision) +
              "; ";
      digests.push_back(*d);
    }
    bool equal = all && !digests.empty();
    for (const DigestAt& d : digests) {
      // Revisions may differ: a replica's revision is the last event it applied, and writes
      // outside the tables (presence, pub/sub) move etcd's revision too.
      equal = equal && d.digest_hex == digests.front().digest_hex;
    }
    if (equal) return digests.front().digest_hex;
    if (deadline.expired()) {
      return Status(StatusCode::timeout, "replicas did not converge: " + last);
    }
    std::this_thread::sleep_for(milliseconds(100));
  }
}

}  // namespace mishka::test
