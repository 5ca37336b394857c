#include "node_support.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "engine/child_process.h"
#include "engine/deadline.h"
#include "replica/replica.h"
#include "store/catalog.h"

namespace mishka::test {

namespace fs = std::filesystem;
using engine::Deadline;
using std::chrono::milliseconds;

store::LocalNodeConfig node_config(const fs::path& dir, const std::string& name,
                                   std::uint16_t client_port, std::uint16_t peer_port) {
  store::LocalNodeConfig c;
  c.engine.node_name = name;
  c.engine.mnesia_dir = dir.string();
  c.engine.etcd_binary = etcd_binary();
  c.engine.client_port = client_port;
  c.engine.peer_port = peer_port;
  c.engine.ready_timeout = milliseconds(20000);
  c.engine.restart_backoff_min = milliseconds(50);
  c.engine.restart_backoff_max = milliseconds(400);
  c.engine.stop_grace = milliseconds(5000);
  c.engine.maintenance.interval = milliseconds(0);
  c.replica_start_timeout = milliseconds(30000);
  // No presence key: these tests count the revisions and events a node's replica sees, and a
  // presence key put at start and withdrawn at stop would add its own.
  c.presence_ttl_seconds = 0;
  return c;
}

std::pair<std::uint16_t, std::uint16_t> two_ports() {
  Result<std::vector<std::uint16_t>> ports = engine::pick_free_loopback_ports(2);
  if (!ports.ok()) {
    std::fprintf(stderr, "no free loopback ports: %s\n", ports.status().to_string().c_str());
    std::abort();
  }
  return {(*ports)[0], (*ports)[1]};
}

LogSink LogRecorder::sink() {
  return [this](LogLevel level, std::string_view line) {
    std::lock_guard lock(mu_);
    lines_.push_back(std::to_string(static_cast<int>(level)) + " " + std::string(line));
  };
}

std::vector<std::string> LogRecorder::lines() const {
  std::lock_guard lock(mu_);
  return lines_;
}

bool LogRecorder::has_line_with(const std::vector<std::string>& parts) const {
  std::lock_guard lock(mu_);
  return std::any_of(lines_.begin(), lines_.end(), [&](const std::string& line) {
    return std::all_of(parts.begin(), parts.end(), [&](const std::string& part) {
      return line.find(part) != std::string::npos;
    });
  });
}

std::string LogRecorder::dump() const {
  std::lock_guard lock(mu_);
  std::string out;
  for (const std::string& line : lines_) out += line + "\n";
  return out;
}

std::string etcd_data_dir_of(const fs::path& mnesia_dir) {
  std::error_code ignored;
  return (fs::weakly_canonical(mnesia_dir / "etcd", ignored) / "data").string();
}

TableSpec test_table(std::string name) {
  TableSpec spec;
  spec.name = std::move(name);
  spec.attributes = {"id", "writer", "n"};
  return spec;
}

Result<DigestAt> node_digest(store::LocalNode& node) {
  Status synced = node.replica().sync(Deadline::after(milliseconds(10000)));
  if (!synced.ok()) return synced;
  const replica::Replica::ReadView view = node.replica().read();
  return DigestAt{view.catalog().digest_hex(), view.revision()};
}

Result<DigestAt> fresh_rebuild_digest(store::LocalNode& node) {
  replica::ReplicaOptions options;
  options.client = &node.engine().client();
  options.node_name = node.node_name();
  auto fresh = replica::Replica::create(std::move(options));
  if (!fresh.ok()) return fresh.status();
  Status started = (*fresh)->start(Deadline::after(milliseconds(30000)));
  if (!started.ok()) return started;
  DigestAt at;
  {
    const replica::Replica::ReadView view = (*fresh)->read();
    at = DigestAt{view.catalog().digest_hex(), view.revision()};
  }
  (*fresh)->stop();
  if ((*fresh)->stats().full_loads != 1) return Status(StatusCode::internal, "not a full load");
  return at;
}

std::vector<std::string> missing_keys(store::LocalNode& node, const std::string& table,
                                      const std::vector<std::string>& keys) {
  std::vector<std::string> missing;
  for (const std::string& key : keys) {
    auto records = node.store().dirty_read(table, Value(key));
    if (!records.ok() || records->empty()) missing.push_back(key);
  }
  return missing;
}

std::vector<std::string> complete_lines(const fs::path& path) {
  const std::string bytes = read_bytes(path);
  std::vector<std::string> lines;
  std::size_t begin = 0;
  for (std::size_t end; (end = bytes.find('\n', begin)) != std::string::npos; begin = end + 1) {
    lines.push_back(bytes.substr(begin, end - begin));
  }
  return lines;
}

}  // namespace mishka::test
