// The node's own etcd member: a child process in <mnesia_dir>/etcd that the node starts, keeps
// healthy, restarts when it dies and stops with itself (ARCHITECTURE.md, "The engine";
// docs/engine.md, "The member process").
//
// Lifetime: no etcd process outlives its node. Every etcd is forked by the member's supervisor
// thread and gets PR_SET_PDEATHSIG(SIGKILL), which the kernel fires when that *thread* exits;
// the thread runs from start() until the child is reaped by stop(), so the signal fires exactly
// when the node dies. A pid file in the member directory lets a later start find and stop a
// member left behind anyway (the pid's /proc cmdline must name etcd and this member's data
// directory before anything is signalled).
//
// Directory (MemberConfig::data_dir, normally <mnesia_dir>/etcd):
//   data/      etcd's --data-dir
//   etcd.log   etcd's stdout and stderr, appended across restarts (etcd.log.1: the previous one)
//   etcd.pid   the pid of the running etcd
//   lock       flock()ed while a member runs: one EtcdMember per directory, in any process
//
// Threading: start() and stop() from one owner thread; the other methods from any thread.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "mishka/status.h"

namespace mishka::engine {

struct MemberTls {
  // Paths of PEM files, passed to etcd for both its client and its peer listeners, with client
  // certificate authentication on both.
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
};

struct MemberConfig {
  std::string etcd_binary = "etcd";  // a path, or a name looked up in PATH
  std::string data_dir;              // the member directory, <mnesia_dir>/etcd; created if missing
  std::string name;                  // etcd --name (the node name); no '=' or ','
  std::string host = "127.0.0.1";    // IP literal where both listeners bind and advertise
  std::uint16_t client_port = 4370;
  std::uint16_t peer_port = 4371;
  // With tls, the health probe cannot use the client port (it requires a client certificate):
  // etcd then also serves /health on http://127.0.0.1:metrics_port, and this must be set.
  // 0: no such listener.
  std::uint16_t metrics_port = 0;
  // "name=peer_url,..." for a first start; empty means a one-member cluster of this node.
  // Ignored by etcd once data/ holds a member.
  std::string initial_cluster;
  bool join_existing = false;  // --initial-cluster-state existing (a joiner)
  std::string initial_cluster_token = "mishka";
  std::optional<MemberTls> tls;         // plain http when absent (tests)
  std::vector<std::string> extra_args;  // appended to etcd's command line

  std::chrono::milliseconds ready_timeout{30000};  // health wait after each (re)start
  // The delay before a restart doubles from min to max with each exit that follows a short
  // run; a run that stayed healthy for restart_backoff_max starts again from min.
  std::chrono::milliseconds restart_backoff_min{200};
  std::chrono::milliseconds restart_backoff_max{10000};
  // After this many restarts in a row that did not become healthy, the supervisor stops
  // trying (MemberEvent::gave_up; running() turns false). 0: never give up.
  int give_up_after = 0;
  std::chrono::milliseconds stop_grace{10000};  // SIGTERM, then SIGKILL after this
};

// What the supervisor reports to its owner (logs, telemetry, health).
struct MemberEvent {
  enum class Kind {
    started,              // etcd was spawned (pid); not yet healthy
    ready,                // its health probe passed
    exited,               // it exited on its own, or was stopped after failing to become ready
    restarting,           // a restart is scheduled (detail: the delay); restarts counts it
    stale_member_killed,  // a member of this directory left by an earlier run was stopped (pid)
    gave_up,              // give_up_after failed restarts in a row: no more restarts
    stopped,              // stop() ended it (detail: how it exited)
  };
  Kind kind;
  pid_t pid = 0;
  int restarts = 0;    // restarts so far
  std::string detail;  // exit status, backoff, path of the log, ...
};

// "started", "ready", ...
const char* member_event_name(MemberEvent::Kind kind);

class EtcdMember {
 public:
  // Called on the supervisor thread, one event at a time, in order. It must not block for long,
  // must not throw, and must not call start() or stop() of this member (stop() waits for that
  // thread).
  using Listener = std::function<void(const MemberEvent&)>;

  // Validates the config (invalid_argument naming the field) and creates the directory
  // (io_error with the path). Does not start anything.
  static Result<std::unique_ptr<EtcdMember>> create(MemberConfig config, Listener listener = {});
  // Stops the member (stop()) if it runs.
  ~EtcdMember();
  EtcdMember(const EtcdMember&) = delete;
  EtcdMember& operator=(const EtcdMember&) = delete;

  // Takes the directory's lock, stops a stale member of this directory if one is found, starts
  // etcd and waits until its health probe passes, at most config.ready_timeout. From then on
  // the supervisor restarts it with backoff whenever it exits. Errors: invalid_argument
  // (already running), io_error (the directory is locked by another EtcdMember, a stale member
  // cannot be stopped, or etcd cannot be spawned), engine_unavailable (etcd exited before it
  // was healthy), timeout (not healthy in time; the process is stopped again). The message of
  // the last two ends with the tail of etcd's log. After a failure nothing runs and the lock is
  // released; start() may be called again.
  Status start();

  // SIGTERM and wait up to stop_grace, then SIGKILL; always reaps, removes the pid file and
  // releases the lock. Also ends a supervisor that gave up. Idempotent.
  void stop();

  // "host:client_port" (gRPC target).
  std::string client_endpoint() const;
  std::string client_url() const;
  std::string peer_url() const;
  // The pid of the running child, or 0 (not started, stopped, or between a death and restart).
  pid_t pid() const;
  // How many restarts the supervisor scheduled after etcd exited on its own (or failed to
  // become healthy again). Not reset by stop().
  int restart_count() const;
  // True from a successful start() until stop(), or until the supervisor gave up.
  bool running() const;
  std::string log_path() const;
  std::string pid_file_path() const;
  // etcd's --data-dir: data_dir + "/data", made absolute.
  std::string etcd_data_dir() const;

 private:
  class Impl;
  explicit EtcdMember(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace mishka::engine
