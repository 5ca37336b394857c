// Snapshot of a whole catalog as one byte string (docs/formats.md, "Snapshot").
//
// The format is versioned and ends with a SHA-256 of everything before it: a truncated,
// extended or altered snapshot is refused with `corrupt`, never partly loaded.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "mishka/status.h"
#include "store/catalog.h"

namespace mishka::store {

inline constexpr std::uint32_t kSnapshotFormatVersion = 1;

// Encodes every table (spec and records) and `revision` (the engine revision the contents
// reflect; 0 when there is none).
std::string encode_snapshot(const Catalog& catalog, std::uint64_t revision);

struct DecodedSnapshot {
  Catalog catalog;
  std::uint64_t revision = 0;
};

// corrupt, with what is wrong (bad magic, unsupported version, checksum mismatch, truncated,
// malformed record), or the catalog with the revision.
Result<DecodedSnapshot> decode_snapshot(std::string_view bytes);

}  // namespace mishka::store
