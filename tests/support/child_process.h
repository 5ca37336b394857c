// Child processes for tests: start a program with its output in a log file, tie its life to the
// test's, and stop it by pid with a grace period. Also picks free loopback ports.
//
// Not thread-safe: one thread owns a ChildProcess. Spawn() may be called from a multithreaded
// process (gRPC runs threads); the child does only async-signal-safe work before exec.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "mishka/status.h"

namespace mishka::test {

struct SpawnOptions {
  // A path, or a bare name looked up in PATH (before the fork).
  std::string program = {};
  // argv[1...]; argv[0] is `program`.
  std::vector<std::string> args = {};
  // stdout and stderr are appended to this file (created if needed); empty means /dev/null.
  // stdin is always /dev/null.
  std::string log_path = {};
};

// How a child ended.
struct ExitInfo {
  bool signaled = false;  // true: killed by signal `code`; false: exited with status `code`
  int code = 0;

  // "exit status 0" or "killed by signal 15 (Terminated)".
  std::string to_string() const;
};

// A running (or exited, not yet destroyed) child process, owned by one object.
//
// The child is started with PR_SET_PDEATHSIG = SIGKILL: the kernel kills it when the *thread*
// that spawned it exits, so it never outlives a crashed or killed test. Spawn from a thread that
// lives as long as the child should (the test's main thread).
class ChildProcess {
 public:
  static constexpr std::chrono::milliseconds kDefaultGrace{5000};

  // Forks and execs. Fails (io_error) if the log file cannot be opened, the fork fails, or the
  // exec fails (the program does not exist or is not executable); nothing is left running then.
  static Result<ChildProcess> Spawn(const SpawnOptions& options);

  ChildProcess(ChildProcess&& other) noexcept;
  ChildProcess& operator=(ChildProcess&& other) noexcept;
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // Stops the child with the default grace period if it still runs.
  ~ChildProcess();

  pid_t pid() const { return pid_; }

  // Reaps the child if it has exited. Returns how it ended, or nullopt while it runs.
  std::optional<ExitInfo> Poll();

  // Waits up to `timeout` for the child to exit on its own (it is not signalled). Returns how it
  // ended, or nullopt if it still runs.
  std::optional<ExitInfo> WaitFor(std::chrono::milliseconds timeout);

  // Sends `signal` (e.g. SIGSTOP, SIGCONT, SIGKILL for fault tests). Fails once it was reaped.
  Status Signal(int signal);

  // SIGTERM (and SIGCONT, in case it is stopped), waits up to `grace` for it to exit, then
  // SIGKILL; always reaps. Blocks at most `grace` plus the time the kernel needs for SIGKILL.
  // Returns how it ended; calling it again returns the same answer.
  ExitInfo Stop(std::chrono::milliseconds grace = kDefaultGrace);

 private:
  explicit ChildProcess(pid_t pid) : pid_(pid) {}

  pid_t pid_ = -1;  // -1 once moved from
  std::optional<ExitInfo> exit_;
};

// `count` distinct TCP ports on 127.0.0.1 that were free a moment ago: the kernel's picks for
// port 0, all held open together so they differ. Another process may still take one before the
// caller binds it, so callers retry with fresh ports when the bind fails.
Result<std::vector<std::uint16_t>> PickFreeLoopbackPorts(std::size_t count);

// The last `max_lines` lines of a text file; a note in place of the text if it cannot be read.
std::string TailOfFile(const std::string& path, std::size_t max_lines = 40);

}  // namespace mishka::test
