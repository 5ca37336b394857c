#include "replica/keyspace.h"

#include "common/codec.h"
#include "common/sha256.h"

namespace mishka::replica {
namespace {

bool consume(std::string_view& s, std::string_view prefix) {
  if (s.substr(0, prefix.size()) != prefix) return false;
  s.remove_prefix(prefix.size());
  return true;
}

// Splits "name/rest" at the first '/'; false when there is none.
bool split_segment(std::string_view& s, std::string& segment) {
  auto slash = s.find('/');
  if (slash == std::string_view::npos || slash == 0) return false;
  segment.assign(s.substr(0, slash));
  s.remove_prefix(slash + 1);
  return true;
}

}  // namespace

Status corrupt_key(std::string_view etcd_key, std::string_view why) {
  std::string out = "etcd key '";
  for (unsigned char c : etcd_key) {
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out.push_back(static_cast<char>(c));
    } else {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xf]);
    }
  }
  return corrupt(out + "': " + std::string(why));
}

Result<RecordKey> parse_record_key(std::string_view etcd_key, std::string_view rest) {
  std::size_t offset = 0;
  auto key = decode_value_at(rest, offset);
  if (!key.ok()) {
    return corrupt_key(etcd_key, "undecodable record key: " + key.status().message());
  }
  std::string_view digest = rest.substr(offset);
  if (!digest.empty() && digest.size() != kBagDigestBytes) {
    return corrupt_key(etcd_key, "unexpected bytes after the record key");
  }
  return RecordKey{std::move(*key), digest};
}

std::string Keyspace::schema_key(std::string_view table) const {
  return schema_prefix() + std::string(table);
}

std::string Keyspace::table_version_key(std::string_view table) const {
  return root_ + "tabver/" + std::string(table);
}

std::string Keyspace::table_prefix(const TableSpec& spec, std::string_view node) const {
  if (spec.local_content) return root_ + "l/" + std::string(node) + "/" + spec.name + "/";
  return root_ + "t/" + spec.name + "/";
}

std::string Keyspace::record_key(const TableSpec& spec, std::string_view node,
                                 const Value& key) const {
  std::string out = table_prefix(spec, node);
  encode_value(key, out);
  return out;
}

std::string Keyspace::bag_record_key(const TableSpec& spec, std::string_view node,
                                     const Record& record) const {
  std::string out = record_key(spec, node, record.at(0));
  Sha256Digest digest = Sha256::of(encode_record(record));
  out.append(reinterpret_cast<const char*>(digest.data()), kBagDigestBytes);
  return out;
}

Keyspace::Parsed Keyspace::parse(std::string_view etcd_key) const {
  Parsed out;
  std::string_view s = etcd_key;
  if (!consume(s, root_)) return out;
  if (s == "meta") {
    out.kind = Parsed::Kind::meta;
  } else if (consume(s, "schema/")) {
    out.kind = Parsed::Kind::schema;
    out.table.assign(s);
  } else if (consume(s, "tabver/")) {
    out.kind = Parsed::Kind::table_version;
    out.table.assign(s);
  } else if (consume(s, "t/")) {
    if (!split_segment(s, out.table)) return out;
    out.kind = Parsed::Kind::record;
    out.rest = s;
  } else if (consume(s, "l/")) {
    // Parsed{}: a half-parsed key of no kind must not carry a node.
    if (!split_segment(s, out.node) || !split_segment(s, out.table)) return Parsed{};
    out.kind = Parsed::Kind::record;
    out.rest = s;
  }
  return out;
}

}  // namespace mishka::replica
