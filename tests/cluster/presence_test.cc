// Presence, the node monitor and the peer probe on a real 3-node cluster (label cluster).
#include "engine/presence.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <mutex>

#include "cluster_harness.h"

namespace mishka::test {
namespace {

using engine::Deadline;
using engine::NodeEvent;
using std::chrono::milliseconds;

// What one node's monitor reported, in order.
class EventLog {
 public:
  void add(const std::string& line) {
    std::lock_guard<std::mutex> lock(mu_);
    lines_.push_back(line);
  }
  std::vector<std::string> lines() const {
    std::lock_guard<std::mutex> lock(mu_);
    return lines_;
  }
  int count(const std::string& line) const {
    std::lock_guard<std::mutex> lock(mu_);
    return static_cast<int>(std::count(lines_.begin(), lines_.end(), line));
  }
  std::string dump() const {
    std::string out;
    for (const auto& l : lines()) out += l + "; ";
    return out;
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::string> lines_;
};

struct Watching {
  std::unique_ptr<engine::Presence> presence;
  std::unique_ptr<engine::NodeMonitor> monitor;
  EventLog events;
};

std::unique_ptr<engine::Presence> presence_of(ClusterHarness& c, int i) {
  engine::PresenceOptions options;
  options.client = &c.node(i).engine().client();
  options.node_name = c.name(i);
  options.info = Value(Map{{Value("role"), Value("voter")}});
  options.ttl_seconds = 2;
  auto created = engine::Presence::create(std::move(options));
  EXPECT_TRUE(created.ok());
  return std::move(created).value();
}

void watch(ClusterHarness& c, int i, Watching& w) {
  w.presence = presence_of(c, i);
  ASSERT_TRUE(w.presence->start(Deadline::after(milliseconds(5000))).ok());
  engine::NodeMonitorOptions options;
  options.client = &c.node(i).engine().client();
  options.self = c.name(i);
  options.on_event = [&w](const NodeEvent& e) {
    w.events.add((e.kind == NodeEvent::Kind::up ? "up " : "down ") + e.node);
  };
  auto monitor = engine::NodeMonitor::create(std::move(options));
  ASSERT_TRUE(monitor.ok());
  w.monitor = std::move(monitor).value();
  ASSERT_TRUE(w.monitor->start(Deadline::after(milliseconds(5000))).ok());
}

HarnessOptions without_node_presence() {
  HarnessOptions options;
  options.presence_ttl_seconds = 0;  // the test's own Presence objects stand for the nodes
  return options;
}

TEST(Presence, NodeupAndNodedownComeOncePerTransition) {
  Watchdog watchdog(milliseconds(120000));
  ClusterHarness c(without_node_presence());
  ASSERT_TRUE(c.add_started().ok());
  ASSERT_TRUE(c.add_started({0}).ok());
  ASSERT_TRUE(c.add_started({0}).ok());
  Watching w[3];
  for (int i = 0; i < 3; ++i) watch(c, i, w[i]);
  // Everyone sees the two others up, exactly once.
  ASSERT_TRUE(eventually(
      [&] {
        return w[0].events.count("up " + c.name(1)) == 1 &&
               w[0].events.count("up " + c.name(2)) == 1 &&
               w[1].events.count("up " + c.name(0)) == 1 &&
               w[2].events.count("up " + c.name(0)) == 1;
      },
      milliseconds(5000)))
      << w[0].events.dump();
  EXPECT_EQ(w[0].events.count("up " + c.name(0)), 0) << "a node never reports itself";

  // A clean stop revokes the lease: down at once.
  w[2].presence->stop();
  ASSERT_TRUE(eventually(
      [&] {
        return w[0].events.count("down " + c.name(2)) == 1 &&
               w[1].events.count("down " + c.name(2)) == 1;
      },
      milliseconds(2000)))
      << w[0].events.dump();
  // Back again: up once more.
  w[2].presence = presence_of(c, 2);
  ASSERT_TRUE(w[2].presence->start(Deadline::after(milliseconds(5000))).ok());
  ASSERT_TRUE(
      eventually([&] { return w[0].events.count("up " + c.name(2)) == 2; }, milliseconds(2000)));

  // A death: the key goes when the lease expires (TTL 2 s, etcd's minimum about 2 s).
  w[1].presence->abandon();
  ASSERT_TRUE(eventually(
      [&] {
        return w[0].events.count("down " + c.name(1)) == 1 &&
               w[2].events.count("down " + c.name(1)) == 1;
      },
      milliseconds(10000)))
      << w[0].events.dump();

  // The monitor's own member is killed and restarted by its supervisor: the watch moves or
  // resumes, and nothing is reported twice.
  ASSERT_TRUE(c.signal_member(0, SIGKILL).ok());
  w[2].presence->stop();
  ASSERT_TRUE(
      eventually([&] { return w[0].events.count("down " + c.name(2)) == 2; }, milliseconds(15000)))
      << w[0].events.dump();
  EXPECT_EQ(w[0].events.count("up " + c.name(1)), 1) << w[0].events.dump();
  EXPECT_EQ(w[0].events.count("down " + c.name(1)), 1) << w[0].events.dump();
  for (auto& x : w) x.monitor->stop();
}

// The events a PeerProbe reports, recorded from its thread and read from the test's.
class ProbeEvents {
 public:
  // Probe options watching `peer`, recording into this object (which must outlive the probe).
  engine::PeerProbeOptions options_for(const std::string& peer) {
    engine::PeerProbeOptions options;
    options.peers = {peer};
    options.on_event = [this](const engine::PeerEvent& e) {
      std::lock_guard<std::mutex> lock(mu_);
      events_.push_back(e);
    };
    return options;
  }
  std::vector<engine::PeerEvent> all() const {
    std::lock_guard<std::mutex> lock(mu_);
    return events_;
  }

 private:
  mutable std::mutex mu_;
  std::vector<engine::PeerEvent> events_;
};

TEST(Presence, APeerProbeReportsConfiguredPeersAsTheyAnswer) {
  Watchdog watchdog(milliseconds(60000));
  ClusterHarness c;
  const int seed = c.add_node();
  ProbeEvents recorded;
  engine::PeerProbeOptions options = recorded.options_for(c.name(seed));
  options.interval = milliseconds(200);
  options.probe_timeout = milliseconds(300);
  auto probe = engine::PeerProbe::create(options);
  ASSERT_TRUE(probe.ok()) << probe.status().to_string();
  (*probe)->start();
  std::this_thread::sleep_for(milliseconds(600));
  EXPECT_TRUE(recorded.all().empty()) << "a peer starts down and is not reported until it answers";
  ASSERT_TRUE(c.start(seed).ok());
  ASSERT_TRUE(eventually([&] { return recorded.all().size() == 1; }, milliseconds(5000)));
  {
    const std::vector<engine::PeerEvent> events = recorded.all();
    EXPECT_EQ(events[0].kind, NodeEvent::Kind::up);
    EXPECT_EQ(events[0].peer, c.name(seed));
    EXPECT_EQ(events[0].cluster_id, c.node(seed).engine().identity().cluster_id);
  }
  c.stop(seed);
  ASSERT_TRUE(eventually(
      [&] {
        const std::vector<engine::PeerEvent> events = recorded.all();
        return events.size() == 2 && events[1].kind == NodeEvent::Kind::down;
      },
      milliseconds(5000)));
  (*probe)->stop();
}

// A peer whose directory is wiped and that bootstraps again between two rounds never looks down
// to the probe: its new cluster id alone must make an event.
TEST(Presence, APeerProbeReportsAPeerThatCameBackInAnotherCluster) {
  Watchdog watchdog(milliseconds(60000));
  ClusterHarness c;
  const int seed = c.add_node();
  ProbeEvents recorded;
  engine::PeerProbeOptions options = recorded.options_for(c.name(seed));
  options.probe_timeout = milliseconds(1000);
  auto probe = engine::PeerProbe::create(options);
  ASSERT_TRUE(probe.ok()) << probe.status().to_string();
  // Rounds run only when the test calls probe_once(): no thread.
  ASSERT_TRUE(c.start(seed).ok());
  const std::uint64_t first = c.node(seed).engine().identity().cluster_id;
  (*probe)->probe_once();
  c.stop(seed);
  std::filesystem::remove_all(c.dir(seed));
  std::filesystem::create_directories(c.dir(seed));
  ASSERT_TRUE(c.start(seed).ok());
  const std::uint64_t second = c.node(seed).engine().identity().cluster_id;
  ASSERT_NE(first, second);
  (*probe)->probe_once();
  (*probe)->probe_once();  // the same cluster again: nothing new
  const std::vector<engine::PeerEvent> events = recorded.all();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].kind, NodeEvent::Kind::up);
  EXPECT_EQ(events[0].cluster_id, first);
  EXPECT_EQ(events[1].kind, NodeEvent::Kind::up);
  EXPECT_EQ(events[1].cluster_id, second);
}

TEST(Presence, EveryNodeAnnouncesItselfAndWatchesTheOthers) {
  Watchdog watchdog(milliseconds(120000));
  ClusterHarness c;
  EventLog events[3];
  for (int i = 0; i < 3; ++i) {
    const int index = c.add_node();
    auto config = c.config(index, index == 0 ? std::vector<int>{} : std::vector<int>{0});
    config.on_node_event = [&events, index](const NodeEvent& e) {
      events[index].add((e.kind == NodeEvent::Kind::up ? "up " : "down ") + e.node);
    };
    ASSERT_TRUE(c.start_with(index, config).ok()) << c.log(index).dump();
  }
  ASSERT_TRUE(eventually(
      [&] {
        return events[0].count("up " + c.name(1)) == 1 && events[0].count("up " + c.name(2)) == 1 &&
               events[2].count("up " + c.name(0)) == 1 && events[2].count("up " + c.name(1)) == 1;
      },
      milliseconds(5000)))
      << events[0].dump() << " | " << events[2].dump();
  EXPECT_EQ(c.node(0).node_monitor()->up(), (std::set<std::string>{c.name(1), c.name(2)}));
  c.stop(2);
  ASSERT_TRUE(eventually(
      [&] {
        return events[0].count("down " + c.name(2)) == 1 &&
               events[1].count("down " + c.name(2)) == 1;
      },
      milliseconds(5000)))
      << events[0].dump();
}

TEST(Presence, BadOptionsAreRefused) {
  engine::PresenceOptions none;
  EXPECT_EQ(engine::Presence::create(none).status().code(), StatusCode::invalid_argument);
  engine::PeerProbeOptions bad;
  bad.peers = {"no-at-sign"};
  bad.on_event = [](const engine::PeerEvent&) {};
  auto probe = engine::PeerProbe::create(bad);
  ASSERT_FALSE(probe.ok());
  EXPECT_NE(probe.status().message().find("no-at-sign"), std::string::npos);
}

}  // namespace
}  // namespace mishka::test
