#include "repo/repo_values.h"

#include <algorithm>
#include <map>
#include <utility>

#include "common/codec.h"
#include "engine/etcd_client.h"
#include "engine/local_engine.h"

namespace mishka::repo {

namespace {

Value text(const std::string& s) {
  return Value(s);
}

}  // namespace

Value message(const std::string& status, Value data) {
  return Value(Map{{text("status"), text(status)},
                   {text("channel"), text(kRepoChannel)},
                   {text("data"), std::move(data)}});
}

Value synchronized_data(const std::string& node, const std::vector<std::string>& tables,
                        const std::vector<TableSchema>& schemas) {
  List local;
  for (const std::string& table : tables) local.push_back(text(table));
  List specs;
  for (const TableSchema& schema : schemas) specs.push_back(schema_value(schema));
  return Value(Map{{text("identifier"), text(kRepoIdentifier)},
                   {text("local_tables"), Value(std::move(local))},
                   {text("schemas"), Value(std::move(specs))},
                   {text("node"), text(node)}});
}

Value cluster_changed_data(const std::string& node, const std::string& peer) {
  return Value(Map{{text("node"), text(node)}, {text("peer"), text(peer)}});
}

Value schema_value(const TableSchema& schema) {
  return Value(Map{{text("name"), text(schema.name)},
                   {text("storage_type"), text(std::string(storage_type_name(schema.storage)))},
                   {text("local_content"), Value(schema.local_content)}});
}

Value action_value(const NodeUpResult& result) {
  if (result.action != "error") return text(result.action);
  return Value(List{text("error"), text(result.reason)});
}

ClusterView read_cluster_view(store::LocalNode& node, std::chrono::milliseconds timeout) {
  ClusterView view;
  engine::EtcdClient& client = node.engine().client();
  const engine::Deadline deadline = engine::Deadline::after(timeout);
  std::map<std::string, MemberInfo> members;
  std::map<std::uint64_t, std::string> names;

  Result<std::vector<engine::Member>> listed = client.member_list(deadline);
  if (listed.ok()) {
    for (const engine::Member& m : *listed) {
      if (m.name.empty()) continue;  // added, not started yet
      names[m.id] = m.name;
      members[m.name] = MemberInfo{.node = m.name, .role = m.is_learner ? "learner" : "voter"};
    }
  }
  const std::string prefix = node.engine().config().cluster_prefix + "nodes/";
  engine::RangeOptions range;
  range.range_end = engine::prefix_range_end(prefix);
  range.serializable = true;
  Result<engine::RangeResult> present = client.range(prefix, range, deadline);
  if (present.ok()) {
    for (const engine::KeyValue& kv : present->kvs) {
      const std::string name = kv.key.substr(prefix.size());
      MemberInfo& info = members[name];
      info.node = name;
      info.up = true;
      if (info.role.empty()) {
        Result<Value> value = decode_value(kv.value);
        const Map* map = value.ok() ? value->get_map() : nullptr;
        const Value* role = map != nullptr ? map->find(text("role")) : nullptr;
        const std::string* role_text = role != nullptr ? role->get_string() : nullptr;
        info.role = role_text != nullptr ? *role_text : "replica";
      }
    }
  }
  // This node is up: it is asking.
  if (auto self = members.find(node.node_name()); self != members.end()) self->second.up = true;
  for (auto& [name, info] : members) view.members.push_back(std::move(info));

  MemberHealth health = read_member_health(node, timeout, listed.ok() ? &*listed : nullptr);
  view.leader = std::move(health.leader);
  return view;
}

MemberHealth read_member_health(store::LocalNode& node, std::chrono::milliseconds timeout,
                                const std::vector<engine::Member>* members) {
  MemberHealth health;
  engine::EtcdClient& client = node.engine().client();
  const engine::Deadline deadline = engine::Deadline::after(timeout);
  const engine::EtcdMember* member = node.engine().member();
  // A replica node has no member of its own: ask the cluster through its client.
  Result<engine::EndpointStatus> status =
      client.status(member != nullptr ? member->client_endpoint() : std::string(), deadline);
  if (!status.ok()) return health;
  health.healthy = status->leader != 0 && status->errors.empty();
  health.replica_lag =
      std::max<std::int64_t>(0, status->header.revision - node.replica().applied_revision());
  if (status->leader == 0) return health;
  Result<std::vector<engine::Member>> listed = members != nullptr
                                                   ? Result<std::vector<engine::Member>>(*members)
                                                   : client.member_list(deadline);
  if (listed.ok()) {
    for (const engine::Member& m : *listed) {
      if (m.id == status->leader) health.leader = m.name;
    }
  }
  return health;
}

}  // namespace mishka::repo
