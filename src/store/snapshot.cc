#include "store/snapshot.h"

#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "common/codec.h"
#include "common/sha256.h"
#include "store/run_beside.h"

namespace mishka::store {
namespace {

// Layout (docs/formats.md, "Snapshot"):
//   magic "MISHKASN" | version u32 BE | revision u64 BE | body length u64 BE | body | SHA-256
// The body is a MessagePack stream: the table count, then per table its spec (a map), its
// record count and that many records (arrays).
constexpr std::string_view kMagic = "MISHKASN";
constexpr std::size_t kHeaderSize = 8 + 4 + 8 + 8;
constexpr std::size_t kTrailerSize = 32;

void put_be(std::string& out, std::size_t at, std::uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) {
    out[at + static_cast<std::size_t>(i)] = static_cast<char>(v >> (8 * (bytes - 1 - i)));
  }
}

std::uint64_t get_be(std::string_view in, std::size_t at, int bytes) {
  std::uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) {
    v = (v << 8) | static_cast<unsigned char>(in[at + static_cast<std::size_t>(i)]);
  }
  return v;
}

Status snapshot_error(std::string what) {
  return corrupt("snapshot: " + std::move(what));
}

// Reads a non-negative integer from the body stream.
Result<std::uint64_t> read_count(std::string_view body, std::size_t& offset, const char* what) {
  const std::size_t at = offset;
  auto v = decode_value_at(body, offset);
  if (!v) return snapshot_error(std::string(what) + ": " + v.status().message());
  const std::int64_t* n = v->get_int();
  if (n == nullptr || *n < 0) {
    return snapshot_error(std::string(what) + " at body offset " + std::to_string(at) +
                          " is not a count: " + v->debug_string());
  }
  return static_cast<std::uint64_t>(*n);
}

// Below this many records (or bytes of snapshot), decoding stays on the calling thread.
constexpr std::size_t kParallelRecords = 16384;
constexpr std::size_t kParallelChecksumBytes = std::size_t{1} << 20;

// Decodes records [first, first + out.size()) of a table, which start at `offset`.
Status decode_record_run(std::string_view body, std::size_t& offset, std::size_t first,
                         std::span<RecordRef> out) {
  for (std::size_t i = 0; i < out.size(); ++i) {
    auto record = decode_record_at(body, offset);
    if (!record) {
      return corrupt("record " + std::to_string(first + i) + ": " + record.status().message());
    }
    out[i] = std::make_shared<const Record>(std::move(*record));
  }
  return Status::Ok();
}

// The `count` records of a table, starting at `offset`; advances `offset` past them. A large
// table is decoded in two halves on two threads: a structural scan finds where the second half
// starts. When the scan fails the bytes are malformed, and one thread decodes them to report
// the error where the decoder finds it.
Result<std::vector<RecordRef>> decode_records(std::string_view body, std::size_t& offset,
                                              std::size_t count) {
  std::vector<RecordRef> records(count);
  const std::size_t half = count / 2;
  std::size_t middle = offset;
  bool split = count >= kParallelRecords;
  for (std::size_t i = 0; split && i < half; ++i) split = skip_value_at(body, middle);
  if (!split) {
    MISHKA_RETURN_IF_ERROR(decode_record_run(body, offset, 0, records));
    return records;
  }
  const std::span<RecordRef> all(records);
  std::size_t front_end = offset;
  std::size_t back_end = middle;
  Status front;
  Status back;
  run_beside([&] { back = decode_record_run(body, back_end, half, all.subspan(half)); },
             [&] { front = decode_record_run(body, front_end, 0, all.first(half)); });
  MISHKA_RETURN_IF_ERROR(front);
  if (front_end != middle) {
    return Status(StatusCode::internal, "snapshot: record " + std::to_string(half - 1) +
                                            " ends at body offset " + std::to_string(front_end) +
                                            " but the scan placed it at " + std::to_string(middle));
  }
  MISHKA_RETURN_IF_ERROR(back);
  offset = back_end;
  return records;
}

Status load_table(std::string_view body, std::size_t& offset, Catalog& catalog) {
  auto spec_value = decode_value_at(body, offset);
  if (!spec_value) return snapshot_error("table spec: " + spec_value.status().message());
  auto spec = table_spec_from_value(*spec_value);
  if (!spec) return snapshot_error("table spec: " + spec.status().message());
  const std::string name = spec->name;
  Status created = catalog.create_table(std::move(*spec));
  if (!created.ok()) return snapshot_error(created.message());
  Table& table = *catalog.find(name);

  auto count = read_count(body, offset, "record count");
  if (!count) return count.status();
  // Each record takes at least one byte per attribute plus its array header: a larger claim
  // is corrupt, whatever it would cost (and this bounds what the decoder reserves).
  const std::uint64_t min_record_size = 1 + table.spec().attributes.size();
  if (*count > (body.size() - offset) / min_record_size) {
    return snapshot_error("table '" + name + "' claims " + std::to_string(*count) +
                          " records but only " + std::to_string(body.size() - offset) +
                          " bytes remain");
  }
  auto records = decode_records(body, offset, static_cast<std::size_t>(*count));
  if (!records) return snapshot_error("table '" + name + "' " + records.status().message());
  // Refuses records that would collapse (duplicate keys in a set, equal records in a bag).
  Status loaded = table.load(std::move(*records));
  if (!loaded.ok()) return snapshot_error(loaded.message());
  return Status::Ok();
}

Result<DecodedSnapshot> decode_body(std::string_view body, std::uint64_t revision) {
  std::size_t offset = 0;
  DecodedSnapshot out;
  out.revision = revision;
  auto tables = read_count(body, offset, "table count");
  if (!tables) return tables.status();
  for (std::uint64_t t = 0; t < *tables; ++t) {
    MISHKA_RETURN_IF_ERROR(load_table(body, offset, out.catalog));
  }
  if (offset != body.size()) {
    return snapshot_error(std::to_string(body.size() - offset) +
                          " unexpected bytes after the last table");
  }
  return out;
}

}  // namespace

std::string encode_snapshot(const Catalog& catalog, std::uint64_t revision) {
  std::string out(kHeaderSize, '\0');
  std::memcpy(out.data(), kMagic.data(), kMagic.size());
  put_be(out, 8, kSnapshotFormatVersion, 4);
  put_be(out, 12, revision, 8);

  encode_value(Value(static_cast<std::int64_t>(catalog.table_count())), out);
  catalog.for_each_table([&](const Table& table) {
    encode_value(table_spec_to_value(table.spec()), out);
    encode_value(Value(static_cast<std::int64_t>(table.count())), out);
    table.for_each_in_load_order([&](const RecordRef& record) { encode_record(*record, out); });
  });
  put_be(out, 20, out.size() - kHeaderSize, 8);

  Sha256Digest sum = Sha256::of(out);
  out.append(reinterpret_cast<const char*>(sum.data()), sum.size());
  return out;
}

Result<DecodedSnapshot> decode_snapshot(std::string_view bytes) {
  if (bytes.size() < kHeaderSize + kTrailerSize) {
    return snapshot_error("truncated: " + std::to_string(bytes.size()) +
                          " bytes is shorter than an empty snapshot");
  }
  if (bytes.substr(0, kMagic.size()) != kMagic)
    return snapshot_error("not a mishka snapshot (bad magic)");
  const std::uint64_t version = get_be(bytes, 8, 4);
  if (version != kSnapshotFormatVersion) {
    return snapshot_error("unsupported format version " + std::to_string(version) +
                          " (this build reads version " + std::to_string(kSnapshotFormatVersion) +
                          ")");
  }
  const std::uint64_t revision = get_be(bytes, 12, 8);
  const std::uint64_t body_size = get_be(bytes, 20, 8);
  const std::size_t available = bytes.size() - kHeaderSize - kTrailerSize;
  if (body_size != available) {
    return snapshot_error(body_size > available
                              ? "truncated: the header announces " + std::to_string(body_size) +
                                    " body bytes, " + std::to_string(available) + " present"
                              : "trailing bytes: the header announces " +
                                    std::to_string(body_size) + " body bytes, " +
                                    std::to_string(available) + " present");
  }
  // The checksum is computed on a second thread while this one decodes. Decoding does not
  // rely on it (every value is checked, and nothing is allocated beyond what the bytes
  // justify), and a mismatch discards whatever was decoded: it is reported first, as if the
  // checksum had been checked before anything else.
  const std::string_view covered = bytes.substr(0, bytes.size() - kTrailerSize);
  bool checksum_ok = false;
  auto check_sum = [&] {
    const Sha256Digest expected = Sha256::of(covered);
    checksum_ok = std::memcmp(expected.data(), bytes.data() + covered.size(), kTrailerSize) == 0;
  };
  Result<DecodedSnapshot> decoded = DecodedSnapshot{};
  auto decode = [&] { decoded = decode_body(bytes.substr(kHeaderSize, body_size), revision); };
  if (bytes.size() < kParallelChecksumBytes) {
    check_sum();
    if (checksum_ok) decode();
  } else {
    run_beside(check_sum, decode);
  }
  if (!checksum_ok) return snapshot_error("checksum mismatch (the file is damaged)");
  return decoded;
}

}  // namespace mishka::store
