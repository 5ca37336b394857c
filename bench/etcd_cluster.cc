#include "etcd_cluster.h"

#include <unistd.h>

#include <atomic>
#include <random>
#include <system_error>
#include <thread>
#include <utility>

#include "bench_support.h"
#include "engine/child_process.h"
#include "engine/deadline.h"

namespace mishka::bench {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using engine::Deadline;
using std::chrono::milliseconds;

namespace {

constexpr milliseconds kCallTimeout{5000};
constexpr milliseconds kRetryPause{50};
constexpr milliseconds kRemoveTimeout{15000};

// etcd's --strict-reconfig-check defers membership changes while the leader has not heard
// from every voter for 5 s, and promotions while the learner lags: both are asked again.
bool refused_for_now(const Status& status) {
  for (const char* said :
       {"unhealthy cluster", "not enough started members", "in sync with leader"}) {
    if (status.message().find(said) != std::string::npos) return true;
  }
  return false;
}

}  // namespace

// A fresh client after each unanswered poll: a new channel connects at once, where an old one
// would wait out its reconnect backoff.
std::optional<double> wait_until_serving(const std::string& endpoint, const std::string& prefix,
                                         std::int64_t expected, Clock::time_point began,
                                         Deadline deadline, const std::atomic<bool>& stop) {
  engine::RangeOptions count;
  count.range_end = engine::prefix_range_end(prefix);
  count.serializable = true;
  count.count_only = true;
  std::unique_ptr<engine::EtcdClient> client;
  while (!deadline.expired() && !stop.load()) {
    if (!client) {
      Result<std::unique_ptr<engine::EtcdClient>> made = connect({endpoint});
      if (!made.ok()) return std::nullopt;
      client = std::move(made).value();
    }
    Result<engine::RangeResult> counted =
        client->range(prefix, count, deadline.capped(kRetryPause * 10));
    if (counted.ok() && counted->count >= expected) return seconds_since(began);
    if (!counted.ok()) client.reset();
    std::this_thread::sleep_for(kRetryPause);
  }
  return std::nullopt;
}

Result<std::unique_ptr<engine::EtcdClient>> connect(std::vector<std::string> endpoints) {
  engine::ClientOptions options;
  options.endpoints = std::move(endpoints);
  return engine::EtcdClient::create(options);
}

Status remove_member(engine::EtcdClient& client, std::uint64_t id, const std::string& what) {
  const Deadline deadline = Deadline::after(kRemoveTimeout);
  for (;;) {
    Status removed = client.member_remove(id, deadline.capped(kCallTimeout));
    if (removed.ok() || removed.code() == StatusCode::not_found) return Status::Ok();
    if (deadline.expired()) return removed.with_context("removing " + what);
    std::this_thread::sleep_for(kRetryPause);
  }
}

std::string EtcdCluster::peer_url(const Slot& slot) {
  return "http://127.0.0.1:" + std::to_string(slot.peer_port);
}

Result<EtcdCluster::Slot> EtcdCluster::new_slot() {
  Result<std::vector<std::uint16_t>> ports = engine::pick_free_loopback_ports(2);
  if (!ports.ok()) return ports.status();
  Slot slot;
  slot.name = "e" + std::to_string(next_index_++);
  slot.dir = root_ / slot.name;
  slot.client_port = (*ports)[0];
  slot.peer_port = (*ports)[1];
  return slot;
}

engine::MemberConfig EtcdCluster::member_config(const Slot& slot,
                                                std::string initial_cluster) const {
  engine::MemberConfig c;
  c.etcd_binary = etcd_binary_;
  c.data_dir = slot.dir.string();
  c.name = slot.name;
  c.client_port = slot.client_port;
  c.peer_port = slot.peer_port;
  c.initial_cluster = std::move(initial_cluster);
  c.initial_cluster_token = token_;
  c.stop_grace = milliseconds(5000);
  return c;
}

Result<std::unique_ptr<EtcdCluster>> EtcdCluster::start(const fs::path& root, int members,
                                                        const std::string& etcd_binary) {
  std::random_device random;
  const std::string token = "bench-" + std::to_string(::getpid()) + "-" + std::to_string(random());
  std::unique_ptr<EtcdCluster> cluster(new EtcdCluster(root, etcd_binary, token));
  std::vector<Slot> slots;
  for (int i = 0; i < members; ++i) {
    Result<Slot> slot = cluster->new_slot();
    if (!slot.ok()) return slot.status();
    slots.push_back(std::move(slot).value());
  }
  return launch(std::move(cluster), std::move(slots));
}

Result<std::unique_ptr<EtcdCluster>> EtcdCluster::reopen(const fs::path& root,
                                                         const std::vector<EtcdMemberPorts>& ports,
                                                         const std::string& etcd_binary) {
  // The token matters only to a first start: the data holds the cluster.
  std::unique_ptr<EtcdCluster> cluster(new EtcdCluster(root, etcd_binary, "bench-reopened"));
  std::vector<Slot> slots;
  for (const EtcdMemberPorts& p : ports) {
    Slot slot;
    slot.name = "e" + std::to_string(cluster->next_index_++);
    slot.dir = root / slot.name;
    slot.client_port = p.client;
    slot.peer_port = p.peer;
    slots.push_back(std::move(slot));
  }
  return launch(std::move(cluster), std::move(slots));
}

Result<std::unique_ptr<EtcdCluster>> EtcdCluster::launch(std::unique_ptr<EtcdCluster> cluster,
                                                         std::vector<Slot> slots) {
  std::string initial_cluster;
  for (const Slot& slot : slots) {
    if (!initial_cluster.empty()) initial_cluster += ",";
    initial_cluster += slot.name + "=" + peer_url(slot);
  }
  cluster->slots_ = std::move(slots);
  for (Slot& slot : cluster->slots_) {
    Result<std::unique_ptr<engine::EtcdMember>> member =
        engine::EtcdMember::create(cluster->member_config(slot, initial_cluster));
    if (!member.ok()) return member.status();
    slot.member = std::move(member).value();
  }
  // A member is healthy only once a quorum runs: start them all at once.
  std::vector<Status> started(cluster->slots_.size());
  std::vector<std::thread> starters;
  for (std::size_t i = 0; i < cluster->slots_.size(); ++i) {
    starters.emplace_back([&, i] { started[i] = cluster->slots_[i].member->start(); });
  }
  for (std::thread& t : starters) t.join();
  for (std::size_t i = 0; i < started.size(); ++i) {
    if (!started[i].ok()) return started[i].with_context("etcd member " + cluster->slots_[i].name);
  }
  Result<std::unique_ptr<engine::EtcdClient>> client = connect(cluster->endpoints());
  if (!client.ok()) return client.status();
  cluster->client_ = std::move(client).value();
  return cluster;
}

EtcdCluster::~EtcdCluster() {
  client_.reset();
  for (auto it = slots_.rbegin(); it != slots_.rend(); ++it) {
    if (it->member) it->member->stop();
  }
}

std::vector<std::string> EtcdCluster::endpoints(int first) const {
  std::vector<std::string> out;
  const std::size_t n = slots_.size();
  for (std::size_t k = 0; k < n; ++k) {
    const Slot& slot = slots_[(static_cast<std::size_t>(first) + k) % n];
    out.push_back("127.0.0.1:" + std::to_string(slot.client_port));
  }
  return out;
}

std::vector<EtcdMemberPorts> EtcdCluster::ports() const {
  std::vector<EtcdMemberPorts> out;
  for (const Slot& slot : slots_) out.push_back({slot.client_port, slot.peer_port});
  return out;
}

std::vector<int> EtcdCluster::pids() const {
  std::vector<int> out;
  for (const Slot& slot : slots_) out.push_back(slot.member->pid());
  return out;
}

Result<MemberJoinTiming> EtcdCluster::join_member(const std::string& prefix,
                                                  std::int64_t expected_keys,
                                                  milliseconds timeout) {
  Result<Slot> made = new_slot();
  if (!made.ok()) return made.status();
  Slot slot = std::move(made).value();
  MemberJoinTiming timing;
  const Clock::time_point began = Clock::now();
  const Deadline deadline = Deadline::after(timeout);

  Result<engine::MemberAddResult> added = Status(StatusCode::timeout, "member add never sent");
  for (;;) {
    ++timing.add_attempts;
    added =
        client_->member_add({peer_url(slot)}, /*as_learner=*/true, deadline.capped(kCallTimeout));
    if (added.ok() || !refused_for_now(added.status()) || deadline.expired()) break;
    std::this_thread::sleep_for(kRetryPause);
  }
  if (!added.ok()) return added.status().with_context("etcd member add of " + slot.name);
  timing.added_seconds = seconds_since(began);
  slot.id = added->added.id;
  std::string initial_cluster;
  for (const engine::Member& m : added->members) {
    if (m.peer_urls.empty()) continue;
    if (!initial_cluster.empty()) initial_cluster += ",";
    initial_cluster += (m.id == slot.id ? slot.name : m.name) + "=" + m.peer_urls.front();
  }

  engine::MemberConfig config = member_config(slot, initial_cluster);
  config.join_existing = true;
  Result<std::unique_ptr<engine::EtcdMember>> member = engine::EtcdMember::create(config);
  if (!member.ok()) return member.status();
  slot.member = std::move(member).value();
  const std::string endpoint = "127.0.0.1:" + std::to_string(slot.client_port);
  slots_.push_back(std::move(slot));  // stopped by remove_last_member() or the destructor
  const std::uint64_t id = slots_.back().id;

  std::atomic<bool> stop_polling{false};
  std::optional<double> serving;
  std::thread poller([&] {
    serving = wait_until_serving(endpoint, prefix, expected_keys, began, deadline, stop_polling);
  });
  Status result = [&]() -> Status {
    MISHKA_RETURN_IF_ERROR(slots_.back().member->start());
    for (;;) {
      Status promoted = client_->member_promote(id, deadline.capped(kCallTimeout));
      if (promoted.ok()) break;
      if (!refused_for_now(promoted) || deadline.expired()) {
        return promoted.with_context("promoting etcd learner " + slots_.back().name);
      }
      std::this_thread::sleep_for(kRetryPause);
    }
    timing.promoted_seconds = seconds_since(began);
    return Status::Ok();
  }();
  if (!result.ok()) stop_polling = true;
  poller.join();
  if (!result.ok()) return result;
  if (!serving) {
    return Status(StatusCode::timeout, "etcd member " + slots_.back().name + " did not serve " +
                                           std::to_string(expected_keys) + " keys in time");
  }
  timing.serving_seconds = *serving;
  return timing;
}

Status EtcdCluster::remove_last_member() {
  if (slots_.empty() || slots_.back().id == 0) {
    return invalid_argument("only a joined member is removed");
  }
  Slot& last = slots_.back();
  last.member->stop();
  MISHKA_RETURN_IF_ERROR(remove_member(*client_, last.id, "etcd member " + last.name));
  std::error_code ignored;
  fs::remove_all(last.dir, ignored);
  slots_.pop_back();
  return Status::Ok();
}

}  // namespace mishka::bench
