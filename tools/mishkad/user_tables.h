// The user tables of mishkad's config file ([[tables]]): created once the repo is
// synchronized, on whichever node gets there (create_table is cluster-wide and compared in
// etcd, so nodes that race get one `created` and `already_exists` elsewhere).
//
// Each outcome is logged and emitted as the repo's `table` telemetry event (CONTRACT.md
// section 7) with metadata `table`, `status` (created, already_exists or error), `node`, and
// for an error `reason`. A table that exists with another definition (attributes, type,
// storage, local_content or indexes) is an error (logged, emitted), never fatal: the daemon
// keeps serving and the table is left as it is. Failures that may pass (no quorum, timeouts, the
// node restarting) are retried every few seconds while the same repo runs.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "mishka/log.h"
#include "mishka/repo.h"
#include "mishka/table_spec.h"
#include "mishka/telemetry.h"

namespace mishka::daemon {

// The repo of the moment, nullptr while none runs (as the admin server's provider).
using RepoSource = std::function<std::shared_ptr<MnesiaRepo>()>;

// Threading: start() and stop() from the owner; the work runs on a thread of its own.
class UserTables {
 public:
  // `telemetry` must outlive this object.
  UserTables(std::vector<TableSpec> tables, RepoSource repo, telemetry::Telemetry& telemetry,
             LogSink log);
  ~UserTables();  // stop()
  UserTables(const UserTables&) = delete;
  UserTables& operator=(const UserTables&) = delete;

  // Attaches to the repo's `synchronized` event and starts the thread. Each synchronized
  // repo (a first boot, a supervisor's restart, a pending joiner that joined) gets the tables
  // checked once. Errors: those of Telemetry::attach.
  Status start();
  // Detaches, and waits for a create in progress (at most its write timeout). Idempotent.
  void stop();

 private:
  // What one pass over the tables came to.
  enum class Pass { done, retry };

  void loop();
  // The repo once it is published and synchronized; nullptr when stopping or after a bounded
  // wait (the repo failed again meanwhile: its next boot brings another event).
  std::shared_ptr<MnesiaRepo> synchronized_repo();
  // Tries every table not in `done` yet, adding those settled.
  Pass ensure_tables(MnesiaRepo& repo, std::set<std::string>& done);
  // One table; false when its failure may pass and it should be tried again.
  bool ensure_table(MnesiaRepo& repo, const TableSpec& spec);
  // Waits up to `timeout`; false when stopping.
  bool pause(std::chrono::milliseconds timeout);
  void emit(const MnesiaRepo& repo, const TableSpec& spec, std::string_view status,
            const std::string& reason);

  const std::vector<TableSpec> tables_;
  const RepoSource repo_;
  telemetry::Telemetry& telemetry_;
  const LogSink log_;
  const std::string handler_id_ = "mishkad-user-tables";

  std::mutex mu_;
  std::condition_variable cv_;
  bool synchronized_seen_ = false;  // guarded by mu_; a synchronized event not handled yet
  bool stopping_ = false;           // guarded by mu_
  bool attached_ = false;
  std::thread thread_;
};

}  // namespace mishka::daemon
