// A fresh directory for one test, removed with everything in it when the object goes away.
#pragma once

#include <filesystem>
#include <string_view>

#include "mishka/status.h"

namespace mishka::test {

class TempDir {
 public:
  // Creates <$TMPDIR or /tmp>/<prefix>XXXXXX with mode 0700. Fails with io_error.
  static Result<TempDir> Create(std::string_view prefix);

  TempDir(TempDir&& other) noexcept;
  TempDir& operator=(TempDir&& other) noexcept;
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  // Removes the directory recursively, unless MISHKA_KEEP_TEST_DIRS is set to a non-empty value
  // (then its path is printed to stderr, for a post-mortem).
  ~TempDir();

  const std::filesystem::path& path() const { return path_; }

 private:
  explicit TempDir(std::filesystem::path path) : path_(std::move(path)) {}

  std::filesystem::path path_;  // empty once moved from
};

}  // namespace mishka::test
