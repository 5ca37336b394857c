// mishkad and mishkactl as real processes on loopback (CONTRACT.md section 11,
// docs/operations.md): a seed and two joiners that replicate a record over the admin HTTP,
// refuse bad input, pass promtool, refuse writes without a quorum and stop cleanly with their
// etcd members; a joiner started before its seed, pending until the seed comes; flags and
// configuration files refused (exit 2) before anything is created.
//
// Under ctest every TEST runs in a process of its own, so the cluster is built once in one
// test that checks everything a running cluster can show; each step is a helper named after
// what it checks.
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/child_process.h"
#include "support/file_checks.h"
#include "support/process_checks.h"
#include "support/temp_dir.h"
#include "support/watchdog.h"

namespace mishka::test {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// The node's --wait-timeout: also the bound of a write that finds no quorum.
constexpr milliseconds kWaitTimeout{3000};
// Bounds of the waits below: generous, because CI runs other clusters on the same two cores.
constexpr milliseconds kReadyBound{60000};
constexpr milliseconds kStopBound{60000};
constexpr milliseconds kReplicationBound{15000};
constexpr milliseconds kPollInterval{100};

// The two essential tables (CONTRACT.md section 9).
const std::vector<std::string> kEssentialTables = {"installer", "event"};

// A body for PUT /tables/installer/records/{key}: every attribute of `installer` but its key `id`
// (src/repo, default_essential_tables()).
json sample_installer_record() {
  return json{{"app", "mishka_core"},
              {"version", "0.1.8"},
              {"type", "plugin"},
              {"path", "/opt/mishka/core"},
              {"tag", "stable"},
              {"asset", nullptr},
              {"checksum", "9f2c"},
              {"depends", json::array({"mishka_content"})},
              {"prepend_paths", json::array()},
              {"inserted_at", 1700000000},
              {"updated_at", 1700000001}};
}

// Polls `condition` every kPollInterval until it holds (true) or `timeout` passed (false).
bool poll_until(const std::function<bool()>& condition, milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (!condition()) {
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(kPollInterval);
  }
  return true;
}

milliseconds since(Clock::time_point began) {
  return std::chrono::duration_cast<milliseconds>(Clock::now() - began);
}

bool loopback_port_free(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  const bool bound = ::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) == 0;
  ::close(fd);
  return bound;
}

// A node's ports: `node` is its etcd client port (the PORT of its name); its etcd peer port is
// node+1 and, with TLS on, etcd's metrics listener node+2 (the defaults mishkad uses); `admin`
// is the admin HTTP.
struct NodePorts {
  std::uint16_t node = 0;
  std::uint16_t admin = 0;
};

// Free ports from the support's picker, with the two after the node port checked free too.
NodePorts pick_node_ports() {
  for (int attempt = 0; attempt < 500; ++attempt) {
    Result<std::vector<std::uint16_t>> picked = pick_free_loopback_ports(2);
    if (!picked.ok()) break;
    const std::uint16_t base = (*picked)[0];
    const std::uint16_t admin = (*picked)[1];
    if (base > 65533 || admin == base + 1 || admin == base + 2) continue;
    if (loopback_port_free(base + 1) && loopback_port_free(base + 2)) return {base, admin};
  }
  std::fprintf(stderr, "no three consecutive free loopback ports found\n");
  std::abort();
}

// An HTTP reply; status 0 when no reply came (`body` then says why).
struct Reply {
  int status = 0;
  std::string body;
  json parsed() const { return json::parse(body, nullptr, /*allow_exceptions=*/false); }
  std::string error_code() const {
    const json j = parsed();
    return j.is_object() && j.contains("error") && j["error"].is_string()
               ? j["error"].get<std::string>()
               : "";
  }
};

Reply http(std::uint16_t port, const std::string& method, const std::string& path,
           const std::string& body = "") {
  httplib::Client client("127.0.0.1", port);
  client.set_connection_timeout(std::chrono::seconds(2));
  client.set_read_timeout(std::chrono::seconds(30));
  client.set_write_timeout(std::chrono::seconds(30));
  httplib::Result result = method == "PUT"      ? client.Put(path, body, "application/json")
                           : method == "DELETE" ? client.Delete(path)
                                                : client.Get(path);
  if (!result) return Reply{0, "no reply: " + httplib::to_string(result.error())};
  return Reply{result->status, result->body};
}

std::string record_path(const std::string& table, const std::string& key) {
  return "/tables/" + table + "/records/" + key;
}

// A program run to its end with stdout and stderr kept apart.
struct ProgramRun {
  int exit_code = -1;  // -1: killed by a signal, or not started
  std::string out;
  std::string err;
  std::string describe() const {
    return "exit " + std::to_string(exit_code) + "\nstdout: " + out + "\nstderr: " + err;
  }
};

// Runs `program` through sh and env(1): sh redirects its streams (ChildProcess would send both to
// one log), env applies the `env` words (NAME=VALUE, or -u NAME); stdin is `stdin_path`.
class Runner {
 public:
  explicit Runner(fs::path scratch) : scratch_(std::move(scratch)) {}

  // Starts the program; finish() waits for it.
  struct Started {
    std::optional<ChildProcess> child;
    fs::path out;
    fs::path err;
  };
  Started start(const std::string& program, const std::vector<std::string>& args,
                const std::vector<std::string>& env = {},
                const std::string& stdin_path = "/dev/null") {
    const std::string id = std::to_string(++runs_);
    Started s{std::nullopt, scratch_ / ("run" + id + ".out"), scratch_ / ("run" + id + ".err")};
    std::vector<std::string> sh_args;
    sh_args.push_back("-c");
    sh_args.push_back(R"(out=$1; err=$2; in=$3; shift 3; exec env "$@" >"$out" 2>"$err" <"$in")");
    sh_args.push_back("sh");  // $0
    sh_args.insert(sh_args.end(), {s.out.string(), s.err.string(), stdin_path});
    sh_args.insert(sh_args.end(), env.begin(), env.end());
    sh_args.push_back(program);
    sh_args.insert(sh_args.end(), args.begin(), args.end());
    Result<ChildProcess> child = ChildProcess::spawn({.program = "/bin/sh", .args = sh_args});
    EXPECT_TRUE(child.ok()) << child.status().to_string();
    if (child.ok()) s.child.emplace(std::move(child).value());
    return s;
  }

  static ProgramRun finish(Started& s, milliseconds bound = milliseconds(30000)) {
    ProgramRun run;
    if (!s.child) return run;
    std::optional<ExitInfo> exit = s.child->wait_for(bound);
    EXPECT_TRUE(exit.has_value()) << "still running after " << bound.count() << " ms";
    if (!exit) exit = s.child->stop();
    run.exit_code = exit->signaled ? -1 : exit->code;
    run.out = read_bytes(s.out);
    run.err = read_bytes(s.err);
    return run;
  }

  ProgramRun run(const std::string& program, const std::vector<std::string>& args,
                 const std::vector<std::string>& env = {},
                 const std::string& stdin_path = "/dev/null") {
    Started s = start(program, args, env, stdin_path);
    return finish(s);
  }

 private:
  fs::path scratch_;
  int runs_ = 0;
};

// The events of a telemetry log (one JSON object a line) named `segments` whose metadata has
// every pair of `metadata`.
std::vector<json> logged_events(const fs::path& log, const std::vector<std::string>& segments,
                                const std::map<std::string, std::string>& metadata = {}) {
  std::vector<json> found;
  std::istringstream lines(read_bytes(log));
  for (std::string line; std::getline(lines, line);) {
    const json event = json::parse(line, nullptr, false);
    if (!event.is_object() || event.value("event", json()) != json(segments)) continue;
    const json meta = event.value("metadata", json::object());
    const bool matches = std::all_of(metadata.begin(), metadata.end(), [&](const auto& pair) {
      return meta.contains(pair.first) && meta[pair.first] == pair.second;
    });
    if (matches) found.push_back(event);
  }
  return found;
}

// One mishkad of a test: its name, ports, directory and files, and its process once started.
struct Daemon {
  std::string label;  // "seed", "j1", ...
  std::string name;   // <label>@127.0.0.1:<node port>
  NodePorts ports;
  fs::path dir;  // --dir
  fs::path telemetry_log;
  fs::path output_log;  // mishkad's stdout and stderr
  std::optional<ChildProcess> process;
  std::vector<pid_t> etcd_pids;  // its etcd member, seen while it ran

  std::string admin() const { return "127.0.0.1:" + std::to_string(ports.admin); }
  pid_t pid() const { return process ? process->pid() : -1; }
};

class MishkadE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    Result<TempDir> root = TempDir::Create("mishkad-e2e-");
    ASSERT_TRUE(root.ok()) << root.status().to_string();
    root_.emplace(std::move(root).value());
    runner_.emplace(root_->path());
    // One cookie for every node: TLS between the etcd members, as an operator would run them.
    cookie_ = root_->path() / "cookie";
    write_bytes(cookie_, "e2e-test-cookie-0123456789abcdef");
    ASSERT_EQ(::chmod(cookie_.c_str(), 0400), 0);
  }

  // Every node still running is stopped by its pid, on failure too: SIGTERM to all first (so
  // that they leave together while they still have a quorum for their last calls), then a
  // bounded wait each, then SIGKILL.
  void TearDown() override {
    for (Daemon& d : daemons_) {
      if (d.process && !d.process->poll()) (void)d.process->signal(SIGTERM);
    }
    for (Daemon& d : daemons_) {
      if (!d.process) continue;
      const ExitInfo exit = d.process->stop(milliseconds(20000));
      if (HasFailure()) {
        std::fprintf(stderr, "--- %s (%s) ended: %s; its output:\n%s\n", d.label.c_str(),
                     d.name.c_str(), exit.to_string().c_str(),
                     tail_of_file(d.output_log.string(), 60).c_str());
      }
    }
  }

  Daemon& add_daemon(const std::string& label) {
    Daemon& d = daemons_.emplace_back();
    d.label = label;
    d.ports = pick_node_ports();
    d.name = label + "@127.0.0.1:" + std::to_string(d.ports.node);
    d.dir = root_->path() / label / "data";
    d.telemetry_log = root_->path() / label / "telemetry.jsonl";
    d.output_log = root_->path() / label / "output.log";
    fs::create_directories(root_->path() / label);
    return d;
  }

  // The flags of an operator's node (CONTRACT.md section 11); `peers` empty: a seed.
  std::vector<std::string> daemon_args(const Daemon& d, const std::vector<std::string>& peers) {
    std::vector<std::string> args = {"--node",
                                     d.name,
                                     "--dir",
                                     d.dir.string(),
                                     "--admin",
                                     d.admin(),
                                     "--cookie-file",
                                     cookie_.string(),
                                     "--telemetry-log",
                                     d.telemetry_log.string(),
                                     "--wait-timeout",
                                     std::to_string(kWaitTimeout.count()),
                                     "--health-interval",
                                     "1000"};
    if (!peers.empty()) {
      std::string list;
      for (const std::string& p : peers) list += (list.empty() ? "" : ",") + p;
      args.insert(args.end(), {"--cluster-nodes", list});
    }
    // etcd is found on PATH unless the tests were pointed at another binary.
    if (const char* etcd = std::getenv("MISHKA_ETCD"); etcd != nullptr && *etcd != '\0') {
      args.insert(args.end(), {"--etcd", etcd});
    }
    return args;
  }

  void start(Daemon& d, const std::vector<std::string>& peers = {}) {
    Result<ChildProcess> child = ChildProcess::spawn(
        {.program = MISHKAD, .args = daemon_args(d, peers), .log_path = d.output_log.string()});
    ASSERT_TRUE(child.ok()) << child.status().to_string();
    d.process.emplace(std::move(child).value());
  }

  // Polls /readyz until 200 (bounded); fails with the node's output otherwise.
  void wait_ready(const Daemon& d) {
    const auto began = Clock::now();
    Reply last;
    const bool ready = poll_until(
        [&] {
          last = http(d.ports.admin, "GET", "/readyz");
          return last.status == 200;
        },
        kReadyBound);
    ASSERT_TRUE(ready) << d.label << " not ready; last /readyz: " << last.status << " " << last.body
                       << "\n"
                       << tail_of_file(d.output_log.string());
    EXPECT_EQ(last.parsed(), json({{"status", "synchronized"}})) << last.body;
    std::printf("%s ready after %lld ms\n", d.label.c_str(),
                static_cast<long long>(since(began).count()));
  }

  // The node's etcd member: the processes other than mishkad that name its directory.
  std::vector<pid_t> etcd_pids_of(const Daemon& d) {
    std::vector<pid_t> pids = processes_mentioning(d.dir.string());
    pids.erase(std::remove(pids.begin(), pids.end(), d.pid()), pids.end());
    return pids;
  }

  // After SIGTERM: the node exited 0 within kStopBound (`exit` is what the wait saw), and its
  // etcd member is gone with it.
  void expect_clean_stop(Daemon& d, std::optional<ExitInfo> exit) {
    ASSERT_TRUE(exit.has_value()) << d.label << " still runs " << kStopBound.count()
                                  << " ms after SIGTERM\n"
                                  << tail_of_file(d.output_log.string());
    EXPECT_FALSE(exit->signaled) << d.label << ": " << exit->to_string();
    EXPECT_EQ(exit->code, 0) << d.label << ": " << exit->to_string() << "\n"
                             << tail_of_file(d.output_log.string());
    for (pid_t etcd : d.etcd_pids) {
      EXPECT_TRUE(poll_until([&] { return process_ended(etcd); }, milliseconds(5000)))
          << d.label << "'s etcd (pid " << etcd << ") outlived its node";
    }
    EXPECT_TRUE(no_process_mentions(d.dir.string(), milliseconds(5000)))
        << "a process still names " << d.dir;
  }

  ProgramRun mishkactl(const Daemon& d, const std::vector<std::string>& command) {
    std::vector<std::string> args = {"--admin", d.admin()};
    args.insert(args.end(), command.begin(), command.end());
    return runner_->run(MISHKACTL, args);
  }

  std::optional<TempDir> root_;
  std::optional<Runner> runner_;
  fs::path cookie_;
  std::deque<Daemon> daemons_;  // a deque: references stay valid as daemons are added
};

// --- The three-node cluster, step by step -----------------------------------------------------

// A record written on one joiner is read on the other (replicas apply asynchronously: polled).
void check_record_replicates(const Daemon& writer, const Daemon& reader) {
  Reply put = http(writer.ports.admin, "PUT", record_path("installer", "core-1"),
                   sample_installer_record().dump());
  ASSERT_EQ(put.status, 200) << put.body;
  json expected = sample_installer_record();
  expected["id"] = "core-1";
  EXPECT_EQ(put.parsed(), json({{"table", "installer"}, {"key", "core-1"}, {"record", expected}}))
      << put.body;

  Reply got;
  const bool seen = poll_until(
      [&] {
        got = http(reader.ports.admin, "GET", record_path("installer", "core-1"));
        return got.status == 200;
      },
      kReplicationBound);
  ASSERT_TRUE(seen) << "last GET on " << reader.label << ": " << got.status << " " << got.body;
  EXPECT_EQ(got.parsed(), expected) << got.body;
}

// The telemetry log of a joiner: each essential table `copied`, and a cluster.nodeup event.
void check_joiner_telemetry(const Daemon& joiner) {
  for (const std::string& table : kEssentialTables) {
    EXPECT_EQ(logged_events(joiner.telemetry_log, {"mishka_installer", "mnesia", "table"},
                            {{"table", table}, {"status", "copied"}})
                  .size(),
              1u)
        << joiner.label << ", table " << table << ":\n"
        << read_bytes(joiner.telemetry_log);
  }
  // A nodeup arrives once the node monitor sees the others: polled.
  EXPECT_TRUE(poll_until(
      [&] {
        return !logged_events(joiner.telemetry_log,
                              {"mishka_installer", "mnesia", "cluster", "nodeup"}, {})
                    .empty();
      },
      kReplicationBound))
      << joiner.label << " logged no cluster.nodeup:\n"
      << read_bytes(joiner.telemetry_log);
}

std::set<std::string> member_names(const json& state) {
  std::set<std::string> names;
  for (const json& m : state.value("members", json::array())) {
    names.insert(m.value("node", std::string()));
  }
  return names;
}

// Bad requests get 400, 404 or 413 with a body naming the problem, and change nothing.
void check_bad_requests_change_nothing(const Daemon& node) {
  json expected = sample_installer_record();
  expected["id"] = "core-1";
  const std::string path = record_path("installer", "core-1");
  auto record_intact = [&](const std::string& after) {
    Reply got = http(node.ports.admin, "GET", path);
    EXPECT_EQ(got.status, 200) << "after " << after << ": " << got.body;
    EXPECT_EQ(got.parsed(), expected) << "after " << after << ": " << got.body;
  };
  // Replicas apply asynchronously: the record must have reached this node first.
  ASSERT_TRUE(poll_until([&] { return http(node.ports.admin, "GET", path).status == 200; },
                         kReplicationBound));

  Reply bad_json = http(node.ports.admin, "PUT", path, R"({"app": "mishka_core", )");
  EXPECT_EQ(bad_json.status, 400) << bad_json.body;
  EXPECT_EQ(bad_json.error_code(), "invalid_argument") << bad_json.body;
  std::string message = bad_json.parsed().value("message", std::string());
  std::transform(message.begin(), message.end(), message.begin(), ::tolower);
  EXPECT_NE(message.find("json"), std::string::npos) << bad_json.body;
  record_intact("a body that is not JSON");

  Reply no_table = http(node.ports.admin, "PUT", record_path("no_such_table", "core-1"),
                        sample_installer_record().dump());
  EXPECT_EQ(no_table.status, 404) << no_table.body;
  EXPECT_NE(no_table.body.find("no_such_table"), std::string::npos) << no_table.body;
  Reply no_table_get = http(node.ports.admin, "GET", record_path("no_such_table", "core-1"));
  EXPECT_EQ(no_table_get.status, 404) << no_table_get.body;
  record_intact("an unknown table");

  json oversized = sample_installer_record();
  oversized["path"] = std::string((1 << 20) + 1, 'x');
  Reply too_large = http(node.ports.admin, "PUT", path, oversized.dump());
  EXPECT_EQ(too_large.status, 413) << too_large.body.substr(0, 300);
  EXPECT_EQ(too_large.error_code(), "payload_too_large") << too_large.body.substr(0, 300);
  record_intact("a body over 1 MiB");

  json unknown_attribute = sample_installer_record();
  unknown_attribute["colour"] = "blue";
  Reply refused = http(node.ports.admin, "PUT", path, unknown_attribute.dump());
  EXPECT_EQ(refused.status, 400) << refused.body;
  EXPECT_EQ(refused.error_code(), "invalid_argument") << refused.body;
  EXPECT_NE(refused.body.find("colour"), std::string::npos) << refused.body;
  record_intact("an unknown attribute");
}

// /metrics passes `promtool check metrics` (the body on its stdin).
void check_metrics_pass_promtool(const Daemon& node, Runner& runner, const fs::path& scratch) {
  Reply metrics = http(node.ports.admin, "GET", "/metrics");
  ASSERT_EQ(metrics.status, 200) << metrics.body;
  EXPECT_NE(metrics.body.find("# TYPE"), std::string::npos) << metrics.body;
  const fs::path body = scratch / "metrics.txt";
  write_bytes(body, metrics.body);
  ProgramRun promtool = runner.run("/usr/bin/promtool", {"check", "metrics"}, {}, body.string());
  EXPECT_EQ(promtool.exit_code, 0) << promtool.describe() << "\n" << metrics.body;
}

TEST_F(MishkadE2E, ASeedAndTwoJoinersReplicateRefuseBadInputAndStopCleanly) {
  Watchdog watchdog(milliseconds(300000));
  const auto began = Clock::now();
  Daemon& seed = add_daemon("seed");
  Daemon& j1 = add_daemon("j1");
  Daemon& j2 = add_daemon("j2");

  ASSERT_NO_FATAL_FAILURE(start(seed));
  ASSERT_NO_FATAL_FAILURE(wait_ready(seed));
  // Both joiners at once: their joins take turns (docs/cluster.md, "Joining").
  ASSERT_NO_FATAL_FAILURE(start(j1, {seed.name, j2.name}));
  ASSERT_NO_FATAL_FAILURE(start(j2, {seed.name, j1.name}));
  ASSERT_NO_FATAL_FAILURE(wait_ready(j1));
  ASSERT_NO_FATAL_FAILURE(wait_ready(j2));

  {
    SCOPED_TRACE("replication between the joiners");
    ASSERT_NO_FATAL_FAILURE(check_record_replicates(j1, j2));
  }
  {
    SCOPED_TRACE("mishkactl state");
    const ProgramRun state = mishkactl(seed, {"state"});
    ASSERT_EQ(state.exit_code, 0) << state.describe();
    const json parsed = json::parse(state.out, nullptr, false);
    EXPECT_EQ(parsed.value("status", std::string()), "synchronized") << state.out;
    EXPECT_EQ(member_names(parsed), (std::set<std::string>{seed.name, j1.name, j2.name}))
        << state.out;
  }
  {
    SCOPED_TRACE("telemetry logs");
    check_joiner_telemetry(j1);
    check_joiner_telemetry(j2);
  }
  {
    SCOPED_TRACE("bad requests");
    check_bad_requests_change_nothing(seed);
  }
  {
    SCOPED_TRACE("metrics");
    check_metrics_pass_promtool(seed, *runner_, root_->path());
  }

  for (Daemon* d : {&seed, &j1, &j2}) {
    d->etcd_pids = etcd_pids_of(*d);
    EXPECT_EQ(d->etcd_pids.size(), 1u) << d->label << " should run one etcd member (a voter)";
  }

  // The joiners leave together (a clean stop needs the quorum for its last etcd calls).
  ASSERT_TRUE(j1.process->signal(SIGTERM).ok());
  ASSERT_TRUE(j2.process->signal(SIGTERM).ok());
  expect_clean_stop(j1, j1.process->wait_for(kStopBound));
  expect_clean_stop(j2, j2.process->wait_for(kStopBound));

  {
    SCOPED_TRACE("a write without quorum");
    // Until the seed's etcd member knows it has no leader, a write may still be proposed and
    // end in `timeout` (docs/cluster.md, "Writes without a quorum"): wait for that first.
    Reply health;
    ASSERT_TRUE(poll_until(
        [&] {
          health = http(seed.ports.admin, "GET", "/healthz");
          return health.status != 0 && health.parsed().value("member_healthy", true) == false;
        },
        milliseconds(20000)))
        << "the seed's member still reports a leader: " << health.body;
    // mishkactl and the HTTP request wait for the quorum side by side.
    Runner::Started ctl = runner_->start(MISHKACTL, {"--admin", seed.admin(), "put", "installer",
                                                     "core-2", sample_installer_record().dump()});
    const auto put_began = Clock::now();
    Reply refused = http(seed.ports.admin, "PUT", record_path("installer", "core-3"),
                         sample_installer_record().dump());
    const milliseconds took = since(put_began);
    EXPECT_EQ(refused.status, 503) << refused.body;
    EXPECT_EQ(refused.error_code(), "no_quorum") << refused.body;
    // Answered within wait_timeout (plus the cancellation of a call and CI's slowness).
    EXPECT_LT(took.count(), (kWaitTimeout + milliseconds(4000)).count());
    std::printf("no_quorum answered after %lld ms\n", static_cast<long long>(took.count()));
    const ProgramRun ctl_run = Runner::finish(ctl);
    EXPECT_EQ(ctl_run.exit_code, 1) << ctl_run.describe();
    EXPECT_NE(ctl_run.err.find("no_quorum"), std::string::npos) << ctl_run.describe();
  }

  seed.etcd_pids = etcd_pids_of(seed);
  ASSERT_TRUE(seed.process->signal(SIGTERM).ok());
  const auto stop_began = Clock::now();
  expect_clean_stop(seed, seed.process->wait_for(kStopBound));
  std::printf("the seed alone stopped in %lld ms; whole test %lld ms\n",
              static_cast<long long>(since(stop_began).count()),
              static_cast<long long>(since(began).count()));
}

// --- A joiner before its seed -----------------------------------------------------------------

TEST_F(MishkadE2E, AJoinerStartedBeforeItsSeedIsPendingUntilTheSeedStarts) {
  Watchdog watchdog(milliseconds(240000));
  Daemon& seed = add_daemon("seed");
  Daemon& joiner = add_daemon("joiner");

  ASSERT_NO_FATAL_FAILURE(start(joiner, {seed.name}));
  Reply state;
  ASSERT_TRUE(poll_until(
      [&] {
        state = http(joiner.ports.admin, "GET", "/state");
        return state.status == 200;
      },
      kReadyBound))
      << "no /state from the joiner: " << state.status << " " << state.body << "\n"
      << tail_of_file(joiner.output_log.string());
  EXPECT_EQ(state.parsed().value("status", std::string()), "pending") << state.body;
  Reply ready = http(joiner.ports.admin, "GET", "/readyz");
  EXPECT_EQ(ready.status, 503) << ready.body;
  EXPECT_EQ(ready.parsed(), json({{"status", "pending"}})) << ready.body;

  ASSERT_NO_FATAL_FAILURE(start(seed));
  ASSERT_NO_FATAL_FAILURE(wait_ready(seed));
  ASSERT_NO_FATAL_FAILURE(wait_ready(joiner));
  state = http(joiner.ports.admin, "GET", "/state");
  EXPECT_EQ(state.parsed().value("status", std::string()), "synchronized") << state.body;

  for (Daemon* d : {&seed, &joiner}) d->etcd_pids = etcd_pids_of(*d);
  ASSERT_TRUE(joiner.process->signal(SIGTERM).ok());
  ASSERT_TRUE(seed.process->signal(SIGTERM).ok());
  expect_clean_stop(joiner, joiner.process->wait_for(kStopBound));
  expect_clean_stop(seed, seed.process->wait_for(kStopBound));
}

// --- Refused before anything is touched -------------------------------------------------------

class MishkadRefuses : public ::testing::Test {
 protected:
  void SetUp() override {
    Result<TempDir> root = TempDir::Create("mishkad-refuses-");
    ASSERT_TRUE(root.ok()) << root.status().to_string();
    root_.emplace(std::move(root).value());
    runner_.emplace(root_->path());
    home_ = root_->path() / "home";
    fs::create_directories(home_);
    dir_ = root_->path() / "never-created";
    cookie_ = root_->path() / "cookie";
    write_bytes(cookie_, "refusal-test-cookie-0123456789");
    ASSERT_EQ(::chmod(cookie_.c_str(), 0400), 0);
    ports_ = pick_node_ports();
  }

  // mishkad with `args`, after flags that keep a node that wrongly starts off the default
  // ports and the real $HOME. `args` come last, so that they override.
  ProgramRun run_mishkad(const std::vector<std::string>& args) {
    std::vector<std::string> all = {"--dir",         dir_.string(),
                                    "--cookie-file", cookie_.string(),
                                    "--admin",       "127.0.0.1:" + std::to_string(ports_.admin)};
    if (std::find(args.begin(), args.end(), "--node") == args.end()) {
      all.insert(all.end(), {"--node", "n@127.0.0.1:" + std::to_string(ports_.node)});
    }
    all.insert(all.end(), args.begin(), args.end());
    return runner_->run(MISHKAD, all, {"-u", "MISHKA_COOKIE", "HOME=" + home_.string()});
  }

  // Exit 2, stderr naming `named`, and nothing created: not the directory, not a cookie.
  void expect_refused(const ProgramRun& run, const std::string& named) {
    EXPECT_EQ(run.exit_code, 2) << run.describe();
    EXPECT_NE(run.err.find(named), std::string::npos) << "stderr should name '" << named << "'\n"
                                                      << run.describe();
    EXPECT_FALSE(fs::exists(dir_)) << dir_ << " was created";
    EXPECT_FALSE(fs::exists(home_ / ".mishka.cookie")) << "a cookie was created in $HOME";
  }

  fs::path write_config(const std::string& text) {
    const fs::path path = root_->path() / "mishkad.toml";
    write_bytes(path, text);
    return path;
  }

  std::optional<TempDir> root_;
  std::optional<Runner> runner_;
  fs::path home_;
  fs::path dir_;
  fs::path cookie_;
  NodePorts ports_;
};

TEST_F(MishkadRefuses, AnUnknownFlag) {
  expect_refused(run_mishkad({"--no-such-flag", "1"}), "--no-such-flag");
}

TEST_F(MishkadRefuses, ANodeNameWithoutItsPort) {
  // "NAME@HOST" alone is a valid name (PORT defaults to 4370): an empty or non-numeric PORT is not.
  expect_refused(run_mishkad({"--node", "n@127.0.0.1:"}), "n@127.0.0.1:");
  expect_refused(run_mishkad({"--node", "n@127.0.0.1:port"}), "n@127.0.0.1:port");
  expect_refused(run_mishkad({"--node"}), "--node");
}

TEST_F(MishkadRefuses, AWaitTimeoutThatIsNotANumber) {
  const ProgramRun run = run_mishkad({"--wait-timeout", "abc"});
  expect_refused(run, "abc");
  EXPECT_NE(run.err.find("wait"), std::string::npos) << run.describe();
}

TEST_F(MishkadRefuses, ADynamicMembershipThatIsNotABoolean) {
  const ProgramRun run = run_mishkad({"--dynamic-membership", "maybe"});
  expect_refused(run, "maybe");
  EXPECT_NE(run.err.find("dynamic"), std::string::npos) << run.describe();
}

TEST_F(MishkadRefuses, AConfigFileWithASyntaxError) {
  const fs::path config = write_config("wait_timeout = 3000\nnode = \"unterminated\n");
  expect_refused(run_mishkad({"--config", config.string()}), config.string());
}

TEST_F(MishkadRefuses, AConfigFileWithAnUnknownKey) {
  const fs::path config = write_config("wait_timeout = 3000\nno_such_key = 1\n");
  expect_refused(run_mishkad({"--config", config.string()}), "no_such_key");
}

}  // namespace
}  // namespace mishka::test
