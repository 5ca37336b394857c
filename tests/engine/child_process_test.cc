// The child-process helper that cluster tests build on: spawn, exec failure as a value, stop with
// a grace period, and PR_SET_PDEATHSIG so no child outlives its test.

#include "support/child_process.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <optional>
#include <set>
#include <string>
#include <thread>

#include "support/temp_dir.h"

namespace mishka::test {
namespace {

// True once `pid` is gone or a zombie nobody reaps (a container's PID 1 may not).
bool ProcessEnded(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  if (!stat) return true;
  std::string line;
  std::getline(stat, line);
  const std::size_t paren = line.rfind(')');
  return paren != std::string::npos && paren + 2 < line.size() && line[paren + 2] == 'Z';
}

TEST(ChildProcessTest, CapturesOutputAndExitStatus) {
  Result<TempDir> dir = TempDir::Create("mishka-child-");
  ASSERT_TRUE(dir.ok()) << dir.status().message();
  const std::string log = (dir->path() / "out.log").string();

  Result<ChildProcess> child =
      ChildProcess::spawn({.program = "sh",
                           .args = {"-c", "echo to-stdout; echo to-stderr >&2; exit 3"},
                           .log_path = log});
  ASSERT_TRUE(child.ok()) << child.status().message();
  const std::optional<ExitInfo> exit = child->wait_for(std::chrono::seconds(10));
  ASSERT_TRUE(exit.has_value()) << "sh did not exit";
  EXPECT_FALSE(exit->signaled) << exit->to_string();
  EXPECT_EQ(exit->code, 3);
  EXPECT_EQ(tail_of_file(log), "to-stdout\nto-stderr\n");
}

TEST(ChildProcessTest, ExecFailureIsAnError) {
  Result<ChildProcess> child =
      ChildProcess::spawn({.program = "/nonexistent/mishka-no-such-binary"});
  ASSERT_FALSE(child.ok());
  EXPECT_NE(child.status().message().find("No such file"), std::string::npos)
      << child.status().message();
}

TEST(ChildProcessTest, StopSendsTermAndReaps) {
  Result<ChildProcess> child = ChildProcess::spawn({.program = "sleep", .args = {"60"}});
  ASSERT_TRUE(child.ok()) << child.status().message();
  const pid_t pid = child->pid();
  EXPECT_FALSE(child->poll().has_value());

  const ExitInfo exit = child->stop();
  EXPECT_TRUE(exit.signaled);
  EXPECT_EQ(exit.code, SIGTERM) << exit.to_string();
  EXPECT_NE(::kill(pid, 0), 0) << "reaped, so the pid is gone";
  EXPECT_EQ(child->stop().code, SIGTERM) << "stop is idempotent";
}

TEST(ChildProcessTest, StopEscalatesToKillAfterTheGracePeriod) {
  // The shell ignores SIGTERM, and so does the sleep it execs into.
  Result<ChildProcess> child =
      ChildProcess::spawn({.program = "sh", .args = {"-c", "trap '' TERM; exec sleep 60"}});
  ASSERT_TRUE(child.ok()) << child.status().message();
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // let the trap be installed

  const auto start = std::chrono::steady_clock::now();
  const ExitInfo exit = child->stop(std::chrono::milliseconds(300));
  EXPECT_TRUE(exit.signaled);
  EXPECT_EQ(exit.code, SIGKILL) << exit.to_string();
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(300));
}

TEST(ChildProcessTest, StopsAStoppedChild) {
  Result<ChildProcess> child = ChildProcess::spawn({.program = "sleep", .args = {"60"}});
  ASSERT_TRUE(child.ok()) << child.status().message();
  ASSERT_TRUE(child->signal(SIGSTOP).ok());
  const ExitInfo exit = child->stop(std::chrono::seconds(5));
  EXPECT_TRUE(exit.signaled);
  EXPECT_EQ(exit.code, SIGTERM) << exit.to_string();
}

TEST(ChildProcessTest, ChildDiesWithItsParent) {
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  const pid_t middle = ::fork();
  ASSERT_GE(middle, 0);
  if (middle == 0) {
    // Spawn a long sleep, report its pid, and die without stopping it.
    Result<ChildProcess> child = ChildProcess::spawn({.program = "sleep", .args = {"60"}});
    const pid_t pid = child.ok() ? child->pid() : -1;
    [[maybe_unused]] const ssize_t n = ::write(pipe_fds[1], &pid, sizeof(pid));
    ::_exit(0);
  }
  ::close(pipe_fds[1]);
  pid_t grandchild = -1;
  ASSERT_EQ(::read(pipe_fds[0], &grandchild, sizeof(grandchild)),
            static_cast<ssize_t>(sizeof(grandchild)));
  ::close(pipe_fds[0]);
  int status = 0;
  ASSERT_EQ(::waitpid(middle, &status, 0), middle);
  ASSERT_GT(grandchild, 0) << "spawn failed in the forked child";

  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!ProcessEnded(grandchild) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(ProcessEnded(grandchild)) << "sleep " << grandchild << " outlived its parent";
  if (!ProcessEnded(grandchild)) ::kill(grandchild, SIGKILL);
}

TEST(ChildProcessTest, OwnProcessGroupOnRequest) {
  Result<ChildProcess> shared = ChildProcess::spawn({.program = "sleep", .args = {"60"}});
  ASSERT_TRUE(shared.ok()) << shared.status().message();
  EXPECT_EQ(::getpgid(shared->pid()), ::getpgrp());
  Result<ChildProcess> own =
      ChildProcess::spawn({.program = "sleep", .args = {"60"}, .own_process_group = true});
  ASSERT_TRUE(own.ok()) << own.status().message();
  EXPECT_EQ(::getpgid(own->pid()), own->pid());
  EXPECT_TRUE(own->stop().signaled);
  EXPECT_TRUE(shared->stop().signaled);
}

TEST(ChildProcessTest, PicksDistinctLoopbackPorts) {
  Result<std::vector<std::uint16_t>> ports = pick_free_loopback_ports(8);
  ASSERT_TRUE(ports.ok()) << ports.status().message();
  ASSERT_EQ(ports->size(), 8u);
  const std::set<std::uint16_t> distinct(ports->begin(), ports->end());
  EXPECT_EQ(distinct.size(), 8u);
  for (std::uint16_t port : *ports) EXPECT_NE(port, 0);
}

}  // namespace
}  // namespace mishka::test
