// Keyspace::parse and parse_record_key on arbitrary etcd keys (docs/keyspace.md). Any key must
// be classified, and a record key decoded or refused with `corrupt`. What is understood must be
// built again by the Keyspace into a key that parses to the same thing, whose encoding is a
// fixed point, and which is the input itself when the input's encoded key was canonical.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/codec.h"
#include "fuzz_check.h"
#include "replica/keyspace.h"

using mishka::fuzz::check;
using mishka::replica::Keyspace;

namespace {

void check_record_key(const Keyspace& keyspace, std::string_view key,
                      const Keyspace::Parsed& parsed) {
  check(!parsed.table.empty() && parsed.table.find('/') == std::string::npos,
        "record key with a bad table segment");
  check(parsed.node.find('/') == std::string::npos, "record key with a bad node segment");
  mishka::TableSpec spec;
  spec.name = parsed.table;
  spec.local_content = !parsed.node.empty();
  const std::string prefix = keyspace.table_prefix(spec, parsed.node);
  check(key.substr(0, prefix.size()) == prefix && parsed.rest == key.substr(prefix.size()),
        "the table prefix and the rest do not make up the key");

  auto record_key = mishka::replica::parse_record_key(key, parsed.rest);
  if (!record_key.ok()) {
    mishka::fuzz::check_refusal(record_key.status());
    return;
  }
  const std::string_view digest = record_key->digest;
  check(digest.empty() || digest.size() == mishka::replica::kBagDigestBytes,
        "digest of a wrong size accepted");

  std::string again = keyspace.record_key(spec, parsed.node, record_key->key);
  again.append(digest);
  const Keyspace::Parsed reparsed = keyspace.parse(again);
  check(reparsed.kind == Keyspace::Parsed::Kind::record && reparsed.table == parsed.table &&
            reparsed.node == parsed.node,
        "a rebuilt record key parses as another table or node");
  auto decoded_again = mishka::replica::parse_record_key(again, reparsed.rest);
  check(decoded_again.ok(),
        "a rebuilt record key does not decode: " + decoded_again.status().to_string());
  check(decoded_again->key == record_key->key, "round trip changed the record's key");
  check(decoded_again->digest == digest, "round trip changed the digest");
  std::string twice = keyspace.record_key(spec, parsed.node, decoded_again->key);
  twice.append(decoded_again->digest);
  check(twice == again, "rebuilding a rebuilt key changed it");

  const std::string_view encoded = parsed.rest.substr(0, parsed.rest.size() - digest.size());
  if (mishka::encode_value(record_key->key) == encoded) {
    check(again == key, "a canonical record key did not rebuild to itself");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view key(reinterpret_cast<const char*>(data), size);
  const Keyspace keyspace;
  const Keyspace::Parsed parsed = keyspace.parse(key);
  switch (parsed.kind) {
    case Keyspace::Parsed::Kind::meta:
      check(key == keyspace.meta_key(), "meta parsed from another key");
      break;
    case Keyspace::Parsed::Kind::schema:
      check(keyspace.schema_key(parsed.table) == key, "schema key does not rebuild");
      break;
    case Keyspace::Parsed::Kind::table_version:
      check(keyspace.table_version_key(parsed.table) == key, "table version key does not rebuild");
      break;
    case Keyspace::Parsed::Kind::record:
      check_record_key(keyspace, key, parsed);
      break;
    case Keyspace::Parsed::Kind::other:
      check(parsed.table.empty() && parsed.node.empty() && parsed.rest.empty(),
            "a key of no kind carries parts");
      break;
  }
  return 0;
}
