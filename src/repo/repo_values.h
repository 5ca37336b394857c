// The repo's messages and cluster queries (CONTRACT.md sections 5, 6 and 8): the payloads of
// its pub/sub messages, the `action` value of nodeup events, and what state() and the health
// check ask etcd about the cluster.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "engine/etcd_client.h"
#include "mishka/repo.h"
#include "mishka/value.h"
#include "store/local_node.h"

namespace mishka::repo {

// {status, channel: "mnesia", data}.
Value message(const std::string& status, Value data);
// {identifier, local_tables, schemas, node}.
Value synchronized_data(const std::string& node, const std::vector<std::string>& tables,
                        const std::vector<TableSchema>& schemas);
// {node, peer}.
Value cluster_changed_data(const std::string& node, const std::string& peer);
// {name, storage_type, local_content}.
Value schema_value(const TableSchema& schema);
// "ignored", "joined", ...; ["error", reason] for an error, as the original's {:error, term}.
Value action_value(const NodeUpResult& result);

struct ClusterView {
  std::vector<MemberInfo> members;  // by node name
  std::string leader;               // "" when unknown
};
// The etcd members (voters and learners) and the replica nodes seen in presence keys, each
// marked up when its presence key is there; the leader from the status of a member. What
// cannot be read within `timeout` is left out (the view is for display, never for decisions).
ClusterView read_cluster_view(store::LocalNode& node, std::chrono::milliseconds timeout);

struct MemberHealth {
  bool healthy = false;           // the local member (a replica: the cluster) answers with a leader
  std::string leader;             // node name of the leader; "" when none or unknown
  std::int64_t replica_lag = -1;  // etcd's revision minus the replica's applied revision
};
// `members`: the cluster's member list when the caller has read it already (the leader's name
// is looked up there); nullptr: read it here when there is a leader.
MemberHealth read_member_health(store::LocalNode& node, std::chrono::milliseconds timeout,
                                const std::vector<engine::Member>* members = nullptr);

}  // namespace mishka::repo
