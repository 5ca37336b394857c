// The etcd keys of docs/keyspace.md: building them, and reading them back from watch events.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "mishka/status.h"
#include "mishka/table_spec.h"
#include "mishka/value.h"

namespace mishka::replica {

// A bag record's key ends with this many bytes of the SHA-256 of its encoded record.
inline constexpr std::size_t kBagDigestBytes = 16;

// What follows a table's prefix in a record key (docs/keyspace.md): the encoded table key, then
// for a bag record its digest.
struct RecordKey {
  Value key;
  std::string_view digest;  // empty: a set record, or a bag key's marker; else kBagDigestBytes
};

// Decodes `rest`, the part of `etcd_key` after its table prefix (Keyspace::Parsed::rest).
// corrupt, naming `etcd_key`, when `rest` does not start with one well-formed encoded value or
// the bytes after it are not a digest. The digest points into `rest`. Safe on any input: this is
// what a fuzz target feeds with arbitrary bytes (tests/fuzz/fuzz_key_decode.cc).
Result<RecordKey> parse_record_key(std::string_view etcd_key, std::string_view rest);

// corrupt: "etcd key '<key>': <why>", the key written with every byte outside printable ASCII
// (and the backslash) as \xNN, since keys hold binary encodings.
Status corrupt_key(std::string_view etcd_key, std::string_view why);

class Keyspace {
 public:
  // `root` is the cluster prefix, "/mishka/v1/" unless a test isolates itself under another.
  explicit Keyspace(std::string root = "/mishka/v1/") : root_(std::move(root)) {}

  const std::string& root() const { return root_; }
  std::string meta_key() const { return root_ + "meta"; }
  // Holds the id of the lease that ram_copies records are put under (docs/keyspace.md), and is
  // put under that lease itself.
  std::string ram_key() const { return root_ + "ram"; }
  // Put by every write transaction: its mod_revision is the revision of the latest write.
  std::string write_marker_key() const { return root_ + "seq"; }
  std::string schema_prefix() const { return root_ + "schema/"; }
  std::string schema_key(std::string_view table) const;
  std::string table_version_key(std::string_view table) const;
  // The prefix of every record key of `table` (of `node` for local_content tables).
  std::string table_prefix(const TableSpec& spec, std::string_view node) const;
  // set / ordered_set: the record's key. bag: the marker of the key.
  std::string record_key(const TableSpec& spec, std::string_view node, const Value& key) const;
  // bag: the key of one record under its key.
  std::string bag_record_key(const TableSpec& spec, std::string_view node,
                             const Record& record) const;

  // What an etcd key under root() is. Never fails: a key of another layout, or with an empty
  // table or node segment, is Kind::other.
  struct Parsed {
    enum class Kind { meta, schema, table_version, record, other };
    Kind kind = Kind::other;
    std::string table;      // schema, table_version, record
    std::string node;       // record of a local_content table; empty otherwise
    std::string_view rest;  // record: the bytes after the table prefix (encoded key...)
  };
  Parsed parse(std::string_view etcd_key) const;

 private:
  std::string root_;
};

}  // namespace mishka::replica
