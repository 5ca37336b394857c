// The cluster's layout record, "<root>meta" (docs/keyspace.md): which version of the keyspace
// layout the cluster's data is written in. A node checks it at start, before it reads or
// writes anything else, and refuses to start on a layout it does not know.
#pragma once

#include <cstdint>
#include <string>

#include "engine/deadline.h"
#include "engine/etcd_client.h"
#include "mishka/log.h"
#include "mishka/status.h"
#include "replica/keyspace.h"

namespace mishka::store {

// The keyspace layout this build reads and writes.
inline constexpr std::int64_t kKeyspaceLayout = 1;

// Reads "<root>meta". Absent: creates it with a create-if-absent Txn, as a map {"layout": 1,
// "cluster": node_name, "created_ms": now} (the seed at bootstrap; the first node of a cluster
// made before the key existed), and accepts the record of a node that was first. Present:
// ok for layout 1. Errors, naming the key, what was found and the layout this build knows,
// with nothing written: unsupported for another layout, corrupt for a value that is not such a
// map; and the client's.
Status check_keyspace_layout(engine::EtcdClient& client, const replica::Keyspace& keyspace,
                             const std::string& node_name, engine::Deadline deadline,
                             const LogSink& log);

}  // namespace mishka::store
