#include "engine/etcd_member.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <thread>
#include <utility>

#include "common/files.h"
#include "engine/child_process.h"
#include "engine/deadline.h"
#include "engine/member_health.h"

namespace mishka::engine {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr milliseconds kProbeInterval{100};
// One health probe; etcd itself gives its quorum read 1 s.
constexpr milliseconds kProbeTimeout{2000};
// How often the supervisor looks whether its child has exited.
constexpr milliseconds kExitPollInterval{50};
// After SIGKILL, how long a stale member may take to disappear.
constexpr milliseconds kStaleKillWait{5000};
constexpr std::uintmax_t kLogRotateBytes = 64u << 20;
constexpr std::size_t kLogTailLines = 30;

std::string errno_text(int err) {
  return std::strerror(err);
}

std::string ms_text(milliseconds ms) {
  return std::to_string(ms.count()) + " ms";
}

// argv of a live process; nullopt when there is no such process, empty for a zombie.
std::optional<std::vector<std::string>> read_cmdline(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/cmdline", std::ios::binary);
  if (!in) return std::nullopt;
  std::vector<std::string> args;
  for (std::string arg; std::getline(in, arg, '\0');) args.push_back(std::move(arg));
  return args;
}

// True once `pid` does not exist or is a zombie (dead; its parent has yet to reap it).
bool process_gone(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!stat || !std::getline(stat, line)) return true;
  const std::size_t paren = line.rfind(')');
  if (paren == std::string::npos || paren + 2 >= line.size()) return false;
  const char state = line[paren + 2];
  return state == 'Z' || state == 'X';
}

bool wait_until_gone(pid_t pid, milliseconds timeout) {
  const Deadline deadline = Deadline::after(timeout);
  while (!process_gone(pid)) {
    if (deadline.expired()) return false;
    std::this_thread::sleep_for(milliseconds(20));
  }
  return true;
}

bool is_ip_literal(const std::string& host, bool* unspecified) {
  in_addr v4;
  in6_addr v6;
  if (::inet_pton(AF_INET, host.c_str(), &v4) == 1) {
    *unspecified = v4.s_addr == INADDR_ANY;
    return true;
  }
  if (::inet_pton(AF_INET6, host.c_str(), &v6) == 1) {
    *unspecified = std::memcmp(&v6, &in6addr_any, sizeof(v6)) == 0;
    return true;
  }
  return false;
}

Status validate(const MemberConfig& c) {
  auto bad = [](const std::string& what) { return invalid_argument("etcd member: " + what); };
  if (c.etcd_binary.empty()) return bad("etcd_binary is empty");
  if (c.data_dir.empty()) return bad("data_dir is empty");
  if (c.name.empty()) return bad("name is empty");
  if (c.name.find_first_of("=,") != std::string::npos) {
    return bad("name '" + c.name + "' contains '=' or ','");
  }
  bool unspecified = false;
  if (!is_ip_literal(c.host, &unspecified) || unspecified) {
    return bad("host '" + c.host + "' is not a specific IP address");
  }
  if (c.client_port == 0) return bad("client_port is 0");
  if (c.peer_port == 0) return bad("peer_port is 0");
  if (c.client_port == c.peer_port) return bad("client_port and peer_port are equal");
  if (c.metrics_port != 0 && (c.metrics_port == c.client_port || c.metrics_port == c.peer_port)) {
    return bad("metrics_port equals another port");
  }
  if (c.tls) {
    if (c.tls->ca_file.empty() || c.tls->cert_file.empty() || c.tls->key_file.empty()) {
      return bad("tls needs ca_file, cert_file and key_file");
    }
    if (c.metrics_port == 0) return bad("tls needs a metrics_port for the health probe");
  }
  if (c.join_existing && c.initial_cluster.empty()) {
    return bad("join_existing needs initial_cluster (the members to join)");
  }
  if (c.initial_cluster_token.empty()) return bad("initial_cluster_token is empty");
  if (c.ready_timeout <= milliseconds(0)) return bad("ready_timeout must be positive");
  if (c.restart_backoff_min <= milliseconds(0)) return bad("restart_backoff_min must be positive");
  if (c.restart_backoff_max < c.restart_backoff_min) {
    return bad("restart_backoff_max is below restart_backoff_min");
  }
  if (c.give_up_after < 0) return bad("give_up_after is negative");
  if (c.stop_grace < milliseconds(0)) return bad("stop_grace is negative");
  return Status::Ok();
}

}  // namespace

const char* member_event_name(MemberEvent::Kind kind) {
  switch (kind) {
    case MemberEvent::Kind::started:
      return "started";
    case MemberEvent::Kind::ready:
      return "ready";
    case MemberEvent::Kind::exited:
      return "exited";
    case MemberEvent::Kind::restarting:
      return "restarting";
    case MemberEvent::Kind::stale_member_killed:
      return "stale_member_killed";
    case MemberEvent::Kind::gave_up:
      return "gave_up";
    case MemberEvent::Kind::stopped:
      return "stopped";
  }
  return "unknown";
}

class EtcdMember::Impl {
 public:
  Impl(MemberConfig config, Listener listener, const std::string& dir)
      : config_(std::move(config)),
        listener_(std::move(listener)),
        dir_(dir),
        etcd_data_dir_(dir + "/data"),
        log_path_(dir + "/etcd.log"),
        pid_path_(dir + "/etcd.pid"),
        lock_path_(dir + "/lock") {}

  ~Impl() { stop(); }

  Status start();
  void stop();

  const MemberConfig& config() const { return config_; }
  std::string client_url() const {
    return make_url(config_.tls ? "https" : "http", config_.host, config_.client_port);
  }
  std::string peer_url() const {
    return make_url(config_.tls ? "https" : "http", config_.host, config_.peer_port);
  }
  const std::string& log_path() const { return log_path_; }
  const std::string& pid_path() const { return pid_path_; }
  const std::string& etcd_data_dir() const { return etcd_data_dir_; }
  pid_t pid() const { return pid_.load(); }
  int restarts() const { return restarts_.load(); }
  bool running() const { return running_.load(); }

 private:
  // The supervisor thread: everything below runs on it.
  void supervise(std::promise<Status> first_start);
  Status stop_stale_member();
  Result<ChildProcess> spawn_etcd();
  std::vector<std::string> etcd_args() const;
  Status wait_until_healthy(ChildProcess& child);
  void stop_child(ChildProcess& child, MemberEvent::Kind kind, const std::string& why);
  void write_pid_file(pid_t pid, std::string* note);
  void remove_pid_file();
  void emit(MemberEvent::Kind kind, pid_t pid, std::string detail);
  std::string failure_message(const std::string& why) const;

  bool stop_requested();
  // Waits up to `timeout`; true as soon as stop() was called.
  bool wait_for_stop(milliseconds timeout);

  // The owner thread.
  Status lock_directory();
  void unlock_directory();

  const MemberConfig config_;
  const Listener listener_;
  const std::string dir_;
  const std::string etcd_data_dir_;
  const std::string log_path_;
  const std::string pid_path_;
  const std::string lock_path_;

  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_requested_ = false;  // guarded by mu_

  std::thread supervisor_;  // owner thread only
  int lock_fd_ = -1;        // owner thread only
  std::atomic<pid_t> pid_{0};
  std::atomic<int> restarts_{0};
  std::atomic<bool> running_{false};
};

Status EtcdMember::Impl::start() {
  if (running_) return invalid_argument("etcd member in " + dir_ + " is already running");
  if (supervisor_.joinable()) stop();  // a supervisor that gave up
  MISHKA_RETURN_IF_ERROR(lock_directory());
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_requested_ = false;
  }
  std::promise<Status> first_start;
  std::future<Status> started = first_start.get_future();
  // Every etcd is forked on this thread, so its PR_SET_PDEATHSIG fires when this thread ends:
  // it must not end before its child is reaped (every return path of supervise() does so).
  supervisor_ = std::thread(
      [this, promise = std::move(first_start)]() mutable { supervise(std::move(promise)); });
  Status status = started.get();
  if (!status.ok()) {
    supervisor_.join();
    unlock_directory();
  }
  return status;
}

void EtcdMember::Impl::stop() {
  if (supervisor_.joinable()) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_requested_ = true;
    }
    cv_.notify_all();
    supervisor_.join();
  }
  running_ = false;
  pid_ = 0;
  unlock_directory();
}

Status EtcdMember::Impl::lock_directory() {
  if (lock_fd_ >= 0) return Status::Ok();
  const int fd = ::open(lock_path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return io_error("cannot open " + lock_path_ + ": " + errno_text(errno));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    ::close(fd);
    if (err == EWOULDBLOCK) {
      return io_error("etcd member directory " + dir_ + " is in use by another member (" +
                      lock_path_ + " is locked)");
    }
    return io_error("cannot lock " + lock_path_ + ": " + errno_text(err));
  }
  lock_fd_ = fd;
  return Status::Ok();
}

void EtcdMember::Impl::unlock_directory() {
  if (lock_fd_ < 0) return;
  ::close(lock_fd_);  // releases the flock
  lock_fd_ = -1;
}

bool EtcdMember::Impl::stop_requested() {
  std::lock_guard<std::mutex> lock(mu_);
  return stop_requested_;
}

bool EtcdMember::Impl::wait_for_stop(milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, timeout, [this] { return stop_requested_; });
}

void EtcdMember::Impl::emit(MemberEvent::Kind kind, pid_t pid, std::string detail) {
  if (!listener_) return;
  listener_(MemberEvent{
      .kind = kind, .pid = pid, .restarts = restarts_.load(), .detail = std::move(detail)});
}

void EtcdMember::Impl::supervise(std::promise<Status> first_start) {
  if (Status stale = stop_stale_member(); !stale.ok()) {
    first_start.set_value(stale);
    return;
  }
  bool first = true;
  milliseconds backoff = config_.restart_backoff_min;
  int failed_in_a_row = 0;  // restarts that did not become healthy
  while (true) {
    // One run: spawn, wait for health, then watch until it exits or stop() is called.
    Result<ChildProcess> spawned = spawn_etcd();
    std::string failure;  // why this run never became healthy; empty if it did
    if (!spawned.ok()) {
      if (first) {
        first_start.set_value(spawned.status().with_context("etcd member in " + dir_));
        return;
      }
      failure = spawned.status().message();
      emit(MemberEvent::Kind::exited, 0, failure);
    } else {
      ChildProcess& child = spawned.value();
      const pid_t pid = child.pid();
      pid_ = pid;
      std::string note;
      write_pid_file(pid, &note);
      emit(MemberEvent::Kind::started, pid, "log " + log_path_ + note);

      Status healthy = wait_until_healthy(child);
      if (stop_requested()) {
        stop_child(child, MemberEvent::Kind::stopped, "stopped");
        if (first) {
          first_start.set_value(Status(StatusCode::engine_unavailable,
                                       "etcd member in " + dir_ + ": stopped while starting"));
        }
        return;
      }
      if (!healthy.ok()) {
        failure = healthy.message();
        stop_child(child, MemberEvent::Kind::exited, failure);
        if (first) {
          first_start.set_value(Status(healthy.code(), failure_message(failure)));
          return;
        }
      } else {
        emit(MemberEvent::Kind::ready, pid, "healthy at " + client_url());
        if (first) {
          first = false;
          running_ = true;
          first_start.set_value(Status::Ok());
        }
        failed_in_a_row = 0;
        const auto ready_at = Clock::now();
        std::optional<ExitInfo> ended;
        while (!(ended = child.poll())) {
          if (wait_for_stop(kExitPollInterval)) {
            stop_child(child, MemberEvent::Kind::stopped, "stopped");
            return;
          }
        }
        pid_ = 0;
        remove_pid_file();
        emit(MemberEvent::Kind::exited, pid, ended->to_string() + "; log " + log_path_);
        if (Clock::now() - ready_at >= config_.restart_backoff_max) {
          backoff = config_.restart_backoff_min;
        }
      }
    }

    if (!failure.empty()) {
      ++failed_in_a_row;
      if (config_.give_up_after > 0 && failed_in_a_row >= config_.give_up_after) {
        running_ = false;
        emit(MemberEvent::Kind::gave_up, 0,
             std::to_string(failed_in_a_row) + " restarts in a row did not become healthy; last: " +
                 failure + "; log " + log_path_);
        return;
      }
    }
    const milliseconds delay = backoff;
    backoff = std::min(backoff * 2, config_.restart_backoff_max);
    ++restarts_;
    emit(MemberEvent::Kind::restarting, 0, "in " + ms_text(delay));
    if (wait_for_stop(delay)) return;
  }
}

Status EtcdMember::Impl::stop_stale_member() {
  Result<std::optional<std::string>> text = read_file_if_exists(pid_path_);
  if (!text.ok()) return text.status();
  if (!text->has_value()) return Status::Ok();
  const long parsed = std::strtol((*text)->c_str(), nullptr, 10);
  const pid_t pid = parsed > 1 && parsed <= 0x7fffffff ? static_cast<pid_t>(parsed) : 0;
  // Only a process that is etcd running on this very data directory is ours to stop; anything
  // else means the pid was reused, and the file is merely out of date.
  const std::optional<std::vector<std::string>> argv = pid > 0 ? read_cmdline(pid) : std::nullopt;
  const bool ours =
      argv && !argv->empty() &&
      std::filesystem::path((*argv)[0]).filename().string().find("etcd") != std::string::npos &&
      std::find(argv->begin(), argv->end(), "--data-dir=" + etcd_data_dir_) != argv->end();
  if (!ours) {
    remove_pid_file();
    return Status::Ok();
  }

  const std::string what = "stale etcd (pid " + std::to_string(pid) + ") of " + etcd_data_dir_;
  if (::kill(pid, SIGTERM) != 0 && errno != ESRCH) {
    return io_error("cannot stop " + what + ": " + errno_text(errno));
  }
  ::kill(pid, SIGCONT);
  std::string how = "SIGTERM";
  if (!wait_until_gone(pid, config_.stop_grace)) {
    ::kill(pid, SIGKILL);
    how = "SIGKILL after " + ms_text(config_.stop_grace);
    if (!wait_until_gone(pid, kStaleKillWait)) {
      return io_error("cannot stop " + what + ": still there after SIGKILL");
    }
  }
  remove_pid_file();
  emit(MemberEvent::Kind::stale_member_killed, pid, what + ", left by an earlier run: " + how);
  return Status::Ok();
}

std::vector<std::string> EtcdMember::Impl::etcd_args() const {
  const std::string client = client_url();
  const std::string peer = peer_url();
  std::vector<std::string> args = {
      "--name=" + config_.name,
      "--data-dir=" + etcd_data_dir_,
      "--listen-client-urls=" + client,
      "--advertise-client-urls=" + client,
      "--listen-peer-urls=" + peer,
      "--initial-advertise-peer-urls=" + peer,
      "--initial-cluster=" +
          (config_.initial_cluster.empty() ? config_.name + "=" + peer : config_.initial_cluster),
      std::string("--initial-cluster-state=") + (config_.join_existing ? "existing" : "new"),
      "--initial-cluster-token=" + config_.initial_cluster_token,
      "--logger=zap",
      "--log-outputs=stderr",
  };
  if (config_.metrics_port != 0) {
    args.push_back("--listen-metrics-urls=" + make_url("http", "127.0.0.1", config_.metrics_port));
  }
  if (config_.tls) {
    const MemberTls& tls = *config_.tls;
    args.insert(args.end(), {
                                "--trusted-ca-file=" + tls.ca_file,
                                "--cert-file=" + tls.cert_file,
                                "--key-file=" + tls.key_file,
                                "--client-cert-auth=true",
                                "--peer-trusted-ca-file=" + tls.ca_file,
                                "--peer-cert-file=" + tls.cert_file,
                                "--peer-key-file=" + tls.key_file,
                                "--peer-client-cert-auth=true",
                            });
  }
  args.insert(args.end(), config_.extra_args.begin(), config_.extra_args.end());
  return args;
}

Result<ChildProcess> EtcdMember::Impl::spawn_etcd() {
  std::error_code error;
  const std::uintmax_t log_size = std::filesystem::file_size(log_path_, error);
  if (!error && log_size > kLogRotateBytes) {
    std::filesystem::rename(log_path_, log_path_ + ".1", error);  // at worst, the log grows
  }
  // A line of our own before each run, so that a reader of the log sees where each one begins.
  {
    const std::time_t now = std::time(nullptr);
    std::tm utc = {};
    char stamp[32] = "?";
    if (::gmtime_r(&now, &utc) != nullptr) {
      std::strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &utc);
    }
    std::ofstream log(log_path_, std::ios::app);
    log << "---- mishka " << stamp << ": starting " << config_.etcd_binary << " for member '"
        << config_.name << "' (restarts so far: " << restarts_.load() << ") ----\n";
  }
  Result<ChildProcess> child = ChildProcess::spawn(SpawnOptions{.program = config_.etcd_binary,
                                                                .args = etcd_args(),
                                                                .log_path = log_path_,
                                                                .own_process_group = true});
  if (!child.ok()) return io_error("cannot spawn etcd: " + child.status().message());
  return child;
}

Status EtcdMember::Impl::wait_until_healthy(ChildProcess& child) {
  const Deadline deadline = Deadline::after(config_.ready_timeout);
  const bool via_metrics = config_.metrics_port != 0;
  const std::string probe_host = via_metrics ? "127.0.0.1" : config_.host;
  const std::uint16_t probe_port = via_metrics ? config_.metrics_port : config_.client_port;
  Status last = Status(StatusCode::timeout, "no probe answered");
  while (true) {
    if (std::optional<ExitInfo> ended = child.poll()) {
      return Status(StatusCode::engine_unavailable,
                    "etcd exited before it was healthy (" + ended->to_string() + ")");
    }
    if (stop_requested()) return Status(StatusCode::engine_unavailable, "stopped while starting");
    last = probe_member_health(probe_host, probe_port, deadline.capped(kProbeTimeout));
    if (last.ok()) return last;
    if (deadline.expired()) break;
    wait_for_stop(std::min(kProbeInterval, deadline.remaining()));
  }
  if (std::optional<ExitInfo> ended = child.poll()) {
    return Status(StatusCode::engine_unavailable,
                  "etcd exited before it was healthy (" + ended->to_string() + ")");
  }
  return Status(StatusCode::timeout, "etcd was not healthy within " +
                                         ms_text(config_.ready_timeout) +
                                         " (last probe: " + last.message() + ")");
}

void EtcdMember::Impl::stop_child(ChildProcess& child, MemberEvent::Kind kind,
                                  const std::string& why) {
  const pid_t pid = child.pid();
  const ExitInfo how = child.stop(config_.stop_grace);
  pid_ = 0;
  remove_pid_file();
  emit(kind, pid, why + "; " + how.to_string());
}

void EtcdMember::Impl::write_pid_file(pid_t pid, std::string* note) {
  // No need for it to survive a machine crash (the process does not either), but a torn file
  // must never name another pid: write_file_atomically renames a complete file into place.
  Status written = write_file_atomically(pid_path_, std::to_string(pid) + "\n");
  if (!written.ok()) *note = "; pid file not written: " + written.message();
}

void EtcdMember::Impl::remove_pid_file() {
  ::unlink(pid_path_.c_str());
}

std::string EtcdMember::Impl::failure_message(const std::string& why) const {
  return "etcd member '" + config_.name + "' in " + dir_ + ": " + why + "; " + config_.etcd_binary +
         " on " + client_url() + ", log " + log_path_ + " ends with:\n" +
         tail_of_file(log_path_, kLogTailLines);
}

Result<std::unique_ptr<EtcdMember>> EtcdMember::create(MemberConfig config, Listener listener) {
  MISHKA_RETURN_IF_ERROR(validate(config));
  std::error_code error;
  const std::filesystem::path dir = std::filesystem::absolute(config.data_dir, error);
  if (error) return io_error("etcd member directory " + config.data_dir + ": " + error.message());
  const bool existed = std::filesystem::is_directory(dir, error);
  if (!existed) {
    std::filesystem::create_directories(dir, error);
    if (error) return io_error("cannot create " + dir.string() + ": " + error.message());
    // etcd keeps its data private; so does the directory around it.
    std::filesystem::permissions(dir, std::filesystem::perms::owner_all, error);
  }
  // The canonical path, so that the --data-dir a stale member was started with compares equal
  // however the directory is named this time.
  const std::filesystem::path canonical = std::filesystem::canonical(dir, error);
  if (error) return io_error("etcd member directory " + dir.string() + ": " + error.message());
  return std::unique_ptr<EtcdMember>(new EtcdMember(
      std::make_unique<Impl>(std::move(config), std::move(listener), canonical.string())));
}

EtcdMember::EtcdMember(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
EtcdMember::~EtcdMember() = default;

Status EtcdMember::start() {
  return impl_->start();
}
void EtcdMember::stop() {
  impl_->stop();
}
std::string EtcdMember::client_endpoint() const {
  return host_port(impl_->config().host, impl_->config().client_port);
}
std::string EtcdMember::client_url() const {
  return impl_->client_url();
}
std::string EtcdMember::peer_url() const {
  return impl_->peer_url();
}
pid_t EtcdMember::pid() const {
  return impl_->pid();
}
int EtcdMember::restart_count() const {
  return impl_->restarts();
}
bool EtcdMember::running() const {
  return impl_->running();
}
std::string EtcdMember::log_path() const {
  return impl_->log_path();
}
std::string EtcdMember::pid_file_path() const {
  return impl_->pid_path();
}
std::string EtcdMember::etcd_data_dir() const {
  return impl_->etcd_data_dir();
}

}  // namespace mishka::engine
