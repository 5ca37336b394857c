// The replica: every table of the cluster in RAM, applied in revision order from one etcd
// watch stream (ARCHITECTURE.md, decisions 2 and 5).
//
// Start-up loads the local snapshot file when it is valid and etcd still has the history after
// its revision, so that only the changes since are read; otherwise (no file, a corrupt or stale
// file, which is reported with its path and discarded) it reads everything at one revision.
// One thread then applies the watch stream. When the stream breaks, it resumes from the last
// applied revision; when etcd has compacted past that revision, it reloads everything.
//
// Threading: any thread may read through read() and wait with wait_for_revision(); only the
// replica's own thread writes to the catalog. start() and stop() belong to the owner.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <shared_mutex>
#include <string>

#include "engine/deadline.h"
#include "engine/etcd_client.h"
#include "mishka/log.h"
#include "mishka/status.h"
#include "replica/keyspace.h"
#include "store/catalog.h"

namespace mishka::replica {

struct ReplicaOptions {
  engine::EtcdClient* client = nullptr;  // not owned; must outlive the replica
  Keyspace keyspace;
  std::string node_name;      // whose local_content records this replica holds
  std::string snapshot_path;  // the local snapshot file; empty: none
  // Page size of a full load (records per range request, all at one revision).
  std::int64_t load_page = 5000;
  // A snapshot file is rewritten after this many applied revisions (and on stop()).
  std::int64_t snapshot_every_revisions = 50000;
  std::chrono::milliseconds call_timeout{5000};
  LogSink log;
};

// Counters for health and tests.
struct ReplicaStats {
  std::int64_t applied_revision = 0;
  std::int64_t loaded_from_snapshot_revision = 0;  // 0: the last start did not use the file
  std::int64_t full_loads = 0;                     // reads of everything (first start, resync)
  std::int64_t events_applied = 0;
  std::int64_t watch_restarts = 0;
  std::int64_t snapshots_written = 0;
};

class Replica {
 public:
  static Result<std::unique_ptr<Replica>> create(ReplicaOptions options);
  ~Replica();  // stop()

  // Loads (snapshot file, then etcd) and starts applying the watch. Returns once the replica
  // reflects every mishka write committed before the call began (see sync()). Errors: those of the
  // client (engine_unavailable, timeout, no_quorum) and corrupt when etcd holds a record the
  // replica cannot decode (with the key).
  Status start(engine::Deadline deadline);

  // Stops the apply thread and writes the snapshot file (when configured). Idempotent.
  void stop();

  // A consistent view: the catalog as of revision() while the view lives. Holding a view
  // blocks the apply thread: keep it short.
  class ReadView {
   public:
    const store::Catalog& catalog() const { return *catalog_; }
    std::int64_t revision() const { return revision_; }

   private:
    friend class Replica;
    ReadView(std::shared_lock<std::shared_mutex> lock, const store::Catalog* catalog,
             std::int64_t revision)
        : lock_(std::move(lock)), catalog_(catalog), revision_(revision) {}
    std::shared_lock<std::shared_mutex> lock_;
    const store::Catalog* catalog_;
    std::int64_t revision_;
  };
  ReadView read() const;

  std::int64_t applied_revision() const;
  // Waits until the replica reflects every mishka write committed before the call (a
  // linearizable read of the write marker, then wait_for_revision). The basis of consistent
  // reads. Errors: the client's, and timeout.
  Status sync(engine::Deadline deadline);
  // Waits until the replica has applied `revision`. timeout when the deadline passes first;
  // engine_unavailable when the replica stopped.
  Status wait_for_revision(std::int64_t revision, engine::Deadline deadline) const;

  // Writes the snapshot file now (atomically). io_error with the path on failure.
  Status write_snapshot();

  ReplicaStats stats() const;

 private:
  class Impl;
  explicit Replica(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace mishka::replica
