// File checks for tests: whole-file reads and writes, and a hash of a directory tree to tell
// whether anything under it changed.
#pragma once

#include <filesystem>
#include <map>
#include <string>

#include "common/sha256.h"

namespace mishka::test {

// The bytes of the file at `path` (empty when it cannot be opened).
std::string read_bytes(const std::filesystem::path& path);

// Replaces the file at `path` with `bytes`, creating it if needed.
void write_bytes(const std::filesystem::path& path, const std::string& bytes);

// Every path under `dir`, with a SHA-256 of each file's bytes (directories: all zeros).
std::map<std::string, Sha256Digest> hash_tree(const std::filesystem::path& dir);

}  // namespace mishka::test
