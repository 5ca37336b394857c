// How the node layer makes a Store (include/mishka/store.h) over what it owns: the etcd
// client, the started replica, the node's name and the keyspace.
#pragma once

#include <memory>
#include <string>

#include "engine/etcd_client.h"
#include "mishka/log.h"
#include "mishka/store.h"
#include "replica/keyspace.h"
#include "replica/replica.h"
#include "store/ram_lease.h"

namespace mishka::store {

struct StoreContext {
  engine::EtcdClient* client = nullptr;  // not owned; must outlive the store
  replica::Replica* replica = nullptr;   // not owned, started; must outlive the store
  std::string node_name;                 // whose local_content records this node writes
  replica::Keyspace keyspace;            // the replica's
  StoreOptions options;
  LogSink log;
  // The cluster's ram lease (store/ram_lease.h) that ram_copies writes carry. The node layer
  // passes its own, judged at its start (RamLease::start). nullptr: the store makes one that
  // adopts whatever lease the key names (for stores opened next to a running node, in tests).
  std::shared_ptr<RamLease> ram_lease;
};

// invalid_argument when a pointer is missing, the node name is empty or an option is out of
// range (naming it). Starts the group committer's threads; the store's destructor stops them
// (no call may be running then).
Result<std::unique_ptr<Store>> open_store(StoreContext context);

}  // namespace mishka::store
