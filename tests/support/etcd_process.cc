#include "support/etcd_process.h"

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <sstream>
#include <thread>
#include <utility>

#include "etcd/etcdserver/etcdserverpb/rpc.grpc.pb.h"
#include "support/process_checks.h"

namespace mishka::test {
namespace {

using Clock = std::chrono::steady_clock;

std::string EtcdBinary(const EtcdOptions& options) {
  if (!options.binary.empty()) return options.binary;
  return etcd_binary();
}

std::string Loopback(std::uint16_t port) {
  return "127.0.0.1:" + std::to_string(port);
}

bool LogSaysAddressInUse(const std::string& log_path) {
  std::ifstream in(log_path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str().find("address already in use") != std::string::npos;
}

// Polls Maintenance.Status until etcd answers with a leader, the child exits, or `deadline`.
Status WaitUntilServing(ChildProcess& child, const std::shared_ptr<grpc::Channel>& channel,
                        const EtcdOptions& options) {
  const auto deadline = Clock::now() + options.ready_timeout;
  auto stub = etcdserverpb::Maintenance::NewStub(channel);
  std::string last_error = "no answer yet";
  while (true) {
    if (std::optional<ExitInfo> ended = child.poll()) {
      return Status(StatusCode::engine_unavailable,
                    "etcd exited before serving (" + ended->to_string() + ")");
    }
    grpc::ClientContext context;
    // Wait for the connection inside the call: a call that fails fast does not drive gRPC's
    // polling, and a reconnect would then be noticed only by its 5 s backup poller.
    context.set_wait_for_ready(true);
    const auto probe_deadline = std::min(Clock::now() + options.probe_deadline, deadline);
    context.set_deadline(std::chrono::system_clock::now() + (probe_deadline - Clock::now()));
    etcdserverpb::StatusResponse response;
    const grpc::Status status = stub->Status(&context, etcdserverpb::StatusRequest(), &response);
    if (status.ok() && response.leader() != 0) return Status::Ok();
    last_error =
        status.ok() ? std::string("serving, but no leader yet")
                    : "gRPC " + std::to_string(status.error_code()) + ": " + status.error_message();
    if (Clock::now() + options.poll_interval >= deadline) break;
    std::this_thread::sleep_for(options.poll_interval);
  }
  return Status(StatusCode::timeout, "etcd did not serve within " +
                                         std::to_string(options.ready_timeout.count()) +
                                         " ms (last probe: " + last_error + ")");
}

}  // namespace

std::shared_ptr<grpc::Channel> MakeLoopbackChannel(const std::string& endpoint) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_ENABLE_HTTP_PROXY, 0);
  // Retry a refused connection after 50 ms, backing off to at most 250 ms. (Not
  // GRPC_ARG_MIN_RECONNECT_BACKOFF_MS: gRPC uses that as the connect timeout.)
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 50);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 250);
  return grpc::CreateCustomChannel(endpoint, grpc::InsecureChannelCredentials(), args);
}

Result<std::unique_ptr<EtcdProcess>> EtcdProcess::Start(EtcdOptions options) {
  const std::string binary = EtcdBinary(options);
  Status last = Status(StatusCode::internal, "etcd: start_attempts must be at least 1");
  for (int attempt = 1; attempt <= options.start_attempts; ++attempt) {
    Result<TempDir> dir = TempDir::Create("mishka-etcd-");
    if (!dir.ok()) return dir.status();
    Result<std::vector<std::uint16_t>> ports = pick_free_loopback_ports(2);
    if (!ports.ok()) return ports.status();
    const std::uint16_t client_port = (*ports)[0];
    const std::uint16_t peer_port = (*ports)[1];
    const std::string client_url = "http://" + Loopback(client_port);
    const std::string peer_url = "http://" + Loopback(peer_port);
    const std::string log_path = (dir->path() / "etcd.log").string();

    SpawnOptions spawn;
    spawn.program = binary;
    spawn.log_path = log_path;
    spawn.args = {
        "--name=" + options.name,
        "--data-dir=" + (dir->path() / "data").string(),
        "--listen-client-urls=" + client_url,
        "--advertise-client-urls=" + client_url,
        "--listen-peer-urls=" + peer_url,
        "--initial-advertise-peer-urls=" + peer_url,
        "--initial-cluster=" + options.name + "=" + peer_url,
        "--initial-cluster-state=new",
        "--logger=zap",
        "--log-outputs=stderr",
    };
    spawn.args.insert(spawn.args.end(), options.extra_args.begin(), options.extra_args.end());

    Result<ChildProcess> child = ChildProcess::spawn(spawn);
    if (!child.ok()) return child.status().with_context("etcd");

    std::unique_ptr<EtcdProcess> etcd(
        new EtcdProcess(std::move(dir).value(), std::move(child).value(), client_port, peer_port));
    Status serving = WaitUntilServing(etcd->child_, etcd->channel_, options);
    if (serving.ok()) return etcd;

    etcd->Stop();
    const bool port_taken = LogSaysAddressInUse(log_path);
    last = Status(serving.code(), serving.message() + "; " + binary + " on " + client_url +
                                      ", attempt " + std::to_string(attempt) + ", log " + log_path +
                                      " ends with:\n" + etcd->LogTail());
    if (!port_taken) break;
  }
  return last;
}

EtcdProcess::EtcdProcess(TempDir dir, ChildProcess child, std::uint16_t client_port,
                         std::uint16_t peer_port)
    : dir_(std::move(dir)),
      child_(std::move(child)),
      client_port_(client_port),
      peer_port_(peer_port),
      client_endpoint_(Loopback(client_port)),
      channel_(MakeLoopbackChannel(client_endpoint_)) {}

EtcdProcess::~EtcdProcess() {
  Stop();
}

std::string EtcdProcess::peer_url() const {
  return "http://" + Loopback(peer_port_);
}

std::string EtcdProcess::LogTail(std::size_t max_lines) const {
  return tail_of_file(log_path(), max_lines);
}

ExitInfo EtcdProcess::Stop(std::chrono::milliseconds grace) {
  return child_.stop(grace);
}

}  // namespace mishka::test
