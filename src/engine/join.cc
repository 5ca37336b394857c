#include "engine/join.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <utility>

namespace mishka::engine {
namespace {

using std::chrono::milliseconds;

constexpr milliseconds kLockPoll{200};
constexpr milliseconds kPromotePoll{200};
// Each membership call's own bound inside the join's deadline.
constexpr milliseconds kCallTimeout{5000};

Compare key_created_never(const std::string& key) {
  Compare c;
  c.key = key;
  c.target = Compare::Target::create_revision;
  c.result = Compare::Result::equal;
  c.number = 0;
  return c;
}

Compare value_equals(const std::string& key, const std::string& value) {
  Compare c;
  c.key = key;
  c.target = Compare::Target::value;
  c.result = Compare::Result::equal;
  c.value = value;
  return c;
}

TxnOp op(TxnOp::Kind kind, const std::string& key, const std::string& value = "",
         std::int64_t lease = 0) {
  TxnOp o;
  o.kind = kind;
  o.key = key;
  o.value = value;
  o.lease = lease;
  return o;
}

// Seen from member_add right after a learner was removed: etcd still applying the removal.
bool add_refused_for_now(const Status& status) {
  return membership_change_deferred(status) ||
         status.message().find("etcdserver: member not found") != std::string::npos;
}

bool has_peer_url(const Member& member, const std::string& url) {
  return std::find(member.peer_urls.begin(), member.peer_urls.end(), url) != member.peer_urls.end();
}

}  // namespace

bool membership_change_deferred(const Status& status) {
  for (const char* said :
       {"etcdserver: unhealthy cluster",
        "etcdserver: re-configuration failed due to not enough started members"}) {
    if (status.message().find(said) != std::string::npos) return true;
  }
  return false;
}

std::string hex_member_id(std::uint64_t id) {
  char hex[19];
  std::snprintf(hex, sizeof hex, "0x%016llx", static_cast<unsigned long long>(id));
  return hex;
}

ClusterJoin::ClusterJoin(EtcdClient& peers, JoinRequest request)
    : peers_(peers), request_(std::move(request)) {}

ClusterJoin::~ClusterJoin() {
  release_lock();
}

void ClusterJoin::log(LogLevel level, const std::string& message) const {
  if (request_.log) request_.log(level, "join: " + message);
}

Result<std::unique_ptr<ClusterJoin>> ClusterJoin::begin(EtcdClient& peers, JoinRequest request,
                                                        Deadline deadline) {
  if (request.target_voters < 1 || request.target_voters > 7) {
    return invalid_argument("join: target_voters must be 1..7, not " +
                            std::to_string(request.target_voters));
  }
  std::unique_ptr<ClusterJoin> join(new ClusterJoin(peers, std::move(request)));
  MISHKA_RETURN_IF_ERROR(join->take_lock(deadline));
  JoinPlan& plan = join->plan_;

  Result<std::vector<Member>> listed = peers.member_list(deadline.capped(kCallTimeout));
  if (!listed.ok()) return listed.status().with_context("join: listing the cluster's members");
  std::vector<Member> members = std::move(listed).value();
  MISHKA_RETURN_IF_ERROR(join->clear_leftovers(members, deadline));
  if (!join->request_.removed_key.empty()) {
    Result<std::int64_t> cleared =
        peers.erase(join->request_.removed_key, "", deadline.capped(kCallTimeout));
    if (!cleared.ok()) return cleared.status().with_context("join: clearing an old removal");
    if (*cleared > 0) join->log(LogLevel::info, "cleared the record of an earlier removal");
  }

  const auto voters =
      std::count_if(members.begin(), members.end(), [](const Member& m) { return !m.is_learner; });
  if (voters >= join->request_.target_voters) {
    // Read the cluster id from a call that returns a header.
    Result<RangeResult> header =
        peers.range(join->request_.lock_key, RangeOptions{}, deadline.capped(kCallTimeout));
    if (!header.ok()) return header.status().with_context("join: reading the cluster id");
    plan.cluster_id = header->header.cluster_id;
    plan.as_replica = true;
    plan.members = std::move(members);
    join->log(LogLevel::info, "the cluster has " + std::to_string(voters) +
                                  " voters (the target): joining as a replica without a member");
    return join;
  }

  Result<MemberAddResult> added = join->add_learner(deadline);
  if (!added.ok()) return added.status();
  plan.cluster_id = added->header.cluster_id;
  plan.member_id = added->added.id;
  plan.members = added->members;
  std::string initial;
  for (const Member& m : added->members) {
    const bool ours = m.id == plan.member_id;
    const std::string& name = ours ? join->request_.node_name : m.name;
    if (name.empty()) {
      join->abandon(deadline);
      return Status(StatusCode::internal,
                    "join: member " + hex_member_id(m.id) +
                        " of the cluster was added but never started, so its name is unknown "
                        "and the learner cannot be given the cluster's membership");
    }
    for (const std::string& url :
         ours ? std::vector<std::string>{join->request_.peer_url} : m.peer_urls) {
      if (!initial.empty()) initial += ",";
      initial += name + "=" + url;
    }
  }
  plan.initial_cluster = std::move(initial);
  join->log(LogLevel::info, "added learner " + hex_member_id(plan.member_id) + " to cluster " +
                                hex_member_id(plan.cluster_id) + " (" + std::to_string(voters) +
                                " voters)");
  return join;
}

Result<MemberAddResult> ClusterJoin::add_learner(Deadline deadline) {
  bool logged = false;
  while (true) {
    Result<MemberAddResult> added =
        peers_.member_add({request_.peer_url}, /*as_learner=*/true, deadline.capped(kCallTimeout));
    if (added.ok() || !add_refused_for_now(added.status()) || deadline.expired()) {
      if (!added.ok()) return added.status().with_context("join: adding the learner");
      return added;
    }
    if (!logged) {
      logged = true;
      log(LogLevel::info,
          "etcd defers the change of membership (" + added.status().message() + "); asking again");
    }
    std::this_thread::sleep_for(std::min(kLockPoll, deadline.remaining()));
  }
}

Status ClusterJoin::take_lock(Deadline deadline) {
  Result<std::int64_t> lease =
      peers_.lease_grant(request_.lock_ttl_seconds, deadline.capped(kCallTimeout));
  if (!lease.ok()) return lease.status().with_context("join: granting the join lock's lease");
  lease_ = *lease;
  std::string waiting_for;
  while (true) {
    TxnRequest txn;
    txn.compares.push_back(key_created_never(request_.lock_key));
    txn.success.push_back(op(TxnOp::Kind::put, request_.lock_key, request_.node_name, lease_));
    txn.failure.push_back(op(TxnOp::Kind::range, request_.lock_key));
    Result<TxnResult> taken = peers_.txn(txn, deadline.capped(kCallTimeout));
    if (!taken.ok()) {
      release_lock();
      return taken.status().with_context("join: taking the join lock " + request_.lock_key);
    }
    if (taken->succeeded) break;
    std::string holder;
    if (!taken->responses.empty() && taken->responses[0] && !taken->responses[0]->kvs.empty()) {
      holder = taken->responses[0]->kvs[0].value;
    }
    if (holder == request_.node_name) {
      // Left by an earlier attempt of this node that died: its lease has not expired yet.
      TxnRequest clear;
      clear.compares.push_back(value_equals(request_.lock_key, holder));
      clear.success.push_back(op(TxnOp::Kind::erase, request_.lock_key));
      Result<TxnResult> cleared = peers_.txn(clear, deadline.capped(kCallTimeout));
      if (!cleared.ok()) {
        release_lock();
        return cleared.status().with_context("join: clearing this node's stale join lock");
      }
      log(LogLevel::warning, "cleared the join lock left by an earlier attempt of this node");
      continue;
    }
    if (holder != waiting_for) {
      waiting_for = holder;
      log(LogLevel::info, "waiting for " + holder + " to finish joining (one join at a time)");
    }
    if (deadline.expired()) {
      release_lock();
      return Status(StatusCode::timeout,
                    "join: the join lock " + request_.lock_key + " is still held by " + holder);
    }
    std::this_thread::sleep_for(std::min(kLockPoll, deadline.remaining()));
  }
  keep_alive_ = std::thread([this] { keep_lock_alive(); });
  return Status::Ok();
}

void ClusterJoin::keep_lock_alive() {
  const milliseconds period(std::max<std::int64_t>(1, request_.lock_ttl_seconds) * 1000 / 3);
  std::unique_lock<std::mutex> lock(mu_);
  while (!cv_.wait_for(lock, period, [this] { return stopping_; })) {
    lock.unlock();
    Result<std::int64_t> ttl = peers_.lease_keep_alive(lease_, Deadline::after(period));
    if (!ttl.ok() || *ttl == 0) {
      // The join goes on: promote() and the caller's steps still succeed or fail on their own,
      // and another joiner that takes the lock meanwhile finds this learner and waits for etcd
      // to refuse its own learner; logged so that the overlap can be explained.
      log(LogLevel::warning, "the join lock's lease could not be kept alive: " +
                                 (ttl.ok() ? std::string("it expired") : ttl.status().to_string()));
    }
    lock.lock();
  }
}

void ClusterJoin::release_lock() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (keep_alive_.joinable()) keep_alive_.join();
  if (lease_ != 0) {
    Status revoked = peers_.lease_revoke(lease_, Deadline::after(kCallTimeout));
    if (!revoked.ok() && revoked.code() != StatusCode::not_found) {
      log(LogLevel::warning,
          "releasing the join lock: " + revoked.to_string() + " (it expires with its lease)");
    }
    lease_ = 0;
  }
}

Status ClusterJoin::clear_leftovers(std::vector<Member>& members, Deadline deadline) {
  for (auto it = members.begin(); it != members.end();) {
    const bool own = has_peer_url(*it, request_.peer_url);
    if (!own && !it->is_learner) {
      ++it;
      continue;
    }
    log(LogLevel::warning, "removing " + std::string(own ? "this node's member " : "learner ") +
                               hex_member_id(it->id) +
                               (it->name.empty() ? "" : " (" + it->name + ")") +
                               ", left by an interrupted join");
    Status removed = peers_.member_remove(it->id, deadline.capped(kCallTimeout));
    if (!removed.ok() && removed.code() != StatusCode::not_found) {
      release_lock();
      return removed.with_context("join: removing member " + hex_member_id(it->id) +
                                  " left by an interrupted join");
    }
    it = members.erase(it);
  }
  return Status::Ok();
}

Status ClusterJoin::promote(Deadline deadline) {
  bool logged = false;
  while (true) {
    Status promoted = peers_.member_promote(plan_.member_id, deadline.capped(kCallTimeout));
    if (promoted.ok()) {
      log(LogLevel::info, "learner " + hex_member_id(plan_.member_id) + " promoted to voter");
      return promoted;
    }
    // etcd refuses while the learner's log is behind the leader's, and while it defers any
    // change of membership.
    if (promoted.message().find("in sync with leader") == std::string::npos &&
        !membership_change_deferred(promoted)) {
      return promoted.with_context("join: promoting learner " + hex_member_id(plan_.member_id));
    }
    if (!logged) {
      logged = true;
      log(LogLevel::info, "learner " + hex_member_id(plan_.member_id) + " is catching up");
    }
    if (deadline.expired()) {
      return Status(StatusCode::timeout, "join: learner " + hex_member_id(plan_.member_id) +
                                             " did not catch up with the leader in time");
    }
    std::this_thread::sleep_for(std::min(kPromotePoll, deadline.remaining()));
  }
}

void ClusterJoin::abandon(Deadline deadline) {
  if (plan_.member_id == 0) return;
  Status removed = peers_.member_remove(plan_.member_id, deadline.capped(kCallTimeout));
  if (removed.ok() || removed.code() == StatusCode::not_found) {
    log(LogLevel::info, "removed learner " + hex_member_id(plan_.member_id) + " again");
  } else {
    log(LogLevel::warning, "could not remove learner " + hex_member_id(plan_.member_id) + ": " +
                               removed.to_string() + " (the next join removes it)");
  }
  plan_.member_id = 0;
}

}  // namespace mishka::engine
