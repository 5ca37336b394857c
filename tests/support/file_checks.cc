#include "support/file_checks.h"

#include <fstream>
#include <sstream>

namespace mishka::test {

namespace fs = std::filesystem;

std::string read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream out;
  out << in.rdbuf();
  return out.str();
}

void write_bytes(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
}

std::map<std::string, Sha256Digest> hash_tree(const fs::path& dir) {
  std::map<std::string, Sha256Digest> tree;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    tree[entry.path().string()] =
        entry.is_regular_file() ? Sha256::of(read_bytes(entry.path())) : Sha256Digest{};
  }
  return tree;
}

}  // namespace mishka::test
