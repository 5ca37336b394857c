#include "replica/apply.h"

#include "common/codec.h"
#include "common/sha256.h"

namespace mishka::replica {
namespace {

bool digest_matches(const Record& record, std::string_view digest) {
  Sha256Digest d = Sha256::of(encode_record(record));
  return std::string_view(reinterpret_cast<const char*>(d.data()), kBagDigestBytes) == digest;
}

}  // namespace

store::Table* Applier::table_for(const Keyspace::Parsed& parsed) {
  store::Table* table = catalog_.find(parsed.table);
  if (table == nullptr) return nullptr;  // deleted with its schema entry, or not yet known
  const bool local = table->spec().local_content;
  if (local != !parsed.node.empty()) return nullptr;  // under the wrong half of the keyspace
  if (local && parsed.node != node_) return nullptr;  // another node's contents
  return table;
}

Status Applier::put(std::string_view key, std::string_view value) {
  Keyspace::Parsed parsed = keyspace_.parse(key);
  switch (parsed.kind) {
    case Keyspace::Parsed::Kind::schema: {
      auto decoded = decode_value(value);
      if (!decoded.ok())
        return corrupt_key(key, "undecodable table spec: " + decoded.status().message());
      auto spec = table_spec_from_value(*decoded);
      if (!spec.ok()) return corrupt_key(key, spec.status().message());
      if (spec->name != parsed.table)
        return corrupt_key(key, "spec names table '" + spec->name + "'");
      if (const store::Table* existing = catalog_.find(parsed.table)) {
        if (existing->spec() == *spec) return Status::Ok();
        // A table deleted and created again with another spec between two revisions we saw.
        MISHKA_RETURN_IF_ERROR(catalog_.delete_table(parsed.table));
      }
      return catalog_.create_table(std::move(*spec));
    }
    case Keyspace::Parsed::Kind::record: {
      store::Table* table = table_for(parsed);
      if (table == nullptr) return Status::Ok();
      auto rk = parse_record_key(key, parsed.rest);
      if (!rk.ok()) return rk.status();
      const bool bag = table->spec().type == TableType::bag;
      if (bag && rk->digest.empty()) return Status::Ok();  // the key's marker
      if (!bag && !rk->digest.empty()) return corrupt_key(key, "a bag record key in a set table");
      auto record = decode_record(value);
      if (!record.ok()) return corrupt_key(key, "undecodable record: " + record.status().message());
      if (record->empty() || !((*record)[0] == rk->key)) {
        return corrupt_key(key, "the record's key differs from the key it is stored under");
      }
      Status written = table->write(std::move(*record));
      if (!written.ok()) return corrupt_key(key, written.message());
      return Status::Ok();
    }
    default:
      return Status::Ok();
  }
}

Status Applier::erase(std::string_view key) {
  Keyspace::Parsed parsed = keyspace_.parse(key);
  switch (parsed.kind) {
    case Keyspace::Parsed::Kind::schema:
      if (catalog_.find(parsed.table) != nullptr) return catalog_.delete_table(parsed.table);
      return Status::Ok();
    case Keyspace::Parsed::Kind::record: {
      store::Table* table = table_for(parsed);
      if (table == nullptr) return Status::Ok();
      auto rk = parse_record_key(key, parsed.rest);
      if (!rk.ok()) return rk.status();
      if (table->spec().type != TableType::bag) {
        table->erase(rk->key);
        return Status::Ok();
      }
      if (rk->digest.empty()) return Status::Ok();  // marker: its records go one by one
      for (const RecordRef& r : table->read(rk->key)) {
        if (digest_matches(*r, rk->digest)) {
          table->erase_object(*r);
          break;
        }
      }
      return Status::Ok();
    }
    default:
      return Status::Ok();
  }
}

}  // namespace mishka::replica
