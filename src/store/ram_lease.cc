#include "store/ram_lease.h"

#include <algorithm>
#include <optional>
#include <thread>
#include <utility>

#include "common/codec.h"

namespace mishka::store {

using engine::Deadline;
using std::chrono::milliseconds;

namespace {

// establish(): how many times the key is read again after losing a race for it.
constexpr int kEstablishAttempts = 5;
// The most a new leader adds to a lease's TTL when it extends every lease (etcd's election
// timeout, at most 50 s).
constexpr std::int64_t kMaxLeaseExtension = 60;
// start(): the pause before trying again after an error that may pass (no leader, a
// connection lost, a call's deadline).
constexpr milliseconds kRetryPause{200};

bool outcome_unknown(const Status& s) {
  return s.code() == StatusCode::engine_unavailable || s.code() == StatusCode::timeout ||
         s.code() == StatusCode::no_quorum;
}

double seconds_between(std::chrono::steady_clock::time_point from,
                       std::chrono::steady_clock::time_point to) {
  return std::chrono::duration<double>(to - from).count();
}

}  // namespace

Result<std::unique_ptr<RamLease>> RamLease::create(RamLeaseOptions options) {
  if (options.client == nullptr) return invalid_argument("ram_copies lease: no etcd client");
  if (options.key.empty() || options.write_marker_key.empty()) {
    return invalid_argument("ram_copies lease: empty key");
  }
  if (options.ttl_seconds < 1) {
    return invalid_argument("ram_copies lease: ttl_seconds must be at least 1");
  }
  if (options.keep_alive_period <= milliseconds(0) || options.sample_interval <= milliseconds(0) ||
      options.call_timeout <= milliseconds(0)) {
    return invalid_argument("ram_copies lease: periods and timeouts must be positive");
  }
  if (options.stale_after < options.keep_alive_period + milliseconds(2000)) {
    return invalid_argument(
        "ram_copies lease: stale_after must exceed keep_alive_period by at least 2 s");
  }
  return std::unique_ptr<RamLease>(new RamLease(std::move(options)));
}

RamLease::~RamLease() {
  stop();
}

void RamLease::log(LogLevel level, const std::string& message) const {
  log_to(options_.log, level, "ram_copies lease: " + message);
}

std::int64_t RamLease::current() const {
  std::lock_guard lock(mu_);
  return lease_;
}

RamLeaseStats RamLease::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

Status RamLease::start(Deadline deadline) {
  std::lock_guard establishing(establish_mu_);
  // The revision of the first read: a key created after it was put there by a node running
  // now, with a lease granted now, so it is adopted without a judgement.
  std::int64_t began_at = 0;
  // A lease ended during the judgement (revoked here or elsewhere, or expired): its keys were
  // deleted without the write marker. The marker is put before returning, so that
  // Replica::sync, and with it the start of this node's replica, covers those deletes.
  bool mark = false;
  for (;;) {
    if (deadline.expired()) {
      return Status(StatusCode::timeout, "ram_copies lease: no verdict on the lease in '" +
                                             options_.key + "' before the deadline");
    }
    // etcd may be electing a leader or a member restarting: such errors are waited out until
    // the deadline, the judgement starting over.
    auto transient = [&](const Status& s) {
      if (!outcome_unknown(s) || deadline.expired()) return false;
      std::this_thread::sleep_for(std::min(kRetryPause, deadline.remaining()));
      return true;
    };
    auto read = options_.client->range(options_.key, {}, deadline.capped(options_.call_timeout));
    if (!read.ok()) {
      if (transient(read.status())) continue;
      return read.status().with_context("ram_copies lease: reading " + options_.key);
    }
    if (began_at == 0) began_at = read->header.revision;
    std::optional<engine::KeyValue> kv;
    if (!read->kvs.empty()) kv = read->kvs.front();
    // Why the key's lease is adopted; empty: it is not (yet).
    std::string adopted;
    if (kv && kv->lease != 0 && kv->create_revision > began_at) adopted = "created meanwhile";
    if (kv && kv->lease != 0 && adopted.empty()) {
      auto verdict = probe(kv->lease, deadline);
      if (!verdict.ok()) {
        if (transient(verdict.status())) continue;
        return verdict.status();
      }
      if (*verdict == Verdict::stale) {
        MISHKA_RETURN_IF_ERROR(revoke_stale(kv->lease, deadline));
        mark = true;
        continue;  // read the key again: absent, or put there by a node started meanwhile
      }
      if (*verdict == Verdict::gone) {
        mark = true;
        continue;
      }
      adopted = "another node keeps it alive";
    }
    if (mark) {
      auto marked = options_.client->put(options_.write_marker_key, "", 0,
                                         deadline.capped(options_.call_timeout));
      if (!marked.ok()) {
        if (transient(marked.status())) continue;
        return marked.status().with_context("ram_copies lease: putting the write marker");
      }
      mark = false;
    }
    if (!kv) return Status::Ok();  // none: the first node that needs one makes it
    if (kv->lease == 0) {
      // Not under a lease (written by hand?): establish() replaces it when a lease is needed.
      log(LogLevel::warning, "'" + options_.key + "' is not under a lease; it will be replaced");
      return Status::Ok();
    }
    adopt(kv->lease, false);
    log(LogLevel::info, "adopted lease " + std::to_string(kv->lease) + ": " + adopted);
    return Status::Ok();
  }
}

Result<RamLease::Verdict> RamLease::probe(std::int64_t lease, Deadline deadline) {
  using Clock = std::chrono::steady_clock;
  const std::string what = "ram_copies lease: judging lease " + std::to_string(lease);
  // One round per Raft term: a new leader extends every lease (lessor Promote), which would
  // look like a renewal, so samples are compared only within one term.
  for (;;) {
    auto first = options_.client->lease_time_to_live(lease, deadline.capped(options_.call_timeout));
    if (!first.ok()) return first.status().with_context(what);
    if (first->ttl < 0) return Verdict::gone;
    const Clock::time_point first_answered = Clock::now();
    // A member that just stopped leading holds every lease as never expiring (lessor Demote)
    // and may answer so for a moment: such an answer is no measure of anything.
    auto unreliable = [&](const engine::LeaseTtl& answer) {
      return answer.ttl > answer.granted_ttl + kMaxLeaseExtension;
    };
    if (unreliable(*first)) {
      if (deadline.remaining() <= options_.sample_interval) {
        return Status(StatusCode::timeout, what + ": the deadline passed");
      }
      std::this_thread::sleep_for(options_.sample_interval);
      continue;
    }
    std::int64_t previous = first->ttl;
    for (;;) {
      if (deadline.remaining() <= options_.sample_interval) {
        return Status(StatusCode::timeout, what + ": the deadline passed");
      }
      std::this_thread::sleep_for(options_.sample_interval);
      const Clock::time_point sent = Clock::now();
      auto sample =
          options_.client->lease_time_to_live(lease, deadline.capped(options_.call_timeout));
      if (!sample.ok()) return sample.status().with_context(what);
      if (sample->ttl < 0) return Verdict::gone;
      if (sample->header.raft_term != first->header.raft_term || unreliable(*sample)) {
        log(LogLevel::info, "etcd changed leaders while lease " + std::to_string(lease) +
                                " was being judged; judging it again");
        break;
      }
      // Not renewed, the time the lease has left falls exactly as time passes. etcd answers
      // it rounded down: the first answer f means f <= left < f + 1 when it was read, so an
      // answer s read `elapsed` seconds later satisfies s < f + 1 - elapsed. An answer above
      // that, or above the previous one, proves a renewal.
      const double elapsed = seconds_between(first_answered, sent);
      if (sample->ttl > previous ||
          static_cast<double>(sample->ttl) >= static_cast<double>(first->ttl) + 1.0 - elapsed) {
        return Verdict::live;
      }
      previous = sample->ttl;
      if (sent - first_answered >= options_.stale_after) return Verdict::stale;
    }
  }
}

Status RamLease::revoke_stale(std::int64_t lease, Deadline deadline) {
  // A revoke may be sent again: a second one finds the lease gone (not_found), which is the
  // outcome wanted.
  for (;;) {
    Status revoked = options_.client->lease_revoke(lease, deadline.capped(options_.call_timeout));
    if (revoked.ok() || revoked.code() == StatusCode::not_found) {
      if (revoked.ok()) {
        std::lock_guard lock(mu_);
        ++stats_.revoked_stale;
      }
      break;
    }
    if (!outcome_unknown(revoked) || deadline.expired()) {
      return revoked.with_context("ram_copies lease: revoking lease " + std::to_string(lease) +
                                  " left over from a stopped cluster");
    }
    std::this_thread::sleep_for(std::min(kRetryPause, deadline.remaining()));
  }
  log(LogLevel::info, "revoked lease " + std::to_string(lease) + ": no node renewed it for " +
                          std::to_string(options_.stale_after.count()) +
                          " ms, so it was left over from a stop of the whole cluster; the "
                          "ram_copies records under it are gone");
  return Status::Ok();
}

Result<std::int64_t> RamLease::acquire(Deadline deadline) {
  {
    std::lock_guard lock(mu_);
    if (lease_ != 0) return lease_;
  }
  std::lock_guard establishing(establish_mu_);
  {
    std::lock_guard lock(mu_);
    if (lease_ != 0) return lease_;  // established by another caller meanwhile
  }
  return establish(0, deadline);
}

Result<std::int64_t> RamLease::replace(std::int64_t lost, Deadline deadline) {
  std::lock_guard establishing(establish_mu_);
  {
    std::lock_guard lock(mu_);
    if (lease_ != 0 && lease_ != lost) return lease_;  // already replaced
    if (lease_ == lost) {
      lease_ = 0;
      ++stats_.lost;
    }
  }
  log(LogLevel::warning, "etcd no longer knows lease " + std::to_string(lost) +
                             " (expired or revoked): the ram_copies records under it are gone; "
                             "taking another");
  return establish(lost, deadline);
}

Result<std::int64_t> RamLease::establish(std::int64_t bad, Deadline deadline) {
  {
    std::lock_guard lock(mu_);
    if (stopping_) {
      return Status(StatusCode::engine_unavailable, "ram_copies lease: the node is stopping");
    }
  }
  const std::string& key = options_.key;
  for (int attempt = 0; attempt < kEstablishAttempts; ++attempt) {
    auto read = options_.client->range(key, {}, deadline.capped(options_.call_timeout));
    if (!read.ok()) return read.status().with_context("ram_copies lease: reading " + key);
    const engine::KeyValue* kv = read->kvs.empty() ? nullptr : &read->kvs.front();
    if (kv != nullptr && kv->lease != 0 && kv->lease != bad) {
      // Another node's: the key is put under its lease, so the lease was alive at that read.
      adopt(kv->lease, false);
      return kv->lease;
    }
    auto granted =
        options_.client->lease_grant(options_.ttl_seconds, deadline.capped(options_.call_timeout));
    if (!granted.ok()) return granted.status().with_context("ram_copies lease: granting");
    engine::TxnRequest txn;
    engine::Compare unchanged;
    unchanged.key = key;
    if (kv == nullptr) {
      // Create if absent: an absent key has create_revision 0.
      unchanged.target = engine::Compare::Target::create_revision;
      unchanged.number = 0;
    } else {
      // Replace the key as it was read (it names `bad`, or no lease).
      unchanged.target = engine::Compare::Target::mod_revision;
      unchanged.number = kv->mod_revision;
    }
    unchanged.result = engine::Compare::Result::equal;
    txn.compares.push_back(unchanged);
    engine::TxnOp put;
    put.kind = engine::TxnOp::Kind::put;
    put.key = key;
    put.value = encode_value(Value(*granted));
    put.lease = *granted;
    txn.success.push_back(put);
    auto result = options_.client->txn(txn, deadline.capped(options_.call_timeout));
    if (!result.ok()) {
      // The lease is not revoked: if the Txn was applied after all, the key is under it. If
      // not, nothing is, and it expires after its TTL.
      return result.status().with_context("ram_copies lease: creating " + key);
    }
    if (result->succeeded) {
      adopt(*granted, true);
      log(LogLevel::info, "granted lease " + std::to_string(*granted) + " and put it in " + key);
      return *granted;
    }
    // Another node was first: drop ours (nothing is under it) and take theirs.
    (void)options_.client->lease_revoke(*granted, deadline.capped(options_.call_timeout));
  }
  return Status(StatusCode::conflict, "ram_copies lease: " + key + " kept changing during " +
                                          std::to_string(kEstablishAttempts) +
                                          " attempts to read or create it");
}

void RamLease::adopt(std::int64_t lease, bool granted) {
  std::lock_guard lock(mu_);
  lease_ = lease;
  if (granted) {
    ++stats_.granted;
  } else {
    ++stats_.adopted;
  }
  start_thread_locked();
}

void RamLease::keep_when(std::function<bool()> wanted) {
  std::lock_guard lock(mu_);
  wanted_ = std::move(wanted);
  start_thread_locked();
}

void RamLease::start_thread_locked() {
  if (!thread_.joinable() && !stopping_) thread_ = std::thread([this] { keep_alive_loop(); });
}

void RamLease::keep_alive_loop() {
  const milliseconds period = options_.keep_alive_period;
  std::string last_failure;
  std::unique_lock lock(mu_);
  while (!cv_.wait_for(lock, period, [this] { return stopping_; })) {
    const std::int64_t lease = lease_;
    if (lease == 0) {
      const std::function<bool()> wanted = wanted_;
      lock.unlock();
      if (wanted && wanted()) {
        auto got = acquire(Deadline::after(std::max(period, options_.call_timeout)));
        if (!got.ok() && got.status().message() != last_failure) {
          last_failure = got.status().message();
          log(LogLevel::warning, "taking the lease failed: " + got.status().to_string());
        }
      }
      lock.lock();
      continue;
    }
    lock.unlock();
    auto ttl = options_.client->lease_keep_alive(lease, Deadline::after(2 * period));
    const bool gone = ttl.ok() ? *ttl == 0 : ttl.status().code() == StatusCode::not_found;
    std::string message;
    if (gone) {
      message = "lease " + std::to_string(lease) +
                " expired or was revoked: the ram_copies records under it are gone; the next "
                "ram_copies write takes another lease";
    } else if (!ttl.ok() && ttl.status().message() != last_failure) {
      last_failure = ttl.status().message();
      message = "renewing lease " + std::to_string(lease) + " failed: " + ttl.status().to_string();
    } else if (ttl.ok() && !last_failure.empty()) {
      last_failure.clear();
      log(LogLevel::info, "lease " + std::to_string(lease) + " is renewed again");
    }
    if (!message.empty()) log(LogLevel::warning, message);
    lock.lock();
    if (gone && lease_ == lease) {
      lease_ = 0;
      ++stats_.lost;
    }
  }
}

void RamLease::begin_stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
}

void RamLease::stop() {
  begin_stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace mishka::store
