// The endpoints of the admin HTTP (docs/admin.md), free of the HTTP library: a request that
// the server has already parsed (method, percent-decoded path segments, key_format, body) in,
// a reply (status, JSON body) out. admin_server.cc is the cpp-httplib side.
#pragma once

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

// Threading: handle() may run on many threads at once.
class AdminHandlers {
 public:
  // `metrics` must outlive the handlers.
  AdminHandlers(RepoProvider repo, AdminMetrics& metrics, LogSink log)
      : repo_(std::move(repo)), metrics_(metrics), log_(std::move(log)) {}

  // Routes and answers one request. Never throws: whatever the endpoint throws becomes a 500
  // with a message, and a log line.
  AdminReply handle(const AdminRequest& request);

 private:
  AdminReply dispatch(const AdminRequest& request);

  RepoProvider repo_;
  AdminMetrics& metrics_;
  LogSink log_;
};

}  // namespace mishka::admin
