// UserTables (user_tables.h).
#include "mishkad/user_tables.h"

#include <utility>

#include "mishka/store.h"

namespace mishka::daemon {
namespace {

using std::chrono::milliseconds;

// How long after a `synchronized` event the repo may take to be published by its supervisor
// and to report itself synchronized (both follow the event within moments).
constexpr milliseconds kPublishWait{30000};
constexpr milliseconds kPollInterval{100};
// Between two passes over tables whose creation failed for a reason that may pass.
constexpr milliseconds kRetryInterval{5000};

telemetry::EventName event_name(std::string_view last) {
  return {kTelemetryApp, kTelemetryArea, std::string(last)};
}

// "attributes [id, name], set, disc_copies, not local_content, indexes [name]".
std::string describe(const TableSpec& spec) {
  auto names = [](const std::vector<std::string>& list) {
    std::string out = "[";
    for (const std::string& item : list) out += (out.size() > 1 ? ", " : "") + item;
    return out + "]";
  };
  return "attributes " + names(spec.attributes) + ", " + std::string(table_type_name(spec.type)) +
         ", " + std::string(storage_type_name(spec.storage)) +
         (spec.local_content ? ", local_content" : ", not local_content") + ", indexes " +
         names(spec.indexes);
}

// Failures that say something about the table or its spec: trying again changes nothing.
bool settled_failure(StatusCode code) {
  return code == StatusCode::invalid_argument || code == StatusCode::unsupported;
}

}  // namespace

UserTables::UserTables(std::vector<TableSpec> tables, RepoSource repo,
                       telemetry::Telemetry& telemetry, LogSink log)
    : tables_(std::move(tables)),
      repo_(std::move(repo)),
      telemetry_(telemetry),
      log_(std::move(log)) {}

UserTables::~UserTables() {
  stop();
}

Status UserTables::start() {
  MISHKA_RETURN_IF_ERROR(
      telemetry_.attach(handler_id_, {event_name("synchronized")},
                        [this](const telemetry::EventName&, const telemetry::Measurements&,
                               const telemetry::Metadata&) {
                          // On the repo's thread, inside its boot: only note it; the work runs on
                          // our thread.
                          std::lock_guard<std::mutex> lock(mu_);
                          synchronized_seen_ = true;
                          cv_.notify_all();
                        }));
  attached_ = true;
  thread_ = std::thread([this] { loop(); });
  return Status::Ok();
}

void UserTables::stop() {
  if (attached_) {
    (void)telemetry_.detach(handler_id_);
    attached_ = false;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool UserTables::pause(milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, timeout, [this] { return stopping_; });
  return !stopping_;
}

void UserTables::loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    cv_.wait(lock, [this] { return stopping_ || synchronized_seen_; });
    if (stopping_) return;
    synchronized_seen_ = false;
    lock.unlock();
    if (std::shared_ptr<MnesiaRepo> repo = synchronized_repo()) {
      std::set<std::string> done;
      while (ensure_tables(*repo, done) == Pass::retry && pause(kRetryInterval)) {
        // A repo replaced meanwhile announces itself again: its own event starts over.
        if (repo_() != repo) break;
      }
    }
    lock.lock();
  }
}

std::shared_ptr<MnesiaRepo> UserTables::synchronized_repo() {
  const auto deadline = std::chrono::steady_clock::now() + kPublishWait;
  while (std::chrono::steady_clock::now() < deadline) {
    std::shared_ptr<MnesiaRepo> repo = repo_();
    if (repo != nullptr && repo->status() == RepoStatus::synchronized) return repo;
    if (!pause(kPollInterval)) return nullptr;
  }
  log_to(log_, LogLevel::warning,
         "user tables: the repo did not become synchronized within " +
             std::to_string(kPublishWait.count()) +
             " ms of its synchronized event; waiting for "
             "the next one");
  return nullptr;
}

UserTables::Pass UserTables::ensure_tables(MnesiaRepo& repo, std::set<std::string>& done) {
  Pass pass = Pass::done;
  for (const TableSpec& spec : tables_) {
    if (done.count(spec.name) != 0) continue;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return Pass::done;
    }
    if (ensure_table(repo, spec)) {
      done.insert(spec.name);
    } else {
      pass = Pass::retry;
    }
  }
  return pass;
}

bool UserTables::ensure_table(MnesiaRepo& repo, const TableSpec& spec) {
  const std::shared_ptr<Store> store = repo.shared_store();
  if (store == nullptr) return false;  // pending again: the next synchronized event retries
  const Status created = store->create_table(spec);
  const std::string name = "user table '" + spec.name + "'";
  if (created.ok()) {
    log_to(log_, LogLevel::info, name + " created (" + describe(spec) + ")");
    emit(repo, spec, "created", "");
    return true;
  }
  if (created.code() == StatusCode::already_exists) {
    Result<TableSpec> existing = store->table_spec(spec.name);
    if (existing.ok() && *existing != spec) {
      const std::string reason = "exists as " + describe(*existing) +
                                 " but the config file declares " + describe(spec) +
                                 "; the table is left as it is";
      log_to(log_, LogLevel::error, name + " " + reason);
      emit(repo, spec, "error", reason);
      return true;
    }
    log_to(log_, LogLevel::info, name + " exists already");
    emit(repo, spec, "already_exists", "");
    return true;
  }
  if (settled_failure(created.code())) {
    log_to(log_, LogLevel::error, name + " cannot be created: " + created.to_string());
    emit(repo, spec, "error", created.to_string());
    return true;
  }
  log_to(log_, LogLevel::warning,
         name + " not created yet: " + created.to_string() + "; trying again in " +
             std::to_string(kRetryInterval.count() / 1000) + " s");
  return false;
}

void UserTables::emit(const MnesiaRepo& repo, const TableSpec& spec, std::string_view status,
                      const std::string& reason) {
  telemetry::Metadata metadata = {
      {"table", Value(spec.name)}, {"status", Value(status)}, {"node", Value(repo.options().node)}};
  if (!reason.empty()) metadata["reason"] = Value(reason);
  const Status emitted = telemetry_.execute(
      event_name("table"), {{"system_time", Value(telemetry_.clock().system_time_ns())}}, metadata);
  if (!emitted.ok()) log_to(log_, LogLevel::error, "user tables: " + emitted.to_string());
}

}  // namespace mishka::daemon
