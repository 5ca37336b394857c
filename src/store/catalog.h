// The catalog: every table of a node, by name, and the schema they form.
//
// Threading: like Table, not synchronized; const methods may run concurrently.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "mishka/status.h"
#include "mishka/table_spec.h"
#include "store/table.h"

namespace mishka::store {

class Catalog {
 public:
  Catalog();
  ~Catalog();
  // Moving leaves the source an empty catalog.
  Catalog(Catalog&&) noexcept;
  Catalog& operator=(Catalog&&) noexcept;

  // invalid_argument when the spec does not validate; already_exists when a table of that
  // name exists (whatever its spec).
  Status create_table(TableSpec spec);
  // not_found when there is no such table.
  Status delete_table(std::string_view name);

  // nullptr when there is no such table. The pointer is valid until the table is deleted or
  // the catalog destroyed.
  Table* find(std::string_view name);
  const Table* find(std::string_view name) const;

  // Table names in lexicographic order.
  std::vector<std::string> table_names() const;
  // Specs of every table, in name order.
  std::vector<TableSpec> schema() const;
  std::size_t table_count() const;

  // A digest of the whole contents (specs and records), the same for the same contents
  // whatever the order of the operations that produced them (docs/formats.md, "Digest").
  // 32 bytes; digest_hex() is its lower-case hex form.
  std::array<std::uint8_t, 32> digest() const;
  std::string digest_hex() const;

  // Calls fn(const Table&) in name order.
  template <typename Fn>
  void for_each_table(Fn&& fn) const {
    for (const std::string& name : table_names()) fn(*find(name));
  }

 private:
  struct Tables;
  std::unique_ptr<Tables> tables_;
};

// The digest of one table's contents; the catalog digest combines these.
std::array<std::uint8_t, 32> table_digest(const Table& table);

}  // namespace mishka::store
