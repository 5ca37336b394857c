// The process the crash test kills (crash_test.cc): opens a node on a directory, creates the
// table "crash" if it is missing, then writes from several threads as fast as it can until it
// is killed. After each acknowledged write it appends the written key and a newline to the ack
// file with one write(2) on an O_APPEND descriptor: the kernel keeps it when the process is
// killed (the machine does not crash, so no fsync).
//
// Usage: mishka_crash_writer <mnesia_dir> <node_name> <client_port> <peer_port> <ack_file>
//                            <etcd_binary> [threads]
// Exits 2 when the node cannot be opened or the table created; runs until killed otherwise.

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "store/local_node.h"

namespace {

using mishka::Record;
using mishka::Status;
using mishka::StatusCode;
using mishka::Value;
using std::chrono::milliseconds;

void log_line(mishka::LogLevel level, std::string_view line) {
  if (level < mishka::LogLevel::warning) return;
  std::fprintf(stderr, "%.*s\n", static_cast<int>(line.size()), line.data());
}

bool append_line(int fd, const std::string& key) {
  const std::string line = key + "\n";
  return ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 7) {
    std::fprintf(stderr,
                 "usage: %s <mnesia_dir> <node_name> <client_port> <peer_port> <ack_file> "
                 "<etcd_binary> [threads]\n",
                 argv[0]);
    return 2;
  }
  const int threads = argc > 7 ? std::atoi(argv[7]) : 4;

  mishka::store::LocalNodeConfig config;
  config.engine.mnesia_dir = argv[1];
  config.engine.node_name = argv[2];
  config.engine.client_port = static_cast<std::uint16_t>(std::atoi(argv[3]));
  config.engine.peer_port = static_cast<std::uint16_t>(std::atoi(argv[4]));
  config.engine.etcd_binary = argv[6];
  config.engine.ready_timeout = milliseconds(20000);
  config.engine.maintenance.interval = milliseconds(1000);
  config.engine.maintenance.retention_revisions = 2000;
  config.engine.maintenance.compaction_min_step = 500;
  config.log = log_line;
  config.store.max_in_flight = 2;

  const int ack_fd = ::open(argv[5], O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (ack_fd < 0) {
    std::perror("ack file");
    return 2;
  }

  auto node = mishka::store::LocalNode::open(config);
  if (!node.ok()) {
    std::fprintf(stderr, "open: %s\n", node.status().to_string().c_str());
    return 2;
  }
  mishka::TableSpec spec;
  spec.name = "crash";
  spec.attributes = {"id", "writer", "n"};
  Status created = (*node)->store().create_table(spec);
  if (!created.ok() && created.code() != StatusCode::already_exists) {
    std::fprintf(stderr, "create_table: %s\n", created.to_string().c_str());
    return 2;
  }
  std::fprintf(stderr, "writer %d: node open at revision %lld\n", static_cast<int>(::getpid()),
               static_cast<long long>((*node)->replica().applied_revision()));

  mishka::Store& store = (*node)->store();
  const std::string run = std::to_string(::getpid());
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      for (std::int64_t i = 0;; ++i) {
        const std::string key = run + "-" + std::to_string(t) + "-" + std::to_string(i);
        const Record record{Value(key), Value(run), Value(i)};
        Status s;
        if (i % 4 == 3) {
          s = store.dirty_write("crash", record);
        } else {
          // Read the key (absent) and write it: the commit compares the read.
          s = store.transaction([&](mishka::Transaction& txn) {
            auto found = txn.read("crash", Value(key));
            if (!found.ok()) return found.status();
            return txn.write("crash", record);
          });
        }
        if (s.ok()) {
          if (!append_line(ack_fd, key)) std::abort();
        } else {
          std::fprintf(stderr, "write %s: %s\n", key.c_str(), s.to_string().c_str());
          std::this_thread::sleep_for(milliseconds(20));
        }
      }
    });
  }
  for (auto& worker : workers) worker.join();  // never: the test kills this process
  return 0;
}
