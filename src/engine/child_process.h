// Child processes: start a program with its output appended to a log file, tie its life to the
// thread that started it, and stop it by pid with a grace period. Also picks free loopback
// ports and reads the tail of a log. The etcd member supervisor (etcd_member.h) and the tests
// build on it.
//
// Threading: a ChildProcess is used by one thread at a time. spawn() may be called from a
// multithreaded process (gRPC runs threads): between fork and exec the child makes only
// async-signal-safe calls.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "mishka/status.h"

namespace mishka::engine {

struct SpawnOptions {
  // A path, or a bare name looked up in PATH (before the fork).
  std::string program = {};
  // argv[1...]; argv[0] is `program`.
  std::vector<std::string> args = {};
  // stdout and stderr are appended to this file (created if needed); empty means /dev/null.
  // stdin is always /dev/null.
  std::string log_path = {};
  // Puts the child in a process group of its own, so that signals a terminal sends to the
  // spawner's group (Ctrl-C) reach the spawner only, which then stops the child in its own
  // order. The parent-death signal works either way.
  bool own_process_group = false;
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
// The child is started with PR_SET_PDEATHSIG = SIGKILL. The kernel sends that signal when the
// *thread* that forked the child exits, not only when the process does: spawn from a thread
// that outlives the child (a supervisor thread, or a test's main thread). If the spawning
// process dies between fork and prctl, the child notices (its parent changed) and exits, so no
// child ever outlives its spawner.
class ChildProcess {
 public:
  static constexpr std::chrono::milliseconds kDefaultGrace{5000};

  // Forks and execs. Fails (io_error) if the log file cannot be opened, the fork fails, or the
  // exec fails (the program does not exist or is not executable): nothing is left running then.
  // not_found when a bare program name is not in PATH.
  static Result<ChildProcess> spawn(const SpawnOptions& options);

  ChildProcess(ChildProcess&& other) noexcept;
  ChildProcess& operator=(ChildProcess&& other) noexcept;
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // Stops the child with the default grace period if it still runs.
  ~ChildProcess();

  pid_t pid() const { return pid_; }

  // Reaps the child if it has exited. Returns how it ended, or nullopt while it runs.
  std::optional<ExitInfo> poll();

  // Waits up to `timeout` for the child to exit on its own (it is not signalled). Returns how it
  // ended, or nullopt if it still runs.
  std::optional<ExitInfo> wait_for(std::chrono::milliseconds timeout);

  // Sends `signal` (e.g. SIGSTOP, SIGCONT, SIGKILL for fault tests). not_found once the child
  // was reaped (its pid may belong to another process by then).
  Status signal(int signo);

  // SIGTERM (and SIGCONT, in case it is stopped), waits up to `grace` for it to exit, then
  // SIGKILL; always reaps. Blocks at most `grace` plus the time the kernel needs for SIGKILL.
  // Returns how it ended; calling it again returns the same answer.
  ExitInfo stop(std::chrono::milliseconds grace = kDefaultGrace);

 private:
  explicit ChildProcess(pid_t pid) : pid_(pid) {}

  pid_t pid_ = -1;  // -1 once moved from
  std::optional<ExitInfo> exit_;
};

// `count` distinct TCP ports on 127.0.0.1 that were free a moment ago, drawn at random below the
// kernel's ephemeral range (so that outgoing connections do not take them while a node is down
// between two starts), all held open together so they differ. Another process may still take one
// before the caller binds it, so callers retry with fresh ports when the bind fails.
Result<std::vector<std::uint16_t>> pick_free_loopback_ports(std::size_t count);

// The last `max_lines` lines of a text file; a note in place of the text if it cannot be read.
std::string tail_of_file(const std::string& path, std::size_t max_lines = 40);

}  // namespace mishka::engine
