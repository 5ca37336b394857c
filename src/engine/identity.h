// The node's identity file, <mnesia_dir>/identity: which node owns the directory and which
// etcd member and cluster it belongs to. Versioned and checksummed (docs/formats.md,
// "Identity file (version 1)"); written atomically (temporary file, fsync, rename, fsync of the
// directory), so a crash leaves either the old file or the new one.
//
// Threading: plain functions over the file system; callers serialize writes to one directory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "mishka/status.h"

namespace mishka::engine {

struct Identity {
  std::string node_name;        // NAME@HOST:PORT; 1 to kMaxNodeNameBytes bytes
  std::uint64_t member_id = 0;  // 0 for a replica node without an etcd member
  std::uint64_t cluster_id = 0;
  std::int64_t created_unix_ms = 0;

  friend bool operator==(const Identity&, const Identity&) = default;
};

inline constexpr std::size_t kMaxNodeNameBytes = 1024;
inline constexpr std::uint32_t kIdentityVersion = 1;

// "<mnesia_dir>/identity".
std::string identity_path(const std::string& mnesia_dir);

// nullopt when the file does not exist; corrupt (with the path) when it exists but is
// truncated, altered, or of a version this build does not read; io_error (with the path) when
// it cannot be read. A temporary file left by an interrupted write_identity is ignored.
Result<std::optional<Identity>> read_identity(const std::string& mnesia_dir);

// Replaces the file atomically; `mnesia_dir` must exist. invalid_argument when the node name is
// empty or longer than kMaxNodeNameBytes; io_error with the path on failure (the previous file,
// if any, is then still intact).
Status write_identity(const std::string& mnesia_dir, const Identity& identity);

// The identity of `mnesia_dir` for `node_name`: node_name_mismatch (naming both names and the
// path) when the directory belongs to another node, the stored identity when it is this
// node's, nullopt when there is none yet; the errors of read_identity otherwise. Only reads.
Result<std::optional<Identity>> check_identity(const std::string& mnesia_dir,
                                               const std::string& node_name);

}  // namespace mishka::engine
