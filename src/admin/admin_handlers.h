// The endpoints of the admin HTTP (docs/admin.md), free of the HTTP library: a request that
// the server has already parsed (method, percent-decoded path segments, key_format, body) in,
// a reply (status, JSON body) out. admin_server.cc is the cpp-httplib side.
#pragma once

#include <atomic>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "admin/admin_server.h"
#include "admin/metrics.h"
#include "mishka/log.h"
#include "mishka/status.h"

namespace mishka::admin {

struct AdminRequest {
  std::string method;                     // GET, HEAD, PUT, ...
  std::vector<std::string> segments;      // the path's segments, percent-decoded
  std::optional<std::string> key_format;  // the query's key_format, when given
  std::string body;
};

struct AdminReply {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // besides Content-Type
  // An answer that says what the node is, not that something failed (a probe's 503, "starting",
  // "pending"): never logged, whatever its status, so that probes do not fill the log.
  bool expected = false;
};

// The JSON error body {"error": code, "message": message} with its HTTP status.
AdminReply error_reply(int status, std::string_view code, std::string_view message);
// The HTTP status of a mishka error (docs/admin.md, "Errors"): invalid_argument 400, not_found
// 404, conflict 409, no_quorum / engine_unavailable / timeout 503, space_exceeded 507, anything
// else 500.
int http_status_of(StatusCode code);

// The name of the route that `segments` match ("state", "records", ...), or "unknown": the
// label of the request counter.
std::string_view route_name(const std::vector<std::string>& segments);

// The writes (PUT and DELETE of records, member removal) that may be in flight at once on a
// server of `threads` threads: threads - 2, at least 1. A write without a quorum holds its
// thread up to wait_timeout; this leaves threads for probes and reads.
int max_writes_in_flight(int threads);

// Threading: handle() may run on many threads at once.
class AdminHandlers {
 public:
  // `metrics` must outlive the handlers. `max_writes` (at least 1): writes served at once;
  // beyond, a write is answered 503 {"error": "busy"} at once.
  AdminHandlers(RepoProvider repo, AdminMetrics& metrics, LogSink log, int max_writes)
      : repo_(std::move(repo)), metrics_(metrics), log_(std::move(log)), max_writes_(max_writes) {}

  // Routes and answers one request. Never throws: whatever the endpoint throws becomes a 500
  // with a message. Answers of status 500 or more are logged (error for 500, warning for the
  // others), but for those marked `expected`.
  AdminReply handle(const AdminRequest& request);

 private:
  AdminReply dispatch(const AdminRequest& request);
  // A write, if a write slot is free.
  AdminReply write(MnesiaRepo& repo, std::string_view route, const AdminRequest& request);

  RepoProvider repo_;
  AdminMetrics& metrics_;
  LogSink log_;
  const int max_writes_;
  std::atomic<int> writes_in_flight_{0};
};

}  // namespace mishka::admin
