#include "engine/identity.h"

#include <array>
#include <cstring>
#include <string_view>

#include "common/files.h"
#include "common/sha256.h"

namespace mishka::engine {
namespace {

// The layout of docs/formats.md, "Identity file (version 1)".
constexpr std::string_view kMagic = "MISHKAID";
constexpr std::size_t kHeaderBytes = 8 + 4 + 4;  // magic, version, body length
constexpr std::size_t kChecksumBytes = 32;
constexpr std::size_t kFixedBodyBytes = 4 + 8 + 8 + 8;  // name length, three u64
// Anything larger cannot be an identity file; refused before hashing.
constexpr std::size_t kMaxFileBytes =
    kHeaderBytes + kFixedBodyBytes + kMaxNodeNameBytes + kChecksumBytes;

void put_u32(std::string& out, std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>(v >> shift));
}

void put_u64(std::string& out, std::uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<char>(v >> shift));
}

std::uint64_t get_be(std::string_view bytes, std::size_t at, std::size_t width) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < width; ++i) v = (v << 8) | static_cast<std::uint8_t>(bytes[at + i]);
  return v;
}

std::string encode(const Identity& identity) {
  std::string out(kMagic);
  put_u32(out, kIdentityVersion);
  put_u32(out, static_cast<std::uint32_t>(kFixedBodyBytes + identity.node_name.size()));
  put_u32(out, static_cast<std::uint32_t>(identity.node_name.size()));
  out += identity.node_name;
  put_u64(out, identity.member_id);
  put_u64(out, identity.cluster_id);
  put_u64(out, static_cast<std::uint64_t>(identity.created_unix_ms));
  const Sha256Digest sum = Sha256::of(out);
  out.append(reinterpret_cast<const char*>(sum.data()), sum.size());
  return out;
}

// Checks in the order of docs/formats.md; the message says what was wrong, not where the file
// is (the caller adds the path).
Result<Identity> decode(std::string_view bytes) {
  if (bytes.size() > kMaxFileBytes) {
    return corrupt(std::to_string(bytes.size()) + " bytes is too long for an identity file");
  }
  if (bytes.empty()) return corrupt("empty file");
  const std::string_view magic = bytes.substr(0, kMagic.size());
  if (magic != kMagic.substr(0, magic.size())) return corrupt("not an identity file (bad magic)");
  if (bytes.size() < kHeaderBytes) return corrupt("truncated header");
  const std::uint64_t version = get_be(bytes, 8, 4);
  if (version != kIdentityVersion) {
    return corrupt("identity file version " + std::to_string(version) +
                   " is not supported (this build reads version " +
                   std::to_string(kIdentityVersion) + ")");
  }
  const std::uint64_t body_length = get_be(bytes, 12, 4);
  if (bytes.size() != kHeaderBytes + body_length + kChecksumBytes) {
    return corrupt("length " + std::to_string(bytes.size()) + " does not match the body length " +
                   std::to_string(body_length) + " (truncated or extended)");
  }
  const std::size_t summed = kHeaderBytes + body_length;
  const Sha256Digest sum = Sha256::of(bytes.substr(0, summed));
  if (std::memcmp(sum.data(), bytes.data() + summed, kChecksumBytes) != 0) {
    return corrupt("checksum mismatch");
  }
  // The checksum held, so what follows was written by an encoder: a mismatch here is a bug in
  // one, still refused rather than trusted.
  const std::string_view body = bytes.substr(kHeaderBytes, body_length);
  if (body.size() < kFixedBodyBytes) return corrupt("body too short");
  const std::uint64_t name_length = get_be(body, 0, 4);
  if (name_length == 0 || name_length > kMaxNodeNameBytes ||
      body.size() != kFixedBodyBytes + name_length) {
    return corrupt("bad node name length " + std::to_string(name_length));
  }
  Identity identity;
  identity.node_name = std::string(body.substr(4, name_length));
  const std::size_t numbers = 4 + name_length;
  identity.member_id = get_be(body, numbers, 8);
  identity.cluster_id = get_be(body, numbers + 8, 8);
  identity.created_unix_ms = static_cast<std::int64_t>(get_be(body, numbers + 16, 8));
  return identity;
}

}  // namespace

std::string identity_path(const std::string& mnesia_dir) {
  return mnesia_dir + "/identity";
}

Result<std::optional<Identity>> read_identity(const std::string& mnesia_dir) {
  const std::string path = identity_path(mnesia_dir);
  Result<std::optional<std::string>> bytes = read_file_if_exists(path);
  if (!bytes.ok()) return bytes.status();
  if (!bytes->has_value()) return std::optional<Identity>();
  Result<Identity> identity = decode(**bytes);
  if (!identity.ok()) return identity.status().with_context("identity file " + path);
  return std::optional<Identity>(std::move(identity).value());
}

Status write_identity(const std::string& mnesia_dir, const Identity& identity) {
  if (identity.node_name.empty() || identity.node_name.size() > kMaxNodeNameBytes) {
    return invalid_argument("identity: node name must have 1 to " +
                            std::to_string(kMaxNodeNameBytes) + " bytes, not " +
                            std::to_string(identity.node_name.size()));
  }
  return write_file_atomically(identity_path(mnesia_dir), encode(identity));
}

Result<std::optional<Identity>> check_identity(const std::string& mnesia_dir,
                                               const std::string& node_name) {
  Result<std::optional<Identity>> stored = read_identity(mnesia_dir);
  if (!stored.ok() || !stored->has_value()) return stored;
  if ((*stored)->node_name != node_name) {
    return Status(StatusCode::node_name_mismatch, "directory " + mnesia_dir + " belongs to node '" +
                                                      (*stored)->node_name + "', not to '" +
                                                      node_name + "' (identity file " +
                                                      identity_path(mnesia_dir) + ")");
  }
  return stored;
}

}  // namespace mishka::engine
