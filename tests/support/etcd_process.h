// A real one-member etcd cluster for tests: the etcd binary as a child process, in a fresh
// temporary directory, listening on free loopback ports, with its output in a log file there.
//
// Not thread-safe: one thread starts and stops it (see ChildProcess about PR_SET_PDEATHSIG).
// The gRPC channel it hands out is thread-safe, as gRPC channels are.
#pragma once

#include <grpcpp/grpcpp.h>
#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "mishka/status.h"
#include "support/child_process.h"
#include "support/temp_dir.h"

namespace mishka::test {

struct EtcdOptions {
  // The etcd binary. Empty: $MISHKA_ETCD if set, else /usr/bin/etcd.
  std::string binary;
  // The member's --name.
  std::string name = "mishka-test";
  // Start() fails if etcd does not answer a Maintenance.Status call with a leader within this.
  std::chrono::milliseconds ready_timeout{20000};
  std::chrono::milliseconds poll_interval{50};
  // Deadline of each readiness call.
  std::chrono::milliseconds probe_deadline{1000};
  // Fresh ports are picked for each attempt; a retry happens only when etcd reports that an
  // address is already in use (another process took a picked port first).
  int start_attempts = 3;
  // Appended to the command line, e.g. {"--max-txn-ops=256"}.
  std::vector<std::string> extra_args;
};

// A gRPC channel to a loopback etcd as tests want it: no HTTP proxy (a CI runner's http_proxy
// must not capture 127.0.0.1), and reconnect backoff capped low so polling sees a member come
// up within tens of milliseconds. `endpoint` is "host:port".
std::shared_ptr<grpc::Channel> MakeLoopbackChannel(const std::string& endpoint);

class EtcdProcess {
 public:
  // Starts etcd and waits until it serves. On failure nothing is left running, the temporary
  // directory is removed, and the message includes the tail of etcd's log.
  static Result<std::unique_ptr<EtcdProcess>> Start(EtcdOptions options = {});

  EtcdProcess(const EtcdProcess&) = delete;
  EtcdProcess& operator=(const EtcdProcess&) = delete;

  // Stop(), then removes the temporary directory.
  ~EtcdProcess();

  // "127.0.0.1:<port>", for gRPC.
  const std::string& client_endpoint() const { return client_endpoint_; }
  // "http://127.0.0.1:<port>", for etcdctl's --endpoints.
  std::string client_url() const { return "http://" + client_endpoint_; }
  std::string peer_url() const;
  // A channel to client_endpoint(), created with MakeLoopbackChannel.
  const std::shared_ptr<grpc::Channel>& channel() const { return channel_; }

  pid_t pid() const { return child_.pid(); }
  const std::filesystem::path& dir() const { return dir_.path(); }
  std::string log_path() const { return (dir_.path() / "etcd.log").string(); }
  std::string LogTail(std::size_t max_lines = 40) const;

  // SIGTERM, up to `grace` to exit, then SIGKILL; reaps. Idempotent.
  ExitInfo Stop(std::chrono::milliseconds grace = ChildProcess::kDefaultGrace);

  // For fault injection (SIGSTOP, SIGCONT, SIGKILL).
  Status Signal(int signal) { return child_.signal(signal); }

 private:
  EtcdProcess(TempDir dir, ChildProcess child, std::uint16_t client_port, std::uint16_t peer_port);

  TempDir dir_;  // destroyed after the child is stopped
  ChildProcess child_;
  std::uint16_t client_port_;
  std::uint16_t peer_port_;
  std::string client_endpoint_;
  std::shared_ptr<grpc::Channel> channel_;
};

}  // namespace mishka::test
