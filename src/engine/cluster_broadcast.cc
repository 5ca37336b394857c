// Cluster-wide pub/sub over etcd (see cluster_broadcast.h for the contract).
#include "engine/cluster_broadcast.h"

#include <algorithm>
#include <atomic>
#include <charconv>
#include <condition_variable>
#include <mutex>
#include <random>
#include <thread>
#include <utility>
#include <vector>

#include "common/codec.h"
#include "engine/etcd_rpc.h"

namespace mishka::engine {

using detail::Printable;

namespace {

using Clock = Deadline::Clock;
using std::chrono::milliseconds;

constexpr std::int64_t kMinTtlSeconds = 2;  // etcd's minimum lease TTL with default timing
constexpr std::int64_t kMaxTtlSeconds = 3600;
constexpr std::size_t kMinRequestBytes = 1024;
// What a put adds to its key and value on the way into etcd's Raft log (request header, field
// tags and lengths, the lease): generous, so that a message refused by etcd is refused here.
constexpr std::size_t kPutOverheadBytes = 256;
constexpr std::size_t kHexDigits = 16;
constexpr milliseconds kMaxRetryInterval{2000};

void AppendHex(std::uint64_t number, std::string& out) {
  static constexpr char kDigits[] = "0123456789abcdef";
  for (int shift = 60; shift >= 0; shift -= 4) {
    out += kDigits[(number >> shift) & 0xf];
  }
}

bool ParseHex(std::string_view text, std::uint64_t& out) {
  if (text.size() != kHexDigits) return false;
  if (!std::all_of(text.begin(), text.end(),
                   [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); })) {
    return false;
  }
  return std::from_chars(text.data(), text.data() + text.size(), out, 16).ec == std::errc();
}

// The revision our client puts into a compacted watch error ("compact revision N"); 0 if absent.
std::int64_t CompactRevisionOf(const Status& status) {
  static constexpr std::string_view kMarker = "compact revision ";
  const std::string& text = status.message();
  const std::size_t at = text.find(kMarker);
  if (at == std::string::npos) return 0;
  const char* begin = text.data() + at + kMarker.size();
  std::int64_t revision = 0;
  if (std::from_chars(begin, text.data() + text.size(), revision).ec != std::errc()) return 0;
  return revision;
}

std::uint64_t RandomIncarnation() {
  std::random_device device;
  return (std::uint64_t{device()} << 32) ^ std::uint64_t{device()};
}

}  // namespace

std::string encode_message_key(std::string_view prefix, const MessageKey& key) {
  std::string out;
  out.reserve(prefix.size() + key.topic.size() + key.sender.size() + 2 * kHexDigits + 3);
  out += prefix;
  out += key.topic;
  out += '/';
  out += key.sender;
  out += '/';
  AppendHex(key.incarnation, out);
  out += '/';
  AppendHex(key.seq, out);
  return out;
}

Result<MessageKey> parse_message_key(std::string_view prefix, std::string_view key) {
  if (key.substr(0, prefix.size()) != prefix) return corrupt("not under the pub/sub prefix");
  std::string_view rest = key.substr(prefix.size());
  std::vector<std::string_view> parts;
  for (std::size_t start = 0;;) {
    const std::size_t slash = rest.find('/', start);
    parts.push_back(rest.substr(start, slash == std::string_view::npos ? slash : slash - start));
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  if (parts.size() != 4) {
    return corrupt("expected <topic>/<sender>/<incarnation>/<seq>, found " +
                   std::to_string(parts.size()) + " parts");
  }
  MessageKey out;
  Status topic = pubsub::validate_name("topic", parts[0]);
  if (!topic.ok()) return corrupt(topic.message());
  Status sender = pubsub::validate_name("sender", parts[1]);
  if (!sender.ok()) return corrupt(sender.message());
  if (!ParseHex(parts[2], out.incarnation) || !ParseHex(parts[3], out.seq)) {
    return corrupt("incarnation and seq must be 16 lower-case hex digits");
  }
  out.topic = std::string(parts[0]);
  out.sender = std::string(parts[1]);
  return out;
}

class ClusterBroadcast::Impl {
 public:
  Impl(EtcdClient& client, pubsub::PubSub& pubsub, ClusterBroadcastOptions options)
      : client_(client),
        pubsub_(pubsub),
        options_(std::move(options)),
        incarnation_(RandomIncarnation()) {}

  ~Impl() {
    stopping_ = true;
    wake_threads();
    std::lock_guard stop_lock(stop_mu_);
    join_threads();
  }

  Status start(Deadline deadline) {
    std::lock_guard stop_lock(stop_mu_);
    if (state_ != State::idle) return invalid_argument(context() + "start called twice");
    RangeOptions range;
    range.range_end = prefix_range_end(options_.prefix);
    range.count_only = true;
    Result<RangeResult> now = client_.range(options_.prefix, range, deadline);
    if (!now.ok()) return now.status().with_context(where() + ", start");
    Result<std::unique_ptr<WatchStream>> stream = open_watch(now->header.revision + 1, deadline);
    if (!stream.ok()) return stream.status().with_context(where() + ", start");
    {
      std::lock_guard lock(progress_mu_);
      delivered_ = now->header.revision;
    }
    set_stream(std::move(*stream));
    state_ = State::running;
    watch_thread_ = std::thread([this] { watch_loop(); });
    lease_thread_ = std::thread([this] { lease_loop(); });
    return Status::Ok();
  }

  Status stop(Deadline deadline) {
    std::lock_guard stop_lock(stop_mu_);
    if (state_ == State::idle) state_ = State::stopped;
    if (state_ == State::stopped) return Status::Ok();
    stopping_ = true;
    wake_threads();
    {
      std::unique_lock lock(exit_mu_);
      if (!exit_cv_.wait_until(lock, deadline.when(), [&] { return threads_exited_ == 2; })) {
        return Status(StatusCode::timeout,
                      context() + "stop: a thread is still inside an etcd call at the deadline");
      }
    }
    join_threads();
    state_ = State::stopped;
    return Status::Ok();
  }

  Status publish(const pubsub::Message& message, Deadline deadline) {
    if (state_ != State::running || stopping_) {
      return Status(StatusCode::engine_unavailable, context() + "not running");
    }
    MISHKA_RETURN_IF_ERROR(pubsub::validate_name("topic", message.topic));
    MISHKA_RETURN_IF_ERROR(pubsub::validate_name("sender", message.sender));
    const std::string key = encode_message_key(
        options_.prefix, MessageKey{message.topic, message.sender, incarnation_, ++last_seq_});
    const std::string value = encode_value(message.payload);
    const std::size_t size = key.size() + value.size() + kPutOverheadBytes;
    if (size > options_.max_request_bytes) {
      count_failure();
      return invalid_argument(context() + "message on topic \"" + message.topic + "\" is " +
                              std::to_string(value.size()) + " bytes encoded; with its key it " +
                              "exceeds etcd's request limit of " +
                              std::to_string(options_.max_request_bytes) + " bytes");
    }
    for (int attempt = 0;; ++attempt) {
      Result<std::int64_t> lease = lease_for_publish(deadline);
      if (!lease.ok()) {
        count_failure();
        return lease.status().with_context(where() + ", lease for a message");
      }
      Result<Header> put = client_.put(key, value, *lease, deadline);
      if (put.ok()) {
        {
          std::lock_guard lock(progress_mu_);
          published_revision_ = std::max(published_revision_, put->revision);
        }
        std::lock_guard lock(stats_mu_);
        ++stats_.published;
        return Status::Ok();
      }
      // A put with a lease etcd no longer has was refused before anything was written.
      if (put.status().code() == StatusCode::not_found && attempt == 0) {
        forget_lease(*lease);
        continue;
      }
      count_failure();
      return put.status().with_context(where());
    }
  }

  Status flush(Deadline deadline) {
    std::unique_lock lock(progress_mu_);
    const std::int64_t target = published_revision_;
    const bool reached = progress_cv_.wait_until(
        lock, deadline.when(), [&] { return delivered_ >= target || threads_done_; });
    if (delivered_ >= target) return Status::Ok();
    if (!reached) {
      return Status(StatusCode::timeout, context() + "flush: delivered through revision " +
                                             std::to_string(delivered_) + ", waiting for " +
                                             std::to_string(target));
    }
    return Status(StatusCode::engine_unavailable,
                  context() + "flush: stopped before revision " + std::to_string(target));
  }

  ClusterBroadcastStats stats() const {
    ClusterBroadcastStats out;
    {
      std::lock_guard lock(stats_mu_);
      out = stats_;
    }
    std::lock_guard lock(progress_mu_);
    out.delivered_revision = delivered_;
    out.published_revision = published_revision_;
    return out;
  }

  void interrupt_watch() {
    if (std::shared_ptr<WatchStream> stream = current_stream(); stream != nullptr) {
      stream->cancel();
    }
  }

 private:
  enum class State { idle, running, stopped };

  struct Lease {
    std::int64_t id = 0;  // 0: none
    Clock::time_point granted{};
    bool used = false;  // a message was put with it
  };

  // Names this object in errors and log lines.
  std::string where() const {
    return "pub/sub of " + pubsub_.node_name() + " under " + Printable(options_.prefix);
  }
  std::string context() const { return where() + ": "; }

  void log(LogLevel level, const std::string& text) const {
    log_to(options_.log, level, context() + text);
  }

  void count_failure() {
    std::lock_guard lock(stats_mu_);
    ++stats_.publish_failures;
  }

  // Wakes both threads out of their waits; the watch out of next().
  void wake_threads() {
    interrupt_watch();
    { std::lock_guard lock(lease_mu_); }
    lease_cv_.notify_all();
    { std::lock_guard lock(sleep_mu_); }
    sleep_cv_.notify_all();
  }

  // Under stop_mu_.
  void join_threads() {
    if (watch_thread_.joinable()) watch_thread_.join();
    if (lease_thread_.joinable()) lease_thread_.join();
  }

  void thread_exited() {
    {
      std::lock_guard lock(exit_mu_);
      ++threads_exited_;
    }
    exit_cv_.notify_all();
  }

  // Waits `duration` unless stop() comes first.
  void sleep(milliseconds duration) {
    std::unique_lock lock(sleep_mu_);
    sleep_cv_.wait_for(lock, duration, [&] { return stopping_.load(); });
  }

  // --- receiving ---------------------------------------------------------------------------

  Result<std::unique_ptr<WatchStream>> open_watch(std::int64_t from, Deadline deadline) {
    WatchOptions watch;
    watch.key = options_.prefix;
    watch.range_end = prefix_range_end(options_.prefix);
    watch.start_revision = from;
    return client_.watch(watch, deadline);
  }

  void set_stream(std::shared_ptr<WatchStream> stream) {
    std::lock_guard lock(stream_mu_);
    stream_ = std::move(stream);
  }

  std::shared_ptr<WatchStream> current_stream() const {
    std::lock_guard lock(stream_mu_);
    return stream_;
  }

  std::int64_t delivered() const {
    std::lock_guard lock(progress_mu_);
    return delivered_;
  }

  void watch_loop() {
    milliseconds backoff = options_.retry_interval;
    int failed_opens = 0;
    while (!stopping_) {
      std::shared_ptr<WatchStream> stream = current_stream();
      if (stream == nullptr) {
        const std::int64_t from = delivered() + 1;
        Result<std::unique_ptr<WatchStream>> opened =
            open_watch(from, Deadline::after(options_.call_timeout));
        if (opened.ok()) {
          if (failed_opens > 0) {
            log(LogLevel::info, "watch reopened from revision " + std::to_string(from) + " after " +
                                    std::to_string(failed_opens) + " failed attempts");
          }
          failed_opens = 0;
          backoff = options_.retry_interval;
          set_stream(std::move(*opened));
          // stop() may have looked for a stream to cancel while this one was opening.
          if (stopping_) interrupt_watch();
          continue;
        }
        if (opened.status().code() == StatusCode::compacted) {
          skip_compacted(opened.status());
          continue;
        }
        if (failed_opens++ == 0) {
          log(LogLevel::warning, "cannot reopen the watch from revision " + std::to_string(from) +
                                     ": " + opened.status().to_string() + "; retrying");
        }
        sleep(backoff);
        backoff = std::min(backoff * 2, std::max(kMaxRetryInterval, options_.retry_interval));
        continue;
      }
      Result<WatchBatch> batch = stream->next();
      if (!batch.ok()) {
        if (stopping_) break;
        set_stream(nullptr);
        if (batch.status().code() == StatusCode::compacted) {
          skip_compacted(batch.status());
          continue;
        }
        {
          std::lock_guard lock(stats_mu_);
          ++stats_.watch_restarts;
        }
        log(LogLevel::warning, "the watch broke after revision " + std::to_string(delivered()) +
                                   " (" + batch.status().to_string() + "); resuming from the next");
        sleep(backoff);
        continue;
      }
      handle(*batch);
    }
    {
      std::lock_guard lock(progress_mu_);
      threads_done_ = true;
    }
    progress_cv_.notify_all();
    thread_exited();
  }

  void handle(const WatchBatch& batch) {
    const std::int64_t before = delivered();
    std::int64_t newest = before;
    for (const WatchEvent& event : batch.events) {
      if (event.kv.mod_revision <= before) continue;  // already delivered
      newest = std::max(newest, event.kv.mod_revision);
      if (event.type == WatchEvent::Type::put) deliver(event.kv);
    }
    // A requested progress notification may run ahead of undelivered events (etcd issue
    // 15220); this class never requests one, but says so rather than trusting it.
    if (!batch.requested_progress) newest = std::max(newest, batch.delivered_revision);
    {
      std::lock_guard lock(progress_mu_);
      delivered_ = newest;
    }
    progress_cv_.notify_all();
  }

  void deliver(const KeyValue& kv) {
    Result<MessageKey> key = parse_message_key(options_.prefix, kv.key);
    Result<Value> payload = key.ok() ? decode_value(kv.value) : Result<Value>(key.status());
    if (!payload.ok()) {
      {
        std::lock_guard lock(stats_mu_);
        ++stats_.malformed;
      }
      log(LogLevel::warning, "skipped " + Printable(kv.key) + " at revision " +
                                 std::to_string(kv.mod_revision) + ": " +
                                 payload.status().to_string());
      return;
    }
    {
      std::lock_guard lock(stats_mu_);  // counted first: a subscriber may look at once
      ++stats_.received;
    }
    pubsub_.deliver(
        pubsub::Message{std::move(key->topic), std::move(key->sender), std::move(*payload)});
  }

  // The revision to resume from was compacted: move on to the oldest revision etcd still has
  // (named in the error), or to etcd's current revision if the error does not say.
  void skip_compacted(const Status& error) {
    const std::int64_t last = delivered();
    std::int64_t resume = CompactRevisionOf(error);
    if (resume <= last + 1) {
      RangeOptions range;
      range.range_end = prefix_range_end(options_.prefix);
      range.count_only = true;
      Result<RangeResult> now =
          client_.range(options_.prefix, range, Deadline::after(options_.call_timeout));
      if (!now.ok()) {
        log(LogLevel::warning, "the watch's revision " + std::to_string(last + 1) +
                                   " was compacted, and etcd's current revision is unknown (" +
                                   now.status().to_string() + "); retrying");
        sleep(options_.retry_interval);
        return;
      }
      resume = now->header.revision + 1;
    }
    const std::int64_t lost = resume - (last + 1);
    {
      std::lock_guard lock(stats_mu_);
      ++stats_.compactions;
      stats_.revisions_lost += lost;
    }
    log(LogLevel::warning, "etcd compacted its history past revision " + std::to_string(last + 1) +
                               ": messages of the " + std::to_string(lost) + " revisions " +
                               std::to_string(last + 1) + ".." + std::to_string(resume - 1) +
                               " may be lost; resuming from revision " + std::to_string(resume));
    {
      std::lock_guard lock(progress_mu_);
      delivered_ = resume - 1;
    }
    progress_cv_.notify_all();
  }

  // --- leases ------------------------------------------------------------------------------

  bool usable(const Lease& lease, Clock::time_point now) const {
    return lease.id != 0 && now < lease.granted + options_.message_ttl * 3 / 4;
  }

  Result<Lease> grant(Deadline deadline) {
    const Clock::time_point asked = Clock::now();  // the lease's clock starts later than this
    Result<std::int64_t> id = client_.lease_grant(options_.message_ttl.count(), deadline);
    if (!id.ok()) return id.status();
    std::lock_guard lock(stats_mu_);
    ++stats_.leases_granted;
    return Lease{*id, asked, false};
  }

  // The lease for a message: the current one while it has at least a quarter of its TTL
  // left, else a fresh one granted here.
  Result<std::int64_t> lease_for_publish(Deadline deadline) {
    auto take = [&]() -> std::int64_t {
      std::lock_guard lock(lease_mu_);
      if (!usable(lease_, Clock::now())) return 0;
      lease_.used = true;
      return lease_.id;
    };
    if (std::int64_t id = take(); id != 0) return id;
    std::lock_guard grant_lock(grant_mu_);
    if (std::int64_t id = take(); id != 0) return id;
    Result<Lease> fresh = grant(deadline);
    if (!fresh.ok()) return fresh.status();
    fresh->used = true;
    {
      std::lock_guard lock(lease_mu_);
      lease_ = *fresh;
    }
    lease_cv_.notify_all();
    return fresh->id;
  }

  void forget_lease(std::int64_t id) {
    std::lock_guard lock(lease_mu_);
    if (lease_.id == id) lease_ = Lease{};
  }

  // Grants the next lease when the current one is half through its TTL and carried messages;
  // lets an unused one go.
  void lease_loop() {
    std::unique_lock lock(lease_mu_);
    while (!stopping_) {
      if (lease_.id == 0) {
        lease_cv_.wait(lock, [&] { return stopping_ || lease_.id != 0; });
        continue;
      }
      const Clock::time_point rotate_at = lease_.granted + options_.message_ttl / 2;
      if (Clock::now() < rotate_at) {
        lease_cv_.wait_until(lock, rotate_at);
        continue;
      }
      if (!lease_.used) {
        lease_ = Lease{};  // quiet: no new lease until the next message
        continue;
      }
      lock.unlock();
      Result<Lease> fresh = Status(StatusCode::internal, "not granted");
      {
        std::lock_guard grant_lock(grant_mu_);
        fresh = grant(Deadline::after(options_.call_timeout));
      }
      if (!fresh.ok()) {
        log(LogLevel::warning,
            "cannot grant the next message lease (" + fresh.status().to_string() + "); retrying");
        sleep(options_.retry_interval);
      }
      lock.lock();
      if (fresh.ok()) lease_ = *fresh;
    }
    lock.unlock();
    thread_exited();
  }

  EtcdClient& client_;
  pubsub::PubSub& pubsub_;
  const ClusterBroadcastOptions options_;
  const std::uint64_t incarnation_;
  std::atomic<std::uint64_t> last_seq_{0};

  std::mutex stop_mu_;  // start() and stop(); guards the thread objects
  std::atomic<State> state_{State::idle};
  std::atomic<bool> stopping_{false};
  std::thread watch_thread_;
  std::thread lease_thread_;
  std::mutex exit_mu_;
  std::condition_variable exit_cv_;
  int threads_exited_ = 0;
  std::mutex sleep_mu_;
  std::condition_variable sleep_cv_;

  mutable std::mutex stream_mu_;
  std::shared_ptr<WatchStream> stream_;

  mutable std::mutex progress_mu_;
  std::condition_variable progress_cv_;
  std::int64_t delivered_ = 0;
  std::int64_t published_revision_ = 0;
  bool threads_done_ = false;  // the watch thread ended: flush cannot progress

  std::mutex grant_mu_;  // one lease grant at a time; taken before lease_mu_
  std::mutex lease_mu_;
  std::condition_variable lease_cv_;
  Lease lease_;

  mutable std::mutex stats_mu_;
  ClusterBroadcastStats stats_;
};

Result<std::shared_ptr<ClusterBroadcast>> ClusterBroadcast::create(
    EtcdClient& client, pubsub::PubSub& pubsub, ClusterBroadcastOptions options) {
  const std::string where = "pub/sub of " + pubsub.node_name() + ": ";
  if (options.prefix.empty() || options.prefix.back() != '/') {
    return invalid_argument(where + "the prefix " + Printable(options.prefix) +
                            " does not end with '/'");
  }
  const std::int64_t ttl = options.message_ttl.count();
  if (ttl < kMinTtlSeconds || ttl > kMaxTtlSeconds) {
    return invalid_argument(where + "message_ttl " + std::to_string(ttl) + " s is outside " +
                            std::to_string(kMinTtlSeconds) + ".." + std::to_string(kMaxTtlSeconds));
  }
  if (options.max_request_bytes < kMinRequestBytes) {
    return invalid_argument(where + "max_request_bytes " +
                            std::to_string(options.max_request_bytes) + " is under " +
                            std::to_string(kMinRequestBytes));
  }
  if (options.call_timeout <= milliseconds(0) || options.retry_interval <= milliseconds(0)) {
    return invalid_argument(where + "call_timeout and retry_interval must be positive");
  }
  return std::shared_ptr<ClusterBroadcast>(
      new ClusterBroadcast(std::make_unique<Impl>(client, pubsub, std::move(options))));
}

ClusterBroadcast::ClusterBroadcast(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ClusterBroadcast::~ClusterBroadcast() = default;

Status ClusterBroadcast::start(Deadline deadline) {
  return impl_->start(deadline);
}
Status ClusterBroadcast::stop(Deadline deadline) {
  return impl_->stop(deadline);
}
Status ClusterBroadcast::publish(const pubsub::Message& message,
                                 pubsub::Clock::time_point deadline) {
  return impl_->publish(message, Deadline::at(deadline));
}
Status ClusterBroadcast::flush(pubsub::Clock::time_point deadline) {
  return impl_->flush(Deadline::at(deadline));
}
ClusterBroadcastStats ClusterBroadcast::stats() const {
  return impl_->stats();
}
void ClusterBroadcast::interrupt_watch_for_testing() {
  impl_->interrupt_watch();
}

}  // namespace mishka::engine
