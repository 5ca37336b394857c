#include "support/process_checks.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <system_error>
#include <thread>

#include "engine/deadline.h"

namespace mishka::test {

namespace fs = std::filesystem;
using engine::Deadline;
using std::chrono::milliseconds;

std::string etcd_binary() {
  const char* from_env = std::getenv("MISHKA_ETCD");
  return from_env != nullptr && *from_env != '\0' ? from_env : "/usr/bin/etcd";
}

bool process_alive(pid_t pid) {
  return pid > 0 && ::kill(pid, 0) == 0;
}

bool process_ended(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!stat || !std::getline(stat, line)) return true;
  const std::size_t paren = line.rfind(')');
  return paren != std::string::npos && paren + 2 < line.size() && line[paren + 2] == 'Z';
}

std::vector<pid_t> processes_with_arg(const std::string& arg) {
  std::vector<pid_t> found;
  for (const auto& entry : fs::directory_iterator("/proc")) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || !std::all_of(name.begin(), name.end(), ::isdigit)) continue;
    std::ifstream in(entry.path() / "cmdline", std::ios::binary);
    bool match = false;
    for (std::string a; std::getline(in, a, '\0');) match = match || a == arg;
    const pid_t pid = static_cast<pid_t>(std::stol(name));
    if (match && !process_ended(pid)) found.push_back(pid);
  }
  return found;
}

std::vector<pid_t> processes_mentioning(const std::string& text) {
  std::vector<pid_t> found;
  std::error_code error;
  for (const auto& entry : fs::directory_iterator("/proc", error)) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || !std::all_of(name.begin(), name.end(), ::isdigit)) continue;
    std::ifstream in(entry.path() / "cmdline", std::ios::binary);
    bool match = false;
    for (std::string arg; std::getline(in, arg, '\0');) {
      match = match || arg.find(text) != std::string::npos;
    }
    const auto pid = static_cast<pid_t>(std::stol(name));
    if (match && pid != ::getpid() && !process_ended(pid)) found.push_back(pid);
  }
  return found;
}

bool no_process_mentions(const std::string& text, milliseconds timeout) {
  return eventually([&] { return processes_mentioning(text).empty(); }, timeout);
}

namespace {

bool can_bind_loopback(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  const int on = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool bound = ::bind(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0;
  ::close(fd);
  return bound;
}

}  // namespace

bool loopback_ports_free(const std::vector<std::uint16_t>& ports, milliseconds timeout) {
  return eventually([&] { return std::all_of(ports.begin(), ports.end(), can_bind_loopback); },
                    timeout);
}

bool eventually(const std::function<bool()>& condition, milliseconds timeout) {
  const Deadline deadline = Deadline::after(timeout);
  while (!condition()) {
    if (deadline.expired()) return false;
    std::this_thread::sleep_for(milliseconds(20));
  }
  return true;
}

}  // namespace mishka::test
