// The node process of the fault tests (tests/node/crash_test.cc, tests/cluster/chaos_test.cc):
// opens a node on a directory, as a seed or as a member of its peers' cluster, waits for its
// table (a seed creates it), says it is ready, then writes unique keys from several threads as
// fast as it can until it is killed, or until SIGTERM or SIGINT, on which it stops its threads
// and the node and exits 0.
//
// After each acknowledged write it appends the written key and a newline to the ack file with
// one write(2) on an O_APPEND descriptor: the kernel keeps it when the process is killed (the
// machine does not crash, so no fsync). Keys are "<name>/<run>-<thread>-<i>": unique across
// nodes, and across the starts of one node when each start gets its own --run.
//
// Usage: mishka_crash_writer --dir DIR --name NAME --client-port PORT --peer-port PORT
//            --ack-file FILE [--etcd BINARY] [--peers NAME,NAME...] [--table TABLE]
//            [--threads N] [--run ID] [--ready-file FILE]
//   --peers       empty (the default): a seed, which bootstraps a cluster and creates the table;
//                 else the node joins its peers' cluster at its first start
//   --table       default "crash"
//   --threads     writing threads, default 4; 0: the node runs without writing
//   --run         the key's run part, default the pid
//   --ready-file  created (holding the pid) once the node is open and the table exists; "ready"
//                 is printed on stdout then, either way
// Exits 2 on a bad command line, or when the node cannot be opened or the table be had.

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>
#include <sstream>
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

constexpr char kUsage[] =
    "usage: %s --dir DIR --name NAME --client-port PORT --peer-port PORT --ack-file FILE\n"
    "          [--etcd BINARY] [--peers NAME,NAME...] [--table TABLE] [--threads N] [--run ID]\n"
    "          [--ready-file FILE]\n";

struct Options {
  std::string dir;
  std::string name;
  std::uint16_t client_port = 0;
  std::uint16_t peer_port = 0;
  std::string ack_file;
  std::string etcd = "etcd";
  std::vector<std::string> peers;
  std::string table = "crash";
  int threads = 4;
  std::string run;
  std::string ready_file;
};

std::vector<std::string> split_commas(const std::string& text) {
  std::vector<std::string> parts;
  std::istringstream in(text);
  for (std::string part; std::getline(in, part, ',');) {
    if (!part.empty()) parts.push_back(part);
  }
  return parts;
}

// "--flag value" pairs; each read takes its flag, and errors() names what was wrong or left.
class Flags {
 public:
  Flags(int argc, char** argv) {
    for (int i = 1; i < argc; i += 2) {
      const std::string flag = argv[i];
      if (flag.rfind("--", 0) != 0 || i + 1 >= argc) {
        errors_ += " expected --flag value at " + flag + ";";
        return;
      }
      values_[flag.substr(2)] = argv[i + 1];
    }
  }

  std::string text(const std::string& flag, std::string fallback = {}) {
    auto it = values_.find(flag);
    if (it == values_.end()) return fallback;
    std::string value = std::move(it->second);
    values_.erase(it);
    return value;
  }
  std::string required(const std::string& flag) {
    if (values_.count(flag) == 0) errors_ += " --" + flag + " is missing;";
    return text(flag);
  }
  int number(const std::string& flag, int min, int max, std::optional<int> fallback) {
    if (values_.count(flag) == 0) {
      if (fallback) return *fallback;
      errors_ += " --" + flag + " is missing;";
      return min;
    }
    const std::string value = text(flag);
    char* end = nullptr;
    const long parsed = std::strtol(value.c_str(), &end, 10);
    if (value.empty() || *end != '\0' || parsed < min || parsed > max) {
      errors_ += " --" + flag + " " + value + " is not in [" + std::to_string(min) + ", " +
                 std::to_string(max) + "];";
      return min;
    }
    return static_cast<int>(parsed);
  }
  std::string errors() const {
    std::string all = errors_;
    for (const auto& [flag, value] : values_) all += " unknown flag --" + flag + ";";
    return all;
  }

 private:
  std::map<std::string, std::string> values_;
  std::string errors_;
};

// The options, or nullopt after printing what is wrong.
std::optional<Options> parse_options(int argc, char** argv) {
  Flags flags(argc, argv);
  Options o;
  o.dir = flags.required("dir");
  o.name = flags.required("name");
  o.client_port = static_cast<std::uint16_t>(flags.number("client-port", 1, 65535, {}));
  o.peer_port = static_cast<std::uint16_t>(flags.number("peer-port", 1, 65535, {}));
  o.ack_file = flags.required("ack-file");
  o.etcd = flags.text("etcd", o.etcd);
  o.peers = split_commas(flags.text("peers"));
  o.table = flags.text("table", o.table);
  o.threads = flags.number("threads", 0, 64, o.threads);
  o.run = flags.text("run", std::to_string(::getpid()));
  o.ready_file = flags.text("ready-file");
  const std::string errors = flags.errors();
  if (!errors.empty()) {
    std::fprintf(stderr, "%s:%s\n", argv[0], errors.c_str());
    return std::nullopt;
  }
  return o;
}

void log_line(mishka::LogLevel level, std::string_view line) {
  if (level < mishka::LogLevel::warning) return;
  std::fprintf(stderr, "%.*s\n", static_cast<int>(line.size()), line.data());
}

bool append_line(int fd, const std::string& key) {
  const std::string line = key + "\n";
  return ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
}

// Written whole under a temporary name, then renamed: a reader sees no file or all of it.
bool write_ready_file(const std::string& path) {
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return false;
  const bool written = append_line(fd, std::to_string(::getpid()));
  return ::close(fd) == 0 && written && ::rename(tmp.c_str(), path.c_str()) == 0;
}

// A seed creates the table (asking again while etcd cannot answer: a timeout's write may have
// happened, and the next attempt then finds the table); every node then waits for it.
Status have_table(mishka::store::LocalNode& node, const Options& o) {
  if (o.peers.empty()) {
    mishka::TableSpec spec;
    spec.name = o.table;
    spec.attributes = {"id", "writer", "n"};
    const auto give_up = std::chrono::steady_clock::now() + milliseconds(30000);
    while (true) {
      Status created = node.store().create_table(spec);
      if (created.ok() || created.code() == StatusCode::already_exists) break;
      if (std::chrono::steady_clock::now() > give_up) return created;
      std::this_thread::sleep_for(milliseconds(200));
    }
  }
  return node.wait_for_tables({o.table}, milliseconds(30000)).status;
}

void write_until_stopped(mishka::Store& store, const Options& o, int thread, int ack_fd,
                         const std::atomic<bool>& stopping) {
  const std::string prefix = o.name + "/" + o.run + "-" + std::to_string(thread) + "-";
  for (std::int64_t i = 0; !stopping.load(); ++i) {
    const std::string key = prefix + std::to_string(i);
    const Record record{Value(key), Value(o.run), Value(i)};
    Status s;
    if (i % 4 == 3) {
      s = store.dirty_write(o.table, record);
    } else {
      // Read the key (absent) and write it: the commit compares the read.
      s = store.transaction([&](mishka::Transaction& txn) {
        auto found = txn.read(o.table, Value(key));
        if (!found.ok()) return found.status();
        return txn.write(o.table, record);
      });
    }
    if (s.ok()) {
      if (!append_line(ack_fd, key)) std::abort();
    } else {
      std::fprintf(stderr, "write %s: %s\n", key.c_str(), s.to_string().c_str());
      std::this_thread::sleep_for(milliseconds(20));
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  const std::optional<Options> options = parse_options(argc, argv);
  if (!options) {
    std::fprintf(stderr, kUsage, argv[0]);
    return 2;
  }
  const Options& o = *options;

  // Blocked before any thread starts, so that every thread inherits the mask and only the
  // sigwait() below takes them (etcd's children get a clean mask from the spawn).
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  ::pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  mishka::store::LocalNodeConfig config;
  config.engine.mnesia_dir = o.dir;
  config.engine.node_name = o.name;
  config.engine.client_port = o.client_port;
  config.engine.peer_port = o.peer_port;
  config.engine.etcd_binary = o.etcd;
  config.engine.peers = o.peers;
  config.engine.ready_timeout = milliseconds(20000);
  config.engine.stop_grace = milliseconds(5000);
  config.engine.maintenance.interval = milliseconds(1000);
  config.engine.maintenance.retention_revisions = 2000;
  config.engine.maintenance.compaction_min_step = 500;
  config.log = log_line;
  config.store.max_in_flight = 2;

  const int ack_fd = ::open(o.ack_file.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (ack_fd < 0) {
    std::perror("ack file");
    return 2;
  }

  auto node = mishka::store::LocalNode::open(config);
  if (!node.ok()) {
    std::fprintf(stderr, "open: %s\n", node.status().to_string().c_str());
    return 2;
  }
  const Status table = have_table(**node, o);
  if (!table.ok()) {
    std::fprintf(stderr, "table %s: %s\n", o.table.c_str(), table.to_string().c_str());
    return 2;
  }
  if (!o.ready_file.empty() && !write_ready_file(o.ready_file)) {
    std::perror("ready file");
    return 2;
  }
  std::printf("writer %d: ready, node %s open at revision %lld\n", static_cast<int>(::getpid()),
              o.name.c_str(), static_cast<long long>((*node)->replica().applied_revision()));
  std::fflush(stdout);

  std::atomic<bool> stopping{false};
  std::vector<std::thread> workers;
  for (int t = 0; t < o.threads; ++t) {
    workers.emplace_back([&, t] { write_until_stopped((*node)->store(), o, t, ack_fd, stopping); });
  }
  int signal = 0;
  ::sigwait(&stop_signals, &signal);
  stopping.store(true);
  for (auto& worker : workers) worker.join();
  (*node)->stop();
  std::printf("writer %d: stopped on signal %d\n", static_cast<int>(::getpid()), signal);
  return 0;
}
