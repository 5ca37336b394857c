// Inside the engine's etcd client: etcd's protobuf messages to and from the structs of
// etcd_client.h. Pure functions; no I/O.
#pragma once

#include <string>

#include "engine/etcd_client.h"
#include "etcd/etcdserver/etcdserverpb/rpc.pb.h"

namespace mishka::engine::detail {

Header FromProto(const etcdserverpb::ResponseHeader& header);
KeyValue FromProto(const mvccpb::KeyValue& kv);
RangeResult FromProto(const etcdserverpb::RangeResponse& response);
TxnResult FromProto(const etcdserverpb::TxnResponse& response);
Member FromProto(const etcdserverpb::Member& member);
EndpointStatus FromProto(const etcdserverpb::StatusResponse& response);
Alarm FromProto(const etcdserverpb::AlarmMember& alarm);
WatchEvent FromProto(const mvccpb::Event& event);

etcdserverpb::RangeRequest ToProto(const std::string& key, const RangeOptions& options);
etcdserverpb::TxnRequest ToProto(const TxnRequest& request);
etcdserverpb::WatchCreateRequest ToProto(const WatchOptions& options);
etcdserverpb::AlarmType ToProto(AlarmType type);

}  // namespace mishka::engine::detail
