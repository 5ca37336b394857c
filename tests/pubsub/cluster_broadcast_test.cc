// ClusterBroadcast against a real one-member etcd on loopback: several nodes (a PubSub and a
// ClusterBroadcast each, on shared and separate clients) in one process. Exactly once and in
// order under concurrent senders, resumption after a cancelled stream and after a frozen etcd,
// the compaction path, size limits, malformed keys, leases. Every wait is bounded.

#include "engine/cluster_broadcast.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <iostream>
#include <map>
#include <memory>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "common/codec.h"
#include "inbox.h"
#include "support/etcd_process.h"
#include "support/process_checks.h"
#include "support/watchdog.h"

namespace mishka::engine {
namespace {

using pubsub::Clock;
using pubsub::Message;
using pubsub::test::Inbox;
using pubsub::test::LogCapture;
using std::chrono::milliseconds;

constexpr char kPrefix[] = "/test/ps/";  // every test's own etcd, so one prefix serves all
constexpr milliseconds kCall{5000};      // each etcd call and publish
constexpr milliseconds kWait{15000};     // deliveries to arrive

Deadline Soon() {
  return Deadline::after(kCall);
}

// A node: its PubSub, and its ClusterBroadcast set as the transport. Stopped in the order the
// header asks for: the broadcast first, then the PubSub.
struct Node {
  std::unique_ptr<pubsub::PubSub> pubsub;
  std::shared_ptr<ClusterBroadcast> broadcast;

  ~Node() {
    if (broadcast != nullptr) {
      EXPECT_TRUE(broadcast->stop(Soon()).ok());
      pubsub->set_transport(nullptr);
    }
  }
  Status send(const std::string& topic, Value payload, milliseconds timeout = kCall) {
    return pubsub->broadcast(topic, std::move(payload), Clock::now() + timeout);
  }
  Status flush() { return pubsub->flush(Clock::now() + kWait); }
};

// The payloads of `messages` from `sender`, in the order received.
std::vector<std::int64_t> From(const std::vector<Message>& messages, const std::string& sender) {
  std::vector<std::int64_t> out;
  for (const Message& m : messages) {
    if (m.sender == sender) out.push_back(m.payload.get_int() ? *m.payload.get_int() : -1);
  }
  return out;
}

std::vector<std::int64_t> Range(std::int64_t from, std::int64_t to) {
  std::vector<std::int64_t> out;
  for (std::int64_t i = from; i < to; ++i) out.push_back(i);
  return out;
}

class ClusterBroadcastTest : public ::testing::Test {
 protected:
  void SetUp() override {
    test::EtcdOptions options;
    options.name = "pubsub-test-member";
    // Lets a client ping every second, so that a frozen etcd breaks its watch quickly.
    options.extra_args = {"--grpc-keepalive-min-time=500ms"};
    Result<std::unique_ptr<test::EtcdProcess>> etcd = test::EtcdProcess::Start(options);
    ASSERT_TRUE(etcd.ok()) << etcd.status().to_string();
    etcd_ = std::move(etcd).value();
    client_ = NewClient();
  }

  void TearDown() override {
    nodes_.clear();
    if (etcd_ == nullptr) return;
    if (HasFailure()) {
      std::cerr << "--- log lines\n" << logs_.all();
      std::cerr << "--- last lines of " << etcd_->log_path() << "\n" << etcd_->LogTail();
    }
    (void)etcd_->Signal(SIGCONT);  // in case a test left it stopped
    etcd_->Stop();
  }

  // A client of its own for a node, kept until the nodes are gone.
  EtcdClient& AnotherClient(ClientOptions options = {}) {
    clients_.push_back(NewClient(std::move(options)));
    return *clients_.back();
  }

  std::unique_ptr<EtcdClient> NewClient(ClientOptions options = {}) {
    options.endpoints = {etcd_->client_endpoint()};
    Result<std::unique_ptr<EtcdClient>> client = EtcdClient::create(options);
    EXPECT_TRUE(client.ok()) << client.status().to_string();
    return client.ok() ? std::move(client).value() : nullptr;
  }

  ClusterBroadcastOptions Options() {
    ClusterBroadcastOptions options;
    options.prefix = kPrefix;
    options.log = logs_.sink();
    return options;
  }

  // A started node on `client`; nullptr (with a failure recorded) if it cannot start.
  Node* AddNode(const std::string& name, EtcdClient& client, ClusterBroadcastOptions options) {
    pubsub::PubSubOptions ps_options;
    ps_options.node_name = name;
    ps_options.log = logs_.sink();
    Result<std::unique_ptr<pubsub::PubSub>> ps = pubsub::PubSub::create(ps_options);
    EXPECT_TRUE(ps.ok()) << ps.status().to_string();
    if (!ps.ok()) return nullptr;
    auto node = std::make_unique<Node>();
    node->pubsub = std::move(ps).value();
    Result<std::shared_ptr<ClusterBroadcast>> cb =
        ClusterBroadcast::create(client, *node->pubsub, std::move(options));
    EXPECT_TRUE(cb.ok()) << cb.status().to_string();
    if (!cb.ok()) return nullptr;
    Status started = (*cb)->start(Soon());
    EXPECT_TRUE(started.ok()) << started.to_string();
    if (!started.ok()) return nullptr;
    node->broadcast = *cb;
    node->pubsub->set_transport(node->broadcast);
    nodes_.push_back(std::move(node));
    return nodes_.back().get();
  }
  Node* AddNode(const std::string& name) { return AddNode(name, *client_, Options()); }

  // An inbox subscribed to `topic` on `node`; it lives until the nodes are gone.
  Inbox& Subscribe(Node& node, const std::string& topic) {
    inboxes_.push_back(std::make_unique<Inbox>());
    Result<pubsub::SubscriptionId> id =
        node.pubsub->subscribe(topic, inboxes_.back()->subscriber());
    EXPECT_TRUE(id.ok()) << id.status().to_string();
    return *inboxes_.back();
  }

  RangeResult Keys() {
    RangeOptions options;
    options.range_end = prefix_range_end(kPrefix);
    Result<RangeResult> got = client_->range(kPrefix, options, Soon());
    EXPECT_TRUE(got.ok()) << got.status().to_string();
    return got.ok() ? std::move(got).value() : RangeResult{};
  }

  test::Watchdog watchdog_{milliseconds(60000)};
  LogCapture logs_;
  std::unique_ptr<test::EtcdProcess> etcd_;
  std::unique_ptr<EtcdClient> client_;
  std::vector<std::unique_ptr<EtcdClient>> clients_;
  std::vector<std::unique_ptr<Inbox>> inboxes_;
  std::vector<std::unique_ptr<Node>> nodes_;  // cleared in TearDown, before the clients go
};

TEST_F(ClusterBroadcastTest, OwnMessagesComeBackOnceAndFlushWaitsForThem) {
  Node* node = AddNode("solo@h:1");
  ASSERT_NE(node, nullptr);
  Inbox& inbox = Subscribe(*node, "t");
  ASSERT_TRUE(node->send("t", Value(7)).ok());
  ASSERT_TRUE(node->flush().ok());
  ASSERT_EQ(inbox.size(), 1u) << "flush returned before the message came back, or it came twice";
  EXPECT_EQ(inbox.messages().front().sender, "solo@h:1");
  EXPECT_EQ(inbox.messages().front().payload, Value(7));

  const ClusterBroadcastStats stats = node->broadcast->stats();
  EXPECT_EQ(stats.published, 1u);
  EXPECT_EQ(stats.received, 1u);
  EXPECT_GE(stats.delivered_revision, stats.published_revision);
  const RangeResult keys = Keys();
  ASSERT_EQ(keys.kvs.size(), 1u);
  EXPECT_NE(keys.kvs[0].lease, 0) << "every message lives under a lease";
  Result<MessageKey> key = parse_message_key(kPrefix, keys.kvs[0].key);
  ASSERT_TRUE(key.ok()) << key.status().to_string();
  EXPECT_EQ(key->topic, "t");
  EXPECT_EQ(key->sender, "solo@h:1");
  EXPECT_EQ(key->seq, 1u);
}

TEST_F(ClusterBroadcastTest, EverySubscriberOnEveryNodeGetsEachMessageOnceInOneOrder) {
  EtcdClient& second = AnotherClient();
  EtcdClient& third = AnotherClient();
  ClusterBroadcastOptions options = Options();
  options.message_ttl = std::chrono::seconds(120);  // every key still there at the end
  // Two nodes share a client; two have their own.
  std::vector<Node*> nodes = {
      AddNode("n0@h:1", *client_, options), AddNode("n1@h:1", *client_, options),
      AddNode("n2@h:1", second, options), AddNode("n3@h:1", third, options)};
  for (Node* node : nodes) ASSERT_NE(node, nullptr);
  std::vector<Inbox*> inboxes;
  std::vector<Inbox*> others;
  for (Node* node : nodes) {
    inboxes.push_back(&Subscribe(*node, "load"));
    inboxes.push_back(&Subscribe(*node, "load"));
    others.push_back(&Subscribe(*node, "other"));
  }

  constexpr int kEach = 500;
  const std::vector<Node*> senders = {nodes[0], nodes[2], nodes[3]};
  const auto start = Clock::now();
  std::vector<std::thread> threads;
  for (Node* sender : senders) {
    threads.emplace_back([sender] {
      for (int i = 0; i < kEach; ++i) ASSERT_TRUE(sender->send("load", Value(i)).ok());
    });
  }
  for (std::thread& t : threads) t.join();
  const auto published = Clock::now();
  const std::size_t total = senders.size() * kEach;
  for (auto& inbox : inboxes) ASSERT_TRUE(inbox->wait_for(total, kWait)) << inbox->size();
  for (Node* node : nodes) ASSERT_TRUE(node->flush().ok());
  std::cout << "3 x " << kEach << " messages published in "
            << std::chrono::duration_cast<milliseconds>(published - start).count()
            << " ms, all delivered to 8 subscribers after "
            << std::chrono::duration_cast<milliseconds>(Clock::now() - start).count() << " ms\n";

  const std::vector<Message> reference = inboxes.front()->messages();
  for (std::size_t i = 0; i < inboxes.size(); ++i) {
    const std::vector<Message> got = inboxes[i]->messages();
    ASSERT_EQ(got.size(), total) << "inbox " << i;
    for (const char* sender : {"n0@h:1", "n2@h:1", "n3@h:1"}) {
      EXPECT_EQ(From(got, sender), Range(0, kEach)) << "inbox " << i << ", sender " << sender;
    }
    for (std::size_t m = 0; m < total; ++m) {
      ASSERT_EQ(got[m].sender, reference[m].sender) << "inbox " << i << " differs at " << m;
      ASSERT_EQ(got[m].payload, reference[m].payload) << "inbox " << i << " differs at " << m;
    }
  }
  for (auto& other : others) EXPECT_EQ(other->size(), 0u);
  for (Node* node : nodes) {
    EXPECT_EQ(node->broadcast->stats().received, total);
    EXPECT_EQ(node->broadcast->stats().malformed, 0u);
  }
  EXPECT_EQ(Keys().kvs.size(), total) << "one key per message";
}

TEST_F(ClusterBroadcastTest, ResumesAfterACancelledStreamWithoutDuplicatesOrGaps) {
  Node* sender = AddNode("a@h:1");
  ClusterBroadcastOptions options = Options();
  options.retry_interval = milliseconds(100);
  Node* receiver = AddNode("b@h:1", *client_, options);
  ASSERT_NE(sender, nullptr);
  ASSERT_NE(receiver, nullptr);
  Inbox& inbox = Subscribe(*receiver, "t");

  std::atomic<std::int64_t> sent{0};
  std::jthread publisher([&](std::stop_token stop) {  // joined even when an assertion fails
    while (!stop.stop_requested()) {
      ASSERT_TRUE(sender->send("t", Value(sent.load())).ok());
      ++sent;
    }
  });
  // Each break leaves a gap of about retry_interval in which the sender keeps committing. An
  // interruption that comes while the stream is being reopened does nothing: it is repeated.
  for (std::uint64_t breaks = 1; breaks <= 4; ++breaks) {
    std::this_thread::sleep_for(milliseconds(150));
    ASSERT_TRUE(test::eventually(
        [&] {
          if (receiver->broadcast->stats().watch_restarts >= breaks) return true;
          receiver->broadcast->interrupt_watch_for_testing();
          return false;
        },
        kWait));
  }
  std::this_thread::sleep_for(milliseconds(150));
  publisher.request_stop();
  publisher.join();
  ASSERT_TRUE(inbox.wait_for(static_cast<std::size_t>(sent.load()), kWait));
  ASSERT_TRUE(receiver->flush().ok());
  EXPECT_EQ(From(inbox.messages(), "a@h:1"), Range(0, sent.load()));
  EXPECT_GE(receiver->broadcast->stats().watch_restarts, 4u);
  EXPECT_GT(sent.load(), 100);
}

TEST_F(ClusterBroadcastTest, ResumesAfterEtcdWasFrozen) {
  ClientOptions quick_pings;  // so that the frozen etcd breaks this client's watch
  quick_pings.keepalive_time = milliseconds(1000);
  quick_pings.keepalive_timeout = milliseconds(1000);
  EtcdClient& receiver_client = AnotherClient(quick_pings);
  ClusterBroadcastOptions options = Options();
  options.retry_interval = milliseconds(100);
  Node* sender = AddNode("a@h:1");
  Node* receiver = AddNode("b@h:1", receiver_client, options);
  ASSERT_NE(sender, nullptr);
  ASSERT_NE(receiver, nullptr);
  Inbox& at_sender = Subscribe(*sender, "t");
  Inbox& at_receiver = Subscribe(*receiver, "t");

  // Broadcasts that fail while etcd is frozen have an unknown fate: they may arrive (once),
  // in any order; the acknowledged ones must all arrive, in order.
  std::vector<std::int64_t> acknowledged;
  std::jthread publisher([&](std::stop_token stop) {
    for (std::int64_t i = 0; !stop.stop_requested(); ++i) {
      if (sender->pubsub->broadcast("t", Value(i), Clock::now() + milliseconds(1000)).ok()) {
        acknowledged.push_back(i);
      }
    }
  });
  std::this_thread::sleep_for(milliseconds(300));
  ASSERT_TRUE(etcd_->Signal(SIGSTOP).ok());
  std::this_thread::sleep_for(milliseconds(3500));
  ASSERT_TRUE(etcd_->Signal(SIGCONT).ok());
  std::this_thread::sleep_for(milliseconds(700));
  publisher.request_stop();
  publisher.join();
  ASSERT_FALSE(acknowledged.empty());
  ASSERT_TRUE(sender->flush().ok());

  for (Inbox* inbox : {&at_sender, &at_receiver}) {
    ASSERT_TRUE(test::eventually(
        [&] {
          const std::vector<std::int64_t> got = From(inbox->messages(), "a@h:1");
          return !got.empty() && got.back() >= acknowledged.back();
        },
        kWait));
    const std::vector<std::int64_t> got = From(inbox->messages(), "a@h:1");
    std::map<std::int64_t, int> seen;
    for (std::int64_t v : got) EXPECT_EQ(++seen[v], 1) << "message " << v << " twice";
    std::vector<std::int64_t> acknowledged_got;
    for (std::int64_t v : got) {
      if (std::binary_search(acknowledged.begin(), acknowledged.end(), v)) {
        acknowledged_got.push_back(v);
      }
    }
    EXPECT_EQ(acknowledged_got, acknowledged) << "acknowledged messages lost or out of order";
  }
  EXPECT_GE(receiver->broadcast->stats().watch_restarts, 1u) << "the watch never broke";
}

TEST_F(ClusterBroadcastTest, AfterCompactionItWarnsAndResumesFromTheOldestRevision) {
  Node* sender = AddNode("a@h:1");
  ClusterBroadcastOptions options = Options();
  options.retry_interval = milliseconds(1500);  // the window in which etcd compacts
  Node* receiver = AddNode("b@h:1", *client_, options);
  ASSERT_NE(sender, nullptr);
  ASSERT_NE(receiver, nullptr);
  Inbox& inbox = Subscribe(*receiver, "t");
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(sender->send("t", Value(i)).ok());
  ASSERT_TRUE(inbox.wait_for(3, kWait));

  receiver->broadcast->interrupt_watch_for_testing();
  ASSERT_TRUE(
      test::eventually([&] { return receiver->broadcast->stats().watch_restarts == 1; }, kCall));
  for (int i = 3; i < 8; ++i) ASSERT_TRUE(sender->send("t", Value(i)).ok());
  const std::int64_t last = sender->broadcast->stats().published_revision;
  ASSERT_TRUE(client_->compact(last, /*physical=*/true, Soon()).ok());
  ASSERT_TRUE(
      test::eventually([&] { return receiver->broadcast->stats().compactions == 1; }, kWait));
  for (int i = 8; i < 10; ++i) ASSERT_TRUE(sender->send("t", Value(i)).ok());
  ASSERT_TRUE(test::eventually(
      [&] {
        return receiver->broadcast->stats().delivered_revision >=
               sender->broadcast->stats().published_revision;
      },
      kWait));
  ASSERT_TRUE(receiver->flush().ok());

  // 3..6 were only in the compacted history; 7 is at the compact revision, which etcd keeps.
  EXPECT_EQ(From(inbox.messages(), "a@h:1"), (std::vector<std::int64_t>{0, 1, 2, 7, 8, 9}));
  EXPECT_EQ(receiver->broadcast->stats().revisions_lost, 4);
  EXPECT_EQ(logs_.count(LogLevel::warning, "messages of the 4 revisions"), 1u) << logs_.all();
}

TEST_F(ClusterBroadcastTest, AMessageTooLargeForEtcdIsAnErrorForThePublisher) {
  Node* node = AddNode("a@h:1");
  ClusterBroadcastOptions unchecked = Options();
  unchecked.max_request_bytes = std::size_t{64} << 20;  // leave the refusal to etcd
  Node* trusting = AddNode("b@h:1", *client_, unchecked);
  ASSERT_NE(node, nullptr);
  ASSERT_NE(trusting, nullptr);
  Inbox& inbox = Subscribe(*node, "t");

  const Value too_big = Value::bytes(std::string(std::size_t{1600} << 10, 'x'));
  Status refused = node->send("t", too_big, kWait);
  EXPECT_EQ(refused.code(), StatusCode::invalid_argument) << refused.to_string();
  EXPECT_NE(refused.message().find("request limit"), std::string::npos) << refused.to_string();
  Status by_etcd = trusting->send("t", too_big, kWait);
  EXPECT_FALSE(by_etcd.ok());
  std::cout << "etcd refused 1600 KiB with: " << by_etcd.to_string() << "\n";

  const Value big = Value::bytes(std::string(std::size_t{1} << 20, 'y'));
  ASSERT_TRUE(node->send("t", big, kWait).ok());
  ASSERT_TRUE(node->flush().ok());
  ASSERT_EQ(inbox.size(), 1u) << "only the message that fits";
  EXPECT_EQ(inbox.messages().front().payload, big);
  EXPECT_EQ(node->broadcast->stats().publish_failures, 1u);
  EXPECT_EQ(trusting->broadcast->stats().publish_failures, 1u);
}

TEST_F(ClusterBroadcastTest, MalformedEntriesUnderThePrefixAreSkipped) {
  Node* node = AddNode("a@h:1");
  ASSERT_NE(node, nullptr);
  Inbox& inbox = Subscribe(*node, "t");
  const std::string prefix = kPrefix;
  const std::string valid = encode_message_key(prefix, MessageKey{"t", "hand@h:1", 1, 1});
  auto put = [&](const std::string& key, const std::string& value) {
    ASSERT_TRUE(client_->put(key, value, 0, Soon()).ok());
  };
  put(prefix + "garbage", encode_value(Value(1)));
  put(prefix + "t/x@h:1/zz/0000000000000001", encode_value(Value(1)));
  put(valid, "\xc1");                          // a byte MessagePack never uses
  put(valid, encode_value(Value("by hand")));  // the format is the contract: this one counts
  ASSERT_TRUE(client_->erase(prefix + "garbage", "", Soon()).ok());  // deletes are ignored
  ASSERT_TRUE(node->send("t", Value("sent")).ok());
  ASSERT_TRUE(node->flush().ok());

  const std::vector<Message> got = inbox.messages();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].sender, "hand@h:1");
  EXPECT_EQ(got[0].payload, Value("by hand"));
  EXPECT_EQ(got[1].payload, Value("sent"));
  EXPECT_EQ(node->broadcast->stats().malformed, 3u);
  EXPECT_EQ(logs_.count(LogLevel::warning, "skipped"), 3u) << logs_.all();
}

TEST_F(ClusterBroadcastTest, MessagesExpireWithTheirLeasesWhichRotate) {
  ClusterBroadcastOptions short_lived = Options();
  short_lived.message_ttl = std::chrono::seconds(2);
  Node* node = AddNode("a@h:1", *client_, short_lived);
  ASSERT_NE(node, nullptr);
  Inbox& inbox = Subscribe(*node, "t");
  for (int i = 0; i < 25; ++i) {
    ASSERT_TRUE(node->send("t", Value(i)).ok());
    std::this_thread::sleep_for(milliseconds(100));
  }
  EXPECT_GE(node->broadcast->stats().leases_granted, 2u) << "the lease never rotated";
  ASSERT_TRUE(node->flush().ok());
  EXPECT_EQ(From(inbox.messages(), "a@h:1"), Range(0, 25));

  // A lease revoked behind its back (with a TTL long enough that it is not rotated meanwhile):
  // the put is refused, and sent again with a new lease.
  ClusterBroadcastOptions long_lived = Options();
  long_lived.message_ttl = std::chrono::seconds(600);
  Node* other = AddNode("b@h:1", *client_, long_lived);
  ASSERT_NE(other, nullptr);
  ASSERT_TRUE(other->send("t", Value(0)).ok());
  auto leases_of_b = [&] {
    std::vector<std::int64_t> leases;
    for (const KeyValue& kv : Keys().kvs) {
      Result<MessageKey> key = parse_message_key(kPrefix, kv.key);
      if (key.ok() && key->sender == "b@h:1") leases.push_back(kv.lease);
    }
    return leases;
  };
  const std::vector<std::int64_t> first = leases_of_b();
  ASSERT_EQ(first.size(), 1u);
  ASSERT_TRUE(client_->lease_revoke(first[0], Soon()).ok());
  ASSERT_TRUE(other->send("t", Value(1)).ok());
  EXPECT_EQ(other->broadcast->stats().leases_granted, 2u);
  const std::vector<std::int64_t> second = leases_of_b();
  ASSERT_EQ(second.size(), 1u) << "the first went with its lease";
  EXPECT_NE(second[0], first[0]);
  ASSERT_TRUE(other->flush().ok());
  // The inbox is on the first node: b's flush covers b's own delivery, not the first node's
  // watch, which may still be on its way.
  EXPECT_TRUE(test::eventually([&] { return From(inbox.messages(), "b@h:1").size() >= 2; },
                               milliseconds(5000)));
  EXPECT_EQ(From(inbox.messages(), "b@h:1"), Range(0, 2));

  // The short-lived messages leave etcd by themselves.
  EXPECT_TRUE(test::eventually([&] { return Keys().kvs.size() == 1; }, milliseconds(8000)))
      << Keys().kvs.size() << " messages still in etcd";
}

TEST_F(ClusterBroadcastTest, OptionsStartAndStop) {
  pubsub::PubSubOptions ps_options;
  ps_options.node_name = "a@h:1";
  auto ps = pubsub::PubSub::create(ps_options);
  ASSERT_TRUE(ps.ok()) << ps.status().to_string();
  auto refused = [&](auto change) {
    ClusterBroadcastOptions options = Options();
    change(options);
    return ClusterBroadcast::create(*client_, **ps, options).status().code() ==
           StatusCode::invalid_argument;
  };
  EXPECT_TRUE(refused([](ClusterBroadcastOptions& o) { o.prefix = ""; }));
  EXPECT_TRUE(refused([](ClusterBroadcastOptions& o) { o.prefix = "/no/slash"; }));
  EXPECT_TRUE(refused([](ClusterBroadcastOptions& o) { o.message_ttl = std::chrono::seconds(1); }));
  EXPECT_TRUE(
      refused([](ClusterBroadcastOptions& o) { o.message_ttl = std::chrono::seconds(3601); }));
  EXPECT_TRUE(refused([](ClusterBroadcastOptions& o) { o.max_request_bytes = 100; }));
  EXPECT_TRUE(refused([](ClusterBroadcastOptions& o) { o.call_timeout = milliseconds(0); }));

  Result<std::shared_ptr<ClusterBroadcast>> cb =
      ClusterBroadcast::create(*client_, **ps, Options());
  ASSERT_TRUE(cb.ok()) << cb.status().to_string();
  const Message message{"t", "a@h:1", Value(1)};
  EXPECT_EQ((*cb)->publish(message, Clock::now() + kCall).code(), StatusCode::engine_unavailable);
  ASSERT_TRUE((*cb)->start(Soon()).ok());
  EXPECT_EQ((*cb)->start(Soon()).code(), StatusCode::invalid_argument);
  EXPECT_TRUE((*cb)->publish(message, Clock::now() + kCall).ok());
  EXPECT_TRUE((*cb)->flush(Clock::now() + kCall).ok());
  const auto stopping = Clock::now();
  EXPECT_TRUE((*cb)->stop(Soon()).ok());
  EXPECT_LT(Clock::now() - stopping, milliseconds(1000));
  EXPECT_TRUE((*cb)->stop(Soon()).ok()) << "idempotent";
  EXPECT_EQ((*cb)->publish(message, Clock::now() + kCall).code(), StatusCode::engine_unavailable);

  // A PubSub holding the last reference to a running ClusterBroadcast stops it as it goes.
  {
    Inbox inbox;  // outlives the PubSub below
    pubsub::PubSubOptions owner_options;
    owner_options.node_name = "owner@h:1";
    Result<std::unique_ptr<pubsub::PubSub>> owner = pubsub::PubSub::create(owner_options);
    ASSERT_TRUE(owner.ok());
    Result<std::shared_ptr<ClusterBroadcast>> owned =
        ClusterBroadcast::create(*client_, **owner, Options());
    ASSERT_TRUE(owned.ok());
    ASSERT_TRUE((*owned)->start(Soon()).ok());
    (*owner)->set_transport(std::move(*owned));
    ASSERT_TRUE((*owner)->subscribe("t", inbox.subscriber()).ok());
    ASSERT_TRUE((*owner)->broadcast("t", Value(1)).ok());
    ASSERT_TRUE((*owner)->flush(Clock::now() + kCall).ok());
    EXPECT_EQ(inbox.size(), 1u);
  }

  // An etcd nobody serves: start fails within its deadline and nothing runs.
  Result<std::vector<std::uint16_t>> port = engine::pick_free_loopback_ports(1);
  ASSERT_TRUE(port.ok()) << port.status().to_string();
  ClientOptions nowhere_options;
  nowhere_options.endpoints = {"127.0.0.1:" + std::to_string(port->at(0))};
  Result<std::unique_ptr<EtcdClient>> nowhere = EtcdClient::create(nowhere_options);
  ASSERT_TRUE(nowhere.ok());
  Result<std::shared_ptr<ClusterBroadcast>> lost =
      ClusterBroadcast::create(**nowhere, **ps, Options());
  ASSERT_TRUE(lost.ok());
  const auto starting = Clock::now();
  EXPECT_FALSE((*lost)->start(Deadline::after(milliseconds(500))).ok());
  EXPECT_LT(Clock::now() - starting, milliseconds(1500));
}

}  // namespace
}  // namespace mishka::engine
