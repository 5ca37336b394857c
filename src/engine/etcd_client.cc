// EtcdClient over etcd's generated gRPC client: one channel per endpoint, a deadline on every
// call, and failover to the next endpoint when one has no connection.
#include "engine/etcd_client.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "engine/etcd_convert.h"
#include "engine/etcd_rpc.h"

namespace mishka::engine {
namespace {

using detail::CallError;
using detail::Endpoint;
using detail::FromProto;
using detail::MapGrpcError;
using detail::Printable;
using detail::TokenRefused;
using detail::ToProto;

// Whether a failed call may be sent again to the next endpoint.
using Resend = std::function<bool(const Status&)>;

// Reads may be sent again after a broken connection: they change nothing.
bool ResendIfUnavailable(const Status& status) {
  return status.code() == StatusCode::engine_unavailable;
}
// Writes are never sent twice: the first may have been applied (a Txn sent again would fail
// its compares and report a conflict for a write that happened). They still move on from an
// endpoint that has no connection, as nothing was sent to it.
bool NeverResend(const Status&) {
  return false;
}

// What etcd answers, before proposing anything, to a request carrying kRequireLeader when its
// member has no leader (etcd's gRPC interceptor, rpctypes.ErrGRPCNoLeader).
constexpr std::string_view kNoLeaderRefusal = "etcdserver: no leader";
bool RefusedForNoLeader(const Status& status) {
  return status.code() == StatusCode::no_quorum &&
         status.message().find(kNoLeaderRefusal) != std::string::npos;
}
// A write refused for want of a leader was never proposed, so it may go to another member (or
// to the same one once it has a leader again): that is how a node whose member is cut off
// from the majority keeps writing through the members that are not, and how writes ride out
// an election instead of failing.
bool ResendIfNoLeader(const Status& status) {
  return RefusedForNoLeader(status);
}

// gRPC metadata that makes etcd refuse a request at once, unproposed, when the member that
// receives it has no leader, instead of holding it until etcd's own request timeout (about
// 7 s) and answering "request timed out" with the outcome unknown.
void RequireLeader(grpc::ClientContext* context) {
  context->AddMetadata("hasleader", "true");
}
// A call that may be sent again after a broken connection may also be sent again after etcd
// refused its auth token: both times etcd may or may not have seen it, and it does no harm.
bool SafeToResend(const Resend& resend) {
  return resend(Status(StatusCode::engine_unavailable, "connection lost"));
}

authpb::Permission::Type ToProto(Permission permission) {
  switch (permission) {
    case Permission::read:
      return authpb::Permission::READ;
    case Permission::write:
      return authpb::Permission::WRITE;
    case Permission::readwrite:
      return authpb::Permission::READWRITE;
  }
  return authpb::Permission::READ;
}

class GrpcEtcdClient final : public EtcdClient {
 public:
  explicit GrpcEtcdClient(const ClientOptions& options)
      : EtcdClient(options.endpoints), credentials_(options.credentials) {
    for (const std::string& address : options.endpoints) {
      endpoints_.push_back(detail::MakeEndpoint(address, options));
    }
  }

  using EtcdClient::watch;

  Result<RangeResult> range(const std::string& key, const RangeOptions& options,
                            Deadline deadline) override {
    const etcdserverpb::RangeRequest request = ToProto(key, options);
    auto response = call<etcdserverpb::RangeResponse>(
        "range of " + Printable(key),
        [](const Status& status) {
          return ResendIfUnavailable(status) || ResendIfNoLeader(status);
        },
        deadline,
        [&](const Endpoint& ep, grpc::ClientContext* context, etcdserverpb::RangeResponse* out) {
          if (!options.serializable) RequireLeader(context);
          return ep.kv->Range(context, request, out);
        });
    if (!response.ok()) return response.status();
    return FromProto(*response);
  }

  Result<Header> put(const std::string& key, const std::string& value, std::int64_t lease,
                     Deadline deadline) override {
    etcdserverpb::PutRequest request;
    request.set_key(key);
    request.set_value(value);
    request.set_lease(lease);
    auto response = call<etcdserverpb::PutResponse>(
        "put of " + Printable(key), ResendIfNoLeader, deadline,
        [&](const Endpoint& ep, grpc::ClientContext* context, etcdserverpb::PutResponse* out) {
          RequireLeader(context);
          return ep.kv->Put(context, request, out);
        });
    if (!response.ok()) return response.status();
    return FromProto(response->header());
  }

  Result<std::int64_t> erase(const std::string& key, const std::string& range_end,
                             Deadline deadline) override {
    etcdserverpb::DeleteRangeRequest request;
    request.set_key(key);
    request.set_range_end(range_end);
    auto response = call<etcdserverpb::DeleteRangeResponse>(
        "erase of " + Printable(key), ResendIfNoLeader, deadline,
        [&](const Endpoint& ep, grpc::ClientContext* context,
            etcdserverpb::DeleteRangeResponse* out) {
          RequireLeader(context);
          return ep.kv->DeleteRange(context, request, out);
        });
    if (!response.ok()) return response.status();
    return response->deleted();
  }

  Result<TxnResult> txn(const TxnRequest& request, Deadline deadline) override {
    const etcdserverpb::TxnRequest proto = ToProto(request);
    const std::string operation = "txn of " + std::to_string(request.compares.size()) +
                                  " compares, " + std::to_string(request.success.size()) + "/" +
                                  std::to_string(request.failure.size()) + " operations";
    auto response = call<etcdserverpb::TxnResponse>(
        operation, ResendIfNoLeader, deadline,
        [&](const Endpoint& ep, grpc::ClientContext* context, etcdserverpb::TxnResponse* out) {
          RequireLeader(context);
          return ep.kv->Txn(context, proto, out);
        });
    if (!response.ok()) return response.status();
    return FromProto(*response);
  }

  Status compact(std::int64_t revision, bool physical, Deadline deadline) override {
    etcdserverpb::CompactionRequest request;
    request.set_revision(revision);
    request.set_physical(physical);
    return call<etcdserverpb::CompactionResponse>(
               "compact to revision " + std::to_string(revision), NeverResend, deadline,
               [&](const Endpoint& ep, grpc::ClientContext* context,
                   etcdserverpb::CompactionResponse* out) {
                 return ep.kv->Compact(context, request, out);
               })
        .status();
  }

  Result<std::unique_ptr<WatchStream>> watch(const WatchOptions& options,
                                             Deadline deadline) override {
    const std::string operation = "watch of " + Printable(options.key);
    return with_token<std::unique_ptr<WatchStream>>(
        operation, ResendIfUnavailable, deadline, [&](const std::string& token) {
          return over_endpoints<std::unique_ptr<WatchStream>>(
              operation, ResendIfUnavailable, deadline,
              [&](const Endpoint& ep) { return detail::OpenWatch(ep, options, deadline, token); });
        });
  }

  Result<std::int64_t> lease_grant(std::int64_t ttl_seconds, Deadline deadline) override {
    etcdserverpb::LeaseGrantRequest request;
    request.set_ttl(ttl_seconds);
    const std::string operation = "lease_grant of " + std::to_string(ttl_seconds) + " s";
    auto response = call<etcdserverpb::LeaseGrantResponse>(
        operation, NeverResend, deadline,
        [&](const Endpoint& ep, grpc::ClientContext* context,
            etcdserverpb::LeaseGrantResponse* out) {
          grpc::Status status = ep.lease->LeaseGrant(context, request, out);
          if (status.ok() && !out->error().empty()) {
            return grpc::Status(grpc::StatusCode::INTERNAL, out->error());
          }
          return status;
        });
    if (!response.ok()) return response.status();
    return response->id();
  }

  Status lease_revoke(std::int64_t lease, Deadline deadline) override {
    etcdserverpb::LeaseRevokeRequest request;
    request.set_id(lease);
    return call<etcdserverpb::LeaseRevokeResponse>(
               "lease_revoke of lease " + std::to_string(lease), NeverResend, deadline,
               [&](const Endpoint& ep, grpc::ClientContext* context,
                   etcdserverpb::LeaseRevokeResponse* out) {
                 return ep.lease->LeaseRevoke(context, request, out);
               })
        .status();
  }

  Result<std::int64_t> lease_keep_alive(std::int64_t lease, Deadline deadline) override {
    etcdserverpb::LeaseKeepAliveRequest request;
    request.set_id(lease);
    auto response = call<etcdserverpb::LeaseKeepAliveResponse>(
        "lease_keep_alive of lease " + std::to_string(lease), ResendIfUnavailable, deadline,
        [&](const Endpoint& ep, grpc::ClientContext* context,
            etcdserverpb::LeaseKeepAliveResponse* out) {
          // One round trip on etcd's bidirectional stream: ask, half-close, read the answer;
          // etcd then ends the stream.
          auto stream = ep.lease->LeaseKeepAlive(context);
          if (stream->Write(request)) {
            stream->WritesDone();
            if (stream->Read(out)) return stream->Finish();
          }
          grpc::Status status = stream->Finish();
          if (status.ok()) {
            return grpc::Status(grpc::StatusCode::INTERNAL, "etcd ended the stream unanswered");
          }
          return status;
        });
    if (!response.ok()) return response.status();
    return response->ttl() > 0 ? response->ttl() : 0;
  }

  Result<LeaseTtl> lease_time_to_live(std::int64_t lease, Deadline deadline) override {
    etcdserverpb::LeaseTimeToLiveRequest request;
    request.set_id(lease);
    auto response = call<etcdserverpb::LeaseTimeToLiveResponse>(
        "lease_time_to_live of lease " + std::to_string(lease), ResendIfUnavailable, deadline,
        [&](const Endpoint& ep, grpc::ClientContext* context,
            etcdserverpb::LeaseTimeToLiveResponse* out) {
          return ep.lease->LeaseTimeToLive(context, request, out);
        });
    if (!response.ok()) return response.status();
    LeaseTtl out;
    out.header = FromProto(response->header());
    // etcd 3.4 answers an unknown lease with TTL -1 (and no error).
    out.ttl = response->ttl() >= 0 ? response->ttl() : -1;
    out.granted_ttl = response->grantedttl();
    return out;
  }

  Result<std::vector<Member>> member_list(Deadline deadline) override {
    auto response = call<etcdserverpb::MemberListResponse>(
        "member_list", ResendIfUnavailable, deadline,
        [&](const Endpoint& ep, grpc::ClientContext* context,
            etcdserverpb::MemberListResponse* out) {
          return ep.cluster->MemberList(context, etcdserverpb::MemberListRequest(), out);
        });
    if (!response.ok()) return response.status();
    std::vector<Member> members;
    for (const etcdserverpb::Member& member : response->members()) {
      members.push_back(FromProto(member));
    }
    return members;
  }

  Result<MemberAddResult> member_add(const std::vector<std::string>& peer_urls, bool as_learner,
                                     Deadline deadline) override {
    etcdserverpb::MemberAddRequest request;
    for (const std::string& url : peer_urls) request.add_peerurls(url);
    request.set_islearner(as_learner);
    std::string operation = as_learner ? "member_add (learner)" : "member_add";
    for (const std::string& url : peer_urls) operation += " " + url;
    auto response =
        call<etcdserverpb::MemberAddResponse>(operation, NeverResend, deadline,
                                              [&](const Endpoint& ep, grpc::ClientContext* context,
                                                  etcdserverpb::MemberAddResponse* out) {
                                                return ep.cluster->MemberAdd(context, request, out);
                                              });
    if (!response.ok()) return response.status();
    MemberAddResult result;
    result.header = FromProto(response->header());
    result.added = FromProto(response->member());
    for (const etcdserverpb::Member& member : response->members()) {
      result.members.push_back(FromProto(member));
    }
    return result;
  }

  Status member_remove(std::uint64_t id, Deadline deadline) override {
    etcdserverpb::MemberRemoveRequest request;
    request.set_id(id);
    return call<etcdserverpb::MemberRemoveResponse>(
               "member_remove of " + MemberName(id), NeverResend, deadline,
               [&](const Endpoint& ep, grpc::ClientContext* context,
                   etcdserverpb::MemberRemoveResponse* out) {
                 return ep.cluster->MemberRemove(context, request, out);
               })
        .status();
  }

  Status member_promote(std::uint64_t id, Deadline deadline) override {
    etcdserverpb::MemberPromoteRequest request;
    request.set_id(id);
    return call<etcdserverpb::MemberPromoteResponse>(
               "member_promote of " + MemberName(id), NeverResend, deadline,
               [&](const Endpoint& ep, grpc::ClientContext* context,
                   etcdserverpb::MemberPromoteResponse* out) {
                 return ep.cluster->MemberPromote(context, request, out);
               })
        .status();
  }

  Result<EndpointStatus> status(const std::string& endpoint, Deadline deadline) override {
    Result<const Endpoint*> ep = find_endpoint(endpoint, "status");
    if (!ep.ok()) return ep.status();
    auto response = with_token<etcdserverpb::StatusResponse>(
        "status", ResendIfUnavailable, deadline, [&](const std::string& token) {
          return attempt<etcdserverpb::StatusResponse>(
              **ep, "status", deadline, token,
              [&](const Endpoint& on, grpc::ClientContext* context,
                  etcdserverpb::StatusResponse* out) {
                return on.maintenance->Status(context, etcdserverpb::StatusRequest(), out);
              });
        });
    if (!response.ok()) return response.status();
    return FromProto(*response);
  }

  Status defragment(const std::string& endpoint, Deadline deadline) override {
    Result<const Endpoint*> ep = find_endpoint(endpoint, "defragment");
    if (!ep.ok()) return ep.status();
    // Defragmenting twice does no harm.
    return with_token<etcdserverpb::DefragmentResponse>(
               "defragment", ResendIfUnavailable, deadline,
               [&](const std::string& token) {
                 return attempt<etcdserverpb::DefragmentResponse>(
                     **ep, "defragment", deadline, token,
                     [&](const Endpoint& on, grpc::ClientContext* context,
                         etcdserverpb::DefragmentResponse* out) {
                       return on.maintenance->Defragment(context, etcdserverpb::DefragmentRequest(),
                                                         out);
                     });
               })
        .status();
  }

  Result<std::vector<Alarm>> alarms(Deadline deadline) override {
    etcdserverpb::AlarmRequest request;
    request.set_action(etcdserverpb::AlarmRequest::GET);
    auto response = call<etcdserverpb::AlarmResponse>(
        "alarms", ResendIfUnavailable, deadline,
        [&](const Endpoint& ep, grpc::ClientContext* context, etcdserverpb::AlarmResponse* out) {
          return ep.maintenance->Alarm(context, request, out);
        });
    if (!response.ok()) return response.status();
    std::vector<Alarm> alarms;
    for (const etcdserverpb::AlarmMember& alarm : response->alarms()) {
      alarms.push_back(FromProto(alarm));
    }
    return alarms;
  }

  Status disarm_alarm(const Alarm& alarm, Deadline deadline) override {
    etcdserverpb::AlarmRequest request;
    request.set_action(etcdserverpb::AlarmRequest::DEACTIVATE);
    request.set_memberid(alarm.member_id);
    request.set_alarm(ToProto(alarm.type));
    // Disarming twice does no harm: it may be sent again.
    return call<etcdserverpb::AlarmResponse>("disarm_alarm of " + MemberName(alarm.member_id),
                                             ResendIfUnavailable, deadline,
                                             [&](const Endpoint& ep, grpc::ClientContext* context,
                                                 etcdserverpb::AlarmResponse* out) {
                                               return ep.maintenance->Alarm(context, request, out);
                                             })
        .status();
  }

  Status move_leader(std::uint64_t target, Deadline deadline) override {
    etcdserverpb::MoveLeaderRequest request;
    request.set_targetid(target);
    // Only the leader accepts it ("etcdserver: not leader" elsewhere): try the next endpoint.
    auto resend = [](const Status& status) {
      return status.code() == StatusCode::engine_unavailable ||
             status.message().find("etcdserver: not leader") != std::string::npos;
    };
    return call<etcdserverpb::MoveLeaderResponse>(
               "move_leader to " + MemberName(target), resend, deadline,
               [&](const Endpoint& ep, grpc::ClientContext* context,
                   etcdserverpb::MoveLeaderResponse* out) {
                 return ep.maintenance->MoveLeader(context, request, out);
               })
        .status();
  }

  Status auth_enable(Deadline deadline) override {
    return call<etcdserverpb::AuthEnableResponse>(
               "auth_enable", NeverResend, deadline,
               [&](const Endpoint& ep, grpc::ClientContext* context,
                   etcdserverpb::AuthEnableResponse* out) {
                 return ep.auth->AuthEnable(context, etcdserverpb::AuthEnableRequest(), out);
               })
        .status();
  }

  Status auth_disable(Deadline deadline) override {
    return call<etcdserverpb::AuthDisableResponse>(
               "auth_disable", NeverResend, deadline,
               [&](const Endpoint& ep, grpc::ClientContext* context,
                   etcdserverpb::AuthDisableResponse* out) {
                 return ep.auth->AuthDisable(context, etcdserverpb::AuthDisableRequest(), out);
               })
        .status();
  }

  Status user_add(const std::string& name, const std::string& password,
                  Deadline deadline) override {
    etcdserverpb::AuthUserAddRequest request;
    request.set_name(name);
    request.set_password(password);
    return call<etcdserverpb::AuthUserAddResponse>(
               "user_add of " + Printable(name), NeverResend, deadline,
               [&](const Endpoint& ep, grpc::ClientContext* context,
                   etcdserverpb::AuthUserAddResponse* out) {
                 return ep.auth->UserAdd(context, request, out);
               })
        .status();
  }

  Status user_delete(const std::string& name, Deadline deadline) override {
    etcdserverpb::AuthUserDeleteRequest request;
    request.set_name(name);
    return call<etcdserverpb::AuthUserDeleteResponse>(
               "user_delete of " + Printable(name), NeverResend, deadline,
               [&](const Endpoint& ep, grpc::ClientContext* context,
                   etcdserverpb::AuthUserDeleteResponse* out) {
                 return ep.auth->UserDelete(context, request, out);
               })
        .status();
  }

  Result<std::vector<std::string>> user_list(Deadline deadline) override {
    auto response = call<etcdserverpb::AuthUserListResponse>(
        "user_list", ResendIfUnavailable, deadline,
        [&](const Endpoint& ep, grpc::ClientContext* context,
            etcdserverpb::AuthUserListResponse* out) {
          return ep.auth->UserList(context, etcdserverpb::AuthUserListRequest(), out);
        });
    if (!response.ok()) return response.status();
    return std::vector<std::string>(response->users().begin(), response->users().end());
  }

  Status user_grant_role(const std::string& user, const std::string& role,
                         Deadline deadline) override {
    etcdserverpb::AuthUserGrantRoleRequest request;
    request.set_user(user);
    request.set_role(role);
    return call<etcdserverpb::AuthUserGrantRoleResponse>(
               "user_grant_role of " + Printable(role) + " to " + Printable(user), NeverResend,
               deadline,
               [&](const Endpoint& ep, grpc::ClientContext* context,
                   etcdserverpb::AuthUserGrantRoleResponse* out) {
                 return ep.auth->UserGrantRole(context, request, out);
               })
        .status();
  }

  Status role_add(const std::string& role, Deadline deadline) override {
    etcdserverpb::AuthRoleAddRequest request;
    request.set_name(role);
    return call<etcdserverpb::AuthRoleAddResponse>(
               "role_add of " + Printable(role), NeverResend, deadline,
               [&](const Endpoint& ep, grpc::ClientContext* context,
                   etcdserverpb::AuthRoleAddResponse* out) {
                 return ep.auth->RoleAdd(context, request, out);
               })
        .status();
  }

  Status role_delete(const std::string& role, Deadline deadline) override {
    etcdserverpb::AuthRoleDeleteRequest request;
    request.set_role(role);
    return call<etcdserverpb::AuthRoleDeleteResponse>(
               "role_delete of " + Printable(role), NeverResend, deadline,
               [&](const Endpoint& ep, grpc::ClientContext* context,
                   etcdserverpb::AuthRoleDeleteResponse* out) {
                 return ep.auth->RoleDelete(context, request, out);
               })
        .status();
  }

  Status role_grant_permission(const std::string& role, const std::string& key,
                               const std::string& range_end, Permission permission,
                               Deadline deadline) override {
    etcdserverpb::AuthRoleGrantPermissionRequest request;
    request.set_name(role);
    authpb::Permission* perm = request.mutable_perm();
    perm->set_permtype(ToProto(permission));
    perm->set_key(key);
    perm->set_range_end(range_end);
    return call<etcdserverpb::AuthRoleGrantPermissionResponse>(
               "role_grant_permission of " + Printable(key) + " to " + Printable(role), NeverResend,
               deadline,
               [&](const Endpoint& ep, grpc::ClientContext* context,
                   etcdserverpb::AuthRoleGrantPermissionResponse* out) {
                 return ep.auth->RoleGrantPermission(context, request, out);
               })
        .status();
  }

  Result<std::string> authenticate(const std::string& user, const std::string& password,
                                   Deadline deadline) override {
    etcdserverpb::AuthenticateRequest request;
    request.set_name(user);
    request.set_password(password);
    // No token of ours. A second token does no harm: it may be sent again.
    const std::string operation = "authenticate as " + Printable(user);
    auto response = over_endpoints<etcdserverpb::AuthenticateResponse>(
        operation, ResendIfUnavailable, deadline, [&](const Endpoint& ep) {
          return attempt<etcdserverpb::AuthenticateResponse>(
              ep, operation, deadline, /*token=*/"",
              [&](const Endpoint& on, grpc::ClientContext* context,
                  etcdserverpb::AuthenticateResponse* out) {
                return on.auth->Authenticate(context, request, out);
              });
        });
    if (!response.ok()) return response.status();
    return response->token();
  }

 private:
  // The token to send ("" when etcd's auth turned out to be off), authenticating first if
  // there is none yet.
  Result<std::string> current_token(Deadline deadline) {
    std::lock_guard<std::mutex> lock(token_mutex_);
    if (token_) return *token_;
    return authenticate_locked(deadline);
  }

  // A new token in place of `refused`, unless another call has replaced it already.
  Result<std::string> renew_token(const std::string& refused, Deadline deadline) {
    std::lock_guard<std::mutex> lock(token_mutex_);
    if (token_ && *token_ != refused) return *token_;
    token_.reset();
    return authenticate_locked(deadline);
  }

  Result<std::string> authenticate_locked(Deadline deadline) {
    Result<std::string> token = authenticate(credentials_->user, credentials_->password, deadline);
    if (token.ok()) {
      token_ = *token;
    } else if (token.status().message().find("etcdserver: authentication is not enabled") !=
               std::string::npos) {
      token_ = std::string();  // calls go without a token until etcd asks for one
    } else {
      return token.status();
    }
    return *token_;
  }

  // Runs `run(token)` with the client's token (no credentials: ""). When etcd refuses the
  // token, authenticates again and, if the call may be sent again, runs it once more.
  template <typename T, typename Run>
  Result<T> with_token(const std::string& operation, const Resend& resend, Deadline deadline,
                       Run&& run) {
    if (!credentials_) return run(std::string());
    Result<std::string> token = current_token(deadline);
    if (!token.ok()) return token.status().with_context(operation);
    Result<T> result = run(*token);
    if (result.ok() || !TokenRefused(result.status())) return result;
    Result<std::string> renewed = renew_token(*token, deadline);
    if (!renewed.ok()) return renewed.status().with_context(operation);
    if (!SafeToResend(resend) || deadline.expired()) return result;
    return run(*renewed);
  }

  static std::string MemberName(std::uint64_t id) {
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(id));
    return std::string("member ") + hex;
  }

  Result<const Endpoint*> find_endpoint(const std::string& address,
                                        std::string_view operation) const {
    if (address.empty()) return endpoints_.front().get();
    for (const auto& ep : endpoints_) {
      if (ep->address == address) return ep.get();
    }
    return invalid_argument(std::string(operation) + ": " + address +
                            " is not one of the client's endpoints");
  }

  // One call to one endpoint: waits within `deadline` for a connection, then for the answer.
  template <typename Response, typename Rpc>
  static Result<Response> attempt(const Endpoint& ep, std::string_view operation, Deadline deadline,
                                  const std::string& token, Rpc&& rpc) {
    grpc::ClientContext context;
    context.set_wait_for_ready(true);
    context.set_deadline(detail::ToGrpcDeadline(deadline));
    // etcd's auth token (rpctypes.TokenFieldNameGRPC).
    if (!token.empty()) context.AddMetadata("token", token);
    Response response;
    const grpc::Status status = rpc(ep, &context, &response);
    if (status.ok()) return response;
    const bool connected = ep.channel->GetState(/*try_to_connect=*/false) == GRPC_CHANNEL_READY;
    return MapGrpcError(status, operation, ep.address, connected);
  }

  template <typename Response, typename Rpc>
  Result<Response> call(const std::string& operation, const Resend& resend, Deadline deadline,
                        Rpc&& rpc) {
    return with_token<Response>(operation, resend, deadline, [&](const std::string& token) {
      return over_endpoints<Response>(operation, resend, deadline, [&](const Endpoint& ep) {
        return attempt<Response>(ep, operation, deadline, token, rpc);
      });
    });
  }

  // Runs `try_on(endpoint)` on the preferred endpoint, then, while the failure allows a resend
  // and time is left, on the next ones, round after round. While other endpoints remain untried,
  // an endpoint that does not connect within its share of the time left is passed over unsent
  // to; the last untried one gets all the time left.
  template <typename T, typename TryOn>
  Result<T> over_endpoints(const std::string& operation, const Resend& resend, Deadline deadline,
                           TryOn&& try_on) {
    const std::size_t count = endpoints_.size();
    const std::size_t first = preferred_.load(std::memory_order_relaxed);
    Status last_error;
    std::optional<Status> no_leader;
    for (std::size_t tries = 0;; ++tries) {
      const std::size_t index = (first + tries) % count;
      const Endpoint& ep = *endpoints_[index];
      if (tries > 0 && index == first) {
        // Every endpoint failed once: pause before the next round rather than spin.
        std::this_thread::sleep_for(std::min(kRoundPause, deadline.remaining()));
      }
      if (count > 1 && tries + 1 != count) {
        const std::size_t sharers = tries < count ? count - tries : count;
        if (!detail::WaitConnected(*ep.channel, deadline.capped(deadline.remaining() / sharers))) {
          last_error =
              CallError(StatusCode::engine_unavailable, operation, ep.address, "no connection");
          if (deadline.expired()) break;
          continue;
        }
      }
      Result<T> result = try_on(ep);
      if (result.ok()) {
        preferred_.store(index, std::memory_order_relaxed);
        return result;
      }
      last_error = result.status();
      if (RefusedForNoLeader(last_error)) no_leader = last_error;
      if (!resend(last_error) || deadline.expired()) break;
    }
    // A member that answered "no leader" says more about the cluster than another member that
    // could not be reached in the time left: the caller learns that there is no quorum.
    if (no_leader && !RefusedForNoLeader(last_error)) {
      return Status(StatusCode::no_quorum,
                    no_leader->message() + "; then " + last_error.to_string());
    }
    return last_error;
  }

  static constexpr std::chrono::milliseconds kRoundPause{50};

  std::vector<std::unique_ptr<Endpoint>> endpoints_;
  // The endpoint that answered last: where the next call starts.
  std::atomic<std::size_t> preferred_{0};

  const std::optional<Credentials> credentials_;
  // Held while authenticating, so that concurrent calls wait for one token.
  std::mutex token_mutex_;
  // The token to send; "" when etcd's auth was off at the last try; unset before the first.
  std::optional<std::string> token_;
};

}  // namespace

std::string prefix_range_end(const std::string& prefix) {
  // etcd's rule: increment the last byte that is not 0xff and drop what follows it.
  std::string end = prefix;
  while (!end.empty()) {
    auto last = static_cast<unsigned char>(end.back());
    if (last < 0xff) {
      end.back() = static_cast<char>(last + 1);
      return end;
    }
    end.pop_back();
  }
  // Empty, or only 0xff bytes: no key is greater with this prefix; "\0" means "to the end".
  return std::string(1, '\0');
}

Result<std::unique_ptr<EtcdClient>> EtcdClient::create(const ClientOptions& options) {
  MISHKA_RETURN_IF_ERROR(detail::ValidateOptions(options));
  return std::unique_ptr<EtcdClient>(new GrpcEtcdClient(options));
}

}  // namespace mishka::engine
