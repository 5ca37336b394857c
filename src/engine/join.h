// Joining a running cluster through its members (ARCHITECTURE.md decision 6; docs/cluster.md,
// "Joining"): the etcd side of a joiner's first start.
//
//   1. take the cluster's join lock, a key under a lease of the joiner's, kept alive while it
//      joins: etcd 3.4 accepts one learner at a time, so joins are serialized, and a second
//      joiner waits for the lock instead of failing;
//   2. under the lock, remove what an interrupted join left: a member with the joiner's own
//      peer URL, and any learner (its joiner no longer holds the lock, so it is dead or gave up);
//   3. count the voters: at the target already, the node joins as a replica without a member;
//   4. otherwise add the joiner's member as a learner and hand back the --initial-cluster it
//      must start with; the caller starts it, then promote() waits until etcd accepts the
//      learner as in sync and promotes it to a voter;
//   5. the destructor releases the lock (revokes its lease). abandon() removes the learner
//      when the caller's part failed, so that the next attempt starts clean.
//
// Threading: one owner thread; the lock's keep-alive runs on a thread of its own.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "engine/deadline.h"
#include "engine/etcd_client.h"
#include "mishka/log.h"
#include "mishka/status.h"

namespace mishka::engine {

struct JoinRequest {
  std::string node_name;  // the joiner's etcd --name
  std::string peer_url;   // the joiner's member's peer URL
  std::string lock_key;   // "<cluster prefix>join"
  // "<cluster prefix>removed/<node>": erased under the lock, as a node that joins afresh after
  // an operator removed it (and wiped its directory) is welcome again.
  std::string removed_key;
  int target_voters = 3;  // 1..7
  std::int64_t lock_ttl_seconds = 10;
  LogSink log;  // lines prefixed "join: "; may be empty
};

struct JoinPlan {
  std::uint64_t cluster_id = 0;
  bool as_replica = false;      // the cluster has target_voters voters already
  std::uint64_t member_id = 0;  // the learner added (0 for a replica)
  std::string initial_cluster;  // name=peer_url,... for the learner's first start
  std::vector<Member> members;  // the membership after the learner was added
};

class ClusterJoin {
 public:
  // Steps 1 to 4 through `peers` (a client to the configured peers; not owned, must outlive
  // the object). Errors: engine_unavailable / timeout / no_quorum from etcd (nobody reachable,
  // no leader), timeout naming the holder when the lock stays taken until `deadline`,
  // internal when the membership holds an unstarted voter this join cannot name. On error the
  // lock is released and nothing stays added.
  static Result<std::unique_ptr<ClusterJoin>> begin(EtcdClient& peers, JoinRequest request,
                                                    Deadline deadline);
  // Releases the lock.
  ~ClusterJoin();
  ClusterJoin(const ClusterJoin&) = delete;
  ClusterJoin& operator=(const ClusterJoin&) = delete;

  const JoinPlan& plan() const { return plan_; }

  // Promotes the learner, asking again while etcd says it is not in sync with the leader yet.
  // Errors: timeout (still not in sync at `deadline`), and etcd's.
  Status promote(Deadline deadline);
  // Removes the learner this join added (logged; a failure is logged too, and the next join's
  // step 2 removes it).
  void abandon(Deadline deadline);

 private:
  ClusterJoin(EtcdClient& peers, JoinRequest request);
  Status take_lock(Deadline deadline);
  Result<MemberAddResult> add_learner(Deadline deadline);
  void release_lock();
  Status clear_leftovers(std::vector<Member>& members, Deadline deadline);
  void log(LogLevel level, const std::string& message) const;
  void keep_lock_alive();

  EtcdClient& peers_;
  JoinRequest request_;
  JoinPlan plan_;
  std::int64_t lease_ = 0;

  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread keep_alive_;
};

// etcd's --strict-reconfig-check (on by default) refuses a change of membership until its
// leader has heard from every voter for 5 s (etcdserver's HealthInterval) and enough voters
// are started: right after a join, or while a member restarts. Such a refusal changed
// nothing; the change may be asked again.
bool membership_change_deferred(const Status& status);

// "0x%016x", as ids appear in logs and messages.
std::string hex_member_id(std::uint64_t id);

}  // namespace mishka::engine
