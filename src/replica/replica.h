// The replica: every table of the cluster in RAM, applied in revision order from one etcd
// watch stream (ARCHITECTURE.md, decisions 2 and 5).
//
// Start-up loads the local snapshot file when it is valid and etcd still has the history after
// its revision, so that only the changes since are read; otherwise (no file, a corrupt or stale
// file, which is reported with its path and discarded) it reads everything at one revision.
// One thread then applies the watch stream. When the stream breaks, it resumes from the last
// applied revision; when etcd has compacted past that revision, it reloads everything.
//
// Threading: any thread may read through read() and wait with wait_for_revision(); the
// replica's own thread writes to the catalog, and so does apply_committed() (under the same
// lock, in revision order). start() and stop() belong to the owner.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <vector>

#include "common/striped_shared_mutex.h"
#include "engine/deadline.h"
#include "engine/etcd_client.h"
#include "mishka/log.h"
#include "mishka/status.h"
#include "replica/keyspace.h"
#include "store/catalog.h"
#include "store/snapshot.h"

namespace mishka::replica {

// The replica's snapshot file, read and decoded: nullopt when there is no file, else the
// decoded snapshot or why it could not be decoded (a damaged file: corrupt). An error: the file
// exists but could not be read.
using SnapshotFile = Result<std::optional<Result<store::DecodedSnapshot>>>;

// Reads and decodes the snapshot file at `path`: what Replica::start() does first. It needs no
// etcd and touches no replica, so a caller may run it on another thread while etcd starts and
// hand the result over (ReplicaOptions::snapshot_file).
SnapshotFile read_snapshot_file(const std::string& path);

struct ReplicaOptions {
  engine::EtcdClient* client = nullptr;  // not owned; must outlive the replica
  Keyspace keyspace;
  std::string node_name;      // whose local_content records this replica holds
  std::string snapshot_path;  // the local snapshot file; empty: none
  // When set, start() takes the snapshot file's contents from here (called once, from start())
  // instead of reading snapshot_path itself; snapshot_path still names the file (rewritten
  // later, removed when damaged). LocalNode reads it while its etcd member starts.
  std::function<SnapshotFile()> snapshot_file;
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
  std::int64_t own_commits_applied = 0;  // by apply_committed(), ahead of the watch
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
  // blocks the apply thread: keep it short. Destroy it on the thread that took it, and take no
  // second view on that thread meanwhile (common/striped_shared_mutex.h: readers on several
  // cores do not contend, but the lock is not recursive).
  class ReadView {
   public:
    const store::Catalog& catalog() const { return *catalog_; }
    std::int64_t revision() const { return revision_; }

   private:
    friend class Replica;
    ReadView(std::shared_lock<StripedSharedMutex> lock, const store::Catalog* catalog,
             std::int64_t revision)
        : lock_(std::move(lock)), catalog_(catalog), revision_(revision) {}
    std::shared_lock<StripedSharedMutex> lock_;
    const store::Catalog* catalog_;
    std::int64_t revision_;
  };
  ReadView read() const;

  // Applies a Txn this node committed at `revision` from the request's own success ops, when
  // the replica has applied everything up to revision - 1: nothing can then lie between, and
  // the watch's events of `revision` are skipped as already reflected. Saves the committing
  // caller the round trip through the watch. `ops` must be those of a Txn that wrote the write
  // marker (every mishka write does; without it the revision may not be the Txn's own).
  // Returns false, changing nothing, when the ops lack the marker, the replica is behind (or
  // ahead), stopping, or an op is a range erase (the watch then applies it as
  // usual), or when a reader holds a view at that moment (it never waits for the lock). Any
  // thread; writes under the lock the apply thread writes under.
  bool apply_committed(const std::vector<engine::TxnOp>& ops, std::int64_t revision);

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
