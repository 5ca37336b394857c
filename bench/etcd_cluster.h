// A raw etcd cluster for the benchmark's reference figures: etcd members on free loopback ports
// (plain http, default durability: etcd fsyncs), supervised by the engine's EtcdMember, each in
// a directory of its own under a root. No mishka code runs on it but the client.
//
// Not thread-safe: one thread starts, grows and shrinks the cluster; client() may be used from
// any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/deadline.h"
#include "engine/etcd_client.h"
#include "engine/etcd_member.h"
#include "mishka/status.h"

namespace mishka::bench {

// The timings of a member joining as a learner, from the first member add request.
struct MemberJoinTiming {
  double added_seconds = 0;     // member add accepted
  double serving_seconds = 0;   // its serializable count of the prefix reached the expected keys
  double promoted_seconds = 0;  // etcd accepted its promotion to voter
  int add_attempts = 0;         // member add requests (etcd refuses some while it settles)
};

// Where a member listens: what a later process needs to start it again on its directory.
struct EtcdMemberPorts {
  std::uint16_t client = 0;
  std::uint16_t peer = 0;
};

// Polls the member at `endpoint` with serializable count-only ranges of `prefix` until it counts
// `expected` keys (every 50 ms); returns the seconds since `began`, or nullopt at the deadline or
// once `stop` is set.
std::optional<double> wait_until_serving(const std::string& endpoint, const std::string& prefix,
                                         std::int64_t expected,
                                         std::chrono::steady_clock::time_point began,
                                         engine::Deadline deadline, const std::atomic<bool>& stop);

// A client of `endpoints` (plain text, the engine's defaults otherwise).
Result<std::unique_ptr<engine::EtcdClient>> connect(std::vector<std::string> endpoints);

// Removes member `id` (named `what` in the error) through `client`, asking again while etcd
// defers the change, for up to 15 s. A member already gone is not an error.
Status remove_member(engine::EtcdClient& client, std::uint64_t id, const std::string& what);

class EtcdCluster {
 public:
  // Starts `members` members at once with --initial-cluster of all and waits until each is
  // healthy. On error what was started is stopped.
  static Result<std::unique_ptr<EtcdCluster>> start(const std::filesystem::path& root, int members,
                                                    const std::string& etcd_binary);
  // Starts again, on the same ports, the members a cluster started on `root` by an earlier
  // process left there (member i on its directory with ports[i]); their data is kept (etcd
  // ignores --initial-cluster then). Waits until each is healthy, as start().
  static Result<std::unique_ptr<EtcdCluster>> reopen(const std::filesystem::path& root,
                                                     const std::vector<EtcdMemberPorts>& ports,
                                                     const std::string& etcd_binary);
  // Stops every member by pid (SIGTERM, then SIGKILL after a grace), the last first.
  ~EtcdCluster();
  EtcdCluster(const EtcdCluster&) = delete;
  EtcdCluster& operator=(const EtcdCluster&) = delete;

  // "127.0.0.1:port" of every member, starting with member `first` (so that clients spread).
  std::vector<std::string> endpoints(int first = 0) const;
  // The ports of every member.
  std::vector<EtcdMemberPorts> ports() const;
  // The pids of the members (for their CPU time).
  std::vector<int> pids() const;
  // A client of the whole cluster, for set-up and membership changes.
  engine::EtcdClient& client() const { return *client_; }

  // Adds a member as a learner, starts it (--initial-cluster-state existing), waits until it
  // serves `expected_keys` keys under `prefix` from a serializable count, then promotes it.
  // Every step is bounded by `timeout` in all. The member stays until remove_last_member().
  Result<MemberJoinTiming> join_member(const std::string& prefix, std::int64_t expected_keys,
                                       std::chrono::milliseconds timeout);
  // Stops the last member, removes it from the cluster and deletes its directory.
  Status remove_last_member();

 private:
  struct Slot {
    std::string name;
    std::filesystem::path dir;
    std::uint16_t client_port = 0;
    std::uint16_t peer_port = 0;
    std::uint64_t id = 0;  // known for joined members
    std::unique_ptr<engine::EtcdMember> member;
  };

  EtcdCluster(std::filesystem::path root, std::string etcd_binary, std::string token)
      : root_(std::move(root)), etcd_binary_(std::move(etcd_binary)), token_(std::move(token)) {}
  Result<Slot> new_slot();
  // Adds the members of `slots` with --initial-cluster of all of them, starts them at once and
  // connects the cluster's client.
  static Result<std::unique_ptr<EtcdCluster>> launch(std::unique_ptr<EtcdCluster> cluster,
                                                     std::vector<Slot> slots);
  engine::MemberConfig member_config(const Slot& slot, std::string initial_cluster) const;
  static std::string peer_url(const Slot& slot);

  std::filesystem::path root_;
  std::string etcd_binary_;
  std::string token_;
  int next_index_ = 0;
  std::vector<Slot> slots_;
  std::unique_ptr<engine::EtcdClient> client_;
};

}  // namespace mishka::bench
