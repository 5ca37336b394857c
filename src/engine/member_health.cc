#include "engine/member_health.h"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string_view>

namespace mishka::engine {
namespace {

// Enough for etcd's answer ({"health":"true"} plus headers); anything longer is not etcd.
constexpr std::size_t kMaxResponseBytes = 16 * 1024;

class Socket {
 public:
  explicit Socket(int fd) : fd_(fd) {}
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  ~Socket() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

// Waits until `fd` is ready for `events` or `deadline` passes. False on timeout. Looks at least
// once, so that what is already there (a refused connection) is reported as such.
bool wait_ready(int fd, short events, const Deadline& deadline) {
  while (true) {
    const auto left = deadline.remaining();
    pollfd p = {.fd = fd, .events = events, .revents = 0};
    const int n = ::poll(&p, 1, static_cast<int>(left.count()));
    if (n > 0) return true;
    if (n < 0 && errno != EINTR) return true;  // let the following call report the error
    if (n == 0 && left.count() == 0) return false;
  }
}

}  // namespace

std::string host_port(const std::string& host, std::uint16_t port) {
  const bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

std::string make_url(const std::string& scheme, const std::string& host, std::uint16_t port) {
  return scheme + "://" + host_port(host, port);
}

Status probe_member_health(const std::string& host, std::uint16_t port, Deadline deadline) {
  const std::string url = make_url("http", host, port) + "/health";
  auto unavailable = [&](const std::string& why) {
    return Status(StatusCode::engine_unavailable, "GET " + url + ": " + why);
  };
  auto timed_out = [&](const std::string& during) {
    return Status(StatusCode::timeout, "GET " + url + ": no answer in time (" + during + ")");
  };

  addrinfo hints = {};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const std::string service = std::to_string(port);
  if (const int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &found); rc != 0) {
    return Status(StatusCode::invalid_argument,
                  "GET " + url + ": not an IP address: " + ::gai_strerror(rc));
  }
  Socket sock(::socket(found->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  const int connect_rc =
      sock.get() < 0 ? -1 : ::connect(sock.get(), found->ai_addr, found->ai_addrlen);
  const int connect_errno = errno;
  ::freeaddrinfo(found);
  if (sock.get() < 0) return unavailable(std::string("socket: ") + std::strerror(connect_errno));
  if (connect_rc != 0) {
    if (connect_errno != EINPROGRESS) return unavailable(std::strerror(connect_errno));
    if (!wait_ready(sock.get(), POLLOUT, deadline)) return timed_out("connecting");
    int err = 0;
    socklen_t len = sizeof(err);
    if (::getsockopt(sock.get(), SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
    if (err != 0) return unavailable(std::strerror(err));
  }

  // HTTP/1.0: the server closes the connection after its answer, so EOF ends the body.
  const std::string request =
      "GET /health?exclude=NOSPACE HTTP/1.0\r\nHost: " + host_port(host, port) +
      "\r\nAccept: application/json\r\n\r\n";
  std::size_t sent = 0;
  while (sent < request.size()) {
    const ssize_t n =
        ::send(sock.get(), request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<std::size_t>(n);
    } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      if (!wait_ready(sock.get(), POLLOUT, deadline)) return timed_out("sending");
    } else {
      return unavailable(std::string("send: ") + std::strerror(errno));
    }
  }

  std::string response;
  char buffer[4096];
  while (true) {
    const ssize_t n = ::recv(sock.get(), buffer, sizeof(buffer), 0);
    if (n > 0) {
      response.append(buffer, static_cast<std::size_t>(n));
      if (response.size() > kMaxResponseBytes) return unavailable("answer too long");
    } else if (n == 0) {
      break;
    } else if (errno == EAGAIN || errno == EINTR) {
      if (!wait_ready(sock.get(), POLLIN, deadline)) return timed_out("reading");
    } else {
      return unavailable(std::string("recv: ") + std::strerror(errno));
    }
  }

  // "HTTP/1.x NNN reason\r\n...headers...\r\n\r\nbody"
  const std::string_view text(response);
  if (text.size() < 12 || text.substr(0, 7) != "HTTP/1.") {
    return unavailable("not an HTTP answer: '" + std::string(text.substr(0, 40)) + "'");
  }
  const std::string_view code = text.substr(9, 3);
  const std::size_t body_at = text.find("\r\n\r\n");
  std::string body(body_at == std::string_view::npos ? "" : text.substr(body_at + 4));
  while (!body.empty() && (body.back() == '\n' || body.back() == '\r')) body.pop_back();
  if (code == "200" && body.find("\"health\":\"true\"") != std::string::npos) return Status::Ok();
  return unavailable("HTTP " + std::string(code) + " " + body);
}

}  // namespace mishka::engine
