// mishkad: one mishka node in the foreground (CONTRACT.md section 11; docs/operations.md).
//
// Order of things: the configuration is parsed and checked before anything starts (exit 2 on
// a refusal, with the message naming the flag or key); then the telemetry log, the admin HTTP
// (first, so that it answers `starting` during the boot), the user tables' keeper, and the repo
// under a supervisor with the permanent policy. SIGTERM or SIGINT stops the admin HTTP, then
// the repo and its etcd member (etcd hands its leadership over when it stops as leader), and
// exits 0. If the supervisor gives up on the repo, mishkad exits 1 with the last failure.
//
// Signals: SIGTERM and SIGINT are blocked in every thread before the first one starts, and
// taken with sigtimedwait() here in main; children get their signal mask reset
// (src/engine/child_process.cc), and die with their spawning thread (PR_SET_PDEATHSIG), so no
// etcd outlives a mishkad that is killed.
#include <pthread.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "admin/admin_server.h"
#include "mishka/repo.h"
#include "mishka/telemetry.h"
#include "mishkad/daemon_config.h"
#include "mishkad/user_tables.h"
#include "telemetry/json_lines_exporter.h"

namespace {

using mishka::LogLevel;
using mishka::LogSink;

constexpr int kExitStopped = 0;
constexpr int kExitFailed = 1;
constexpr int kExitBadConfig = 2;

// How often main looks at the supervisor while it waits for a signal.
constexpr int kSupervisorCheckSeconds = 1;

// "2026-11-26T10:15:30.123Z", UTC.
std::string timestamp() {
  timespec now{};
  ::clock_gettime(CLOCK_REALTIME, &now);
  tm utc{};
  ::gmtime_r(&now.tv_sec, &utc);
  char text[32];
  const std::size_t n = std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%S", &utc);
  char millis[24];
  std::snprintf(millis, sizeof(millis), ".%03ldZ", now.tv_nsec / 1000000);
  return std::string(text, n) + millis;
}

// Lines on stderr (the journal, under systemd), each in one write(2) so that lines from
// several threads never interleave.
void write_line(LogLevel level, std::string_view message) {
  std::string line = timestamp() + " " + std::string(mishka::daemon::log_level_name(level)) + " " +
                     std::string(message) + "\n";
  std::string_view rest = line;
  while (!rest.empty()) {
    const ssize_t n = ::write(STDERR_FILENO, rest.data(), rest.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // stderr is gone: nothing better to do with a log line
    rest.remove_prefix(static_cast<std::size_t>(n));
  }
}

// The supervisor as the admin server and the table keeper see it: nullptr until it exists.
class SupervisorSlot {
 public:
  void set(std::shared_ptr<mishka::RepoSupervisor> supervisor) {
    std::lock_guard<std::mutex> lock(mu_);
    supervisor_ = std::move(supervisor);
  }
  std::shared_ptr<mishka::MnesiaRepo> child() const {
    std::shared_ptr<mishka::RepoSupervisor> supervisor;
    {
      std::lock_guard<std::mutex> lock(mu_);
      supervisor = supervisor_;
    }
    return supervisor ? supervisor->child() : nullptr;
  }

 private:
  mutable std::mutex mu_;
  std::shared_ptr<mishka::RepoSupervisor> supervisor_;
};

// Waits for SIGTERM or SIGINT while the supervisor has not given up. Returns the exit status.
int wait_for_stop(const sigset_t& stop_signals, const mishka::RepoSupervisor& supervisor,
                  const LogSink& log) {
  while (true) {
    const timespec period{.tv_sec = kSupervisorCheckSeconds, .tv_nsec = 0};
    siginfo_t info{};
    const int signo = ::sigtimedwait(&stop_signals, &info, &period);
    if (signo > 0) {
      log(LogLevel::info, std::string("received SIG") + ::sigabbrev_np(signo) + ": stopping");
      return kExitStopped;
    }
    if (errno != EAGAIN && errno != EINTR) {
      log(LogLevel::critical, std::string("sigtimedwait failed: ") + std::strerror(errno));
      return kExitFailed;
    }
    if (supervisor.given_up()) {
      const std::optional<mishka::Status> failure = supervisor.last_failure();
      log(LogLevel::critical, "the supervisor gave up on the repo; last failure: " +
                                  (failure ? failure->to_string() : std::string("none")));
      return kExitFailed;
    }
  }
}

int run(const mishka::daemon::DaemonConfig& config, const sigset_t& stop_signals) {
  const LogLevel least = config.log_level;
  const LogSink log = [least](LogLevel level, std::string_view message) {
    if (level >= least) write_line(level, message);
  };
  log(LogLevel::info,
      mishka::daemon::daemon_version() + " starting node " + config.repo.node +
          (config.config_path.empty() ? "" : " (config " + config.config_path + ")"));
  for (const std::string& note : config.notes) log(LogLevel::info, note);

  mishka::telemetry::Telemetry telemetry({.log = log, .clock = nullptr});
  std::unique_ptr<mishka::telemetry::JsonLinesExporter> exporter;
  if (!config.telemetry_log.empty()) {
    auto opened = mishka::telemetry::JsonLinesExporter::open(
        config.telemetry_log, {.log = log, .clock = nullptr, .file_mode = 0644});
    if (!opened.ok()) {
      log(LogLevel::critical, "telemetry log: " + opened.status().to_string());
      return kExitFailed;
    }
    exporter = std::move(*opened);
    const mishka::Status attached =
        telemetry.attach_all("mishkad-telemetry-log", exporter->handler());
    if (!attached.ok()) {
      log(LogLevel::critical, "telemetry log: " + attached.to_string());
      return kExitFailed;
    }
    log(LogLevel::info, "telemetry events go to " + config.telemetry_log);
  }

  SupervisorSlot slot;
  auto admin = mishka::admin::AdminServer::start(
      {.host = config.admin.host, .port = config.admin.port, .log = log},
      [&slot] { return slot.child(); }, telemetry);
  if (!admin.ok()) {
    log(LogLevel::critical,
        "admin HTTP on " + config.admin.to_string() + ": " + admin.status().to_string());
    return admin.status().code() == mishka::StatusCode::invalid_argument ? kExitBadConfig
                                                                         : kExitFailed;
  }
  mishka::daemon::UserTables tables(
      config.tables, [&slot] { return slot.child(); }, telemetry, log);
  if (!config.tables.empty()) {
    const mishka::Status started = tables.start();
    if (!started.ok()) {
      log(LogLevel::critical, "user tables: " + started.to_string());
      return kExitFailed;
    }
  }

  mishka::RepoOptions options = config.repo;
  options.telemetry = &telemetry;
  options.log = log;
  auto supervisor = mishka::RepoSupervisor::start(std::move(options), {});
  if (!supervisor.ok()) {
    log(LogLevel::critical, "cannot start the repo: " + supervisor.status().to_string());
    return supervisor.status().code() == mishka::StatusCode::invalid_argument ? kExitBadConfig
                                                                              : kExitFailed;
  }
  std::shared_ptr<mishka::RepoSupervisor> running(std::move(*supervisor));
  slot.set(running);

  int status = kExitStopped;
  const std::optional<mishka::Status> first_failure = running->last_failure();
  if (running->child() == nullptr && first_failure &&
      first_failure->code() == mishka::StatusCode::invalid_argument) {
    // A refusal of something only the boot could check (e.g. an operator CA that is no CA):
    // restarting would be refused the same way.
    log(LogLevel::critical, "the first boot was refused: " + first_failure->to_string());
    status = kExitBadConfig;
  } else {
    if (auto child = running->child()) {
      log(LogLevel::info,
          "boot ended: " + std::string(mishka::repo_status_name(child->status())));
    }
    status = wait_for_stop(stop_signals, *running, log);
  }

  // The admin HTTP first (no request reaches a repo being stopped), then the repo and its node.
  (*admin)->stop();
  tables.stop();
  slot.set(nullptr);
  running->stop();
  running.reset();
  if (exporter) (void)telemetry.detach("mishkad-telemetry-log");
  log(LogLevel::info, "stopped");
  return status;
}

}  // namespace

int main(int argc, char** argv) {
  // Before any thread exists, so that every thread inherits the mask and only sigtimedwait()
  // below takes these signals.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  if (const int rc = ::pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr); rc != 0) {
    std::cerr << "mishkad: cannot block SIGTERM and SIGINT: " << std::strerror(rc) << "\n";
    return kExitFailed;
  }
  // A client that hangs up, or a log reader that goes away, must not kill the node.
  std::signal(SIGPIPE, SIG_IGN);

  const std::vector<std::string> args(argv + 1, argv + argc);
  mishka::Result<mishka::daemon::DaemonCommand> command =
      mishka::daemon::parse_daemon_command(args);
  if (!command.ok()) {
    // Refused flags or keys, and config or cookie files that cannot be read: nothing started.
    std::cerr << "mishkad: " << command.status().message() << "\n";
    return kExitBadConfig;
  }
  switch (command->action) {
    case mishka::daemon::DaemonAction::help:
      std::cout << mishka::daemon::daemon_usage();
      return kExitStopped;
    case mishka::daemon::DaemonAction::version:
      std::cout << mishka::daemon::daemon_version() << "\n";
      return kExitStopped;
    case mishka::daemon::DaemonAction::run:
      break;
  }
  return run(command->config, stop_signals);
}
