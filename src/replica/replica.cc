#include "replica/replica.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "common/codec.h"
#include "common/files.h"
#include "common/sha256.h"
#include "common/striped_shared_mutex.h"
#include "replica/apply.h"
#include "store/snapshot.h"

namespace mishka::replica {

using engine::Deadline;

class Replica::Impl {
 public:
  explicit Impl(ReplicaOptions options) : options_(std::move(options)) {}
  ~Impl() { stop(); }

  Status start(Deadline deadline) {
    MISHKA_RETURN_IF_ERROR(load_snapshot_file());
    MISHKA_RETURN_IF_ERROR(discard_snapshot_ahead_of_etcd(deadline));
    if (applied_.load() == 0) {
      MISHKA_RETURN_IF_ERROR(full_load(deadline));
    } else {
      // The watch from the file's revision brings what changed since; if etcd compacted past
      // it, the file is stale: discard it and read everything.
      auto watch = open_watch(applied_.load() + 1);
      if (!watch.ok() && watch.status().code() == StatusCode::compacted) {
        log(LogLevel::warning, "snapshot file '" + options_.snapshot_path + "' at revision " +
                                   std::to_string(applied_.load()) +
                                   " is older than etcd's history (" + watch.status().message() +
                                   "); reading everything");
        MISHKA_RETURN_IF_ERROR(full_load(deadline));
      } else if (!watch.ok()) {
        return watch.status();
      } else {
        set_watch(std::move(*watch));
      }
    }
    stopping_ = false;
    thread_ = std::thread([this] { run(); });
    return sync(deadline);
  }

  // Waits until the replica reflects the latest mishka write committed before the call: the
  // mod_revision of the write marker (docs/keyspace.md), read with a linearizable range.
  Status sync(Deadline deadline) {
    auto marker = options_.client->range(options_.keyspace.write_marker_key(), {},
                                         deadline.capped(options_.call_timeout));
    if (!marker.ok()) return marker.status().with_context("replica sync");
    const std::int64_t target = marker->kvs.empty() ? 0 : marker->kvs.front().mod_revision;
    return wait_for_revision(target, deadline);
  }

  void stop() {
    {
      std::lock_guard lock(wait_mutex_);
      if (stopping_ && !thread_.joinable()) return;
      stopping_ = true;
    }
    if (auto w = current_watch()) w->cancel();
    if (thread_.joinable()) thread_.join();
    wait_cv_.notify_all();
    if (!options_.snapshot_path.empty() && applied_.load() > 0) {
      Status s = write_snapshot();
      if (!s.ok()) log(LogLevel::error, "could not write the snapshot file: " + s.to_string());
    }
  }

  ReadView read() const {
    std::shared_lock lock(data_mutex_);
    return ReadView(std::move(lock), &catalog_, applied_.load());
  }

  bool apply_committed(const std::vector<engine::TxnOp>& ops, std::int64_t revision) {
    // Only a Txn that put the write marker surely wrote, and so got `revision` for its own
    // (etcd answers a read-only Txn with its current revision, someone else's). A range
    // erase's events name keys the request does not: leave it to the watch.
    bool marker = false;
    for (const engine::TxnOp& op : ops) {
      if (op.kind == engine::TxnOp::Kind::erase && !op.range_end.empty()) return false;
      marker = marker || (op.kind == engine::TxnOp::Kind::put &&
                          op.key == options_.keyspace.write_marker_key());
    }
    if (!marker) return false;
    {
      // Never waits: a reader holding a view (a snapshot being written, say) makes the watch
      // apply this commit instead, rather than stall every reader behind this writer.
      std::unique_lock lock(data_mutex_, std::try_to_lock);
      if (!lock.owns_lock() || stopping_ || applied_.load() != revision - 1) return false;
      Applier applier(options_.keyspace, options_.node_name, catalog_);
      for (const engine::TxnOp& op : ops) {
        Status s;
        if (op.kind == engine::TxnOp::Kind::put) {
          s = applier.put(op.key, op.value);
        } else if (op.kind == engine::TxnOp::Kind::erase) {
          s = applier.erase(op.key);  // an absent key: no event, and nothing to do here
        }
        // The same report as the watch's for the same event.
        if (!s.ok()) log(LogLevel::error, "cannot apply an event: " + s.to_string());
      }
      applied_.store(revision);
    }
    {
      std::lock_guard lock(stats_mutex_);
      ++stats_.own_commits_applied;
    }
    { std::lock_guard lock(wait_mutex_); }
    wait_cv_.notify_all();
    return true;
  }

  std::int64_t applied_revision() const { return applied_.load(); }

  Status wait_for_revision(std::int64_t revision, Deadline deadline) const {
    std::unique_lock lock(wait_mutex_);
    for (;;) {
      if (applied_.load() >= revision) return Status::Ok();
      if (stopping_) return Status(StatusCode::engine_unavailable, "the replica is stopped");
      if (deadline.expired()) {
        return Status(StatusCode::timeout, "the replica did not reach revision " +
                                               std::to_string(revision) + " in time (at " +
                                               std::to_string(applied_.load()) + ")");
      }
      wait_cv_.wait_until(lock, deadline.when());
    }
  }

  Status write_snapshot() {
    if (options_.snapshot_path.empty()) return Status::Ok();
    std::string bytes;
    {
      std::shared_lock lock(data_mutex_);
      bytes = store::encode_snapshot(catalog_, applied_.load());
    }
    MISHKA_RETURN_IF_ERROR(write_file_atomically(options_.snapshot_path, bytes));
    std::lock_guard lock(stats_mutex_);
    ++stats_.snapshots_written;
    last_snapshot_revision_ = applied_.load();
    return Status::Ok();
  }

  ReplicaStats stats() const {
    std::lock_guard lock(stats_mutex_);
    ReplicaStats s = stats_;
    s.applied_revision = applied_.load();
    return s;
  }

 private:
  void log(LogLevel level, const std::string& message) const {
    log_to(options_.log, level, "replica: " + message);
  }

  // Reads the snapshot file into the catalog. A missing file is fine; a damaged one is
  // reported with its path, removed, and the replica starts empty (and then reads etcd).
  Status load_snapshot_file() {
    if (options_.snapshot_path.empty()) return Status::Ok();
    SnapshotFile file = options_.snapshot_file ? options_.snapshot_file()
                                               : read_snapshot_file(options_.snapshot_path);
    if (!file.ok()) return file.status();
    if (!file->has_value()) return Status::Ok();
    Result<store::DecodedSnapshot>& decoded = **file;
    if (!decoded.ok()) {
      log(LogLevel::warning, "discarding snapshot file '" + options_.snapshot_path +
                                 "': " + decoded.status().message());
      std::remove(options_.snapshot_path.c_str());
      return Status::Ok();
    }
    std::unique_lock lock(data_mutex_);
    catalog_ = std::move(decoded->catalog);
    applied_.store(static_cast<std::int64_t>(decoded->revision));
    std::lock_guard slock(stats_mutex_);
    stats_.loaded_from_snapshot_revision = applied_.load();
    last_snapshot_revision_ = applied_.load();
    return Status::Ok();
  }

  // A snapshot file from the future (etcd's data was replaced by an older copy, or the file
  // belongs to another cluster) cannot be resumed from: the watch would silently skip
  // revisions. Such a file is reported with its path and the replica starts empty.
  Status discard_snapshot_ahead_of_etcd(Deadline deadline) {
    if (applied_.load() == 0) return Status::Ok();
    engine::RangeOptions count_only;
    count_only.count_only = true;
    auto now = options_.client->range(options_.keyspace.meta_key(), count_only,
                                      deadline.capped(options_.call_timeout));
    if (!now.ok()) return now.status().with_context("replica start");
    if (applied_.load() <= now->header.revision) return Status::Ok();
    log(LogLevel::warning, "discarding snapshot file '" + options_.snapshot_path +
                               "': its revision " + std::to_string(applied_.load()) +
                               " is ahead of etcd's " + std::to_string(now->header.revision));
    std::remove(options_.snapshot_path.c_str());
    std::unique_lock lock(data_mutex_);
    catalog_ = store::Catalog();
    applied_.store(0);
    std::lock_guard slock(stats_mutex_);
    stats_.loaded_from_snapshot_revision = 0;
    last_snapshot_revision_ = 0;
    return Status::Ok();
  }

  // Reads every schema entry and record at one revision into a new catalog, swaps it in and
  // opens the watch after that revision.
  Status full_load(Deadline deadline) {
    store::Catalog fresh;
    Applier applier(options_.keyspace, options_.node_name, fresh);
    std::int64_t at = 0;
    // Schema first: records refer to their table.
    for (const std::string& prefix :
         {options_.keyspace.schema_prefix(), options_.keyspace.root()}) {
      std::string key = prefix;
      const std::string end = engine::prefix_range_end(prefix);
      for (;;) {
        engine::RangeOptions ro;
        ro.range_end = end;
        ro.revision = at;
        ro.limit = options_.load_page;
        auto page = options_.client->range(key, ro, deadline.capped(options_.call_timeout));
        if (!page.ok()) return page.status().with_context("full load of the replica");
        if (at == 0) at = page->header.revision;
        for (const engine::KeyValue& kv : page->kvs) {
          MISHKA_RETURN_IF_ERROR(applier.put(kv.key, kv.value));
        }
        if (!page->more || page->kvs.empty()) break;
        key = page->kvs.back().key + std::string(1, '\0');
      }
    }
    auto watch = open_watch(at + 1);
    if (!watch.ok()) return watch.status();
    {
      std::unique_lock lock(data_mutex_);
      catalog_ = std::move(fresh);
      applied_.store(at);
    }
    set_watch(std::move(*watch));
    {
      std::lock_guard lock(stats_mutex_);
      ++stats_.full_loads;
    }
    wait_cv_.notify_all();
    return Status::Ok();
  }

  Result<std::shared_ptr<engine::WatchStream>> open_watch(std::int64_t from) {
    engine::WatchOptions wo;
    wo.key = options_.keyspace.root();
    wo.range_end = engine::prefix_range_end(wo.key);
    wo.start_revision = from;
    wo.progress_notify = true;
    auto stream = options_.client->watch(wo, Deadline::after(options_.call_timeout));
    if (!stream.ok()) return stream.status();
    return std::shared_ptr<engine::WatchStream>(std::move(*stream));
  }

  void set_watch(std::shared_ptr<engine::WatchStream> watch) {
    std::lock_guard lock(watch_mutex_);
    watch_ = std::move(watch);
  }

  std::shared_ptr<engine::WatchStream> current_watch() const {
    std::lock_guard lock(watch_mutex_);
    return watch_;
  }

  // The apply thread.
  void run() {
    std::chrono::milliseconds backoff(50);
    while (!stopping_) {
      auto watch = current_watch();
      if (watch == nullptr) {
        auto opened = open_watch(applied_.load() + 1);
        if (opened.ok()) {
          set_watch(*opened);
          // stop() may have cancelled the previous stream while this one was opening.
          if (stopping_) (*opened)->cancel();
          continue;
        }
        if (opened.status().code() == StatusCode::compacted) {
          resync();
          continue;
        }
        sleep_for(backoff);
        backoff = std::min(backoff * 2, std::chrono::milliseconds(2000));
        continue;
      }
      auto batch = watch->next();
      if (!batch.ok()) {
        if (stopping_) break;
        if (batch.status().code() == StatusCode::compacted) {
          resync();
          continue;
        }
        log(LogLevel::warning, "watch broke at revision " + std::to_string(applied_.load()) + ": " +
                                   batch.status().to_string() + "; resuming");
        set_watch(nullptr);
        {
          std::lock_guard lock(stats_mutex_);
          ++stats_.watch_restarts;
        }
        sleep_for(backoff);
        backoff = std::min(backoff * 2, std::chrono::milliseconds(2000));
        continue;
      }
      backoff = std::chrono::milliseconds(50);
      apply(*batch);
    }
  }

  // Only events advance the applied revision. A batch without events (a progress notification)
  // is not trusted: etcd 3.4.23 can announce a revision before it has sent that revision's
  // events (etcd issue 15220), so the replica would claim a revision it has not applied.
  void apply(const engine::WatchBatch& batch) {
    std::int64_t newest = applied_.load();
    {
      std::unique_lock lock(data_mutex_);
      Applier applier(options_.keyspace, options_.node_name, catalog_);
      for (const engine::WatchEvent& e : batch.events) {
        if (e.kv.mod_revision <= applied_.load()) continue;  // already reflected
        Status s = e.type == engine::WatchEvent::Type::put ? applier.put(e.kv.key, e.kv.value)
                                                           : applier.erase(e.kv.key);
        if (!s.ok()) log(LogLevel::error, "cannot apply an event: " + s.to_string());
        newest = std::max(newest, e.kv.mod_revision);
      }
      if (newest > applied_.load()) applied_.store(newest);
    }
    {
      std::lock_guard lock(stats_mutex_);
      stats_.events_applied += static_cast<std::int64_t>(batch.events.size());
    }
    { std::lock_guard lock(wait_mutex_); }
    wait_cv_.notify_all();
    if (!options_.snapshot_path.empty() &&
        applied_.load() - last_snapshot_revision_ >= options_.snapshot_every_revisions) {
      Status s = write_snapshot();
      if (!s.ok()) log(LogLevel::error, "could not write the snapshot file: " + s.to_string());
    }
  }

  void resync() {
    log(LogLevel::warning, "etcd compacted past revision " + std::to_string(applied_.load()) +
                               "; reloading every table");
    set_watch(nullptr);
    Status s = full_load(Deadline::after(std::chrono::minutes(5)));
    if (!s.ok()) log(LogLevel::error, "reload failed: " + s.to_string() + "; will retry");
  }

  void sleep_for(std::chrono::milliseconds d) {
    std::unique_lock lock(wait_mutex_);
    wait_cv_.wait_for(lock, d, [this] { return stopping_.load(); });
  }

  ReplicaOptions options_;

  mutable StripedSharedMutex data_mutex_;  // guards catalog_
  store::Catalog catalog_;
  std::atomic<std::int64_t> applied_{0};

  mutable std::mutex wait_mutex_;
  mutable std::condition_variable wait_cv_;
  std::atomic<bool> stopping_{false};

  mutable std::mutex watch_mutex_;
  std::shared_ptr<engine::WatchStream> watch_;
  std::thread thread_;

  mutable std::mutex stats_mutex_;
  ReplicaStats stats_;
  std::int64_t last_snapshot_revision_ = 0;
};

SnapshotFile read_snapshot_file(const std::string& path) {
  auto bytes = read_file_if_exists(path);
  if (!bytes.ok()) return bytes.status();
  if (!bytes->has_value()) return std::optional<Result<store::DecodedSnapshot>>();
  return std::optional<Result<store::DecodedSnapshot>>(store::decode_snapshot(**bytes));
}

Result<std::unique_ptr<Replica>> Replica::create(ReplicaOptions options) {
  if (options.client == nullptr) return invalid_argument("replica: no etcd client given");
  if (options.node_name.empty()) return invalid_argument("replica: empty node name");
  if (options.load_page <= 0) return invalid_argument("replica: load_page must be positive");
  return std::unique_ptr<Replica>(new Replica(std::make_unique<Impl>(std::move(options))));
}

Replica::Replica(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Replica::~Replica() = default;
Status Replica::start(Deadline deadline) {
  return impl_->start(deadline);
}
void Replica::stop() {
  impl_->stop();
}
Replica::ReadView Replica::read() const {
  return impl_->read();
}
bool Replica::apply_committed(const std::vector<engine::TxnOp>& ops, std::int64_t revision) {
  return impl_->apply_committed(ops, revision);
}
std::int64_t Replica::applied_revision() const {
  return impl_->applied_revision();
}
Status Replica::wait_for_revision(std::int64_t revision, Deadline deadline) const {
  return impl_->wait_for_revision(revision, deadline);
}
Status Replica::sync(Deadline deadline) {
  return impl_->sync(deadline);
}
Status Replica::write_snapshot() {
  return impl_->write_snapshot();
}
ReplicaStats Replica::stats() const {
  return impl_->stats();
}

}  // namespace mishka::replica
