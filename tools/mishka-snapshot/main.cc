// mishka-snapshot: inspect and verify a replica snapshot file (docs/formats.md, "Snapshot").
//
//   mishka-snapshot verify FILE   exit 0 when the file is intact, 1 with the reason otherwise
//   mishka-snapshot info FILE     the revision, digest and every table (spec and record count),
//                                 as JSON on stdout
//
// Exit codes: 0 success, 1 the file is missing, unreadable or damaged, 2 bad usage.
#include <cstdio>
#include <iostream>
#include <string>
#include <string_view>

#include "common/files.h"
#include "store/snapshot.h"

namespace {

constexpr std::string_view kUsage =
    "usage: mishka-snapshot verify FILE\n"
    "       mishka-snapshot info FILE\n"
    "Checks a mishka snapshot file (magic, version, length, SHA-256, every record).\n";

// JSON string escaping for names, which are ASCII by validation, and for error messages.
std::string quoted(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\u%04x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

std::string string_list(const std::vector<std::string>& items) {
  std::string out = "[";
  for (std::size_t i = 0; i < items.size(); ++i) out += (i ? ", " : "") + quoted(items[i]);
  return out + "]";
}

mishka::Result<mishka::store::DecodedSnapshot> load(const std::string& path) {
  auto bytes = mishka::read_file_if_exists(path);
  if (!bytes.ok()) return bytes.status();
  if (!bytes->has_value()) return mishka::not_found("no file '" + path + "'");
  auto decoded = mishka::store::decode_snapshot(**bytes);
  if (!decoded.ok()) return decoded.status().with_context("'" + path + "'");
  return decoded;
}

void print_info(const mishka::store::DecodedSnapshot& snapshot) {
  std::cout << "{\n  \"format_version\": " << mishka::store::kSnapshotFormatVersion
            << ",\n  \"revision\": " << snapshot.revision
            << ",\n  \"digest\": " << quoted(snapshot.catalog.digest_hex()) << ",\n  \"tables\": [";
  bool first = true;
  snapshot.catalog.for_each_table([&](const mishka::store::Table& table) {
    const mishka::TableSpec& spec = table.spec();
    std::cout << (first ? "\n" : ",\n") << "    {\"name\": " << quoted(spec.name)
              << ", \"type\": " << quoted(mishka::table_type_name(spec.type))
              << ", \"storage\": " << quoted(mishka::storage_type_name(spec.storage))
              << ", \"local_content\": " << (spec.local_content ? "true" : "false")
              << ", \"attributes\": " << string_list(spec.attributes)
              << ", \"indexes\": " << string_list(spec.indexes)
              << ", \"records\": " << table.count() << "}";
    first = false;
  });
  std::cout << (first ? "]\n}\n" : "\n  ]\n}\n");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 2 && (std::string_view(argv[1]) == "--help" || std::string_view(argv[1]) == "-h")) {
    std::cout << kUsage;
    return 0;
  }
  if (argc != 3) {
    std::cerr << kUsage;
    return 2;
  }
  const std::string_view command = argv[1];
  if (command != "verify" && command != "info") {
    std::cerr << "mishka-snapshot: unknown command '" << command << "'\n" << kUsage;
    return 2;
  }
  auto snapshot = load(argv[2]);
  if (!snapshot.ok()) {
    std::cerr << "mishka-snapshot: " << snapshot.status().to_string() << "\n";
    return 1;
  }
  if (command == "verify") {
    std::cout << "ok: revision " << snapshot->revision << ", " << snapshot->catalog.table_count()
              << " tables, digest " << snapshot->catalog.digest_hex() << "\n";
    return 0;
  }
  print_info(*snapshot);
  return 0;
}
