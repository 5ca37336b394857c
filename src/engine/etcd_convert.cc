#include "engine/etcd_convert.h"

namespace mishka::engine::detail {
namespace {

etcdserverpb::Compare::CompareTarget ToProto(Compare::Target target) {
  switch (target) {
    case Compare::Target::version:
      return etcdserverpb::Compare::VERSION;
    case Compare::Target::create_revision:
      return etcdserverpb::Compare::CREATE;
    case Compare::Target::mod_revision:
      return etcdserverpb::Compare::MOD;
    case Compare::Target::value:
      return etcdserverpb::Compare::VALUE;
  }
  return etcdserverpb::Compare::MOD;
}

etcdserverpb::Compare::CompareResult ToProto(Compare::Result result) {
  switch (result) {
    case Compare::Result::equal:
      return etcdserverpb::Compare::EQUAL;
    case Compare::Result::greater:
      return etcdserverpb::Compare::GREATER;
    case Compare::Result::less:
      return etcdserverpb::Compare::LESS;
    case Compare::Result::not_equal:
      return etcdserverpb::Compare::NOT_EQUAL;
  }
  return etcdserverpb::Compare::EQUAL;
}

void ToProto(const Compare& compare, etcdserverpb::Compare* out) {
  out->set_key(compare.key);
  if (!compare.range_end.empty()) out->set_range_end(compare.range_end);
  out->set_target(ToProto(compare.target));
  out->set_result(ToProto(compare.result));
  // The oneof member set must match the target, or etcd compares against its default.
  switch (compare.target) {
    case Compare::Target::version:
      out->set_version(compare.number);
      break;
    case Compare::Target::create_revision:
      out->set_create_revision(compare.number);
      break;
    case Compare::Target::mod_revision:
      out->set_mod_revision(compare.number);
      break;
    case Compare::Target::value:
      out->set_value(compare.value);
      break;
  }
}

void ToProto(const TxnOp& op, etcdserverpb::RequestOp* out) {
  switch (op.kind) {
    case TxnOp::Kind::put: {
      etcdserverpb::PutRequest* put = out->mutable_request_put();
      put->set_key(op.key);
      put->set_value(op.value);
      put->set_lease(op.lease);
      break;
    }
    case TxnOp::Kind::erase: {
      etcdserverpb::DeleteRangeRequest* erase = out->mutable_request_delete_range();
      erase->set_key(op.key);
      erase->set_range_end(op.range_end);
      break;
    }
    case TxnOp::Kind::range: {
      etcdserverpb::RangeRequest* range = out->mutable_request_range();
      range->set_key(op.key);
      range->set_range_end(op.range_end);
      break;
    }
  }
}

AlarmType FromProto(etcdserverpb::AlarmType type) {
  switch (type) {
    case etcdserverpb::NOSPACE:
      return AlarmType::nospace;
    case etcdserverpb::CORRUPT:
      return AlarmType::corrupt;
    default:
      return AlarmType::none;
  }
}

}  // namespace

Header FromProto(const etcdserverpb::ResponseHeader& header) {
  Header out;
  out.cluster_id = header.cluster_id();
  out.member_id = header.member_id();
  out.revision = header.revision();
  out.raft_term = header.raft_term();
  return out;
}

KeyValue FromProto(const mvccpb::KeyValue& kv) {
  KeyValue out;
  out.key = kv.key();
  out.value = kv.value();
  out.create_revision = kv.create_revision();
  out.mod_revision = kv.mod_revision();
  out.version = kv.version();
  out.lease = kv.lease();
  return out;
}

RangeResult FromProto(const etcdserverpb::RangeResponse& response) {
  RangeResult out;
  out.header = FromProto(response.header());
  out.kvs.reserve(static_cast<std::size_t>(response.kvs_size()));
  for (const mvccpb::KeyValue& kv : response.kvs()) out.kvs.push_back(FromProto(kv));
  out.more = response.more();
  out.count = response.count();
  return out;
}

TxnResult FromProto(const etcdserverpb::TxnResponse& response) {
  TxnResult out;
  out.header = FromProto(response.header());
  out.succeeded = response.succeeded();
  out.responses.reserve(static_cast<std::size_t>(response.responses_size()));
  for (const etcdserverpb::ResponseOp& op : response.responses()) {
    if (op.has_response_range()) {
      out.responses.emplace_back(FromProto(op.response_range()));
    } else {
      out.responses.emplace_back(std::nullopt);
    }
  }
  return out;
}

Member FromProto(const etcdserverpb::Member& member) {
  Member out;
  out.id = member.id();
  out.name = member.name();
  out.peer_urls.assign(member.peerurls().begin(), member.peerurls().end());
  out.client_urls.assign(member.clienturls().begin(), member.clienturls().end());
  out.is_learner = member.islearner();
  return out;
}

EndpointStatus FromProto(const etcdserverpb::StatusResponse& response) {
  EndpointStatus out;
  out.header = FromProto(response.header());
  out.version = response.version();
  out.db_size = response.dbsize();
  out.db_size_in_use = response.dbsizeinuse();
  out.leader = response.leader();
  out.raft_index = response.raftindex();
  out.raft_term = response.raftterm();
  out.errors.assign(response.errors().begin(), response.errors().end());
  out.is_learner = response.islearner();
  return out;
}

Alarm FromProto(const etcdserverpb::AlarmMember& alarm) {
  Alarm out;
  out.member_id = alarm.memberid();
  out.type = FromProto(alarm.alarm());
  return out;
}

WatchEvent FromProto(const mvccpb::Event& event) {
  WatchEvent out;
  out.type =
      event.type() == mvccpb::Event::DELETE ? WatchEvent::Type::erase : WatchEvent::Type::put;
  out.kv = FromProto(event.kv());
  if (event.has_prev_kv()) out.prev_kv = FromProto(event.prev_kv());
  return out;
}

etcdserverpb::RangeRequest ToProto(const std::string& key, const RangeOptions& options) {
  etcdserverpb::RangeRequest request;
  request.set_key(key);
  request.set_range_end(options.range_end);
  request.set_revision(options.revision);
  request.set_limit(options.limit);
  request.set_serializable(options.serializable);
  request.set_keys_only(options.keys_only);
  request.set_count_only(options.count_only);
  return request;
}

etcdserverpb::TxnRequest ToProto(const TxnRequest& request) {
  etcdserverpb::TxnRequest out;
  for (const Compare& compare : request.compares) ToProto(compare, out.add_compare());
  for (const TxnOp& op : request.success) ToProto(op, out.add_success());
  for (const TxnOp& op : request.failure) ToProto(op, out.add_failure());
  return out;
}

etcdserverpb::WatchCreateRequest ToProto(const WatchOptions& options) {
  etcdserverpb::WatchCreateRequest out;
  out.set_key(options.key);
  out.set_range_end(options.range_end);
  out.set_start_revision(options.start_revision);
  out.set_progress_notify(options.progress_notify);
  out.set_prev_kv(options.prev_kv);
  return out;
}

etcdserverpb::AlarmType ToProto(AlarmType type) {
  switch (type) {
    case AlarmType::nospace:
      return etcdserverpb::NOSPACE;
    case AlarmType::corrupt:
      return etcdserverpb::CORRUPT;
    case AlarmType::none:
      return etcdserverpb::NONE;
  }
  return etcdserverpb::NONE;
}

}  // namespace mishka::engine::detail
