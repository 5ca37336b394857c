#include "store/cluster_meta.h"

#include <chrono>

#include "common/codec.h"

namespace mishka::store {

namespace {

const std::string kKnown = "; this build knows layout " + std::to_string(kKeyspaceLayout);

// ok when `value` (the key's bytes) is a layout record of layout 1.
Status check_record(const std::string& key, const std::string& value) {
  auto decoded = decode_value(value);
  if (!decoded.ok()) {
    return replica::corrupt_key(
        key, "undecodable layout record (" + decoded.status().message() + ")" + kKnown);
  }
  const Map* map = decoded->get_map();
  const Value* layout = map != nullptr ? map->find(Value("layout")) : nullptr;
  if (layout == nullptr || layout->get_int() == nullptr) {
    return replica::corrupt_key(key, "not a layout record (a map with an integer 'layout'): " +
                                         decoded->debug_string() + kKnown);
  }
  if (*layout->get_int() != kKeyspaceLayout) {
    return Status(StatusCode::unsupported,
                  "etcd key '" + key + "' says the cluster's data is in keyspace layout " +
                      std::to_string(*layout->get_int()) + kKnown + " only; not starting");
  }
  return Status::Ok();
}

}  // namespace

Status check_keyspace_layout(engine::EtcdClient& client, const replica::Keyspace& keyspace,
                             const std::string& node_name, engine::Deadline deadline,
                             const LogSink& log) {
  const std::string key = keyspace.meta_key();
  auto read = client.range(key, {}, deadline);
  if (!read.ok()) return read.status().with_context("reading " + key);
  if (!read->kvs.empty()) return check_record(key, read->kvs.front().value);

  const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  const Value record(Map{{Value("layout"), Value(kKeyspaceLayout)},
                         {Value("cluster"), Value(node_name)},
                         {Value("created_ms"), Value(static_cast<std::int64_t>(now))}});
  engine::TxnRequest txn;
  engine::Compare absent;
  absent.key = key;
  absent.target = engine::Compare::Target::create_revision;
  absent.result = engine::Compare::Result::equal;
  absent.number = 0;
  txn.compares.push_back(absent);
  engine::TxnOp put;
  put.kind = engine::TxnOp::Kind::put;
  put.key = key;
  put.value = encode_value(record);
  txn.success.push_back(put);
  engine::TxnOp get;
  get.kind = engine::TxnOp::Kind::range;
  get.key = key;
  txn.failure.push_back(get);
  auto created = client.txn(txn, deadline);
  if (!created.ok()) return created.status().with_context("creating " + key);
  if (created->succeeded) {
    log_to(log, LogLevel::info,
           "wrote " + key + ": keyspace layout " + std::to_string(kKeyspaceLayout));
    return Status::Ok();
  }
  // Another node created it between the read and the Txn: check theirs.
  if (created->responses.empty() || !created->responses.front() ||
      created->responses.front()->kvs.empty()) {
    return Status(StatusCode::conflict, key + " changed while it was being created");
  }
  return check_record(key, created->responses.front()->kvs.front().value);
}

}  // namespace mishka::store
