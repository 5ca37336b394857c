// Publish/subscribe by topic, on one node and across the cluster: the project's counterpart of
// Phoenix.PubSub (spec/CONTRACT.md section 6; docs/pubsub.md).
//
// A PubSub object belongs to one node; there is no process-wide state, so many nodes can live
// in one process. Local delivery is asynchronous: publishing puts the message into the mailbox
// of every subscriber of its topic and returns; delivery threads call the subscribers. Each
// subscriber has its own bounded mailbox, so a slow subscriber delays nobody but itself (given
// a free delivery thread) and, once its mailbox is full, loses its own messages, never the
// publisher's time nor other subscribers' messages.
//
// Cluster-wide delivery goes through a Transport that the node sets once it is in a cluster
// (engine/cluster_broadcast.h is the one over etcd). The transport brings every message back to
// every node, this one included, through deliver(); local subscribers are served from there
// only, so each of them sees each message once.
//
// Threading contract:
//   - Every method may be called from any thread, concurrently, including from inside a
//     subscriber's callback (subscribe, unsubscribe, broadcast_local and broadcast there do not
//     deadlock), except flush() (refused inside a callback: it would wait for itself) and the
//     destructor (never from a callback). broadcast() blocks on the transport (one etcd round
//     trip with ClusterBroadcast): from a callback, that holds a delivery thread meanwhile.
//   - A subscriber's callback runs on one of the PubSub's delivery threads, one call at a time
//     and in mailbox order; different subscribers' callbacks may run at the same time on
//     different delivery threads. No lock of the PubSub is held during a callback.
//   - A callback that throws is logged (error) and unsubscribed; its pending messages are
//     discarded. It never reaches the publisher.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "mishka/log.h"
#include "mishka/status.h"
#include "mishka/value.h"

namespace mishka::pubsub {

using Clock = std::chrono::steady_clock;

// Topics and node names become segments of etcd keys (docs/keyspace.md), hence the rules:
// 1 to kMaxNameBytes bytes, no '/' and no NUL byte.
inline constexpr std::size_t kMaxNameBytes = 255;
// invalid_argument naming `what` ("topic", "node name") and the rule broken.
Status validate_name(std::string_view what, std::string_view name);

// One published message as subscribers receive it.
struct Message {
  std::string topic;
  std::string sender;  // the node name of the PubSub that published it
  Value payload;
};

// Called for each message of the subscribed topic; see the threading contract above.
using Subscriber = std::function<void(const Message&)>;
using SubscriptionId = std::uint64_t;  // never 0, never reused by one PubSub

// How a PubSub reaches the other nodes. Implementations are thread-safe: publish and flush may
// be called from any thread at once.
class Transport {
 public:
  virtual ~Transport() = default;

  // Sends `message` (sender already set to this node) to every node of the cluster, this one
  // included: the transport hands it to each node's PubSub::deliver() exactly once, in the same
  // order relative to every other message on every node. Returns ok once that is certain to
  // happen for every node that stays connected; an error means the message was not sent, or,
  // for timeout and engine_unavailable, that its fate is unknown. Blocks until `deadline` at
  // most.
  virtual Status publish(const Message& message, Clock::time_point deadline) = 0;

  // Waits until every message that publish() accepted before this call has been handed to
  // this node's PubSub::deliver(). timeout when `deadline` passes first.
  virtual Status flush(Clock::time_point deadline) = 0;
};

struct PubSubOptions {
  // This node's name: the sender of every message it publishes. See validate_name.
  std::string node_name;
  // Messages waiting in one subscriber's mailbox, at most. A message that finds the mailbox
  // full is dropped for that subscriber only, counted in PubSubStats::dropped and logged
  // (a warning when a subscriber starts dropping, and how many once it accepts again).
  std::size_t mailbox_capacity = 10000;
  // Threads calling subscribers. With n threads, n - 1 slow subscribers cannot delay the
  // others. 1 to 64.
  std::size_t delivery_threads = 2;
  // The default deadline of broadcast() when none is given.
  std::chrono::milliseconds broadcast_timeout{5000};
  LogSink log;
};

// Counters since creation (except the current ones). A (message, subscriber) pair is one
// "delivery": a message for a topic with three subscribers makes three.
struct PubSubStats {
  std::uint64_t subscriptions = 0;       // current
  std::uint64_t queued = 0;              // deliveries waiting in mailboxes now
  std::uint64_t published_local = 0;     // messages broadcast to this node only
  std::uint64_t published_remote = 0;    // messages the transport accepted from broadcast()
  std::uint64_t received = 0;            // messages handed to deliver() by the transport
  std::uint64_t delivered = 0;           // callbacks that returned normally
  std::uint64_t dropped = 0;             // deliveries dropped because a mailbox was full
  std::uint64_t discarded = 0;           // deliveries thrown away by unsubscribe, failure or close
  std::uint64_t failed_subscribers = 0;  // subscribers removed because their callback threw
};

class PubSub {
 public:
  // Starts the delivery threads. invalid_argument for a bad node name, a mailbox capacity of 0
  // or a thread count outside 1..64.
  static Result<std::unique_ptr<PubSub>> create(PubSubOptions options);

  // Discards what is still queued (counted), drops the transport, waits for running callbacks
  // and joins the delivery threads. Never from a callback. A transport that refers to this
  // object must be stopped before, or be destroyed by this (ClusterBroadcast: when this holds
  // its last reference).
  ~PubSub();
  PubSub(const PubSub&) = delete;
  PubSub& operator=(const PubSub&) = delete;

  // `fn` receives every message on `topic` enqueued after this returns. invalid_argument for
  // a bad topic or an empty function.
  Result<SubscriptionId> subscribe(std::string topic, Subscriber fn);

  // Removes the subscription and discards its queued messages. When its callback is running
  // on a delivery thread, waits for that call to end, unless the caller is itself a callback
  // (then it returns at once and the running call is the last one). So, called from outside
  // the callbacks, once it returns `fn` runs no more and may be destroyed. not_found when the
  // id is unknown or already unsubscribed.
  Status unsubscribe(SubscriptionId id);

  // Delivers to this node's subscribers only, with this node as the sender. Never blocks on
  // subscribers. invalid_argument for a bad topic.
  Status broadcast_local(std::string_view topic, Value payload);

  // Delivers to the subscribers of every node. With a transport: returns what
  // Transport::publish returns (ClusterBroadcast: after etcd committed the message, so one
  // etcd round trip), and this node's subscribers get the message when the transport brings
  // it back. Without a transport: the same as broadcast_local (the node is alone).
  // invalid_argument for a bad topic.
  Status broadcast(std::string_view topic, Value payload, Clock::time_point deadline);
  Status broadcast(std::string_view topic, Value payload);  // options.broadcast_timeout

  // Sets (or, with nullptr, clears) the transport used by broadcast(). A broadcast already
  // running keeps the transport it started with (the shared pointer keeps it alive).
  void set_transport(std::shared_ptr<Transport> transport);

  // For transports: enqueues a message received from the cluster for this node's
  // subscribers of its topic, like broadcast_local but with the message's own sender. Never
  // blocks on subscribers.
  void deliver(Message message);

  // Waits until every message broadcast by this node before the call has been delivered to (or
  // dropped or discarded for) every local subscriber: first the transport's flush (messages on
  // their way back), then the mailboxes as they are at that point. Messages of other nodes
  // still in flight are not covered. timeout when `deadline` passes first; invalid_argument
  // when called from a callback (it would wait for itself).
  Status flush(Clock::time_point deadline);

  PubSubStats stats() const;
  const std::string& node_name() const;

 private:
  class Impl;
  explicit PubSub(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace mishka::pubsub
