// The node's own etcd member: a child process in <mnesia_dir>/etcd that the node starts, keeps
// healthy, restarts when it dies and stops with itself (ARCHITECTURE.md, "The engine").
//
// Lifetime: no etcd process outlives its node. The child gets PR_SET_PDEATHSIG(SIGKILL) from the
// supervisor thread, which lives exactly as long as this object; a pid file in the data
// directory lets a later start find and kill a member left by a node that died in a way the
// kernel could not report (the pid is checked against /proc before anything is signalled).
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

#include "engine/deadline.h"
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
  std::string etcd_binary = "etcd";     // a path, or a name looked up in PATH
  std::string data_dir;                  // <mnesia_dir>/etcd; created if missing
  std::string name;                      // etcd --name (the node name)
  std::string host = "127.0.0.1";        // where both listeners bind and advertise
  std::uint16_t client_port = 4370;
  std::uint16_t peer_port = 4371;
  // "name=peer_url,..." for a first start; empty means a one-member cluster of this node.
  std::string initial_cluster;
  bool join_existing = false;            // --initial-cluster-state existing (a joiner)
  std::string initial_cluster_token = "mishka";
  std::optional<MemberTls> tls;          // plain http when absent (tests)
  std::vector<std::string> extra_args;   // appended to etcd's command line

  std::chrono::milliseconds ready_timeout{30000};  // health wait after each (re)start
  std::chrono::milliseconds restart_backoff_min{200};
  std::chrono::milliseconds restart_backoff_max{10000};
  std::chrono::milliseconds stop_grace{10000};  // SIGTERM, then SIGKILL after this
};

// What the supervisor reports to its owner (logs, telemetry, health).
struct MemberEvent {
  enum class Kind { started, ready, exited, restarting, stale_member_killed, gave_up };
  Kind kind;
  pid_t pid = 0;
  int restarts = 0;     // restarts so far
  std::string detail;   // exit status, backoff, path of the log, ...
};

class EtcdMember {
 public:
  using Listener = std::function<void(const MemberEvent&)>;

  // Validates the config (invalid_argument naming the field) and prepares the directory
  // (io_error with the path). Does not start anything.
  static Result<std::unique_ptr<EtcdMember>> create(MemberConfig config, Listener listener = {});
  // Stops the member (stop()) if it runs.
  ~EtcdMember();

  // Kills a stale member of this data directory if one is found, starts etcd and waits until
  // its client endpoint answers a health probe, at most config.ready_timeout. From then on the
  // supervisor restarts it with backoff whenever it exits. Errors: io_error (cannot spawn),
  // timeout (not healthy in time: the process is stopped again and its log tail is in the
  // message).
  Status start();

  // SIGTERM and wait up to stop_grace, then SIGKILL; always reaps. Idempotent.
  void stop();

  // "host:client_port".
  std::string client_endpoint() const;
  std::string client_url() const;
  std::string peer_url() const;
  // The pid of the running child, or 0.
  pid_t pid() const;
  // How many times the supervisor restarted etcd after it exited on its own.
  int restart_count() const;
  bool running() const;
  std::string log_path() const;

 private:
  class Impl;
  explicit EtcdMember(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace mishka::engine
