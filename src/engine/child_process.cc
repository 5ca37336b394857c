#include "engine/child_process.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <random>
#include <string_view>
#include <thread>
#include <utility>

namespace mishka::engine {
namespace {

std::string errno_text(int err) {
  return std::strerror(err);
}

// Closes a file descriptor on scope exit.
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }

  int get() const { return fd_; }
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_;
};

// execv needs a path: resolve a bare name through PATH here, because the child may not allocate.
Result<std::string> resolve_program(const std::string& program) {
  if (program.empty()) return invalid_argument("spawn: empty program name");
  if (program.find('/') != std::string::npos) return program;
  const char* path_env = std::getenv("PATH");
  std::string_view path = path_env != nullptr ? path_env : "/usr/local/bin:/usr/bin:/bin";
  while (true) {
    const std::size_t colon = path.find(':');
    std::string dir(path.substr(0, colon));
    if (dir.empty()) dir = ".";
    std::string candidate = dir + "/" + program;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    if (colon == std::string_view::npos) break;
    path.remove_prefix(colon + 1);
  }
  return not_found("spawn: " + program + " not found in PATH");
}

ExitInfo decode_wait_status(int status) {
  if (WIFSIGNALED(status)) return ExitInfo{.signaled = true, .code = WTERMSIG(status)};
  return ExitInfo{.signaled = false, .code = WEXITSTATUS(status)};
}

// In the forked child: hands errno to the parent through `report_fd` and exits.
[[noreturn]] void report_errno_and_exit(int report_fd) {
  const int err = errno;
  [[maybe_unused]] const ssize_t written = ::write(report_fd, &err, sizeof(err));
  ::_exit(127);
}

// In the forked child: makes `target` a copy of `source` that survives exec. (When they are the
// same descriptor, dup2 does nothing and the close-on-exec flag would stay.)
bool redirect_fd(int source, int target) {
  if (source == target) return ::fcntl(target, F_SETFD, 0) == 0;
  return ::dup2(source, target) == target;
}

// Runs in the forked child: only async-signal-safe calls until exec. Reports a failure's errno
// through `report_fd` (close-on-exec, so the parent reads EOF once exec succeeded).
[[noreturn]] void exec_child(const std::string& path, char* const* argv, int stdin_fd, int log_fd,
                             int report_fd, pid_t parent, bool own_process_group) {
  // Die with the spawning thread. If the parent already died, prctl came too late: leave now.
  if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) report_errno_and_exit(report_fd);
  if (::getppid() != parent) ::_exit(127);
  if (own_process_group && ::setpgid(0, 0) != 0) report_errno_and_exit(report_fd);

  // The parent's signal mask and SIGPIPE disposition (gRPC may change them) must not leak into
  // the program.
  sigset_t none;
  ::sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  struct sigaction default_action = {};
  default_action.sa_handler = SIG_DFL;
  ::sigaction(SIGPIPE, &default_action, nullptr);

  if (redirect_fd(stdin_fd, STDIN_FILENO) && redirect_fd(log_fd, STDOUT_FILENO) &&
      redirect_fd(log_fd, STDERR_FILENO)) {
    ::execv(path.c_str(), argv);
  }
  report_errno_and_exit(report_fd);
}

}  // namespace

std::string ExitInfo::to_string() const {
  if (!signaled) return "exit status " + std::to_string(code);
  const char* name = ::strsignal(code);
  return "killed by signal " + std::to_string(code) + " (" + (name ? name : "?") + ")";
}

Result<ChildProcess> ChildProcess::spawn(const SpawnOptions& options) {
  Result<std::string> path = resolve_program(options.program);
  if (!path.ok()) return path.status();

  // Everything the child needs is prepared here; it must not allocate after the fork.
  std::vector<std::string> arg_storage;
  arg_storage.reserve(options.args.size() + 1);
  arg_storage.push_back(options.program);
  arg_storage.insert(arg_storage.end(), options.args.begin(), options.args.end());
  std::vector<char*> argv;
  argv.reserve(arg_storage.size() + 1);
  for (std::string& arg : arg_storage) argv.push_back(arg.data());
  argv.push_back(nullptr);

  const std::string log_path = options.log_path.empty() ? "/dev/null" : options.log_path;
  Fd log_fd(::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
  if (log_fd.get() < 0) {
    return io_error("spawn " + options.program + ": cannot open log " + log_path + ": " +
                    errno_text(errno));
  }
  Fd stdin_fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (stdin_fd.get() < 0) return io_error("spawn: cannot open /dev/null: " + errno_text(errno));

  int report[2];
  if (::pipe2(report, O_CLOEXEC) != 0) return io_error("spawn: pipe2: " + errno_text(errno));
  Fd report_read(report[0]);
  Fd report_write(report[1]);

  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) return io_error("spawn " + options.program + ": fork: " + errno_text(errno));
  if (pid == 0) {
    exec_child(*path, argv.data(), stdin_fd.get(), log_fd.get(), report_write.get(), parent,
               options.own_process_group);
  }

  report_write.reset();
  int child_errno = 0;
  ssize_t n;
  do {
    n = ::read(report_read.get(), &child_errno, sizeof(child_errno));
  } while (n < 0 && errno == EINTR);
  if (n == static_cast<ssize_t>(sizeof(child_errno))) {  // the child reported a failure
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return io_error("spawn: cannot exec " + *path + ": " + errno_text(child_errno));
  }
  return ChildProcess(pid);
}

ChildProcess::ChildProcess(ChildProcess&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)), exit_(std::move(other.exit_)) {}

ChildProcess& ChildProcess::operator=(ChildProcess&& other) noexcept {
  if (this != &other) {
    if (pid_ > 0 && !exit_) stop();
    pid_ = std::exchange(other.pid_, -1);
    exit_ = std::move(other.exit_);
  }
  return *this;
}

ChildProcess::~ChildProcess() {
  if (pid_ > 0 && !exit_) stop();
}

std::optional<ExitInfo> ChildProcess::poll() {
  if (exit_ || pid_ <= 0) return exit_;
  int status = 0;
  pid_t r;
  do {
    r = ::waitpid(pid_, &status, WNOHANG);
  } while (r < 0 && errno == EINTR);
  if (r == pid_) {
    exit_ = decode_wait_status(status);
  } else if (r < 0) {
    // ECHILD: somebody else reaped it (a SIGCHLD handler set to SIG_IGN). It is gone.
    exit_ = ExitInfo{.signaled = false, .code = -1};
  }
  return exit_;
}

std::optional<ExitInfo> ChildProcess::wait_for(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    if (std::optional<ExitInfo> ended = poll()) return ended;
    if (pid_ <= 0 || std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

Status ChildProcess::signal(int signo) {
  if (pid_ <= 0 || poll()) {
    return Status(StatusCode::not_found, "child " + std::to_string(pid_) + " has exited");
  }
  if (::kill(pid_, signo) != 0) {
    return io_error("kill(" + std::to_string(pid_) + ", " + std::to_string(signo) +
                    "): " + errno_text(errno));
  }
  return Status::Ok();
}

ExitInfo ChildProcess::stop(std::chrono::milliseconds grace) {
  if (pid_ <= 0) return ExitInfo{.signaled = false, .code = -1};
  if (std::optional<ExitInfo> ended = poll()) return *ended;

  ::kill(pid_, SIGTERM);
  ::kill(pid_, SIGCONT);  // a stopped process acts on SIGTERM only once it runs again
  if (std::optional<ExitInfo> ended = wait_for(grace)) return *ended;

  ::kill(pid_, SIGKILL);
  int status = 0;
  pid_t r;
  do {
    r = ::waitpid(pid_, &status, 0);
  } while (r < 0 && errno == EINTR);
  exit_ = r == pid_ ? decode_wait_status(status) : ExitInfo{.signaled = false, .code = -1};
  return *exit_;
}

Result<std::vector<std::uint16_t>> pick_free_loopback_ports(std::size_t count) {
  // Ports below the kernel's ephemeral range (32768-60999 by default): a port handed out there
  // may be taken by any outgoing connection on the machine while its node is down between two
  // starts, and the restart then fails with "address already in use".
  constexpr unsigned kLow = 12000;
  constexpr unsigned kHigh = 32000;
  constexpr int kAttempts = 2000;
  std::deque<Fd> held;  // kept open until every port is picked, so none is picked twice
  std::vector<std::uint16_t> ports;
  ports.reserve(count);
  std::random_device seed;
  std::minstd_rand rng(seed());
  for (int attempt = 0; ports.size() < count && attempt < kAttempts; ++attempt) {
    const auto port = static_cast<std::uint16_t>(kLow + rng() % (kHigh - kLow));
    Fd& fd = held.emplace_back(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (fd.get() < 0) return io_error("pick port: socket: " + errno_text(errno));
    sockaddr_in addr = {};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port);
    if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
      held.pop_back();
      continue;
    }
    ports.push_back(port);
  }
  if (ports.size() < count) {
    return io_error("pick port: found only " + std::to_string(ports.size()) + " of " +
                    std::to_string(count) + " free loopback ports in [" + std::to_string(kLow) +
                    ", " + std::to_string(kHigh) + ")");
  }
  return ports;
}

std::string tail_of_file(const std::string& path, std::size_t max_lines) {
  std::ifstream in(path);
  if (!in) return "(cannot read " + path + ")\n";
  std::deque<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    lines.push_back(std::move(line));
    if (lines.size() > max_lines) lines.pop_front();
  }
  std::string out;
  for (const std::string& line : lines) out += line + "\n";
  return out;
}

}  // namespace mishka::engine
