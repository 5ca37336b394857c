// Inside the engine's etcd client: one endpoint (its gRPC channel and stubs), deadlines in
// gRPC's terms, waiting for a connection, and how gRPC's and etcd's errors become Status
// values (the table in docs/engine.md, "The client"). Not part of the engine's interface.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "engine/deadline.h"
#include "engine/etcd_client.h"
#include "etcd/etcdserver/etcdserverpb/rpc.grpc.pb.h"
#include "mishka/status.h"

namespace mishka::engine::detail {

// One etcd client endpoint. Channels and stubs are thread-safe.
struct Endpoint {
  std::string address;  // "host:port"
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<etcdserverpb::KV::Stub> kv;
  std::unique_ptr<etcdserverpb::Lease::Stub> lease;
  std::unique_ptr<etcdserverpb::Cluster::Stub> cluster;
  std::unique_ptr<etcdserverpb::Maintenance::Stub> maintenance;
  std::unique_ptr<etcdserverpb::Auth::Stub> auth;
};

// Checks the options as EtcdClient::create documents.
Status ValidateOptions(const ClientOptions& options);

// A channel of its own (not shared with other clients in the process) to `address`, with the
// options' credentials and keep-alive. Options must have passed ValidateOptions.
std::unique_ptr<Endpoint> MakeEndpoint(const std::string& address, const ClientOptions& options);

// gRPC takes deadlines on the system clock; ours are on the steady clock.
std::chrono::system_clock::time_point ToGrpcDeadline(Deadline deadline);

// Waits until `channel` is connected. false when a connection attempt failed or `until` passed.
bool WaitConnected(grpc::Channel& channel, Deadline until);

// The Status for a failed call. `connected`: whether the channel was connected when the call
// failed (a deadline that passed without a connection is engine_unavailable, not timeout).
Status MapGrpcError(const grpc::Status& status, std::string_view operation,
                    std::string_view endpoint, bool connected);

// "<operation> on <endpoint>: <detail>" with the given code.
Status CallError(StatusCode code, std::string_view operation, std::string_view endpoint,
                 std::string_view detail);

// A key for a message: quoted, non-printable bytes as \xNN, long keys cut short.
std::string Printable(std::string_view key);

// Whether a failed call's status says that etcd refused its auth token (gone, expired, from
// before an auth change) or that it got none while auth is on: a new token may help.
bool TokenRefused(const Status& status);

// Opens a watch on `endpoint` and waits until etcd confirms it is created (or `deadline`).
// `token`: etcd's auth token to send ("": none).
Result<std::unique_ptr<WatchStream>> OpenWatch(const Endpoint& endpoint,
                                               const WatchOptions& options, Deadline deadline,
                                               const std::string& token);

}  // namespace mishka::engine::detail
