// Mailboxes and delivery threads (see pubsub.h for the contract).
//
// Scheduling works like an actor runtime: a subscriber whose mailbox has messages sits once in
// the ready queue; a delivery thread takes it, runs the callback for its oldest message with
// no lock held, and puts it back at the end of the queue if more are waiting. A subscriber is
// thus never run by two threads at once (its calls stay in order), and subscribers take turns
// one message at a time.
//
// flush() needs "everything enqueued before now is done" while later messages keep arriving:
// each message gets a sequence number when enqueued, and the wait ends once no mailbox holds
// and no delivery thread runs a message numbered at or below the last number at the call.
#include "mishka/pubsub.h"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

namespace mishka::pubsub {
namespace {

constexpr std::size_t kMaxDeliveryThreads = 64;

struct Entry {
  std::shared_ptr<const Message> message;
  std::uint64_t seq = 0;
};

struct Subscription {
  SubscriptionId id = 0;
  std::string topic;
  Subscriber fn;
  std::deque<Entry> mailbox;
  bool scheduled = false;         // in the ready queue
  bool removed = false;           // unsubscribed or failed; never run again
  std::uint64_t running_seq = 0;  // the message a delivery thread is calling it with; 0: none
  std::uint64_t dropping = 0;     // messages dropped since the mailbox last accepted one
};

using SubscriptionPtr = std::shared_ptr<Subscription>;

// Log lines gathered under the lock and written after it is released: a sink may be slow.
using PendingLogs = std::vector<std::pair<LogLevel, std::string>>;

}  // namespace

Status validate_name(std::string_view what, std::string_view name) {
  auto refuse = [&](std::string_view why) {
    std::string message(what);
    message += " \"";
    message += name.substr(0, 64);
    message += name.size() > 64 ? "...\" " : "\" ";
    message += why;
    return invalid_argument(std::move(message));
  };
  if (name.empty()) return invalid_argument(std::string(what) + " is empty");
  if (name.size() > kMaxNameBytes) {
    return refuse("is longer than " + std::to_string(kMaxNameBytes) + " bytes");
  }
  if (name.find('/') != std::string_view::npos) return refuse("contains '/'");
  if (name.find('\0') != std::string_view::npos) return refuse("contains a NUL byte");
  return Status::Ok();
}

class PubSub::Impl {
 public:
  explicit Impl(PubSubOptions options) : options_(std::move(options)) {
    running_by_thread_.assign(options_.delivery_threads, 0);
  }

  void start() {
    for (std::size_t i = 0; i < options_.delivery_threads; ++i) {
      threads_.emplace_back([this, i] { run(i); });
    }
  }

  // Everything the destructor does, while the object is whole: a transport dropped here may
  // still call deliver() from its threads while it stops.
  void close() {
    PendingLogs logs;
    std::shared_ptr<Transport> transport;
    {
      std::lock_guard lock(mu_);
      closing_ = true;
      std::uint64_t discarded = 0;
      for (auto& [id, sub] : subs_) {
        discarded += sub->mailbox.size();
        sub->mailbox.clear();
        sub->removed = true;
      }
      stats_.discarded += discarded;
      stats_.queued = 0;
      if (discarded > 0) {
        logs.emplace_back(LogLevel::info, prefix() + "closing: " + std::to_string(discarded) +
                                              " queued deliveries discarded");
      }
      subs_.clear();
      by_topic_.clear();
      ready_.clear();
      transport = std::move(transport_);
    }
    work_cv_.notify_all();
    done_cv_.notify_all();
    emit(logs);
    transport.reset();
    for (std::thread& thread : threads_) thread.join();
  }

  Result<SubscriptionId> subscribe(std::string topic, Subscriber fn) {
    MISHKA_RETURN_IF_ERROR(validate_name("topic", topic));
    if (!fn) return invalid_argument("subscribe to topic \"" + topic + "\": empty function");
    std::lock_guard lock(mu_);
    if (closing_) return invalid_argument(prefix() + "subscribe while closing");
    auto sub = std::make_shared<Subscription>();
    sub->id = ++last_id_;
    sub->topic = std::move(topic);
    sub->fn = std::move(fn);
    by_topic_[sub->topic].push_back(sub);
    subs_.emplace(sub->id, sub);
    return sub->id;
  }

  Status unsubscribe(SubscriptionId id) {
    std::unique_lock lock(mu_);
    auto it = subs_.find(id);
    if (it == subs_.end()) {
      return not_found(prefix() + "no subscription " + std::to_string(id));
    }
    SubscriptionPtr sub = it->second;
    remove_locked(*sub);
    done_cv_.notify_all();
    if (sub->running_seq != 0 && !on_delivery_thread()) {
      done_cv_.wait(lock, [&] { return sub->running_seq == 0; });
    }
    return Status::Ok();
  }

  Status broadcast_local(std::string_view topic, Value payload) {
    MISHKA_RETURN_IF_ERROR(validate_name("topic", topic));
    auto message = std::make_shared<const Message>(
        Message{std::string(topic), options_.node_name, std::move(payload)});
    enqueue(std::move(message), &PubSubStats::published_local);
    return Status::Ok();
  }

  Status broadcast(std::string_view topic, Value payload, Clock::time_point deadline) {
    MISHKA_RETURN_IF_ERROR(validate_name("topic", topic));
    std::shared_ptr<Transport> transport = current_transport();
    if (transport == nullptr) return broadcast_local(topic, std::move(payload));
    Status sent = transport->publish(
        Message{std::string(topic), options_.node_name, std::move(payload)}, deadline);
    if (!sent.ok())
      return sent.with_context(where() + ", broadcast on topic \"" + std::string(topic) + "\"");
    std::lock_guard lock(mu_);
    ++stats_.published_remote;
    return Status::Ok();
  }

  void set_transport(std::shared_ptr<Transport> transport) {
    std::lock_guard lock(mu_);
    if (!closing_) transport_ = std::move(transport);
  }

  void deliver(Message message) {
    enqueue(std::make_shared<const Message>(std::move(message)), &PubSubStats::received);
  }

  Status flush(Clock::time_point deadline) {
    if (on_delivery_thread()) {
      return invalid_argument(prefix() + "flush called from a subscriber callback");
    }
    if (std::shared_ptr<Transport> transport = current_transport(); transport != nullptr) {
      Status flushed = transport->flush(deadline);
      if (!flushed.ok()) return flushed.with_context(where() + ", flush");
    }
    std::unique_lock lock(mu_);
    const std::uint64_t target = last_seq_;
    if (!done_cv_.wait_until(lock, deadline, [&] { return drained_through(target); })) {
      return Status(StatusCode::timeout, prefix() + "flush: deliveries still pending (" +
                                             std::to_string(stats_.queued) +
                                             " queued) at the deadline");
    }
    return Status::Ok();
  }

  PubSubStats stats() const {
    std::lock_guard lock(mu_);
    PubSubStats out = stats_;
    out.subscriptions = subs_.size();
    return out;
  }

  const std::string& node_name() const { return options_.node_name; }
  std::chrono::milliseconds broadcast_timeout() const { return options_.broadcast_timeout; }

 private:
  std::string where() const { return "pubsub on " + options_.node_name; }
  std::string prefix() const { return where() + ": "; }

  void emit(const PendingLogs& logs) const {
    for (const auto& [level, text] : logs) log_to(options_.log, level, text);
  }

  std::shared_ptr<Transport> current_transport() const {
    std::lock_guard lock(mu_);
    return transport_;
  }

  bool on_delivery_thread() const {
    const std::thread::id self = std::this_thread::get_id();
    return std::any_of(threads_.begin(), threads_.end(),
                       [self](const std::thread& t) { return t.get_id() == self; });
  }

  // Puts `message` into the mailbox of every subscriber of its topic; `counter` counts it.
  void enqueue(std::shared_ptr<const Message> message, std::uint64_t PubSubStats::*counter) {
    PendingLogs logs;
    std::size_t woken = 0;
    {
      std::lock_guard lock(mu_);
      ++(stats_.*counter);
      if (closing_) return;
      const std::uint64_t seq = ++last_seq_;
      auto it = by_topic_.find(message->topic);
      if (it == by_topic_.end()) return;
      for (const SubscriptionPtr& sub : it->second) {
        if (sub->mailbox.size() >= options_.mailbox_capacity) {
          ++stats_.dropped;
          if (sub->dropping++ == 0) {
            logs.emplace_back(LogLevel::warning,
                              prefix() + "subscriber " + std::to_string(sub->id) + " of topic \"" +
                                  sub->topic + "\" has " +
                                  std::to_string(options_.mailbox_capacity) +
                                  " messages waiting; dropping its messages until it catches up");
          }
          continue;
        }
        if (sub->dropping > 0) {
          logs.emplace_back(LogLevel::warning, prefix() + "subscriber " + std::to_string(sub->id) +
                                                   " of topic \"" + sub->topic +
                                                   "\" accepts messages again after " +
                                                   std::to_string(sub->dropping) + " were dropped");
          sub->dropping = 0;
        }
        sub->mailbox.push_back(Entry{message, seq});
        ++stats_.queued;
        if (!sub->scheduled && sub->running_seq == 0) {
          sub->scheduled = true;
          ready_.push_back(sub);
          ++woken;
        }
      }
    }
    if (woken == 1) work_cv_.notify_one();
    if (woken > 1) work_cv_.notify_all();
    emit(logs);
  }

  // Under mu_.
  void remove_locked(Subscription& sub) {
    if (sub.removed) return;
    sub.removed = true;
    stats_.discarded += sub.mailbox.size();
    stats_.queued -= sub.mailbox.size();
    sub.mailbox.clear();
    auto it = by_topic_.find(sub.topic);
    if (it != by_topic_.end()) {
      std::erase_if(it->second, [&](const SubscriptionPtr& s) { return s.get() == &sub; });
      if (it->second.empty()) by_topic_.erase(it);
    }
    subs_.erase(sub.id);
  }

  // Under mu_: no mailbox holds, and no delivery thread runs, a message numbered <= target.
  bool drained_through(std::uint64_t target) const {
    for (std::uint64_t running : running_by_thread_) {
      if (running != 0 && running <= target) return false;
    }
    for (const auto& [id, sub] : subs_) {
      if (!sub->mailbox.empty() && sub->mailbox.front().seq <= target) return false;
    }
    return true;
  }

  // Delivery thread `index`.
  void run(std::size_t index) {
    std::unique_lock lock(mu_);
    for (;;) {
      work_cv_.wait(lock, [&] { return closing_ || !ready_.empty(); });
      if (closing_) return;
      SubscriptionPtr sub = std::move(ready_.front());
      ready_.pop_front();
      // More ready subscribers than this thread: make sure another thread looks.
      if (!ready_.empty()) work_cv_.notify_one();
      sub->scheduled = false;
      if (sub->removed || sub->mailbox.empty()) continue;
      Entry entry = std::move(sub->mailbox.front());
      sub->mailbox.pop_front();
      --stats_.queued;
      sub->running_seq = entry.seq;
      running_by_thread_[index] = entry.seq;
      lock.unlock();

      std::string failure;
      bool threw = false;
      try {
        sub->fn(*entry.message);
      } catch (const std::exception& e) {
        threw = true;
        failure = e.what();
      } catch (...) {
        threw = true;
        failure = "an exception not derived from std::exception";
      }
      entry.message.reset();

      lock.lock();
      sub->running_seq = 0;
      if (threw) {
        ++stats_.failed_subscribers;
        const std::string text = prefix() + "subscriber " + std::to_string(sub->id) +
                                 " of topic \"" + sub->topic + "\" threw (" + failure +
                                 "); unsubscribed, " + std::to_string(sub->mailbox.size()) +
                                 " queued messages discarded";
        remove_locked(*sub);
        lock.unlock();
        // Logged while this thread still counts as delivering the message, so that a flush()
        // that returns has seen the line written.
        log_to(options_.log, LogLevel::error, text);
        lock.lock();
      } else {
        ++stats_.delivered;
      }
      running_by_thread_[index] = 0;
      if (!sub->removed && !sub->mailbox.empty() && !sub->scheduled) {
        sub->scheduled = true;
        ready_.push_back(sub);
        work_cv_.notify_one();
      }
      done_cv_.notify_all();
    }
  }

  const PubSubOptions options_;
  std::vector<std::thread> threads_;  // written before any callback can run, then read only

  mutable std::mutex mu_;
  std::condition_variable work_cv_;  // delivery threads: a subscriber is ready, or closing
  std::condition_variable done_cv_;  // flush and unsubscribe: a delivery ended
  bool closing_ = false;
  SubscriptionId last_id_ = 0;
  std::uint64_t last_seq_ = 0;
  std::unordered_map<SubscriptionId, SubscriptionPtr> subs_;
  std::unordered_map<std::string, std::vector<SubscriptionPtr>> by_topic_;
  std::deque<SubscriptionPtr> ready_;
  std::vector<std::uint64_t> running_by_thread_;  // the seq each delivery thread runs; 0: idle
  std::shared_ptr<Transport> transport_;
  PubSubStats stats_;
};

Result<std::unique_ptr<PubSub>> PubSub::create(PubSubOptions options) {
  MISHKA_RETURN_IF_ERROR(validate_name("node name", options.node_name));
  if (options.mailbox_capacity == 0) {
    return invalid_argument("pubsub on " + options.node_name + ": mailbox_capacity is 0");
  }
  if (options.delivery_threads == 0 || options.delivery_threads > kMaxDeliveryThreads) {
    return invalid_argument("pubsub on " + options.node_name + ": delivery_threads " +
                            std::to_string(options.delivery_threads) + " is outside 1.." +
                            std::to_string(kMaxDeliveryThreads));
  }
  if (options.broadcast_timeout <= std::chrono::milliseconds(0)) {
    return invalid_argument("pubsub on " + options.node_name +
                            ": broadcast_timeout must be positive");
  }
  auto impl = std::make_unique<Impl>(std::move(options));
  impl->start();
  return std::unique_ptr<PubSub>(new PubSub(std::move(impl)));
}

PubSub::PubSub(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
PubSub::~PubSub() {
  impl_->close();
}

Result<SubscriptionId> PubSub::subscribe(std::string topic, Subscriber fn) {
  return impl_->subscribe(std::move(topic), std::move(fn));
}
Status PubSub::unsubscribe(SubscriptionId id) {
  return impl_->unsubscribe(id);
}
Status PubSub::broadcast_local(std::string_view topic, Value payload) {
  return impl_->broadcast_local(topic, std::move(payload));
}
Status PubSub::broadcast(std::string_view topic, Value payload, Clock::time_point deadline) {
  return impl_->broadcast(topic, std::move(payload), deadline);
}
Status PubSub::broadcast(std::string_view topic, Value payload) {
  return impl_->broadcast(topic, std::move(payload), Clock::now() + impl_->broadcast_timeout());
}
void PubSub::set_transport(std::shared_ptr<Transport> transport) {
  impl_->set_transport(std::move(transport));
}
void PubSub::deliver(Message message) {
  impl_->deliver(std::move(message));
}
Status PubSub::flush(Clock::time_point deadline) {
  return impl_->flush(deadline);
}
PubSubStats PubSub::stats() const {
  return impl_->stats();
}
const std::string& PubSub::node_name() const {
  return impl_->node_name();
}

}  // namespace mishka::pubsub
