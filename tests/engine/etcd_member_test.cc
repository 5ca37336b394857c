// The etcd member supervisor against the real etcd on loopback: start and health, reuse of the
// data directory, restart after SIGKILL, clean stop, stale members, no orphan when the node is
// killed, and starts that fail. Every test stops what it started by pid and bounds its waits.

#include "engine/etcd_member.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "engine/deadline.h"
#include "engine/member_health.h"
#include "support/child_process.h"
#include "support/process_checks.h"
#include "support/temp_dir.h"

namespace mishka::engine {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using test::etcd_binary;
using test::eventually;
using test::process_alive;
using test::process_ended;
using test::processes_with_arg;
using test::TempDir;
using Kind = MemberEvent::Kind;

// Records the supervisor's events; tests wait on them.
class EventLog {
 public:
  EtcdMember::Listener listener() {
    return [this](const MemberEvent& event) {
      std::lock_guard<std::mutex> lock(mu_);
      events_.push_back(event);
      cv_.notify_all();
    };
  }

  std::vector<MemberEvent> events() const {
    std::lock_guard<std::mutex> lock(mu_);
    return events_;
  }

  int count(Kind kind) const {
    std::lock_guard<std::mutex> lock(mu_);
    return static_cast<int>(std::count_if(events_.begin(), events_.end(),
                                          [&](const MemberEvent& e) { return e.kind == kind; }));
  }

  bool wait_for_count(Kind kind, int n, milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [&] {
      return std::count_if(events_.begin(), events_.end(),
                           [&](const MemberEvent& e) { return e.kind == kind; }) >= n;
    });
  }

  std::string summary() const {
    std::lock_guard<std::mutex> lock(mu_);
    std::string out;
    for (const MemberEvent& e : events_) {
      out += std::string(member_event_name(e.kind)) + "(pid " + std::to_string(e.pid) +
             ", restarts " + std::to_string(e.restarts) + "): " + e.detail + "\n";
    }
    return out;
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<MemberEvent> events_;
};

// The kinds of `events` in order, without the ones not in `keep`.
std::vector<Kind> kinds_among(const std::vector<MemberEvent>& events, std::vector<Kind> keep) {
  std::vector<Kind> out;
  for (const MemberEvent& e : events) {
    if (std::find(keep.begin(), keep.end(), e.kind) != keep.end()) out.push_back(e.kind);
  }
  return out;
}

class EtcdMemberTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Result<TempDir> made = TempDir::Create("mishka-member-");
    ASSERT_TRUE(made.ok()) << made.status().to_string();
    tmp_.emplace(std::move(made).value());
    Result<std::vector<std::uint16_t>> ports = test::pick_free_loopback_ports(2);
    ASSERT_TRUE(ports.ok()) << ports.status().to_string();
    config_.etcd_binary = etcd_binary();
    config_.data_dir = (tmp_->path() / "node" / "etcd").string();
    config_.name = "alpha";
    config_.client_port = (*ports)[0];
    config_.peer_port = (*ports)[1];
    config_.ready_timeout = seconds(20);
    config_.restart_backoff_min = milliseconds(50);
    config_.restart_backoff_max = milliseconds(400);
    config_.stop_grace = seconds(5);
  }

  void TearDown() override {
    // Whatever a failed test left: stop it by pid, and make sure nothing of ours survives.
    for (pid_t pid : extra_pids_) {
      if (!process_ended(pid)) ::kill(pid, SIGKILL);
    }
    const std::string data_arg = "--data-dir=" + data_dir_arg();
    for (pid_t pid : processes_with_arg(data_arg)) {
      ADD_FAILURE() << "etcd " << pid << " of " << data_arg << " outlived its test";
      ::kill(pid, SIGKILL);
    }
  }

  std::string data_dir_arg() const {
    std::error_code ignored;
    const auto dir = std::filesystem::weakly_canonical(config_.data_dir, ignored);
    return (dir / "data").string();
  }

  std::unique_ptr<EtcdMember> make(const MemberConfig& config, EventLog* log = nullptr) {
    Result<std::unique_ptr<EtcdMember>> member =
        EtcdMember::create(config, log != nullptr ? log->listener() : EtcdMember::Listener());
    EXPECT_TRUE(member.ok()) << member.status().to_string();
    return member.ok() ? std::move(member).value() : nullptr;
  }

  // Starts `member`; when a picked port was taken by another process in the meantime, moves
  // this test to fresh ports and tries again (a race the test cannot prevent).
  std::unique_ptr<EtcdMember> start(EventLog* log = nullptr) {
    for (int attempt = 1; attempt <= 3; ++attempt) {
      std::unique_ptr<EtcdMember> member = make(config_, log);
      if (member == nullptr) return nullptr;
      Status started = member->start();
      if (started.ok()) return member;
      if (started.message().find("address already in use") == std::string::npos || attempt == 3) {
        ADD_FAILURE() << started.to_string();
        return nullptr;
      }
      Result<std::vector<std::uint16_t>> ports = test::pick_free_loopback_ports(2);
      if (!ports.ok()) return nullptr;
      config_.client_port = (*ports)[0];
      config_.peer_port = (*ports)[1];
    }
    return nullptr;
  }

  // Runs etcdctl against `member`; its output, or a failure with the output.
  Result<std::string> etcdctl(const EtcdMember& member, std::vector<std::string> args) {
    const std::string out = (tmp_->path() / "etcdctl.out").string();
    std::filesystem::remove(out);
    args.insert(args.begin(), {"--endpoints=" + member.client_url(), "--dial-timeout=3s",
                               "--command-timeout=5s"});
    Result<test::ChildProcess> child =
        test::ChildProcess::spawn({.program = "etcdctl", .args = args, .log_path = out});
    if (!child.ok()) return child.status();
    std::optional<test::ExitInfo> exit = child->wait_for(seconds(15));
    if (!exit) {
      child->stop();
      return Status(StatusCode::timeout, "etcdctl did not finish: " + test::tail_of_file(out));
    }
    if (exit->signaled || exit->code != 0) {
      return Status(StatusCode::internal,
                    "etcdctl " + exit->to_string() + ": " + test::tail_of_file(out));
    }
    return test::tail_of_file(out);
  }

  std::optional<TempDir> tmp_;
  MemberConfig config_;
  std::vector<pid_t> extra_pids_;  // processes a test started outside of a member
};

TEST_F(EtcdMemberTest, StartsHealthyAndStopLeavesNothing) {
  EventLog log;
  std::unique_ptr<EtcdMember> member = start(&log);
  ASSERT_NE(member, nullptr);
  EXPECT_TRUE(member->running());
  const pid_t pid = member->pid();
  ASSERT_GT(pid, 0);
  EXPECT_TRUE(process_alive(pid));
  EXPECT_EQ(member->restart_count(), 0);
  EXPECT_EQ(member->client_endpoint(), "127.0.0.1:" + std::to_string(config_.client_port));
  EXPECT_EQ(member->client_url(), "http://" + member->client_endpoint());
  EXPECT_EQ(member->etcd_data_dir(), data_dir_arg());
  EXPECT_TRUE(
      probe_member_health("127.0.0.1", config_.client_port, Deadline::after(seconds(5))).ok());
  EXPECT_EQ(test::tail_of_file(member->pid_file_path()), std::to_string(pid) + "\n");
  EXPECT_TRUE(std::filesystem::is_directory(member->etcd_data_dir() + "/member"));
  EXPECT_EQ(processes_with_arg("--data-dir=" + data_dir_arg()), std::vector<pid_t>{pid});
  EXPECT_EQ(kinds_among(log.events(), {Kind::started, Kind::ready, Kind::exited}),
            (std::vector<Kind>{Kind::started, Kind::ready}))
      << log.summary();

  const auto stop_began = std::chrono::steady_clock::now();
  member->stop();
  const auto stop_took = std::chrono::steady_clock::now() - stop_began;
  EXPECT_EQ(::kill(pid, 0), -1);
  EXPECT_EQ(errno, ESRCH) << "etcd " << pid << " was not reaped";
  EXPECT_FALSE(member->running());
  EXPECT_EQ(member->pid(), 0);
  EXPECT_FALSE(std::filesystem::exists(member->pid_file_path()));
  EXPECT_LT(stop_took, seconds(5)) << "etcd needed SIGKILL: it did not exit on SIGTERM";
  EXPECT_EQ(log.events().back().kind, Kind::stopped) << log.summary();
  EXPECT_NE(log.events().back().detail.find("signal 15"), std::string::npos) << log.summary();
  member->stop();  // idempotent
  EXPECT_EQ(log.count(Kind::stopped), 1);
}

TEST_F(EtcdMemberTest, SecondStartReusesTheData) {
  std::unique_ptr<EtcdMember> member = start();
  ASSERT_NE(member, nullptr);
  Result<std::string> put = etcdctl(*member, {"put", "/mishka/test/k", "kept"});
  ASSERT_TRUE(put.ok()) << put.status().to_string();
  member->stop();

  // The same object started again.
  ASSERT_TRUE(member->start().ok());
  Result<std::string> got = etcdctl(*member, {"get", "/mishka/test/k", "--print-value-only"});
  ASSERT_TRUE(got.ok()) << got.status().to_string();
  EXPECT_EQ(*got, "kept\n");
  member->stop();

  // A new object on the same directory, as after a node restart.
  member.reset();
  std::unique_ptr<EtcdMember> again = make(config_);
  ASSERT_NE(again, nullptr);
  Status started = again->start();
  ASSERT_TRUE(started.ok()) << started.to_string();
  got = etcdctl(*again, {"get", "/mishka/test/k", "--print-value-only"});
  ASSERT_TRUE(got.ok()) << got.status().to_string();
  EXPECT_EQ(*got, "kept\n");
  const pid_t pid = again->pid();
  again.reset();  // the destructor stops it
  EXPECT_TRUE(process_ended(pid));
}

TEST_F(EtcdMemberTest, RestartsEtcdAfterSigkill) {
  EventLog log;
  std::unique_ptr<EtcdMember> member = start(&log);
  ASSERT_NE(member, nullptr);
  ASSERT_TRUE(etcdctl(*member, {"put", "/mishka/test/k", "survives"}).ok());
  const pid_t first = member->pid();
  ASSERT_EQ(::kill(first, SIGKILL), 0);

  ASSERT_TRUE(log.wait_for_count(Kind::ready, 2, seconds(30))) << log.summary();
  EXPECT_EQ(member->restart_count(), 1);
  EXPECT_TRUE(member->running());
  const pid_t second = member->pid();
  EXPECT_GT(second, 0);
  EXPECT_NE(second, first);
  EXPECT_TRUE(process_ended(first));
  EXPECT_EQ(kinds_among(log.events(), {Kind::started, Kind::ready, Kind::exited, Kind::restarting}),
            (std::vector<Kind>{Kind::started, Kind::ready, Kind::exited, Kind::restarting,
                               Kind::started, Kind::ready}))
      << log.summary();
  for (const MemberEvent& e : log.events()) {
    if (e.kind == Kind::exited) {
      EXPECT_EQ(e.pid, first);
      EXPECT_NE(e.detail.find("signal 9"), std::string::npos) << e.detail;
    }
    if (e.kind == Kind::restarting) {
      EXPECT_EQ(e.restarts, 1);
    }
  }
  EXPECT_EQ(test::tail_of_file(member->pid_file_path()), std::to_string(second) + "\n");

  Result<std::string> got = etcdctl(*member, {"get", "/mishka/test/k", "--print-value-only"});
  ASSERT_TRUE(got.ok()) << got.status().to_string();
  EXPECT_EQ(*got, "survives\n");
  member->stop();
  EXPECT_TRUE(process_ended(second));
}

TEST_F(EtcdMemberTest, StopsAStaleMemberOfItsDirectory) {
  EventLog log;
  std::unique_ptr<EtcdMember> member = make(config_, &log);
  ASSERT_NE(member, nullptr);

  // An etcd of this directory on the member's ports, left running, with its pid file: as if a
  // node died and its etcd somehow survived. The member's start fails unless it is stopped.
  const std::string client = member->client_url();
  const std::string peer = member->peer_url();
  Result<test::ChildProcess> orphan = test::ChildProcess::spawn(
      {.program = etcd_binary(),
       .args = {"--name=alpha", "--data-dir=" + member->etcd_data_dir(),
                "--listen-client-urls=" + client, "--advertise-client-urls=" + client,
                "--listen-peer-urls=" + peer, "--initial-advertise-peer-urls=" + peer,
                "--initial-cluster=alpha=" + peer, "--logger=zap", "--log-outputs=stderr"},
       .log_path = (tmp_->path() / "orphan.log").string()});
  ASSERT_TRUE(orphan.ok()) << orphan.status().to_string();
  extra_pids_.push_back(orphan->pid());
  {
    std::ofstream pid_file(member->pid_file_path());
    pid_file << orphan->pid() << "\n";
  }
  ASSERT_TRUE(eventually(
      [&] {
        return probe_member_health("127.0.0.1", config_.client_port, Deadline::after(seconds(2)))
            .ok();
      },
      seconds(20)))
      << test::tail_of_file((tmp_->path() / "orphan.log").string());

  Status started = member->start();
  ASSERT_TRUE(started.ok()) << started.to_string() << "\n" << log.summary();
  std::optional<test::ExitInfo> orphan_exit = orphan->wait_for(seconds(1));
  ASSERT_TRUE(orphan_exit.has_value()) << "the stale etcd still runs";
  EXPECT_TRUE(orphan_exit->signaled);
  EXPECT_EQ(orphan_exit->code, SIGTERM) << orphan_exit->to_string();
  ASSERT_EQ(log.count(Kind::stale_member_killed), 1) << log.summary();
  EXPECT_EQ(log.events().front().kind, Kind::stale_member_killed);
  EXPECT_EQ(log.events().front().pid, orphan->pid());
  EXPECT_NE(member->pid(), orphan->pid());
  member->stop();
}

TEST_F(EtcdMemberTest, PidFileOfAnUnrelatedProcessIsLeftAlone) {
  EventLog log;
  std::unique_ptr<EtcdMember> member = make(config_, &log);
  ASSERT_NE(member, nullptr);
  // The pid was reused by another program: it must not be signalled.
  Result<test::ChildProcess> bystander =
      test::ChildProcess::spawn({.program = "sleep", .args = {"60"}});
  ASSERT_TRUE(bystander.ok()) << bystander.status().to_string();
  extra_pids_.push_back(bystander->pid());
  {
    std::ofstream pid_file(member->pid_file_path());
    pid_file << bystander->pid() << "\n";
  }
  Status started = member->start();
  ASSERT_TRUE(started.ok()) << started.to_string();
  EXPECT_FALSE(bystander->poll().has_value()) << "an unrelated process was signalled";
  EXPECT_EQ(log.count(Kind::stale_member_killed), 0) << log.summary();
  EXPECT_EQ(test::tail_of_file(member->pid_file_path()), std::to_string(member->pid()) + "\n");
  member->stop();
  bystander->stop();
}

TEST_F(EtcdMemberTest, NoEtcdOutlivesAKilledNode) {
  int report[2];
  ASSERT_EQ(::pipe(report), 0);
  const pid_t node = ::fork();
  ASSERT_GE(node, 0);
  if (node == 0) {
    // The "node": starts its member, reports etcd's pid, and waits to be killed.
    ::close(report[0]);
    pid_t etcd = -1;
    Result<std::unique_ptr<EtcdMember>> member = EtcdMember::create(config_);
    if (member.ok() && (*member)->start().ok()) etcd = (*member)->pid();
    [[maybe_unused]] const ssize_t n = ::write(report[1], &etcd, sizeof(etcd));
    if (etcd <= 0) ::_exit(1);
    while (true) ::pause();
  }
  ::close(report[1]);
  extra_pids_.push_back(node);
  pid_t etcd = -1;
  // The child's start is bounded by its ready_timeout; the read returns then at the latest.
  const ssize_t n = ::read(report[0], &etcd, sizeof(etcd));
  ::close(report[0]);
  ASSERT_EQ(n, static_cast<ssize_t>(sizeof(etcd)));
  ASSERT_GT(etcd, 0) << "the node could not start its member";
  extra_pids_.push_back(etcd);
  EXPECT_TRUE(process_alive(etcd));

  ASSERT_EQ(::kill(node, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(::waitpid(node, &status, 0), node);

  const std::string data_arg = "--data-dir=" + data_dir_arg();
  EXPECT_TRUE(eventually([&] { return processes_with_arg(data_arg).empty(); }, seconds(5)))
      << "etcd " << etcd << " outlived its node";
  EXPECT_TRUE(process_ended(etcd));

  // The node's next life finds the pid file of a dead process and starts normally.
  EventLog log;
  std::unique_ptr<EtcdMember> member = start(&log);
  ASSERT_NE(member, nullptr);
  EXPECT_EQ(log.count(Kind::stale_member_killed), 0) << log.summary();
  member->stop();
}

TEST_F(EtcdMemberTest, OneMemberPerDirectory) {
  std::unique_ptr<EtcdMember> first = start();
  ASSERT_NE(first, nullptr);
  MemberConfig other = config_;
  Result<std::vector<std::uint16_t>> ports = test::pick_free_loopback_ports(2);
  ASSERT_TRUE(ports.ok());
  other.client_port = (*ports)[0];
  other.peer_port = (*ports)[1];
  std::unique_ptr<EtcdMember> second = make(other);
  ASSERT_NE(second, nullptr);
  Status started = second->start();
  EXPECT_EQ(started.code(), StatusCode::io_error) << started.to_string();
  EXPECT_NE(started.message().find("in use"), std::string::npos) << started.to_string();
  EXPECT_TRUE(process_alive(first->pid())) << "the running member was disturbed";
  EXPECT_TRUE(first->start().code() == StatusCode::invalid_argument) << "already running";
  first->stop();
  second.reset();
}

TEST_F(EtcdMemberTest, StartFailsWhenEtcdExitsAtOnce) {
  EventLog log;
  config_.etcd_binary = "/bin/false";
  std::unique_ptr<EtcdMember> member = make(config_, &log);
  ASSERT_NE(member, nullptr);
  Status started = member->start();
  EXPECT_EQ(started.code(), StatusCode::engine_unavailable) << started.to_string();
  EXPECT_NE(started.message().find("exit status 1"), std::string::npos) << started.to_string();
  EXPECT_NE(started.message().find(member->log_path()), std::string::npos) << started.to_string();
  EXPECT_NE(started.message().find("---- mishka"), std::string::npos)
      << "no log tail: " << started.to_string();
  EXPECT_FALSE(member->running());
  EXPECT_EQ(member->pid(), 0);
  ASSERT_EQ(log.count(Kind::started), 1) << log.summary();
  EXPECT_TRUE(process_ended(log.events().front().pid));
  EXPECT_FALSE(std::filesystem::exists(member->pid_file_path()));

  config_.etcd_binary = (tmp_->path() / "no-such-etcd").string();
  member = make(config_);
  ASSERT_NE(member, nullptr);
  started = member->start();
  EXPECT_EQ(started.code(), StatusCode::io_error) << started.to_string();
  EXPECT_NE(started.message().find("no-such-etcd"), std::string::npos) << started.to_string();
}

TEST_F(EtcdMemberTest, StartFailsWhenThePortIsTaken) {
  const int taken = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(taken, 0);
  sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(config_.client_port);
  ASSERT_EQ(::bind(taken, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(::listen(taken, 4), 0);

  EventLog log;
  std::unique_ptr<EtcdMember> member = make(config_, &log);
  ASSERT_NE(member, nullptr);
  Status started = member->start();
  ::close(taken);
  EXPECT_EQ(started.code(), StatusCode::engine_unavailable) << started.to_string();
  EXPECT_NE(started.message().find("address already in use"), std::string::npos)
      << started.to_string();
  EXPECT_FALSE(member->running());
  ASSERT_GE(log.count(Kind::started), 1) << log.summary();
  EXPECT_TRUE(process_ended(log.events().front().pid));
  EXPECT_TRUE(processes_with_arg("--data-dir=" + data_dir_arg()).empty());
}

TEST_F(EtcdMemberTest, StartTimesOutWhenNeverHealthy) {
  // A program that runs but never serves.
  const std::filesystem::path script = tmp_->path() / "silent-etcd";
  {
    std::ofstream out(script);
    out << "#!/bin/sh\nexec sleep 60\n";
  }
  std::filesystem::permissions(script, std::filesystem::perms::owner_all);
  config_.etcd_binary = script.string();
  config_.ready_timeout = milliseconds(800);
  EventLog log;
  std::unique_ptr<EtcdMember> member = make(config_, &log);
  ASSERT_NE(member, nullptr);
  const auto began = std::chrono::steady_clock::now();
  Status started = member->start();
  EXPECT_LT(std::chrono::steady_clock::now() - began, seconds(10));
  EXPECT_EQ(started.code(), StatusCode::timeout) << started.to_string();
  EXPECT_NE(started.message().find("not healthy within 800 ms"), std::string::npos)
      << started.to_string();
  EXPECT_NE(started.message().find("Connection refused"), std::string::npos) << started.to_string();
  EXPECT_FALSE(member->running());
  ASSERT_EQ(log.count(Kind::started), 1) << log.summary();
  EXPECT_TRUE(process_ended(log.events().front().pid));
}

TEST_F(EtcdMemberTest, GivesUpAfterRestartsThatFail) {
  // etcd until the marker exists, then a program that fails at once.
  const std::filesystem::path marker = tmp_->path() / "broken";
  const std::filesystem::path script = tmp_->path() / "flaky-etcd";
  {
    std::ofstream out(script);
    out << "#!/bin/sh\n[ -e '" << marker.string() << "' ] && exit 3\nexec '" << etcd_binary()
        << "' \"$@\"\n";
  }
  std::filesystem::permissions(script, std::filesystem::perms::owner_all);
  config_.etcd_binary = script.string();
  config_.give_up_after = 3;
  EventLog log;
  std::unique_ptr<EtcdMember> member = start(&log);
  ASSERT_NE(member, nullptr);
  const pid_t pid = member->pid();
  std::ofstream(marker.string()) << "x";
  ASSERT_EQ(::kill(pid, SIGKILL), 0);

  ASSERT_TRUE(log.wait_for_count(Kind::gave_up, 1, seconds(20))) << log.summary();
  EXPECT_FALSE(member->running());
  EXPECT_EQ(member->pid(), 0);
  // The first restart after the kill, then three that failed: the third one gives up.
  EXPECT_EQ(member->restart_count(), 3) << log.summary();
  EXPECT_EQ(log.count(Kind::ready), 1);
  EXPECT_NE(log.events().back().detail.find("exit status 3"), std::string::npos) << log.summary();
  EXPECT_TRUE(processes_with_arg("--data-dir=" + data_dir_arg()).empty());

  // Repaired: start() works again.
  std::filesystem::remove(marker);
  Status started = member->start();
  ASSERT_TRUE(started.ok()) << started.to_string();
  member->stop();
}

TEST_F(EtcdMemberTest, InvalidConfigsAreRefused) {
  auto refused = [](MemberConfig c, const std::string& field) {
    Result<std::unique_ptr<EtcdMember>> member = EtcdMember::create(std::move(c));
    EXPECT_EQ(member.status().code(), StatusCode::invalid_argument) << field;
    EXPECT_NE(member.status().message().find(field), std::string::npos)
        << member.status().to_string();
  };
  MemberConfig c = config_;
  c.name = "";
  refused(c, "name");
  c = config_;
  c.name = "a=b";
  refused(c, "name");
  c = config_;
  c.host = "localhost";
  refused(c, "host");
  c = config_;
  c.host = "0.0.0.0";
  refused(c, "host");
  c = config_;
  c.peer_port = c.client_port;
  refused(c, "peer_port");
  c = config_;
  c.data_dir = "";
  refused(c, "data_dir");
  c = config_;
  c.restart_backoff_max = milliseconds(1);
  refused(c, "restart_backoff_max");
  c = config_;
  c.tls = MemberTls{.ca_file = "ca.pem", .cert_file = "node.pem", .key_file = "node.key"};
  refused(c, "metrics_port");
  c = config_;
  c.join_existing = true;
  refused(c, "initial_cluster");
  EXPECT_FALSE(std::filesystem::exists(config_.data_dir)) << "a refused config created files";
}

}  // namespace
}  // namespace mishka::engine
