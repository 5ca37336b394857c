#include "engine/etcd_rpc.h"

#include <cstdio>
#include <set>
#include <string>
#include <utility>

namespace mishka::engine::detail {
namespace {

// Reconnect backoff: a restarted local member is found again within about a second. (Not
// GRPC_ARG_MIN_RECONNECT_BACKOFF_MS: gRPC takes that as the connect timeout.)
constexpr int kInitialReconnectBackoffMs = 100;
constexpr int kMaxReconnectBackoffMs = 1000;

constexpr std::size_t kMaxPrintableKey = 64;

bool Says(const std::string& message, std::string_view text) {
  return message.find(text) != std::string::npos;
}

}  // namespace

Status ValidateOptions(const ClientOptions& options) {
  if (options.endpoints.empty()) return invalid_argument("etcd client: no endpoint given");
  std::set<std::string> seen;
  for (const std::string& endpoint : options.endpoints) {
    if (endpoint.empty()) return invalid_argument("etcd client: an endpoint is empty");
    if (!seen.insert(endpoint).second) {
      return invalid_argument("etcd client: endpoint " + endpoint + " is given twice");
    }
  }
  if (options.tls) {
    const TlsFiles& tls = *options.tls;
    if (tls.ca_pem.empty() || tls.cert_pem.empty() || tls.key_pem.empty()) {
      return invalid_argument(
          "etcd client: TLS needs the CA, the certificate and the private key (PEM); "
          "one of them is empty");
    }
  }
  if (options.keepalive_time < std::chrono::seconds(1)) {
    return invalid_argument("etcd client: keepalive_time must be at least 1000 ms, not " +
                            std::to_string(options.keepalive_time.count()) + " ms");
  }
  if (options.keepalive_timeout <= std::chrono::milliseconds(0)) {
    return invalid_argument("etcd client: keepalive_timeout must be positive, not " +
                            std::to_string(options.keepalive_timeout.count()) + " ms");
  }
  return Status::Ok();
}

std::unique_ptr<Endpoint> MakeEndpoint(const std::string& address, const ClientOptions& options) {
  grpc::ChannelArguments args;
  // A CI runner's http_proxy must not capture connections to etcd (loopback included).
  args.SetInt(GRPC_ARG_ENABLE_HTTP_PROXY, 0);
  // Every client its own connections: many nodes share one process in tests, and one node's
  // faults must not reach another's channels.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, kInitialReconnectBackoffMs);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, kMaxReconnectBackoffMs);
  // Pings while calls are in flight, also on a quiet watch stream (by default gRPC stops after
  // two pings without data). Not without calls: etcd counts those as abuse and closes the
  // connection.
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, static_cast<int>(options.keepalive_time.count()));
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, static_cast<int>(options.keepalive_timeout.count()));
  args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  // etcd sends ranges of any size; gRPC's default limit on a received message is 4 MiB.
  args.SetInt(GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, -1);
  // No retry filter in the channel: in gRPC 1.51 (Debian 12) it can abort the process on an
  // assertion when a TLS peer restarts (trailing metadata without a status; grpc/grpc#34683,
  // fixed upstream only in 2026). Seen once: mishkad aborted while its seed restarted. Our
  // callers decide about retries themselves (a call that fails unsent is engine_unavailable).
  args.SetInt(GRPC_ARG_ENABLE_RETRIES, 0);

  std::shared_ptr<grpc::ChannelCredentials> credentials;
  if (options.tls) {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = options.tls->ca_pem;
    ssl.pem_cert_chain = options.tls->cert_pem;
    ssl.pem_private_key = options.tls->key_pem;
    credentials = grpc::SslCredentials(ssl);
  } else {
    credentials = grpc::InsecureChannelCredentials();
  }

  auto endpoint = std::make_unique<Endpoint>();
  endpoint->address = address;
  endpoint->channel = grpc::CreateCustomChannel(address, credentials, args);
  endpoint->kv = etcdserverpb::KV::NewStub(endpoint->channel);
  endpoint->lease = etcdserverpb::Lease::NewStub(endpoint->channel);
  endpoint->cluster = etcdserverpb::Cluster::NewStub(endpoint->channel);
  endpoint->maintenance = etcdserverpb::Maintenance::NewStub(endpoint->channel);
  endpoint->auth = etcdserverpb::Auth::NewStub(endpoint->channel);
  return endpoint;
}

std::chrono::system_clock::time_point ToGrpcDeadline(Deadline deadline) {
  const auto left = deadline.when() - Deadline::Clock::now();
  return std::chrono::system_clock::now() +
         std::chrono::duration_cast<std::chrono::system_clock::duration>(left);
}

bool WaitConnected(grpc::Channel& channel, Deadline until) {
  grpc_connectivity_state state = channel.GetState(/*try_to_connect=*/true);
  while (state != GRPC_CHANNEL_READY) {
    if (state == GRPC_CHANNEL_TRANSIENT_FAILURE || state == GRPC_CHANNEL_SHUTDOWN) return false;
    if (!channel.WaitForStateChange(state, ToGrpcDeadline(until))) return false;
    state = channel.GetState(/*try_to_connect=*/true);
  }
  return true;
}

Status CallError(StatusCode code, std::string_view operation, std::string_view endpoint,
                 std::string_view detail) {
  std::string message(operation);
  message += " on ";
  message += endpoint;
  message += ": ";
  message += detail;
  return Status(code, std::move(message));
}

Status MapGrpcError(const grpc::Status& status, std::string_view operation,
                    std::string_view endpoint, bool connected) {
  const std::string& said = status.error_message();
  auto error = [&](StatusCode code, std::string_view detail) {
    return CallError(code, operation, endpoint, detail);
  };
  // etcd's own errors (rpctypes in etcd's source), recognised by their text: the gRPC code
  // alone does not tell them apart (UNAVAILABLE is also "no connection").
  if (Says(said, "etcdserver: no leader") || Says(said, "etcdserver: leader changed") ||
      Says(said, "etcdserver: request timed out")) {
    return error(StatusCode::no_quorum, said);
  }
  if (Says(said, "required revision has been compacted")) {
    return error(StatusCode::compacted, said);
  }
  if (Says(said, "database space exceeded")) return error(StatusCode::space_exceeded, said);
  if (Says(said, "required revision is a future revision")) {
    return error(StatusCode::invalid_argument, said);
  }
  // Auth (rpctypes' ErrGRPC* texts). Without a token while auth is on, etcd 3.4 says "user name
  // is empty"; a token it no longer knows is "invalid auth token".
  if (Says(said, "etcdserver: permission denied") || Says(said, "etcdserver: user name is empty") ||
      Says(said, "authentication failed, invalid user ID or password") ||
      Says(said, "etcdserver: invalid auth token") ||
      Says(said, "etcdserver: revision of auth store is old")) {
    return error(StatusCode::permission_denied, said);
  }
  if (Says(said, "etcdserver: user name already exists") ||
      Says(said, "etcdserver: role name already exists")) {
    return error(StatusCode::already_exists, said);
  }
  if (Says(said, "etcdserver: user name not found") ||
      Says(said, "etcdserver: role name not found")) {
    return error(StatusCode::not_found, said);
  }
  switch (status.error_code()) {
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      if (!connected)
        return error(StatusCode::engine_unavailable, "no connection before the deadline");
      return error(StatusCode::timeout, "the deadline passed");
    case grpc::StatusCode::CANCELLED:
      return error(StatusCode::timeout, "cancelled");
    case grpc::StatusCode::UNAVAILABLE:
      return error(StatusCode::engine_unavailable, said);
    case grpc::StatusCode::INVALID_ARGUMENT:
      return error(StatusCode::invalid_argument, said);
    case grpc::StatusCode::NOT_FOUND:
      return error(StatusCode::not_found, said);
    default:
      return error(
          StatusCode::internal,
          said + " (gRPC code " + std::to_string(static_cast<int>(status.error_code())) + ")");
  }
}

bool TokenRefused(const Status& status) {
  const std::string& said = status.message();
  return status.code() == StatusCode::permission_denied &&
         (Says(said, "etcdserver: invalid auth token") ||
          Says(said, "etcdserver: revision of auth store is old") ||
          Says(said, "etcdserver: user name is empty"));
}

std::string Printable(std::string_view key) {
  std::string out = "\"";
  for (std::size_t i = 0; i < key.size() && i < kMaxPrintableKey; ++i) {
    const auto byte = static_cast<unsigned char>(key[i]);
    if (byte >= 0x20 && byte < 0x7f && byte != '"' && byte != '\\') {
      out += static_cast<char>(byte);
    } else {
      char escaped[5];
      std::snprintf(escaped, sizeof escaped, "\\x%02x", byte);
      out += escaped;
    }
  }
  out += "\"";
  if (key.size() > kMaxPrintableKey) out += "... (" + std::to_string(key.size()) + " bytes)";
  return out;
}

}  // namespace mishka::engine::detail
