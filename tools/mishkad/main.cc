// mishkad: one mishka node in the foreground (CONTRACT.md section 11; docs/operations.md).
//
// Order of things: the configuration is parsed and checked before anything starts (exit 2 on
// a refusal, with the message naming the flag or key); then the telemetry log, the admin HTTP
// (first, so that it answers `starting` during the boot), the user tables' keeper, and the repo
// under a supervisor with the permanent policy. A stop signal stops the admin HTTP, then the
// repo and its etcd member (etcd hands its leadership over when it stops as leader), and exits
// 0. If the supervisor gives up on the repo, mishkad exits 1 with the last failure.
//
// Signals: SIGTERM, SIGINT, SIGHUP (the terminal went away) and SIGQUIT (Ctrl-\ in a terminal) all
// stop the node cleanly. SIGQUIT's default action, a core dump, would kill etcd through
// PR_SET_PDEATHSIG without its clean stop: whoever wants a dump of mishkad can use gcore. They are
// blocked in every thread before the first one starts, and taken with sigtimedwait() here in main,
// from the start: the first boot and the final stop run on a thread of their own, so that main
// hears a signal during either. Neither can be cancelled from outside, so a first signal then
// waits for the step in progress (each step of the boot has its own timeout, logged); a second
// one exits at once with status 1, unless it is SIGHUP (a closing terminal may send it twice).
// Children get their signal mask reset (src/engine/child_process.cc), and die with their spawning
// thread (PR_SET_PDEATHSIG; etcd's is the member's own thread, not these), so no etcd outlives a
// mishkad that exits or is killed.
#include <pthread.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <functional>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
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
// How often main looks whether a step on another thread (the first boot, the stop) ended.
constexpr long kStepCheckNanoseconds = 100'000'000;

// The signals that stop mishkad (see the top of this file).
constexpr int kStopSignals[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT};

std::string signal_name(int signo) {
  const char* abbrev = ::sigabbrev_np(signo);
  return abbrev != nullptr ? std::string("SIG") + abbrev : "signal " + std::to_string(signo);
}

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

// Runs `step` on a thread of its own and returns once it ended, taking the stop signals
// meanwhile. A step cannot be cancelled from outside: the first signal is only noted
// (`signalled` becomes true, `on_first_signal` says what happens now); a SIGTERM, SIGINT or
// SIGQUIT when `signalled` is already true ends the process at once with status 1: an operator
// who sends it twice means it, and etcd dies with mishkad (PR_SET_PDEATHSIG).
void run_step(const std::function<void()>& step, const sigset_t& stop_signals, bool& signalled,
              const std::function<void(int)>& on_first_signal, const LogSink& log) {
  std::atomic<bool> done{false};
  // Created with every stop signal blocked (main's mask is inherited), like every thread.
  std::thread thread([&] {
    step();
    done.store(true);
  });
  bool signals_taken = true;
  while (!done.load()) {
    if (!signals_taken) {
      std::this_thread::sleep_for(std::chrono::nanoseconds(kStepCheckNanoseconds));
      continue;
    }
    const timespec period{.tv_sec = 0, .tv_nsec = kStepCheckNanoseconds};
    siginfo_t info{};
    const int signo = ::sigtimedwait(&stop_signals, &info, &period);
    if (signo > 0 && !signalled) {
      signalled = true;
      on_first_signal(signo);
    } else if (signo == SIGHUP) {
      // A closing terminal may deliver SIGHUP twice (the kernel to the foreground group, the
      // shell to its jobs): that is no operator insisting.
      log(LogLevel::info, "received SIGHUP again: ignored, the stop goes on");
    } else if (signo > 0) {
      log(LogLevel::critical,
          "received " + signal_name(signo) +
              " with a stop already under way: exiting at once, without a clean stop (status 1; "
              "etcd is killed with mishkad)");
      std::_Exit(kExitFailed);
    } else if (errno != EAGAIN && errno != EINTR) {
      log(LogLevel::critical, std::string("sigtimedwait failed: ") + std::strerror(errno) +
                                  "; waiting for the step in progress without taking signals");
      signals_taken = false;
    }
  }
  thread.join();
}

// What bounds the first boot's steps, for the operator waiting for a stop during it.
std::string boot_bounds(const mishka::RepoOptions& options) {
  const auto ms = [](std::chrono::milliseconds d) { return std::to_string(d.count()) + " ms"; };
  std::string text =
      "etcd's start waits at most member_ready_timeout (" + ms(options.member_ready_timeout) + ")";
  if (!options.cluster_nodes.empty()) {
    text += ", a join attempt join_timeout (" + ms(options.join_timeout) + ")";
  }
  text += ", the tables' load wait_timeout x (wait_retries + 1) (" +
          ms(options.wait_timeout * (options.wait_retries + 1)) + ")";
  return text;
}

// Waits for a stop signal while the supervisor has not given up. Returns the exit status;
// `signalled` tells whether a signal ended the wait.
int wait_for_stop(const sigset_t& stop_signals, const mishka::RepoSupervisor& supervisor,
                  const LogSink& log, bool& signalled) {
  while (true) {
    const timespec period{.tv_sec = kSupervisorCheckSeconds, .tv_nsec = 0};
    siginfo_t info{};
    const int signo = ::sigtimedwait(&stop_signals, &info, &period);
    if (signo > 0) {
      log(LogLevel::info, "received " + signal_name(signo) + ": stopping");
      signalled = true;
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

  // The first boot on a thread of its own, so that a signal is heard during it.
  mishka::RepoOptions options = config.repo;
  options.telemetry = &telemetry;
  options.log = log;
  std::optional<mishka::Result<std::unique_ptr<mishka::RepoSupervisor>>> started;
  bool signalled = false;
  run_step([&] { started.emplace(mishka::RepoSupervisor::start(std::move(options), {})); },
           stop_signals, signalled,
           [&](int signo) {
             log(LogLevel::warning,
                 "received " + signal_name(signo) +
                     " during the first boot: mishkad stops as soon as the boot step in progress "
                     "ends (it cannot be interrupted; " +
                     boot_bounds(config.repo) +
                     "). Send SIGTERM or SIGINT again to exit at once, without a clean stop");
           },
           log);
  if (!started->ok()) {
    log(LogLevel::critical, "cannot start the repo: " + started->status().to_string());
    return started->status().code() == mishka::StatusCode::invalid_argument ? kExitBadConfig
                                                                            : kExitFailed;
  }
  std::shared_ptr<mishka::RepoSupervisor> running(std::move(**started));

  int status = kExitStopped;
  const std::optional<mishka::Status> first_failure = running->last_failure();
  if (signalled) {
    log(LogLevel::info, "the first boot ended: stopping");
  } else if (running->child() == nullptr && first_failure &&
             first_failure->code() == mishka::StatusCode::invalid_argument) {
    // A refusal of something only the boot could check (e.g. an operator CA that is no CA):
    // restarting would be refused the same way.
    log(LogLevel::critical, "the first boot was refused: " + first_failure->to_string());
    status = kExitBadConfig;
  } else {
    slot.set(running);
    if (auto child = running->child()) {
      log(LogLevel::info, "boot ended: " + std::string(mishka::repo_status_name(child->status())));
    }
    status = wait_for_stop(stop_signals, *running, log, signalled);
  }

  // The admin HTTP first (no request reaches a repo being stopped), then the repo and its node.
  // On a thread of its own too: a signal during the stop (the first, when the supervisor gave
  // up) is answered, and another one exits at once.
  run_step(
      [&] {
        (*admin)->stop();
        tables.stop();
        slot.set(nullptr);
        running->stop();
        running.reset();
      },
      stop_signals, signalled,
      [&](int signo) {
        log(LogLevel::warning,
            "received " + signal_name(signo) +
                " while stopping: the stop goes on; send SIGTERM or SIGINT again "
                "to exit at once, without a clean stop");
      },
      log);
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
  for (const int signo : kStopSignals) sigaddset(&stop_signals, signo);
  if (const int rc = ::pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr); rc != 0) {
    std::cerr << "mishkad: cannot block the stop signals: " << std::strerror(rc) << "\n";
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
