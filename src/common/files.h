// Whole-file reads and crash-safe replacement of small and large files.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "mishka/status.h"

namespace mishka {

// The contents of `path`; nullopt when it does not exist; io_error (with the path) otherwise.
Result<std::optional<std::string>> read_file_if_exists(const std::string& path);

// Replaces `path` with `contents` so that a crash at any moment leaves either the old or the
// new file: write to "<path>.tmp", fsync it, rename over `path`, fsync the directory. `mode`
// is applied to the new file (0600 for files holding keys). io_error with the path on failure.
Status write_file_atomically(const std::string& path, std::string_view contents,
                             unsigned mode = 0644);

}  // namespace mishka
