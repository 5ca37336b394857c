// Cluster-wide pub/sub over etcd: the pubsub::Transport of a node in a cluster
// (docs/pubsub.md; the keys are in docs/keyspace.md).
//
// Publishing puts the message (its payload as MessagePack, docs/formats.md "Values") under
//   <prefix><topic>/<sender>/<incarnation>/<seq>
// where <incarnation> is a random number drawn when the ClusterBroadcast is created and <seq>
// counts its messages (both 16 lower-case hex digits), so every message has a key of its own.
// The key is attached to a short lease, so that etcd deletes old messages by itself.
//
// Receiving: one thread watches the prefix and hands each put, in revision order, to the
// node's PubSub::deliver(), this node's own messages included: every node's subscribers see
// every message once and in the same order (etcd's revision order, which for one sender is the
// order its broadcasts committed). When the watch breaks, it resumes from the revision after the
// last one delivered: no duplicates, no gaps. When etcd has compacted that revision away, it
// logs a warning with the number of revisions that may have held lost messages and resumes
// from the oldest revision etcd still has: delivery is best effort across compaction.
//
// Costs: publish() is one etcd put (a Raft commit, fsynced by a majority of members) and
// returns after it committed; now and then one more round trip grants a lease. Each message
// then reaches every node as one watch event, and disappears (one more event, a delete that
// receivers ignore) when its lease expires, at most message_ttl (usually at least half of it)
// after it was put. Lease grants are Raft writes too: about one per message_ttl / 2 while the node
// publishes, none while it is quiet.
//
// Leases: the ClusterBroadcast uses one lease at a time and never keeps it alive: when the
// lease in use is message_ttl / 2 old, a thread grants the next one (only if the old one
// carried messages) and the old one expires by itself with its messages. A lease kept alive
// would keep every message of the node for as long as the node lives. A put refused because
// its lease is gone (expired while etcd was unreachable, or revoked) is sent again once with a
// fresh lease: a refused put wrote nothing.
//
// Threading: publish(), flush() and stats() from any thread at once; start() and stop() from
// the owner. Two threads run between start() and stop(): the watch and the lease rotation.
// The client and the PubSub are not owned and must outlive every thread (stop() first).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "engine/deadline.h"
#include "engine/etcd_client.h"
#include "mishka/log.h"
#include "mishka/pubsub.h"
#include "mishka/status.h"

namespace mishka::engine {

struct ClusterBroadcastOptions {
  // Where messages live in etcd; ends with '/'. Tests isolate themselves under their own.
  std::string prefix = "/mishka/v1/ps/";
  // The lease of each message, in seconds: 2 (etcd's smallest with its default timing) to 3600.
  std::chrono::seconds message_ttl{10};
  // etcd's --max-request-bytes (its default, 1.5 MiB). A message whose put would exceed it is
  // refused here with invalid_argument, before it is sent; etcd refuses it too otherwise.
  std::size_t max_request_bytes = std::size_t{3} << 19;
  // Deadline of each etcd call made by the threads (range, watch creation, lease grant).
  std::chrono::milliseconds call_timeout{5000};
  // Wait before reopening a broken watch; doubled after each failed attempt, up to
  // max(2 s, retry_interval). Also the wait after a failed lease grant.
  std::chrono::milliseconds retry_interval{200};
  LogSink log;
};

// Counters since creation, and where the watch stands.
struct ClusterBroadcastStats {
  std::uint64_t published = 0;         // puts etcd committed
  std::uint64_t publish_failures = 0;  // publish() calls that returned an error
  std::uint64_t received = 0;          // messages handed to PubSub::deliver()
  std::uint64_t malformed = 0;         // puts under the prefix skipped (bad key or value)
  std::uint64_t watch_restarts = 0;    // watch streams that broke and were reopened
  std::uint64_t compactions = 0;       // times the resume revision had been compacted
  std::int64_t revisions_lost = 0;     // revisions skipped for that reason, in total
  std::uint64_t leases_granted = 0;
  std::int64_t delivered_revision = 0;  // every message up to this revision was delivered
  std::int64_t published_revision = 0;  // the newest revision of a put by this object
};

// A message key's parts (see the top of this file).
struct MessageKey {
  std::string topic;
  std::string sender;
  std::uint64_t incarnation = 0;
  std::uint64_t seq = 0;
};
std::string encode_message_key(std::string_view prefix, const MessageKey& key);
// corrupt when `key` is not `prefix` followed by four parts of the right shape (topic and
// sender as pubsub::validate_name requires, then two 16-digit lower-case hex numbers).
Result<MessageKey> parse_message_key(std::string_view prefix, std::string_view key);

class ClusterBroadcast final : public pubsub::Transport {
 public:
  // Checks the options (invalid_argument: a prefix that is empty or does not end with '/', a
  // ttl outside 2..3600 s, a request limit under 1 KiB, non-positive timeouts). Nothing is
  // sent to etcd before start(). `pubsub` receives what the watch brings; publish() sends
  // under each message's own sender (PubSub::broadcast sets its node name).
  static Result<std::shared_ptr<ClusterBroadcast>> create(EtcdClient& client,
                                                          pubsub::PubSub& pubsub,
                                                          ClusterBroadcastOptions options);
  // stop(), waiting as long as the threads need (each of their etcd calls is bounded by
  // call_timeout).
  ~ClusterBroadcast() override;
  ClusterBroadcast(const ClusterBroadcast&) = delete;
  ClusterBroadcast& operator=(const ClusterBroadcast&) = delete;

  // Reads etcd's current revision R (one range of the prefix) and opens the watch from R + 1,
  // then starts the threads: every message committed after R is delivered, none before. Errors:
  // the client's (engine_unavailable, timeout, no_quorum, ...) with nothing started; and
  // invalid_argument when called twice.
  Status start(Deadline deadline);

  // Ends the watch, stops the threads and joins them. Once it returns ok, nothing more is
  // handed to the PubSub (what it already holds is still delivered by it). timeout when a thread is
  // still inside an etcd call at `deadline` (each is bounded by call_timeout): call stop() again,
  // or let the destructor wait. Idempotent. The lease in use is left to expire with its messages;
  // other nodes still receive them.
  Status stop(Deadline deadline);

  // Puts `message` into etcd and returns once it committed (see "Costs" above). Errors:
  // invalid_argument (a bad topic or sender, or a message too large for max_request_bytes or
  // for etcd), engine_unavailable before start() or after stop(), and the client's errors; a
  // timeout or engine_unavailable from etcd leaves it unknown whether the message went out.
  Status publish(const pubsub::Message& message, pubsub::Clock::time_point deadline) override;

  // Waits until the watch has delivered every message this object published before the call.
  // timeout at `deadline`; engine_unavailable when stopped first.
  Status flush(pubsub::Clock::time_point deadline) override;

  ClusterBroadcastStats stats() const;

  // For tests: cancels the current watch stream as if it broke. The watch thread resumes
  // after retry_interval, as it does after a real break.
  void interrupt_watch_for_testing();

 private:
  class Impl;
  explicit ClusterBroadcast(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace mishka::engine
