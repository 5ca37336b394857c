#include "admin/admin_handlers.h"

#include <algorithm>
#include <chrono>
#include <exception>
#include <memory>
#include <nlohmann/json.hpp>

#include "admin/json_codec.h"
#include "engine/node_name.h"
#include "mishka/store.h"

namespace mishka::admin {
namespace {

using std::chrono::milliseconds;

struct Route {
  std::string_view name;
  std::vector<std::string_view> pattern;  // "*" matches any one segment
  std::vector<std::string_view> methods;  // GET also admits HEAD
};

const std::vector<Route>& routes() {
  static const std::vector<Route> kRoutes = {
      {"state", {"state"}, {"GET"}},
      {"schemas", {"schemas"}, {"GET"}},
      {"healthz", {"healthz"}, {"GET"}},
      {"readyz", {"readyz"}, {"GET"}},
      {"metrics", {"metrics"}, {"GET"}},
      {"records", {"tables", "*", "records", "*"}, {"GET", "PUT", "DELETE"}},
      {"remove_member", {"members", "*", "remove"}, {"POST"}},
  };
  return kRoutes;
}

const Route* find_route(const std::vector<std::string>& segments) {
  for (const Route& route : routes()) {
    if (route.pattern.size() != segments.size()) continue;
    bool match = true;
    for (std::size_t i = 0; i < segments.size() && match; ++i) {
      match = route.pattern[i] == "*" || route.pattern[i] == segments[i];
    }
    if (match) return &route;
  }
  return nullptr;
}

bool allows(const Route& route, std::string_view method) {
  const std::string_view as = method == "HEAD" ? "GET" : method;
  return std::find(route.methods.begin(), route.methods.end(), as) != route.methods.end();
}

std::string allowed_methods(const Route& route) {
  std::string out;
  for (std::string_view m : route.methods) {
    out += (out.empty() ? "" : ", ") + std::string(m);
    if (m == "GET") out += ", HEAD";
  }
  return out;
}

std::string path_of(const AdminRequest& request) {
  std::string out;
  for (const std::string& s : request.segments) out += "/" + s;
  return out.empty() ? "/" : out;
}

std::string single_quoted(std::string_view name) {
  return "'" + std::string(name) + "'";
}

AdminReply json_reply(int status, const Json& body) {
  AdminReply reply;
  reply.status = status;
  reply.body = json_text(body);
  return reply;
}

Json error_body(std::string_view code, std::string_view message) {
  return Json{{"error", code}, {"message", message}};
}

AdminReply failure(const Status& status) {
  return error_reply(http_status_of(status.code()), status_code_name(status.code()),
                     status.message());
}

// A write that failed after it may have reached etcd: the store says so with a timeout, or in
// the message of other errors (store.h). The reply then says "outcome": "unknown".
AdminReply write_failure(const Status& status, bool outcome_unknown = false) {
  const bool unknown = outcome_unknown || status.code() == StatusCode::timeout ||
                       status.message().find("outcome unknown") != std::string::npos;
  if (!unknown) return failure(status);
  Json body = error_body(status_code_name(status.code()), status.message());
  body["outcome"] = "unknown";
  return json_reply(http_status_of(status.code()), body);
}

// The deadline of a record write, so that the reply leaves within the repo's wait_timeout
// (CONTRACT.md section 11): past its deadline the store may wait one more second for etcd's
// verdict (WriteOptions), and a write that timed out is followed by a health check to tell a
// lost quorum, which the repo bounds to 2 s. Never below a quarter of wait_timeout, nor 100 ms.
milliseconds write_timeout(milliseconds wait_timeout) {
  constexpr milliseconds kAfterDeadline{3500};
  constexpr milliseconds kFloor{100};
  return std::max({wait_timeout - kAfterDeadline, wait_timeout / 4, kFloor});
}

// A failed record write or delete (docs/admin.md, "Writes without a quorum"): a timeout while
// the local etcd member has no leader is a lost quorum, reported as such.
AdminReply record_write_failure(MnesiaRepo& repo, AdminMetrics& metrics, const Status& status) {
  if (status.code() == StatusCode::timeout) {
    const HealthReport health = repo.health_check();
    metrics.remember_health(health);
    if (!health.member_healthy) {
      return write_failure(Status(StatusCode::no_quorum,
                                  "the write timed out while the local etcd member has no leader "
                                  "(no quorum); it may or may not have happened: " +
                                      status.message()),
                           true);
    }
  }
  return write_failure(status);
}

// Records need the store, which a pending node does not have yet.
AdminReply no_store(MnesiaRepo& repo) {
  // state() asks etcd nothing while the repo has no node: cheap here.
  const RepoState state = repo.state();
  std::string message = "node " + state.node;
  if (state.status == RepoStatus::pending) {
    message += " is pending: no tables yet";
    if (!state.pending_reason.empty())
      message += " (last join attempt: " + state.pending_reason + ")";
  } else {
    message += " has no store (status " + std::string(repo_status_name(state.status)) + ")";
  }
  AdminReply reply = error_reply(503, status_code_name(StatusCode::engine_unavailable), message);
  reply.expected = state.status == RepoStatus::pending;
  return reply;
}

AdminReply records(MnesiaRepo& repo, AdminMetrics& metrics, const AdminRequest& request) {
  const std::string& table = request.segments[1];
  Result<Value> key = key_of_path_segment(request.segments[3], request.key_format);
  if (!key.ok()) return failure(key.status());
  const std::shared_ptr<Store> store = repo.shared_store();
  if (store == nullptr) return no_store(repo);
  Result<TableSpec> spec = store->table_spec(table);
  if (!spec.ok()) return failure(spec.status());
  const std::string where = "table " + single_quoted(table);

  if (request.method == "GET" || request.method == "HEAD") {
    Result<std::vector<RecordRef>> found = store->dirty_read(table, *key);
    if (!found.ok()) return failure(found.status());
    if (found->empty()) {
      return error_reply(404, "not_found",
                         where + " has no record with key " + key->debug_string());
    }
    if (spec->type != TableType::bag)
      return json_reply(200, json_of_record(*spec, *found->front()));
    Json all = Json::array();
    for (const RecordRef& r : *found) all.push_back(json_of_record(*spec, *r));
    return json_reply(200, all);
  }

  const WriteOptions write{.timeout = write_timeout(repo.options().wait_timeout)};
  if (request.method == "PUT") {
    Result<Record> record = record_of_json_text(*spec, request.body, *key);
    if (!record.ok()) return failure(record.status());
    const Status written = store->dirty_write(table, *record, write);
    if (!written.ok()) return record_write_failure(repo, metrics, written);
    return json_reply(200, Json{{"table", table},
                                {"key", json_of_value(*key)},
                                {"record", json_of_record(*spec, *record)}});
  }

  // DELETE: 404 for a record this node's replica does not have.
  Result<std::vector<RecordRef>> found = store->dirty_read(table, *key);
  if (!found.ok()) return failure(found.status());
  if (found->empty()) {
    return error_reply(404, "not_found", where + " has no record with key " + key->debug_string());
  }
  const Status deleted = store->dirty_delete(table, *key, write);
  if (!deleted.ok()) return record_write_failure(repo, metrics, deleted);
  return json_reply(200, Json{{"table", table}, {"key", json_of_value(*key)}, {"deleted", true}});
}

AdminReply remove_member(MnesiaRepo& repo, const AdminRequest& request) {
  const std::string& node = request.segments[1];
  // A malformed name is bad input, not an unknown member: say what is wrong with it.
  if (Result<engine::NodeName> parsed = engine::parse_node_name(node); !parsed.ok()) {
    return failure(parsed.status().with_context("POST /members/{node}/remove"));
  }
  const Status removed = repo.remove_node(node, repo.options().wait_timeout);
  if (!removed.ok()) return write_failure(removed);
  return json_reply(200, Json{{"removed", node}});
}

AdminReply metrics_reply(AdminMetrics& metrics, MnesiaRepo* repo) {
  AdminReply reply;
  reply.content_type = "text/plain; version=0.0.4; charset=utf-8";
  reply.body = metrics.scrape(repo);
  return reply;
}

// Holds one of the write slots of AdminHandlers while a write is served.
class WriteSlot {
 public:
  WriteSlot(std::atomic<int>& in_flight, int max) : in_flight_(in_flight) {
    held_ = in_flight_.fetch_add(1) < max;
    if (!held_) in_flight_.fetch_sub(1);
  }
  ~WriteSlot() {
    if (held_) in_flight_.fetch_sub(1);
  }
  WriteSlot(const WriteSlot&) = delete;
  WriteSlot& operator=(const WriteSlot&) = delete;
  bool held() const { return held_; }

 private:
  std::atomic<int>& in_flight_;
  bool held_ = false;
};

bool is_write(std::string_view route, std::string_view method) {
  return route == "remove_member" ||
         (route == "records" && (method == "PUT" || method == "DELETE"));
}

}  // namespace

int max_writes_in_flight(int threads) {
  return std::max(1, threads - 2);
}

AdminReply error_reply(int status, std::string_view code, std::string_view message) {
  return json_reply(status, error_body(code, message));
}

int http_status_of(StatusCode code) {
  switch (code) {
    case StatusCode::invalid_argument:
      return 400;
    case StatusCode::not_found:
      return 404;
    case StatusCode::conflict:
      return 409;
    case StatusCode::no_quorum:
    case StatusCode::engine_unavailable:
    case StatusCode::timeout:
      return 503;
    case StatusCode::space_exceeded:
      return 507;
    default:
      return 500;
  }
}

std::string_view route_name(const std::vector<std::string>& segments) {
  const Route* route = find_route(segments);
  return route == nullptr ? "unknown" : route->name;
}

AdminReply AdminHandlers::handle(const AdminRequest& request) {
  AdminReply reply;
  try {
    reply = dispatch(request);
  } catch (const std::exception& e) {
    reply = error_reply(500, "internal", std::string("unexpected failure: ") + e.what());
  } catch (...) {
    reply = error_reply(500, "internal", "unexpected failure: a non-standard exception");
  }
  if (reply.status >= 500 && !reply.expected) {
    log_to(log_, reply.status == 500 ? LogLevel::error : LogLevel::warning,
           "admin: " + request.method + " " + path_of(request) + " -> " +
               std::to_string(reply.status) + " " + reply.body);
  }
  return reply;
}

AdminReply AdminHandlers::dispatch(const AdminRequest& request) {
  const Route* route = find_route(request.segments);
  if (route == nullptr) {
    return error_reply(404, "not_found",
                       "no such path: " + path_of(request) + " (docs/admin.md lists the paths)");
  }
  if (!allows(*route, request.method)) {
    AdminReply reply = error_reply(405, "method_not_allowed",
                                   request.method + " is not allowed on " + path_of(request) +
                                       " (allowed: " + allowed_methods(*route) + ")");
    reply.headers.emplace_back("Allow", allowed_methods(*route));
    return reply;
  }

  const std::shared_ptr<MnesiaRepo> repo = repo_();
  const std::string_view name = route->name;
  if (repo == nullptr) {
    if (name == "metrics") return metrics_reply(metrics_, nullptr);
    AdminReply reply = name == "readyz"
                           ? json_reply(503, Json{{"status", "starting"}})
                           : error_reply(503, "starting",
                                         "no repo runs on this node yet: its boot has not ended, "
                                         "or it is being restarted");
    reply.expected = true;
    return reply;
  }
  if (is_write(name, request.method)) return write(*repo, name, request);
  if (name == "state") return json_reply(200, json_of_value(to_value(repo->state())));
  if (name == "schemas") {
    Result<Value> schemas = repo->call("schemas");
    if (!schemas.ok()) return failure(schemas.status());
    return json_reply(200, json_of_value(*schemas));
  }
  // A probe's 503 is its answer, not a failure of the server: not logged.
  if (name == "healthz") {
    const HealthReport report = repo->health_check();
    metrics_.remember_health(report);
    AdminReply reply = json_reply(report.healthy ? 200 : 503, json_of_value(to_value(report)));
    reply.expected = true;
    return reply;
  }
  if (name == "readyz") {
    const RepoStatus status = repo->status();
    AdminReply reply = json_reply(status == RepoStatus::synchronized ? 200 : 503,
                                  Json{{"status", repo_status_name(status)}});
    reply.expected = true;
    return reply;
  }
  if (name == "metrics") return metrics_reply(metrics_, repo.get());
  return records(*repo, metrics_, request);  // a GET or HEAD
}

AdminReply AdminHandlers::write(MnesiaRepo& repo, std::string_view route,
                                const AdminRequest& request) {
  const WriteSlot slot(writes_in_flight_, max_writes_);
  if (!slot.held()) {
    return error_reply(503, "busy",
                       "this server already serves as many writes as it allows at once (" +
                           std::to_string(max_writes_) +
                           "; each may wait up to the repo's wait_timeout for a quorum): the "
                           "write was not attempted; try again later");
  }
  if (route == "records") return records(repo, metrics_, request);
  return remove_member(repo, request);
}

}  // namespace mishka::admin
