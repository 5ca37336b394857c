#include "engine/local_engine.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <system_error>
#include <utility>

#include "engine/deadline.h"

namespace mishka::engine {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

const std::string kQuotaFlag = "--quota-backend-bytes";

// Flags EtcdMember sets from the engine's config; etcd would take the last one given.
constexpr const char* kFlagsOfTheMember[] = {"name",
                                             "data-dir",
                                             "listen-client-urls",
                                             "advertise-client-urls",
                                             "listen-peer-urls",
                                             "initial-advertise-peer-urls",
                                             "initial-cluster",
                                             "initial-cluster-state",
                                             "initial-cluster-token"};

// "--flag=value", "-flag value" (Go's flag package takes one dash or two) -> "flag".
std::string flag_name(const std::string& arg) {
  std::size_t begin = 0;
  while (begin < arg.size() && begin < 2 && arg[begin] == '-') ++begin;
  if (begin == 0) return "";
  return arg.substr(begin,
                    arg.find('=') == std::string::npos ? std::string::npos : arg.find('=') - begin);
}

std::string hex_id(std::uint64_t id) {
  char hex[19];
  std::snprintf(hex, sizeof hex, "0x%016llx", static_cast<unsigned long long>(id));
  return hex;
}

Status validate(const LocalEngineConfig& c) {
  auto bad = [](const std::string& what) { return invalid_argument("local engine: " + what); };
  if (c.node_name.empty() || c.node_name.size() > kMaxNodeNameBytes) {
    return bad("node_name must have 1 to " + std::to_string(kMaxNodeNameBytes) + " bytes");
  }
  if (c.mnesia_dir.empty()) return bad("mnesia_dir is empty");
  if (c.quota_backend_bytes < kMinQuotaBytes || c.quota_backend_bytes > kMaxQuotaBytes) {
    return bad("quota_backend_bytes " + std::to_string(c.quota_backend_bytes) + " is outside [" +
               std::to_string(kMinQuotaBytes) + ", " + std::to_string(kMaxQuotaBytes) + "]");
  }
  for (const std::string& arg : c.extra_etcd_args) {
    const std::string flag = flag_name(arg);
    if (flag == "quota-backend-bytes") {
      return bad("extra_etcd_args may not set " + kQuotaFlag + " (use quota_backend_bytes)");
    }
    for (const char* owned : kFlagsOfTheMember) {
      if (flag == owned) return bad("extra_etcd_args may not set --" + flag + ": the engine does");
    }
  }
  if (c.call_timeout <= milliseconds(0)) return bad("call_timeout must be positive");
  const MaintenanceOptions& m = c.maintenance;
  if (m.interval < milliseconds(0)) return bad("maintenance.interval is negative");
  if (m.retention_revisions < 0) return bad("maintenance.retention_revisions is negative");
  if (m.retention_time < milliseconds(0)) return bad("maintenance.retention_time is negative");
  if (m.compaction_min_step < 1) return bad("maintenance.compaction_min_step must be at least 1");
  if (!(m.defrag_ratio >= 1.0)) return bad("maintenance.defrag_ratio must be at least 1");
  if (m.defrag_min_free_bytes < 0) return bad("maintenance.defrag_min_free_bytes is negative");
  if (m.defrag_min_interval < milliseconds(0)) {
    return bad("maintenance.defrag_min_interval is negative");
  }
  if (!(m.disarm_below_fraction > 0.0 && m.disarm_below_fraction <= 1.0)) {
    return bad("maintenance.disarm_below_fraction must be in (0, 1]");
  }
  if (m.call_timeout <= milliseconds(0) || m.compaction_timeout <= milliseconds(0) ||
      m.defrag_timeout <= milliseconds(0)) {
    return bad("maintenance timeouts must be positive");
  }
  return Status::Ok();
}

std::int64_t unix_ms_now() {
  return std::chrono::duration_cast<milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

LogLevel level_of(MemberEvent::Kind kind) {
  switch (kind) {
    case MemberEvent::Kind::exited:
    case MemberEvent::Kind::restarting:
    case MemberEvent::Kind::stale_member_killed:
      return LogLevel::warning;
    case MemberEvent::Kind::gave_up:
      return LogLevel::critical;
    default:
      return LogLevel::info;
  }
}

}  // namespace

LocalEngine::LocalEngine(LocalEngineConfig config) : config_(std::move(config)) {}

LocalEngine::~LocalEngine() {
  stop();
}

Result<std::unique_ptr<LocalEngine>> LocalEngine::open(LocalEngineConfig config) {
  MISHKA_RETURN_IF_ERROR(validate(config));
  std::unique_ptr<LocalEngine> engine(new LocalEngine(std::move(config)));
  Status started = engine->start();
  if (!started.ok()) {
    engine->stop();
    return started;
  }
  return engine;
}

void LocalEngine::log(LogLevel level, const std::string& message) const {
  log_to(config_.log, level, "engine " + config_.node_name + ": " + message);
}

Status LocalEngine::start() {
  namespace fs = std::filesystem;
  const std::string& dir = config_.mnesia_dir;
  const std::string id_path = identity_path(dir);
  const std::string data_dir = dir + "/etcd/data";

  // Only reads until the directory is known to be this node's and consistent.
  std::error_code error;
  const bool dir_exists = fs::exists(dir, error);
  if (error) return io_error("cannot examine " + dir + ": " + error.message());
  if (dir_exists && !fs::is_directory(dir, error)) {
    return io_error("mnesia_dir " + dir + " is not a directory");
  }
  std::optional<Identity> stored;
  if (dir_exists) {
    Result<std::optional<Identity>> checked = check_identity(dir, config_.node_name);
    if (!checked.ok()) return checked.status();
    stored = std::move(checked).value();
  }
  const bool has_data = fs::exists(data_dir + "/member", error);
  if (error) return io_error("cannot examine " + data_dir + ": " + error.message());
  if (!stored && has_data) {
    return corrupt("directory " + dir + " has etcd data in " + data_dir + " but no identity file " +
                   id_path + ": whose data it is cannot be told; refusing to start");
  }
  if (stored && stored->cluster_id != 0 && !has_data) {
    return corrupt("identity file " + id_path + " records member " + hex_id(stored->member_id) +
                   " of cluster " + hex_id(stored->cluster_id) + ", but its etcd data " + data_dir +
                   "/member is missing; refusing to bootstrap a new cluster over it");
  }

  MemberConfig mc;
  mc.etcd_binary = config_.etcd_binary;
  mc.data_dir = dir + "/etcd";
  mc.name = config_.node_name;
  mc.host = config_.host;
  mc.client_port = config_.client_port;
  mc.peer_port = config_.peer_port;
  mc.extra_args.push_back(kQuotaFlag + "=" + std::to_string(config_.quota_backend_bytes));
  mc.extra_args.insert(mc.extra_args.end(), config_.extra_etcd_args.begin(),
                       config_.extra_etcd_args.end());
  mc.ready_timeout = config_.ready_timeout;
  mc.restart_backoff_min = config_.restart_backoff_min;
  mc.restart_backoff_max = config_.restart_backoff_max;
  mc.stop_grace = config_.stop_grace;
  // Validates the member's fields before it creates <mnesia_dir>/etcd (and mnesia_dir).
  Result<std::unique_ptr<EtcdMember>> member =
      EtcdMember::create(std::move(mc), [this](const MemberEvent& e) { on_member_event(e); });
  if (!member.ok()) return member.status();
  member_ = std::move(member).value();
  if (!dir_exists) {
    fs::permissions(dir, fs::perms::owner_all, error);
    if (error) return io_error("cannot set the mode of " + dir + ": " + error.message());
  }

  if (stored) {
    identity_ = *stored;
  } else {
    // Claim the directory before etcd writes anything into it: cluster id 0 marks a first
    // start that has not completed yet.
    identity_ = Identity{.node_name = config_.node_name,
                         .member_id = 0,
                         .cluster_id = 0,
                         .created_unix_ms = unix_ms_now()};
    MISHKA_RETURN_IF_ERROR(write_identity(dir, identity_));
  }
  const bool first_start = identity_.cluster_id == 0;
  log(LogLevel::info,
      std::string(first_start ? "bootstrapping a one-member cluster" : "reusing its etcd data") +
          " in " + dir);

  MISHKA_RETURN_IF_ERROR(member_->start());

  ClientOptions options;
  options.endpoints = {member_->client_endpoint()};
  Result<std::unique_ptr<EtcdClient>> client = EtcdClient::create(options);
  if (!client.ok()) return client.status();
  client_ = std::move(client).value();

  Result<EndpointStatus> status =
      client_->status(member_->client_endpoint(), Deadline::after(config_.call_timeout));
  if (!status.ok()) return status.status().with_context("reading the ids of the member in " + dir);
  const std::uint64_t member_id = status->header.member_id;
  const std::uint64_t cluster_id = status->header.cluster_id;
  if (first_start) {
    identity_.member_id = member_id;
    identity_.cluster_id = cluster_id;
    MISHKA_RETURN_IF_ERROR(write_identity(dir, identity_));
    log(LogLevel::info, "bootstrapped cluster " + hex_id(cluster_id) + " with member " +
                            hex_id(member_id) + "; recorded in " + id_path);
  } else if (cluster_id != identity_.cluster_id || member_id != identity_.member_id) {
    return corrupt("directory " + dir + ": etcd data in " + data_dir + " is member " +
                   hex_id(member_id) + " of cluster " + hex_id(cluster_id) +
                   ", but identity file " + id_path + " records member " +
                   hex_id(identity_.member_id) + " of cluster " + hex_id(identity_.cluster_id));
  } else {
    log(LogLevel::info,
        "member " + hex_id(member_id) + " of cluster " + hex_id(cluster_id) + " is serving");
  }

  if (config_.maintenance.interval > milliseconds(0)) {
    thread_ = std::thread([this] { maintenance_loop(); });
  }
  return Status::Ok();
}

void LocalEngine::stop() {
  {
    std::lock_guard<std::mutex> lock(thread_mu_);
    stopping_ = true;
  }
  thread_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  {
    std::lock_guard<std::mutex> lock(run_mu_);
    client_.reset();
  }
  // The member object stays (stopped) so that its counters remain readable.
  if (member_) member_->stop();
}

void LocalEngine::on_member_event(const MemberEvent& event) {
  std::string line = std::string("etcd member ") + member_event_name(event.kind) + " (pid " +
                     std::to_string(event.pid) + ", restarts " + std::to_string(event.restarts) +
                     ")";
  if (!event.detail.empty()) line += ": " + event.detail;
  log(level_of(event.kind), line);
  if (config_.member_listener) config_.member_listener(event);
}

void LocalEngine::maintenance_loop() {
  std::unique_lock<std::mutex> lock(thread_mu_);
  while (!stopping_) {
    thread_cv_.wait_for(lock, config_.maintenance.interval, [this] { return stopping_; });
    if (stopping_) break;
    lock.unlock();
    Result<MaintenanceReport> report = run_maintenance_once();
    // A failure is logged when it starts or changes, not at every run (a member restarting
    // fails a few runs in a row).
    if (!report.ok() && report.status().message() != last_failure_) {
      last_failure_ = report.status().message();
      log(LogLevel::warning, "maintenance failed: " + report.status().to_string());
    } else if (report.ok() && !last_failure_.empty()) {
      last_failure_.clear();
      log(LogLevel::info, "maintenance works again");
    }
    lock.lock();
  }
}

void LocalEngine::report_alarm(SpaceAlarmEvent::Kind kind, std::int64_t db_size,
                               const std::string& detail) {
  SpaceAlarmEvent event{
      .kind = kind, .db_size = db_size, .quota = config_.quota_backend_bytes, .detail = detail};
  if (kind == SpaceAlarmEvent::Kind::raised) {
    log(LogLevel::error, "SPACE ALARM: etcd's space quota of " + std::to_string(event.quota) +
                             " bytes is exhausted (" + detail +
                             "; this member's database: " + std::to_string(db_size) +
                             " bytes): writes fail with space_exceeded until space is freed");
  } else {
    log(LogLevel::warning, "space alarm cleared (" + detail + "; this member's database: " +
                               std::to_string(db_size) + " bytes): writes are accepted again");
  }
  if (config_.space_alarm_listener) config_.space_alarm_listener(event);
}

std::int64_t LocalEngine::compaction_target(std::int64_t revision, bool emergency) {
  const MaintenanceOptions& m = config_.maintenance;
  const Clock::time_point now = Clock::now();
  if (m.retention_time > milliseconds(0)) {
    revision_samples_.emplace_back(now, revision);
    // Keep the newest sample that is old enough, and every newer one.
    while (revision_samples_.size() >= 2 && revision_samples_[1].first <= now - m.retention_time) {
      revision_samples_.pop_front();
    }
  }
  const std::int64_t done = compacted_revision_.load();
  if (emergency) return revision > done ? revision : 0;

  std::optional<std::int64_t> target;
  if (m.retention_revisions > 0) target = revision - m.retention_revisions;
  if (m.retention_time > milliseconds(0)) {
    const auto& oldest = revision_samples_.front();
    const std::int64_t by_time = oldest.first <= now - m.retention_time ? oldest.second : 0;
    target = target ? std::min(*target, by_time) : by_time;
  }
  if (!target || *target <= 0 || *target - done < m.compaction_min_step) return 0;
  return *target;
}

Result<MaintenanceReport> LocalEngine::run_maintenance_once() {
  std::lock_guard<std::mutex> lock(run_mu_);
  if (!client_) {
    return Status(StatusCode::engine_unavailable,
                  "engine " + config_.node_name + " is stopped: no maintenance");
  }
  const MaintenanceOptions& m = config_.maintenance;
  const std::string endpoint = member_->client_endpoint();
  MaintenanceReport report;

  Result<EndpointStatus> status = client_->status(endpoint, Deadline::after(m.call_timeout));
  if (!status.ok()) return status.status();
  report.revision = status->header.revision;
  report.db_size_before = status->db_size;
  report.db_size_in_use_before = status->db_size_in_use;
  report.db_size_after = status->db_size;

  Result<std::vector<Alarm>> alarms = client_->alarms(Deadline::after(m.call_timeout));
  if (!alarms.ok()) return alarms.status();
  std::string alarmed;  // the members with NOSPACE
  bool own_alarm = false;
  for (const Alarm& alarm : *alarms) {
    if (alarm.type != AlarmType::nospace) continue;
    alarmed += (alarmed.empty() ? "NOSPACE alarm of member " : ", ") + hex_id(alarm.member_id);
    own_alarm = own_alarm || alarm.member_id == identity_.member_id;
  }
  const bool emergency = !alarmed.empty();
  if (emergency && !space_alarm_.exchange(true)) {
    report_alarm(SpaceAlarmEvent::Kind::raised, status->db_size, alarmed);
  }

  // Compaction. Under the alarm the whole history goes: space matters more than old revisions.
  const std::int64_t target = compaction_target(report.revision, emergency);
  if (target > 0) {
    Status compacted =
        client_->compact(target, /*physical=*/true, Deadline::after(m.compaction_timeout));
    // Another member's maintenance may have compacted further already.
    if (!compacted.ok() && compacted.code() != StatusCode::compacted) return compacted;
    compacted_revision_.store(target);
    report.compacted_to = target;
    log(emergency ? LogLevel::warning : LogLevel::info,
        "compacted etcd's history to revision " + std::to_string(target) + " (current " +
            std::to_string(report.revision) + (emergency ? ", under the space alarm)" : ")"));
    status = client_->status(endpoint, Deadline::after(m.call_timeout));
    if (!status.ok()) return status.status();
  }

  // Defragmentation: rare, since it blocks this member while it rewrites its database file.
  const std::int64_t db_size = status->db_size;
  const std::int64_t in_use = status->db_size_in_use;
  const std::int64_t free_bytes = db_size - in_use;
  const Clock::time_point now = Clock::now();
  const bool due = !last_defrag_ || now - *last_defrag_ >= m.defrag_min_interval;
  const double limit = m.disarm_below_fraction * static_cast<double>(config_.quota_backend_bytes);
  // etcd's db_size_in_use lags: pages a compaction frees count as free only after a few more
  // backend commits, i.e. writes, which the alarm refuses. So under the alarm the file is
  // defragmented whenever it is above the disarm limit and something was deleted since the
  // last defragmentation of this alarm (deletes are the only writes etcd then accepts).
  const bool wanted =
      emergency ? static_cast<double>(db_size) > limit &&
                      report.revision != alarm_defrag_revision_.value_or(-1)
                : due && free_bytes >= m.defrag_min_free_bytes &&
                      static_cast<double>(db_size) >= m.defrag_ratio * static_cast<double>(in_use);
  report.db_size_after = db_size;
  log(LogLevel::debug, "maintenance: revision " + std::to_string(report.revision) + ", database " +
                           std::to_string(db_size) + " bytes, " + std::to_string(in_use) +
                           " in use" + (emergency ? ", space alarm" : ""));
  if (wanted) {
    log(LogLevel::warning, "defragmenting etcd's database (the member is blocked meanwhile): " +
                               std::to_string(db_size) + " bytes, " + std::to_string(in_use) +
                               " in use");
    const Clock::time_point began = Clock::now();
    MISHKA_RETURN_IF_ERROR(client_->defragment(endpoint, Deadline::after(m.defrag_timeout)));
    last_defrag_ = Clock::now();
    if (emergency) alarm_defrag_revision_ = report.revision;
    defragment_count_.fetch_add(1);
    report.defragmented = true;
    status = client_->status(endpoint, Deadline::after(m.call_timeout));
    if (!status.ok()) return status.status();
    report.db_size_after = status->db_size;
    log(LogLevel::warning,
        "defragmented etcd's database in " +
            std::to_string(
                std::chrono::duration_cast<milliseconds>(*last_defrag_ - began).count()) +
            " ms: " + std::to_string(db_size) + " -> " + std::to_string(report.db_size_after) +
            " bytes");
  }

  if (emergency) {
    if (own_alarm && static_cast<double>(report.db_size_after) <= limit) {
      MISHKA_RETURN_IF_ERROR(
          client_->disarm_alarm(Alarm{.member_id = identity_.member_id, .type = AlarmType::nospace},
                                Deadline::after(m.call_timeout)));
      report.alarm_disarmed = true;
      log(LogLevel::warning, "disarmed the NOSPACE alarm of member " + hex_id(identity_.member_id) +
                                 ": its database is " + std::to_string(report.db_size_after) +
                                 " bytes");
    } else if (own_alarm && !alarm_stuck_logged_) {
      alarm_stuck_logged_ = true;
      log(LogLevel::error, "the NOSPACE alarm stays: the database is still " +
                               std::to_string(report.db_size_after) + " bytes (limit " +
                               std::to_string(static_cast<std::int64_t>(limit)) +
                               "); delete data to free space");
    }
    Result<std::vector<Alarm>> after = client_->alarms(Deadline::after(m.call_timeout));
    if (!after.ok()) return after.status();
    const bool still = std::any_of(after->begin(), after->end(),
                                   [](const Alarm& a) { return a.type == AlarmType::nospace; });
    if (!still) {
      alarm_stuck_logged_ = false;
      alarm_defrag_revision_.reset();
    }
    if (!still && space_alarm_.exchange(false)) {
      report_alarm(
          SpaceAlarmEvent::Kind::cleared, report.db_size_after,
          report.alarm_disarmed ? "disarmed by this node's maintenance" : "disarmed elsewhere");
    }
  } else if (space_alarm_.exchange(false)) {
    report_alarm(SpaceAlarmEvent::Kind::cleared, report.db_size_after, "disarmed elsewhere");
  }
  report.space_alarm = space_alarm_.load();
  return report;
}

}  // namespace mishka::engine
