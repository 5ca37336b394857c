// Writes a small seed corpus for each fuzz target: valid encodings that the fuzzers mutate.
// Generated from the encoders at build time so that the seeds follow the formats as they
// change. Usage: make_seed_corpus <output directory>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "common/codec.h"
#include "replica/keyspace.h"
#include "store/catalog.h"
#include "store/snapshot.h"

namespace {

namespace fs = std::filesystem;
using mishka::List;
using mishka::Map;
using mishka::Record;
using mishka::Value;

bool write_file(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return static_cast<bool>(out);
}

std::vector<Record> sample_records() {
  return {
      {1, "alice", List{"admin", "ops"}},
      {2, Value(), List{}},
      {-300, 2.5, Map{{"k", Value::bytes(std::string("\x00\xff", 2))}, {"n", List{Map{}}}}},
      {Value::bytes("raw"), true, 65536},
      {},
  };
}

mishka::store::Catalog sample_catalog() {
  mishka::store::Catalog catalog;
  mishka::TableSpec users;
  users.name = "users";
  users.attributes = {"id", "name", "roles"};
  users.indexes = {"name"};
  (void)catalog.create_table(users);
  for (const Record& r : sample_records()) {
    if (r.size() == 3) (void)catalog.find("users")->write(r);
  }
  mishka::TableSpec events;
  events.name = "events";
  events.attributes = {"day", "what"};
  events.type = mishka::TableType::bag;
  (void)catalog.create_table(events);
  (void)catalog.find("events")->write(Record{20261126, "boot"});
  (void)catalog.find("events")->write(Record{20261126, "join"});
  return catalog;
}

// Every kind of key of docs/keyspace.md, and keys next to them that are not ours.
std::vector<std::string> sample_keys() {
  const mishka::replica::Keyspace keyspace;
  mishka::TableSpec users;
  users.name = "users";
  mishka::TableSpec events;
  events.name = "events";
  events.type = mishka::TableType::bag;
  mishka::TableSpec local = users;
  local.name = "local.cache";
  local.local_content = true;
  const std::string node = "a@host:4370";

  std::vector<std::string> keys = {
      keyspace.meta_key(),
      keyspace.write_marker_key(),
      keyspace.schema_key("users"),
      keyspace.table_version_key("users"),
      keyspace.root() + "nodes/" + node,
      keyspace.root() + "ps/mishka:plugin:mnesia/" + node,
      keyspace.table_prefix(users, ""),
  };
  for (const Record& r : sample_records()) {
    if (r.empty()) continue;
    keys.push_back(keyspace.record_key(users, "", r.front()));
    keys.push_back(keyspace.record_key(local, node, r.front()));
    keys.push_back(keyspace.record_key(events, "", r.front()));
    keys.push_back(keyspace.bag_record_key(events, "", r));
  }
  return keys;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <output directory>\n", argv[0]);
    return 2;
  }
  const fs::path root = argv[1];
  std::error_code ec;
  for (const char* target :
       {"fuzz_value_decode", "fuzz_record_decode", "fuzz_snapshot_decode", "fuzz_key_decode"}) {
    fs::create_directories(root / target, ec);
    if (ec) {
      std::fprintf(stderr, "cannot create %s: %s\n", (root / target).c_str(), ec.message().c_str());
      return 1;
    }
  }
  bool ok = true;
  int n = 0;
  for (const Record& r : sample_records()) {
    const std::string name = "seed" + std::to_string(n++);
    ok &= write_file(root / "fuzz_record_decode" / name, mishka::encode_record(r));
    ok &= write_file(root / "fuzz_value_decode" / name, mishka::encode_record(r));
    if (!r.empty())
      ok &= write_file(root / "fuzz_value_decode" / (name + "k"), mishka::encode_value(r.front()));
  }

  n = 0;
  for (const std::string& key : sample_keys()) {
    ok &= write_file(root / "fuzz_key_decode" / ("key" + std::to_string(n++)), key);
  }

  const std::string full = mishka::store::encode_snapshot(sample_catalog(), 7);
  const std::string empty = mishka::store::encode_snapshot(mishka::store::Catalog(), 0);
  ok &= write_file(root / "fuzz_snapshot_decode" / "full", full);
  ok &= write_file(root / "fuzz_snapshot_decode" / "empty", empty);
  // Bodies alone, behind an even first byte: the target wraps them in a valid header and
  // checksum (fuzz_snapshot_decode.cc).
  constexpr std::size_t kHeader = 28;
  constexpr std::size_t kTrailer = 32;
  ok &= write_file(root / "fuzz_snapshot_decode" / "full_body",
                   std::string(1, '\0') + full.substr(kHeader, full.size() - kHeader - kTrailer));
  ok &= write_file(root / "fuzz_snapshot_decode" / "empty_body",
                   std::string(1, '\0') + empty.substr(kHeader, empty.size() - kHeader - kTrailer));
  if (!ok) {
    std::fprintf(stderr, "cannot write the corpus under %s\n", root.c_str());
    return 1;
  }
  return 0;
}
