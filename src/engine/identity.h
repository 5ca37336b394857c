// The node's identity file, <mnesia_dir>/identity: which node owns the directory and which
// etcd member and cluster it belongs to. Versioned and checksummed (docs/formats.md,
// "Identity file"); written atomically (temporary file, fsync, rename, fsync of the directory).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "mishka/status.h"

namespace mishka::engine {

struct Identity {
  std::string node_name;          // NAME@HOST:PORT
  std::uint64_t member_id = 0;    // 0 for a replica node without an etcd member
  std::uint64_t cluster_id = 0;
  std::int64_t created_unix_ms = 0;

  friend bool operator==(const Identity&, const Identity&) = default;
};

// nullopt when the file does not exist; corrupt (with the path) when it exists but is
// truncated, altered or of an unknown version; io_error when it cannot be read.
Result<std::optional<Identity>> read_identity(const std::string& mnesia_dir);

// Replaces the file atomically. io_error with the path on failure.
Status write_identity(const std::string& mnesia_dir, const Identity& identity);

// The identity of `mnesia_dir` for `node_name`: node_name_mismatch (naming both names and the
// path) when the directory belongs to another node, the stored identity when it is this
// node's, nullopt when there is none yet. Touches nothing.
Result<std::optional<Identity>> check_identity(const std::string& mnesia_dir,
                                               const std::string& node_name);

}  // namespace mishka::engine
