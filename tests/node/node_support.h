// Helpers of the node tests: a LocalNode config on loopback ports, a log recorder, the etcd
// data directory of a node, the digest of a fresh rebuild from etcd, and a watchdog. The /proc
// scans, the bounded wait and the file helpers come from tests/support (included here).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "mishka/log.h"
#include "mishka/status.h"
#include "mishka/table_spec.h"
#include "store/local_node.h"
#include "support/file_checks.h"     // read_bytes, write_bytes, hash_tree
#include "support/process_checks.h"  // etcd_binary, eventually, processes_mentioning, ...
#include "support/watchdog.h"

namespace mishka::test {

// A node named `name` on `dir` with the given loopback ports, etcd started quickly and
// maintenance off (tests that need it turn it on).
store::LocalNodeConfig node_config(const std::filesystem::path& dir, const std::string& name,
                                   std::uint16_t client_port, std::uint16_t peer_port);

// Two free loopback ports (client, peer); aborts the test binary if none can be had.
std::pair<std::uint16_t, std::uint16_t> two_ports();

// Keeps every line logged to its sink.
class LogRecorder {
 public:
  LogSink sink();
  std::vector<std::string> lines() const;
  // True when some line contains every one of `parts`.
  bool has_line_with(const std::vector<std::string>& parts) const;
  std::string dump() const;

 private:
  mutable std::mutex mu_;
  std::vector<std::string> lines_;
};

// etcd's --data-dir for a node directory (as the engine passes it: made canonical).
std::string etcd_data_dir_of(const std::filesystem::path& mnesia_dir);

// The table the node tests write: set, attributes id (a string), writer, n.
TableSpec test_table(std::string name);

struct DigestAt {
  std::string digest_hex;
  std::int64_t revision = 0;
};
// The node's replica after a sync with etcd.
Result<DigestAt> node_digest(store::LocalNode& node);
// A second replica of the same node name, without a snapshot file, read from the node's etcd.
Result<DigestAt> fresh_rebuild_digest(store::LocalNode& node);

// The keys of `keys` that `table` lacks in the node's replica.
std::vector<std::string> missing_keys(store::LocalNode& node, const std::string& table,
                                      const std::vector<std::string>& keys);

// Complete lines of a file (a last line without its newline is left out: a writer killed while
// appending it).
std::vector<std::string> complete_lines(const std::filesystem::path& path);

}  // namespace mishka::test
