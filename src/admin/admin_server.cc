// The cpp-httplib side of the admin HTTP: listening, reading bodies within the limit, turning
// httplib's own error answers into JSON, counting requests. What each endpoint does is in
// admin_handlers.cc.
#include "admin/admin_server.h"

#include <httplib.h>
#include <sys/socket.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <set>
#include <thread>

#include "admin/admin_handlers.h"
#include "admin/metrics.h"

namespace mishka::admin {
namespace {

// The methods the admin routes; httplib answers others (TRACE, CONNECT, unknown words) with a
// bare 400, which the error handler turns into 405.
const std::set<std::string, std::less<>> kServedMethods = {"GET",    "HEAD",  "POST",   "PUT",
                                                           "DELETE", "PATCH", "OPTIONS"};

// How long an idle keep-alive connection holds a thread (and stop()).
constexpr time_t kKeepAliveSeconds = 2;

std::string address_text(const std::string& host, int port) {
  const bool ipv6 = host.find(':') != std::string::npos;
  return (ipv6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// RFC 3986 percent-decoding of one path segment; '+' stays '+' (it means a space only in
// queries).
Result<std::string> percent_decode(std::string_view segment) {
  std::string out;
  for (std::size_t i = 0; i < segment.size(); ++i) {
    if (segment[i] != '%') {
      out += segment[i];
      continue;
    }
    const bool two_more = i + 2 < segment.size();
    const int hi = two_more ? hex_digit(segment[i + 1]) : -1;
    const int lo = two_more ? hex_digit(segment[i + 2]) : -1;
    if (hi < 0 || lo < 0) {
      return invalid_argument("invalid percent-encoding in the path segment \"" +
                              std::string(segment) + "\" (a % must be followed by two hex digits)");
    }
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return out;
}

// The segments of the request target's path (before any '?'), each percent-decoded. httplib's
// own req.path is decoded as a whole, which would split a key holding an encoded '/'.
Result<std::vector<std::string>> path_segments(const std::string& target) {
  std::string_view path(target);
  path = path.substr(0, path.find_first_of("?#"));
  std::vector<std::string> segments;
  if (path.empty() || path.front() != '/') return segments;  // matches no route: 404
  path.remove_prefix(1);
  for (;;) {
    const std::size_t slash = path.find('/');
    Result<std::string> decoded = percent_decode(path.substr(0, slash));
    if (!decoded.ok()) return decoded.status();
    segments.push_back(std::move(decoded).value());
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return segments;
}

void send(const AdminReply& reply, httplib::Response& res) {
  res.status = reply.status;
  for (const auto& [name, value] : reply.headers) res.set_header(name, value);
  res.set_content(reply.body, reply.content_type);
}

// httplib's answers that no handler wrote (a malformed request, a method it does not route):
// a JSON body like every other error.
AdminReply reply_for_bare_status(const httplib::Request& req, int status) {
  if (status == 400 && !req.method.empty() && kServedMethods.count(req.method) == 0) {
    return error_reply(405, "method_not_allowed",
                       "method " + req.method + " is not served by the admin HTTP");
  }
  switch (status) {
    case 400:
      return error_reply(400, status_code_name(StatusCode::invalid_argument),
                         "malformed HTTP request");
    case 404:
      return error_reply(404, "not_found", "no such path: " + req.path);
    case 413:
      return error_reply(413, "payload_too_large", "the request body is too large");
    case 414:
      return error_reply(414, status_code_name(StatusCode::invalid_argument),
                         "the request target is too long");
    default:
      return error_reply(
          status,
          status_code_name(status < 500 ? StatusCode::invalid_argument : StatusCode::internal),
          "the request could not be served (HTTP status " + std::to_string(status) + ")");
  }
}

}  // namespace

class AdminServer::Impl {
 public:
  Impl(AdminOptions options, RepoProvider repo, telemetry::Telemetry& telemetry)
      : options_(std::move(options)), repo_(std::move(repo)), telemetry_(telemetry) {}

  ~Impl() { stop(); }

  Status start() {
    char id[64];
    std::snprintf(id, sizeof id, "mishka_admin_%p", static_cast<void*>(this));
    auto metrics = AdminMetrics::attach(telemetry_, id);
    if (!metrics.ok()) return metrics.status().with_context("admin HTTP: metrics");
    metrics_ = std::move(metrics).value();
    handlers_ = std::make_unique<AdminHandlers>(repo_, *metrics_, options_.log,
                                                max_writes_in_flight(options_.threads));
    configure();

    errno = 0;
    int port = options_.port;
    if (port == 0) {
      port = server_.bind_to_any_port(options_.host);
    } else if (!server_.bind_to_port(options_.host, port)) {
      port = -1;
    }
    if (port <= 0) {
      const int error = errno;
      return io_error("admin HTTP: cannot listen on " + address_text(options_.host, options_.port) +
                      ": " +
                      (error != 0 ? std::strerror(error) : "no such address (getaddrinfo failed)"));
    }
    port_ = static_cast<std::uint16_t>(port);
    listener_ = std::thread([this] {
      server_.listen_after_bind();
      listener_done_ = true;
    });
    // httplib's stop() does nothing until the accept loop runs: wait for it, so that a stop()
    // right after start() cannot miss it (and leave the loop running forever).
    while (!server_.is_running() && !listener_done_) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    if (!server_.is_running()) {
      stop();
      return io_error("admin HTTP: the server on " + address_text(options_.host, port_) +
                      " stopped accepting connections at once");
    }
    log_to(options_.log, LogLevel::info,
           "admin HTTP: listening on " + address_text(options_.host, port_));
    return Status::Ok();
  }

  void stop() {
    std::lock_guard<std::mutex> lock(stop_mu_);
    if (stopped_) return;
    stopped_ = true;
    server_.stop();
    if (listener_.joinable()) {
      listener_.join();
      log_to(options_.log, LogLevel::info,
             "admin HTTP: stopped listening on " + address_text(options_.host, port_));
    }
  }

  std::uint16_t port() const { return port_; }

 private:
  void configure() {
    const int threads = options_.threads;
    server_.new_task_queue = [threads] {
      return new httplib::ThreadPool(static_cast<std::size_t>(threads));
    };
    server_.set_payload_max_length(options_.max_body_bytes);
    server_.set_keep_alive_timeout(kKeepAliveSeconds);
    server_.set_tcp_nodelay(true);
    // httplib's default sets SO_REUSEPORT, which would let a second server bind the same port
    // and take half of the connections. SO_REUSEADDR only allows binding over TIME_WAIT.
    server_.set_socket_options([](socket_t sock) {
      int yes = 1;
      (void)::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    });

    // Every method goes to one handler that routes by itself, so that an unknown path gets 404
    // and a known path with the wrong method 405 (httplib would answer 404 for both).
    const std::string any = ".*";
    auto without_body = [this](const httplib::Request& req, httplib::Response& res) {
      serve(req, res, "");
    };
    auto with_body = [this](const httplib::Request& req, httplib::Response& res,
                            const httplib::ContentReader& reader) {
      serve_with_body(req, res, reader);
    };
    server_.Get(any, without_body);
    server_.Options(any, without_body);
    server_.Post(any, with_body);
    server_.Put(any, with_body);
    server_.Patch(any, with_body);
    server_.Delete(any, with_body);

    server_.set_error_handler(httplib::Server::HandlerWithResponse(
        [](const httplib::Request& req, httplib::Response& res) {
          if (res.body.empty()) send(reply_for_bare_status(req, res.status), res);
          return httplib::Server::HandlerResponse::Handled;
        }));
    server_.set_exception_handler([this](const httplib::Request& req, httplib::Response& res,
                                         const std::exception_ptr& error) {
      std::string what = "a non-standard exception";
      try {
        if (error) std::rethrow_exception(error);
      } catch (const std::exception& e) {
        what = e.what();
      } catch (...) {
      }
      log_to(options_.log, LogLevel::error,
             "admin HTTP: " + req.method + " " + req.target + ": " + what);
      send(error_reply(500, "internal", "unexpected failure: " + what), res);
    });
    server_.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
      Result<std::vector<std::string>> segments = path_segments(req.target);
      metrics_->count_request(segments.ok() ? route_name(*segments) : "unknown", res.status);
    });
  }

  // A body of at most max_body_bytes. Past the limit the rest is read and dropped, so that the
  // next request on the connection starts where it should (httplib does the same for a
  // Content-Length over the limit, and sets 413 itself).
  void serve_with_body(const httplib::Request& req, httplib::Response& res,
                       const httplib::ContentReader& reader) {
    // Without a Content-Length or a Transfer-Encoding a request has no body (RFC 9112 6.3);
    // httplib would read until the connection ends, and give up at its read timeout.
    if (!req.has_header("Content-Length") && !req.has_header("Transfer-Encoding")) {
      serve(req, res, "");
      return;
    }
    std::string body;
    bool too_large = false;
    const bool read = reader([&](const char* data, std::size_t size) {
      if (!too_large && body.size() + size > options_.max_body_bytes) {
        too_large = true;
        std::string().swap(body);
      }
      if (!too_large) body.append(data, size);
      return true;
    });
    if (too_large || (!read && res.status == 413)) {
      send(error_reply(413, "payload_too_large",
                       "the request body is larger than " +
                           std::to_string(options_.max_body_bytes) + " bytes"),
           res);
      return;
    }
    if (!read) {
      send(error_reply(400, status_code_name(StatusCode::invalid_argument),
                       "the request body could not be read (malformed chunks, or the "
                       "connection ended early)"),
           res);
      return;
    }
    serve(req, res, std::move(body));
  }

  void serve(const httplib::Request& req, httplib::Response& res, std::string body) {
    AdminRequest request;
    request.method = req.method;
    Result<std::vector<std::string>> segments = path_segments(req.target);
    if (!segments.ok()) {
      send(error_reply(400, status_code_name(StatusCode::invalid_argument),
                       segments.status().message()),
           res);
      return;
    }
    request.segments = std::move(segments).value();
    if (req.has_param("key_format")) request.key_format = req.get_param_value("key_format");
    request.body = std::move(body);
    send(handlers_->handle(request), res);
  }

  const AdminOptions options_;
  const RepoProvider repo_;
  telemetry::Telemetry& telemetry_;
  std::unique_ptr<AdminMetrics> metrics_;
  std::unique_ptr<AdminHandlers> handlers_;
  httplib::Server server_;
  std::thread listener_;
  std::atomic<bool> listener_done_{false};  // listen_after_bind() returned
  std::uint16_t port_ = 0;
  std::mutex stop_mu_;
  bool stopped_ = false;  // guarded by stop_mu_
};

Result<std::unique_ptr<AdminServer>> AdminServer::start(AdminOptions options, RepoProvider repo,
                                                        telemetry::Telemetry& telemetry) {
  if (options.host.empty()) return invalid_argument("admin option 'host': must not be empty");
  if (options.threads < 1 || options.threads > 1024) {
    return invalid_argument("admin option 'threads': must be 1..1024, got " +
                            std::to_string(options.threads));
  }
  if (options.max_body_bytes < 1) {
    return invalid_argument("admin option 'max_body_bytes': must be at least 1, got 0");
  }
  if (!repo) return invalid_argument("admin: the repo provider is empty");
  auto impl = std::make_unique<Impl>(std::move(options), std::move(repo), telemetry);
  MISHKA_RETURN_IF_ERROR(impl->start());
  return std::unique_ptr<AdminServer>(new AdminServer(std::move(impl)));
}

AdminServer::AdminServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

AdminServer::~AdminServer() {
  stop();
}

std::uint16_t AdminServer::port() const {
  return impl_->port();
}

void AdminServer::stop() {
  if (impl_) impl_->stop();
}

}  // namespace mishka::admin
