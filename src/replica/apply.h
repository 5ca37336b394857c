// Turns etcd key-value changes under the keyspace into catalog operations. Used for watch
// events and for the full load, so that both paths read keys the same way.
#pragma once

#include <string>
#include <string_view>

#include "mishka/status.h"
#include "replica/keyspace.h"
#include "store/catalog.h"

namespace mishka::replica {

class Applier {
 public:
  // `catalog` is modified in place; the caller holds whatever lock guards it.
  Applier(const Keyspace& keyspace, std::string node_name, store::Catalog& catalog)
      : keyspace_(keyspace), node_(std::move(node_name)), catalog_(catalog) {}

  // A key was written. Keys outside the tables' layout (presence, pub/sub, metadata) are
  // ignored; other nodes' local_content records too. Errors: corrupt (with the key) when a
  // schema entry or record cannot be decoded; the catalog is then unchanged.
  Status put(std::string_view key, std::string_view value);
  // A key was deleted.
  Status erase(std::string_view key);

 private:
  // The table a record key belongs to, or nullptr when this replica does not hold it.
  store::Table* table_for(const Keyspace::Parsed& parsed);

  const Keyspace& keyspace_;
  std::string node_;
  store::Catalog& catalog_;
};

}  // namespace mishka::replica
