// PubSub on one node and with an in-memory transport: subscribe, unsubscribe, local and
// cluster broadcast, order, a throwing, a slow and a re-entrant subscriber, full mailboxes,
// flush, and destruction with messages still queued. Every wait is bounded.

#include "mishka/pubsub.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "inbox.h"
#include "support/watchdog.h"

namespace mishka::pubsub {
namespace {

using std::chrono::milliseconds;
using test::Gate;
using test::Inbox;
using test::LogCapture;

constexpr milliseconds kWait{5000};

Clock::time_point Soon() {
  return Clock::now() + kWait;
}

std::unique_ptr<PubSub> Make(PubSubOptions options) {
  Result<std::unique_ptr<PubSub>> made = PubSub::create(std::move(options));
  EXPECT_TRUE(made.ok()) << made.status().to_string();
  return made.ok() ? std::move(made).value() : nullptr;
}

std::unique_ptr<PubSub> Make(std::string node, LogSink log = {}) {
  PubSubOptions options;
  options.node_name = std::move(node);
  options.log = std::move(log);
  return Make(std::move(options));
}

SubscriptionId Subscribe(PubSub& ps, const std::string& topic, Subscriber fn) {
  Result<SubscriptionId> id = ps.subscribe(topic, std::move(fn));
  EXPECT_TRUE(id.ok()) << id.status().to_string();
  return id.ok() ? *id : 0;
}

std::vector<std::int64_t> Ints(const std::vector<Message>& messages) {
  std::vector<std::int64_t> out;
  for (const Message& m : messages) out.push_back(m.payload.get_int() ? *m.payload.get_int() : -1);
  return out;
}

class PubSubTest : public ::testing::Test {
 protected:
  mishka::test::Watchdog watchdog_{milliseconds(20000)};
};

TEST_F(PubSubTest, SubscribeBroadcastLocalAndUnsubscribe) {
  auto ps = Make("a@h:1");
  Inbox inbox;
  const SubscriptionId id = Subscribe(*ps, "news", inbox.subscriber());
  ASSERT_TRUE(ps->broadcast_local("news", Value(1)).ok());
  ASSERT_TRUE(ps->flush(Soon()).ok());
  ASSERT_EQ(inbox.size(), 1u);
  const Message got = inbox.messages().front();
  EXPECT_EQ(got.topic, "news");
  EXPECT_EQ(got.sender, "a@h:1");
  EXPECT_EQ(got.payload, Value(1));
  EXPECT_EQ(ps->stats().subscriptions, 1u);

  ASSERT_TRUE(ps->unsubscribe(id).ok());
  ASSERT_TRUE(ps->broadcast_local("news", Value(2)).ok());
  ASSERT_TRUE(ps->flush(Soon()).ok());
  EXPECT_EQ(inbox.size(), 1u) << "nothing after unsubscribe";
  EXPECT_EQ(ps->unsubscribe(id).code(), StatusCode::not_found);
  EXPECT_EQ(ps->unsubscribe(12345).code(), StatusCode::not_found);
  const PubSubStats stats = ps->stats();
  EXPECT_EQ(stats.subscriptions, 0u);
  EXPECT_EQ(stats.published_local, 2u);
  EXPECT_EQ(stats.delivered, 1u);
}

TEST_F(PubSubTest, OnlyTheTopicsSubscribersReceive) {
  auto ps = Make("a@h:1");
  Inbox news, sport;
  Subscribe(*ps, "news", news.subscriber());
  Subscribe(*ps, "sport", sport.subscriber());
  ASSERT_TRUE(ps->broadcast_local("news", Value("n")).ok());
  ASSERT_TRUE(ps->broadcast_local("weather", Value("w")).ok());
  ASSERT_TRUE(ps->flush(Soon()).ok());
  EXPECT_EQ(news.size(), 1u);
  EXPECT_EQ(sport.size(), 0u);
}

TEST_F(PubSubTest, EachSubscriberSeesEachPublishersMessagesInOrder) {
  PubSubOptions options;
  options.node_name = "a@h:1";
  options.delivery_threads = 4;
  auto ps = Make(std::move(options));
  Inbox first, second;
  Subscribe(*ps, "t", first.subscriber());
  Subscribe(*ps, "t", second.subscriber());
  constexpr int kPublishers = 4;
  constexpr int kEach = 500;
  std::vector<std::thread> publishers;
  for (int p = 0; p < kPublishers; ++p) {
    publishers.emplace_back([&, p] {
      for (int i = 0; i < kEach; ++i)
        ASSERT_TRUE(ps->broadcast_local("t", Value(p * kEach + i)).ok());
    });
  }
  for (std::thread& t : publishers) t.join();
  ASSERT_TRUE(ps->flush(Soon()).ok());
  for (Inbox* inbox : {&first, &second}) {
    const std::vector<std::int64_t> got = Ints(inbox->messages());
    ASSERT_EQ(got.size(), static_cast<std::size_t>(kPublishers * kEach));
    std::vector<std::int64_t> next;
    for (int p = 0; p < kPublishers; ++p) next.push_back(p * kEach);
    for (std::int64_t v : got) {
      const auto p = static_cast<std::size_t>(v / kEach);
      ASSERT_EQ(v, next[p]++) << "publisher " << p << " out of order or duplicated";
    }
  }
}

TEST_F(PubSubTest, AThrowingSubscriberIsLoggedAndUnsubscribedOthersGoOn) {
  LogCapture logs;
  auto ps = Make("a@h:1", logs.sink());
  std::atomic<int> calls{0};
  const SubscriptionId bad = Subscribe(*ps, "t", [&](const Message&) {
    if (++calls == 3) throw std::runtime_error("subscriber bug");
  });
  Inbox good;
  Subscribe(*ps, "t", good.subscriber());
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(ps->broadcast_local("t", Value(i)).ok());
  ASSERT_TRUE(ps->flush(Soon()).ok());
  EXPECT_EQ(calls.load(), 3) << "not called after it threw";
  EXPECT_EQ(good.size(), 10u);
  EXPECT_EQ(ps->stats().failed_subscribers, 1u);
  EXPECT_EQ(ps->stats().subscriptions, 1u);
  EXPECT_EQ(ps->unsubscribe(bad).code(), StatusCode::not_found);
  EXPECT_EQ(logs.count(LogLevel::error, "subscriber bug"), 1u) << logs.all();

  // Something that is not a std::exception is caught as well.
  Subscribe(*ps, "u", [](const Message&) { throw 42; });
  ASSERT_TRUE(ps->broadcast_local("u", Value()).ok());
  ASSERT_TRUE(ps->flush(Soon()).ok());
  EXPECT_EQ(ps->stats().failed_subscribers, 2u);
}

TEST_F(PubSubTest, ASlowSubscriberBlocksNeitherThePublisherNorTheOthers) {
  auto ps = Make("a@h:1");  // two delivery threads
  Gate gate;
  Inbox slow_inbox, fast;
  Subscribe(*ps, "t", [&](const Message& m) {
    gate.wait();
    slow_inbox.add(m);
  });
  Subscribe(*ps, "t", fast.subscriber());
  const auto start = Clock::now();
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(ps->broadcast_local("t", Value(i)).ok());
  EXPECT_LT(Clock::now() - start, milliseconds(2000)) << "the publisher waited";
  ASSERT_TRUE(fast.wait_for(1000, kWait)) << "the other subscriber was held up";
  EXPECT_EQ(slow_inbox.size(), 0u);
  gate.open();
  ASSERT_TRUE(ps->flush(Soon()).ok());
  EXPECT_EQ(Ints(slow_inbox.messages()).back(), 999);
  EXPECT_EQ(slow_inbox.size(), 1000u);
}

TEST_F(PubSubTest, AFullMailboxDropsForThatSubscriberOnlyCountedAndLogged) {
  LogCapture logs;
  PubSubOptions options;
  options.node_name = "a@h:1";
  options.mailbox_capacity = 10;
  options.log = logs.sink();
  auto ps = Make(std::move(options));
  Gate gate;
  Inbox blocked, other;
  Subscribe(*ps, "t", [&](const Message& m) {
    if (m.payload == Value(0)) gate.wait();
    blocked.add(m);
  });
  Subscribe(*ps, "t", other.subscriber());
  ASSERT_TRUE(ps->broadcast_local("t", Value(0)).ok());
  ASSERT_TRUE(gate.wait_arrived(1, kWait));
  for (int i = 1; i <= 20; ++i) {
    ASSERT_TRUE(ps->broadcast_local("t", Value(i)).ok()) << "the publisher is never refused";
    ASSERT_TRUE(other.wait_for(static_cast<std::size_t>(i) + 1, kWait));  // keep its box short
  }
  EXPECT_EQ(ps->stats().dropped, 10u) << "messages 11..20 found the mailbox full";
  EXPECT_EQ(ps->stats().queued, 10u);
  EXPECT_EQ(logs.count(LogLevel::warning, "dropping its messages"), 1u) << logs.all();
  gate.open();
  ASSERT_TRUE(ps->flush(Soon()).ok());
  EXPECT_EQ(Ints(blocked.messages()),
            (std::vector<std::int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10}));
  EXPECT_EQ(other.size(), 21u) << "the other subscriber lost nothing";

  ASSERT_TRUE(ps->broadcast_local("t", Value(21)).ok());
  ASSERT_TRUE(ps->flush(Soon()).ok());
  EXPECT_EQ(blocked.size(), 12u);
  EXPECT_EQ(logs.count(LogLevel::warning, "accepts messages again after 10 were dropped"), 1u)
      << logs.all();
}

TEST_F(PubSubTest, CallbacksMaySubscribeUnsubscribeAndPublishButNotFlush) {
  auto ps = Make("a@h:1");
  Inbox later;
  std::atomic<int> calls{0};
  std::promise<Status> flush_in_callback;
  SubscriptionId self = 0;
  self = Subscribe(*ps, "a", [&](const Message&) {
    ++calls;
    ASSERT_TRUE(ps->subscribe("b", later.subscriber()).ok());
    ASSERT_TRUE(ps->broadcast_local("b", Value("from a callback")).ok());
    ASSERT_TRUE(ps->broadcast("b", Value("through broadcast")).ok());
    flush_in_callback.set_value(ps->flush(Soon()));
    ASSERT_TRUE(ps->unsubscribe(self).ok());
  });
  ASSERT_TRUE(ps->broadcast_local("a", Value(1)).ok());
  ASSERT_TRUE(ps->broadcast_local("a", Value(2)).ok());
  auto flushed = flush_in_callback.get_future();
  ASSERT_EQ(flushed.wait_for(kWait), std::future_status::ready);
  EXPECT_EQ(flushed.get().code(), StatusCode::invalid_argument);
  ASSERT_TRUE(ps->flush(Soon()).ok());
  EXPECT_EQ(calls.load(), 1) << "the second message went with the subscription";
  EXPECT_EQ(later.size(), 2u);
}

TEST_F(PubSubTest, UnsubscribeWaitsForTheRunningCallback) {
  auto ps = Make("a@h:1");
  Gate gate;
  std::atomic<bool> finished{false};
  const SubscriptionId id = Subscribe(*ps, "t", [&](const Message&) {
    gate.wait();
    finished = true;
  });
  ASSERT_TRUE(ps->broadcast_local("t", Value()).ok());
  ASSERT_TRUE(gate.wait_arrived(1, kWait));
  auto unsubscribed = std::async(std::launch::async, [&] { return ps->unsubscribe(id); });
  EXPECT_EQ(unsubscribed.wait_for(milliseconds(200)), std::future_status::timeout)
      << "returned while the callback ran";
  gate.open();
  ASSERT_EQ(unsubscribed.wait_for(kWait), std::future_status::ready);
  EXPECT_TRUE(unsubscribed.get().ok());
  EXPECT_TRUE(finished.load());
}

TEST_F(PubSubTest, FlushWaitsForQueuedMessagesOrTimesOut) {
  auto ps = Make("a@h:1");
  Inbox inbox;
  Subscribe(*ps, "t", [&](const Message& m) {
    std::this_thread::sleep_for(milliseconds(1));
    inbox.add(m);
  });
  for (int i = 0; i < 200; ++i) ASSERT_TRUE(ps->broadcast_local("t", Value(i)).ok());
  ASSERT_TRUE(ps->flush(Soon()).ok());
  EXPECT_EQ(inbox.size(), 200u) << "flush returned before delivery";

  Gate gate;
  Subscribe(*ps, "blocked", [&](const Message&) { gate.wait(); });
  ASSERT_TRUE(ps->broadcast_local("blocked", Value()).ok());
  const auto start = Clock::now();
  Status timed_out = ps->flush(Clock::now() + milliseconds(100));
  EXPECT_EQ(timed_out.code(), StatusCode::timeout) << timed_out.to_string();
  EXPECT_LT(Clock::now() - start, milliseconds(1000));
  gate.open();
  EXPECT_TRUE(ps->flush(Soon()).ok());
}

TEST_F(PubSubTest, BadNamesAndOptionsAreRefused) {
  EXPECT_EQ(PubSub::create(PubSubOptions{}).status().code(), StatusCode::invalid_argument);
  PubSubOptions slash;
  slash.node_name = "a/b";
  EXPECT_EQ(PubSub::create(slash).status().code(), StatusCode::invalid_argument);
  PubSubOptions no_room;
  no_room.node_name = "a";
  no_room.mailbox_capacity = 0;
  EXPECT_EQ(PubSub::create(no_room).status().code(), StatusCode::invalid_argument);
  PubSubOptions no_threads;
  no_threads.node_name = "a";
  no_threads.delivery_threads = 0;
  EXPECT_EQ(PubSub::create(no_threads).status().code(), StatusCode::invalid_argument);

  auto ps = Make("a@h:1");
  Inbox inbox;
  for (const std::string& topic : {std::string(), std::string("a/b"), std::string("a\0b", 3),
                                   std::string(kMaxNameBytes + 1, 't')}) {
    EXPECT_EQ(ps->subscribe(topic, inbox.subscriber()).status().code(),
              StatusCode::invalid_argument);
    EXPECT_EQ(ps->broadcast_local(topic, Value()).code(), StatusCode::invalid_argument);
    EXPECT_EQ(ps->broadcast(topic, Value()).code(), StatusCode::invalid_argument);
  }
  EXPECT_EQ(ps->subscribe("ok", Subscriber()).status().code(), StatusCode::invalid_argument);
  EXPECT_TRUE(ps->subscribe(std::string(kMaxNameBytes, 't'), inbox.subscriber()).ok());
}

TEST_F(PubSubTest, DestructionDiscardsQueuedMessagesAndWaitsForTheRunningOne) {
  LogCapture logs;
  auto ps = Make("a@h:1", logs.sink());
  Gate gate;
  std::atomic<int> calls{0};
  Subscribe(*ps, "t", [&](const Message&) {
    ++calls;
    gate.wait();
  });
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(ps->broadcast_local("t", Value(i)).ok());
  ASSERT_TRUE(gate.wait_arrived(1, kWait));
  auto destroyed = std::async(std::launch::async, [&] { ps.reset(); });
  EXPECT_EQ(destroyed.wait_for(milliseconds(100)), std::future_status::timeout);
  gate.open();
  ASSERT_EQ(destroyed.wait_for(kWait), std::future_status::ready);
  EXPECT_EQ(calls.load(), 1);
  EXPECT_EQ(logs.count(LogLevel::info, "4 queued deliveries discarded"), 1u) << logs.all();
}

// --- with a transport --------------------------------------------------------------------------

// An in-memory cluster: every publish reaches every member's deliver() in one global order.
class LoopbackTransport final : public Transport {
 public:
  void join(PubSub* member) {
    std::lock_guard lock(mu_);
    members_.push_back(member);
  }
  void fail_with(Status status) {
    std::lock_guard lock(mu_);
    failure_ = std::move(status);
  }
  Status publish(const Message& message, Clock::time_point) override {
    std::lock_guard lock(mu_);
    if (!failure_.ok()) return failure_;
    for (PubSub* member : members_) member->deliver(message);
    return Status::Ok();
  }
  Status flush(Clock::time_point) override { return Status::Ok(); }

 private:
  std::mutex mu_;
  std::vector<PubSub*> members_;
  Status failure_;
};

TEST_F(PubSubTest, ATransportCarriesBroadcastsToEveryNodeOnce) {
  auto transport = std::make_shared<LoopbackTransport>();
  std::vector<std::unique_ptr<PubSub>> nodes;
  std::vector<std::unique_ptr<Inbox>> inboxes;
  for (int n = 0; n < 3; ++n) {
    nodes.push_back(Make("n" + std::to_string(n) + "@h:1"));
    inboxes.push_back(std::make_unique<Inbox>());
    Subscribe(*nodes.back(), "t", inboxes.back()->subscriber());
    transport->join(nodes.back().get());
    nodes.back()->set_transport(transport);
  }
  ASSERT_TRUE(nodes[0]->broadcast("t", Value("hello")).ok());
  ASSERT_TRUE(nodes[2]->broadcast_local("t", Value("only here")).ok());
  for (auto& node : nodes) ASSERT_TRUE(node->flush(Soon()).ok());
  for (int n = 0; n < 3; ++n) {
    const std::vector<Message> got = inboxes[n]->messages();
    ASSERT_EQ(got.size(), n == 2 ? 2u : 1u) << "node " << n;
    EXPECT_EQ(got.front().payload, Value("hello"));
    EXPECT_EQ(got.front().sender, "n0@h:1");
  }
  EXPECT_EQ(nodes[0]->stats().published_remote, 1u);
  EXPECT_EQ(nodes[1]->stats().received, 1u);

  transport->fail_with(Status(StatusCode::no_quorum, "no leader"));
  Status failed = nodes[1]->broadcast("t", Value("lost"));
  EXPECT_EQ(failed.code(), StatusCode::no_quorum);
  EXPECT_NE(failed.message().find("n1@h:1"), std::string::npos) << failed.to_string();

  // Without the transport the node is alone again.
  nodes[1]->set_transport(nullptr);
  ASSERT_TRUE(nodes[1]->broadcast("t", Value("alone")).ok());
  for (auto& node : nodes) ASSERT_TRUE(node->flush(Soon()).ok());
  EXPECT_EQ(inboxes[0]->size(), 1u);
  EXPECT_EQ(inboxes[1]->size(), 2u);
}

}  // namespace
}  // namespace mishka::pubsub
