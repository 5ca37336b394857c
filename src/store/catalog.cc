#include "store/catalog.h"

#include <absl/container/btree_map.h>

#include "common/codec.h"
#include "common/sha256.h"

namespace mishka::store {

struct Catalog::Tables {
  // Ordered by name so that listings and the digest do not depend on creation order.
  absl::btree_map<std::string, std::unique_ptr<Table>, std::less<>> by_name;
};

Catalog::Catalog() : tables_(std::make_unique<Tables>()) {}
Catalog::~Catalog() = default;
// A moved-from catalog is left empty and usable, not hollow.
Catalog::Catalog(Catalog&& other) noexcept : tables_(std::make_unique<Tables>()) {
  std::swap(tables_, other.tables_);
}
Catalog& Catalog::operator=(Catalog&& other) noexcept {
  if (this != &other) {
    tables_ = std::move(other.tables_);
    other.tables_ = std::make_unique<Tables>();
  }
  return *this;
}

Status Catalog::create_table(TableSpec spec) {
  MISHKA_RETURN_IF_ERROR(spec.validate());
  if (tables_->by_name.contains(spec.name)) {
    return already_exists("table '" + spec.name + "' already exists");
  }
  std::string name = spec.name;
  auto table = Table::create(std::move(spec));
  if (!table) return table.status();
  tables_->by_name.emplace(std::move(name), std::move(*table));
  return Status::Ok();
}

Status Catalog::delete_table(std::string_view name) {
  auto it = tables_->by_name.find(name);
  if (it == tables_->by_name.end()) return not_found("no table '" + std::string(name) + "'");
  tables_->by_name.erase(it);
  return Status::Ok();
}

Table* Catalog::find(std::string_view name) {
  auto it = tables_->by_name.find(name);
  return it == tables_->by_name.end() ? nullptr : it->second.get();
}

const Table* Catalog::find(std::string_view name) const {
  auto it = tables_->by_name.find(name);
  return it == tables_->by_name.end() ? nullptr : it->second.get();
}

std::vector<std::string> Catalog::table_names() const {
  std::vector<std::string> names;
  names.reserve(tables_->by_name.size());
  for (const auto& [name, table] : tables_->by_name) names.push_back(name);
  return names;
}

std::vector<TableSpec> Catalog::schema() const {
  std::vector<TableSpec> specs;
  specs.reserve(tables_->by_name.size());
  for (const auto& [name, table] : tables_->by_name) specs.push_back(table->spec());
  return specs;
}

std::size_t Catalog::table_count() const {
  return tables_->by_name.size();
}

namespace {

void append_u64_be(std::string& out, std::uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<char>(v >> shift));
}

std::string_view as_bytes(const Sha256Digest& d) {
  return std::string_view(reinterpret_cast<const char*>(d.data()), d.size());
}

}  // namespace

// Each record's SHA-256 is added into four 64-bit lanes (mod 2^64): addition commutes, so the
// sum depends only on which records are stored, not on the order they arrived in or on the
// iteration order of the hash table (docs/formats.md, "Digest").
Sha256Digest table_digest(const Table& table) {
  Sha256 sha;
  std::uint64_t lanes[4] = {0, 0, 0, 0};
  std::string buffer;
  table.for_each([&](const RecordRef& record) {
    buffer.clear();
    encode_record(*record, buffer);
    sha.update(buffer);
    Sha256Digest d = sha.finish();
    for (int lane = 0; lane < 4; ++lane) {
      std::uint64_t v = 0;
      for (int b = 0; b < 8; ++b) v = (v << 8) | d[static_cast<std::size_t>(lane * 8 + b)];
      lanes[lane] += v;
    }
  });
  std::string summary = "mishka.table-digest.v1";
  encode_value(table_spec_to_value(table.spec()), summary);
  append_u64_be(summary, table.count());
  for (std::uint64_t lane : lanes) append_u64_be(summary, lane);
  return Sha256::of(summary);
}

Sha256Digest Catalog::digest() const {
  Sha256 sha;
  sha.update("mishka.catalog-digest.v1");
  for (const auto& [name, table] : tables_->by_name) sha.update(as_bytes(table_digest(*table)));
  return sha.finish();
}

std::string Catalog::digest_hex() const {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (std::uint8_t byte : digest()) {
    out.push_back(kHex[byte >> 4]);
    out.push_back(kHex[byte & 0xf]);
  }
  return out;
}

}  // namespace mishka::store
