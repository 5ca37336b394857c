#include "admin/metrics.h"

#include <chrono>
#include <optional>
#include <utility>
#include <vector>

namespace mishka::admin {

using telemetry::Counter;
using telemetry::Gauge;
using telemetry::Histogram;

namespace {

// The names of the repo's statuses and roles, each rendered as one series of its gauge.
constexpr std::string_view kStatuses[] = {"starting", "pending", "synchronized", "inconsistent",
                                          "stopped"};
constexpr std::string_view kRoles[] = {"voter", "learner", "replica"};

// Boots take from a fraction of a second (a restart) to minutes (a join that waits for tables).
const std::vector<double> kInitBuckets = {0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600};

// The repo's events this file counts, as the segments after "mishka_installer.mnesia".
const std::vector<std::vector<std::string>> kCountedEvents = {
    {"init", "stop"},      {"init", "exception"},   {"table"},
    {"synchronized"},      {"health_check"},        {"inconsistent_database"},
    {"cluster", "nodeup"}, {"cluster", "nodedown"},
};

// A metadata value as a label: strings as they are, booleans as true/false, the original's
// {error, reason} tuples (lists) by their first element; anything else or absent: "".
std::string label_of(const telemetry::Metadata& metadata, std::string_view key) {
  const auto it = metadata.find(key);
  if (it == metadata.end()) return "";
  const Value& v = it->second;
  if (const std::string* s = v.get_string()) return *s;
  if (const bool* b = v.get_bool()) return *b ? "true" : "false";
  if (const List* l = v.get_list(); l != nullptr && !l->empty() && l->front().get_string()) {
    return *l->front().get_string();
  }
  return "";
}

// A measurement in nanoseconds as seconds; nullopt when absent or not a number.
std::optional<double> seconds_of(const telemetry::Measurements& measurements,
                                 std::string_view key) {
  const auto it = measurements.find(key);
  if (it == measurements.end()) return std::nullopt;
  if (const std::int64_t* i = it->second.get_int()) return static_cast<double>(*i) / 1e9;
  if (const double* d = it->second.get_double()) return *d / 1e9;
  return std::nullopt;
}

double flag(bool b) {
  return b ? 1 : 0;
}

template <typename T>
std::shared_ptr<T> must(Result<std::shared_ptr<T>> metric, Status& failed) {
  if (!metric.ok()) {
    if (failed.ok()) failed = metric.status();
    return nullptr;
  }
  return std::move(metric).value();
}

}  // namespace

// Every metric of the admin but mishka_telemetry_events_total (PrometheusEventCounter's).
// Metric updates return a Status that only says a label was not UTF-8: such a sample is
// dropped (a metric must never fail a request or an event).
class AdminMetrics::Instruments {
 public:
  Status register_in(telemetry::PrometheusRegistry& r) {
    Status failed;
    table_events = must(r.counter("mishka_repo_table_events_total",
                                  "Table events of the repo's boots (CONTRACT.md section 7), by "
                                  "table and status.",
                                  {"table", "status"}),
                        failed);
    nodeups =
        must(r.counter("mishka_repo_nodeup_total",
                       "Nodeup events handled, by action (CONTRACT.md section 4).", {"action"}),
             failed);
    nodedowns = must(r.counter("mishka_repo_nodedown_total",
                               "Nodedown events, by whether the peer is a member of this node's "
                               "cluster.",
                               {"db_member"}),
                     failed);
    inits = must(r.counter("mishka_repo_inits_total",
                           "Boots of the repo that ended, by result: ok, stop (a failed boot) or "
                           "exception.",
                           {"result"}),
                 failed);
    synchronized = must(r.counter("mishka_repo_synchronized_total",
                                  "Times the repo became synchronized (each ready announcement)."),
                        failed);
    health_checks =
        must(r.counter("mishka_repo_health_checks_total",
                       "Health checks run (the timer's and on demand), by outcome.", {"healthy"}),
             failed);
    inconsistencies = must(r.counter("mishka_repo_inconsistent_database_total",
                                     "Times a peer was found to belong to another cluster."),
                           failed);
    requests = must(r.counter("mishka_admin_requests_total",
                              "Requests answered by the admin HTTP, by route and HTTP status.",
                              {"route", "code"}),
                    failed);
    init_duration = must(r.histogram("mishka_repo_init_duration_seconds",
                                     "Duration of the repo's boots (the init span), by result.",
                                     {"result"}, kInitBuckets),
                         failed);
    running = must(r.gauge("mishka_repo_running",
                           "1 while a repo runs on this node, 0 while it boots or restarts."),
                   failed);
    status = must(r.gauge("mishka_repo_status",
                          "1 for the repo's current status, 0 for the others.", {"status"}),
                  failed);
    role = must(r.gauge("mishka_repo_role",
                        "1 for this node's current role (voter, learner, replica), 0 for the "
                        "others; all 0 while pending.",
                        {"role"}),
                failed);
    members = must(r.gauge("mishka_repo_members",
                           "Members of the cluster as this node sees it: etcd members and "
                           "replica nodes."),
                   failed);
    members_up = must(
        r.gauge("mishka_repo_members_up", "Members whose presence key is there (running nodes)."),
        failed);
    local_tables = must(
        r.gauge("mishka_repo_local_tables", "Tables in this node's replica, the schema included."),
        failed);
    leader_known = must(r.gauge("mishka_repo_leader_known",
                                "1 when this node knows the etcd leader of its cluster."),
                        failed);
    healthy = must(r.gauge("mishka_repo_healthy",
                           "1 when the last health check found every essential table local; 0 "
                           "when not, or while no repo runs or it is pending."),
                   failed);
    member_healthy = must(r.gauge("mishka_repo_member_healthy",
                                  "1 when the local etcd member answered with a leader, at the "
                                  "last health check this admin ran."),
                          failed);
    replica_lag = must(r.gauge("mishka_repo_replica_lag_revisions",
                               "etcd's revision minus the local replica's, at the last health "
                               "check this admin ran (-1: unknown)."),
                       failed);
    etcd_restarts = must(r.gauge("mishka_repo_etcd_restarts",
                                 "Times this node's etcd member was started again after it "
                                 "exited, at the last health check this admin ran."),
                         failed);
    health_report_time = must(r.gauge("mishka_repo_health_report_timestamp_seconds",
                                      "When the admin last ran a health check (Unix time): the "
                                      "age of the three gauges above."),
                              failed);
    return failed;
  }

  // The telemetry handler: one repo event.
  void on_event(const telemetry::EventName& event, const telemetry::Measurements& m,
                const telemetry::Metadata& md) {
    // Only the names of kCountedEvents arrive, each under "mishka_installer.mnesia.".
    const std::string full = telemetry::join_event_name(event);
    const std::string prefix = std::string(kTelemetryApp) + "." + kTelemetryArea + ".";
    const std::string_view name = full.starts_with(prefix)
                                      ? std::string_view(full).substr(prefix.size())
                                      : std::string_view(full);
    if (name == "init.stop") {
      const std::string result = label_of(md, "result");
      (void)inits->increment({result});
      if (std::optional<double> s = seconds_of(m, "duration")) {
        (void)init_duration->observe({result}, *s);
      }
    } else if (name == "init.exception") {
      (void)inits->increment({"exception"});
      if (std::optional<double> s = seconds_of(m, "duration")) {
        (void)init_duration->observe({"exception"}, *s);
      }
    } else if (name == "table") {
      (void)table_events->increment({label_of(md, "table"), label_of(md, "status")});
    } else if (name == "synchronized") {
      (void)synchronized->increment({});
    } else if (name == "health_check") {
      const std::string ok = label_of(md, "healthy?");
      (void)health_checks->increment({ok});
      (void)healthy->set({}, flag(ok == "true"));
    } else if (name == "inconsistent_database") {
      (void)inconsistencies->increment({});
    } else if (name == "cluster.nodeup") {
      (void)nodeups->increment({label_of(md, "action")});
    } else if (name == "cluster.nodedown") {
      (void)nodedowns->increment({label_of(md, "db_member?")});
    }
  }

  void remember_health(const HealthReport& report) {
    (void)member_healthy->set({}, flag(report.member_healthy));
    (void)replica_lag->set({}, static_cast<double>(report.replica_lag));
    (void)etcd_restarts->set({}, static_cast<double>(report.etcd_restarts));
    const auto now = std::chrono::system_clock::now().time_since_epoch();
    (void)health_report_time->set({}, std::chrono::duration<double>(now).count());
  }

  void refresh(MnesiaRepo* repo) {
    RepoState state;  // status `starting`, no role, no members: what a node without a repo shows
    if (repo != nullptr) state = repo->state();
    (void)running->set({}, flag(repo != nullptr));
    const std::string_view current = repo_status_name(state.status);
    for (std::string_view s : kStatuses) (void)status->set({std::string(s)}, flag(s == current));
    for (std::string_view r : kRoles) (void)role->set({std::string(r)}, flag(r == state.role));
    (void)members->set({}, static_cast<double>(state.members.size()));
    double up = 0;
    for (const MemberInfo& m : state.members) up += flag(m.up);
    (void)members_up->set({}, up);
    (void)local_tables->set({}, static_cast<double>(state.tables.size()));
    (void)leader_known->set({}, flag(!state.leader.empty()));
    // No health check runs without tables: the last verdict no longer holds.
    if (state.status == RepoStatus::starting || state.status == RepoStatus::pending ||
        state.status == RepoStatus::stopped) {
      (void)healthy->set({}, 0);
    }
  }

  std::shared_ptr<Counter> table_events, nodeups, nodedowns, inits, synchronized, health_checks,
      inconsistencies, requests;
  std::shared_ptr<Histogram> init_duration;
  std::shared_ptr<Gauge> running, status, role, members, members_up, local_tables, leader_known,
      healthy, member_healthy, replica_lag, etcd_restarts, health_report_time;
};

AdminMetrics::AdminMetrics(telemetry::Telemetry& telemetry, std::string handler_id)
    : telemetry_(telemetry),
      handler_id_(std::move(handler_id)),
      instruments_(std::make_shared<Instruments>()) {}

Result<std::unique_ptr<AdminMetrics>> AdminMetrics::attach(telemetry::Telemetry& telemetry,
                                                           const std::string& handler_id) {
  std::unique_ptr<AdminMetrics> metrics(new AdminMetrics(telemetry, handler_id));
  MISHKA_RETURN_IF_ERROR(metrics->instruments_->register_in(metrics->registry_));
  auto counter = telemetry::PrometheusEventCounter::attach(telemetry, metrics->registry_,
                                                           handler_id + ".events");
  if (!counter.ok()) return counter.status();
  metrics->event_counter_ = std::move(counter).value();

  std::vector<telemetry::EventName> events;
  for (const auto& tail : kCountedEvents) {
    telemetry::EventName name = {kTelemetryApp, kTelemetryArea};
    name.insert(name.end(), tail.begin(), tail.end());
    events.push_back(std::move(name));
  }
  // The handler holds the instruments, not this object: a call still running after detach()
  // keeps them alive (telemetry.h).
  MISHKA_RETURN_IF_ERROR(telemetry.attach(
      handler_id + ".repo", std::move(events),
      [instruments = metrics->instruments_](
          const telemetry::EventName& event, const telemetry::Measurements& m,
          const telemetry::Metadata& md) { instruments->on_event(event, m, md); }));
  return metrics;
}

AdminMetrics::~AdminMetrics() {
  // Absent when attach() failed half way; detach() then says not_found, which is fine.
  (void)telemetry_.detach(handler_id_ + ".repo");
}

void AdminMetrics::count_request(std::string_view route, int http_status) {
  (void)instruments_->requests->increment({std::string(route), std::to_string(http_status)});
}

void AdminMetrics::remember_health(const HealthReport& report) {
  instruments_->remember_health(report);
}

std::string AdminMetrics::scrape(MnesiaRepo* repo) {
  instruments_->refresh(repo);
  return registry_.render();
}

}  // namespace mishka::admin
