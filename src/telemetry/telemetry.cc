#include "mishka/telemetry.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <span>

namespace mishka::telemetry {

struct Telemetry::Registration {
  std::string id;
  std::vector<EventName> events;  // empty when `all`
  bool all = false;
  Handler handler;
  std::uint64_t sequence = 0;  // attach order
  // Cleared by detach, so that execute() calls in progress skip a handler they have not
  // reached yet.
  std::atomic<bool> attached{true};
};

// Never modified once published in index_: a change builds a new one.
struct Telemetry::Index {
  std::map<std::string, std::shared_ptr<Registration>, std::less<>> by_id;
  std::map<EventName, std::vector<std::shared_ptr<Registration>>> by_event;  // attach order
  std::vector<std::shared_ptr<Registration>> all;                            // attach order
};

namespace {

class SystemClock final : public Clock {
 public:
  std::int64_t system_time_ns() const override {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
  std::int64_t monotonic_time_ns() const override {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }
};

template <typename T>
void erase_value(std::vector<T>& v, const T& x) {
  v.erase(std::remove(v.begin(), v.end(), x), v.end());
}

EventName with_suffix(const EventName& prefix, const char* suffix) {
  EventName name = prefix;
  name.emplace_back(suffix);
  return name;
}

}  // namespace

Status validate_event_name(const EventName& event) {
  if (event.empty()) return invalid_argument("telemetry: empty event name");
  for (const std::string& segment : event) {
    if (segment.empty()) {
      return invalid_argument("telemetry event " + join_event_name(event) + ": empty segment");
    }
  }
  return Status::Ok();
}

std::string join_event_name(const EventName& event) {
  std::string out;
  for (const std::string& segment : event) {
    if (!out.empty()) out += '.';
    out += segment;
  }
  return out;
}

std::shared_ptr<const Clock> system_clock() {
  return std::make_shared<SystemClock>();
}

Telemetry::Telemetry(TelemetryOptions options)
    : log_(std::move(options.log)),
      clock_(options.clock ? std::move(options.clock) : system_clock()),
      index_(std::make_shared<Index>()) {}

Telemetry::~Telemetry() = default;

Status Telemetry::attach(std::string handler_id, std::vector<EventName> events, Handler handler) {
  if (events.empty()) {
    return invalid_argument("telemetry handler '" + handler_id + "': no event names to attach to");
  }
  for (const EventName& event : events) {
    Status valid = validate_event_name(event);
    if (!valid.ok()) return valid.with_context("telemetry handler '" + handler_id + "'");
  }
  return add(std::move(handler_id), std::move(events), false, std::move(handler));
}

Status Telemetry::attach_all(std::string handler_id, Handler handler) {
  return add(std::move(handler_id), {}, true, std::move(handler));
}

Status Telemetry::add(std::string handler_id, std::vector<EventName> events, bool all,
                      Handler handler) {
  if (handler_id.empty()) return invalid_argument("telemetry handler: empty handler id");
  if (!handler) return invalid_argument("telemetry handler '" + handler_id + "': empty handler");
  // Attaching twice to one name would call the handler twice per event.
  std::sort(events.begin(), events.end());
  events.erase(std::unique(events.begin(), events.end()), events.end());

  auto registration = std::make_shared<Registration>();
  registration->id = std::move(handler_id);
  registration->events = std::move(events);
  registration->all = all;
  registration->handler = std::move(handler);

  std::lock_guard lock(mu_);
  if (index_->by_id.count(registration->id) != 0) {
    return already_exists("telemetry handler '" + registration->id + "' is already attached");
  }
  registration->sequence = next_sequence_++;
  auto next = std::make_shared<Index>(*index_);
  next->by_id.emplace(registration->id, registration);
  if (all) {
    next->all.push_back(registration);
  } else {
    for (const EventName& event : registration->events) {
      next->by_event[event].push_back(registration);
    }
  }
  index_ = std::move(next);
  return Status::Ok();
}

Status Telemetry::detach(std::string_view handler_id) {
  std::lock_guard lock(mu_);
  auto found = index_->by_id.find(handler_id);
  if (found == index_->by_id.end()) {
    return not_found("telemetry handler '" + std::string(handler_id) + "' is not attached");
  }
  unpublish_locked(found->second);
  return Status::Ok();
}

void Telemetry::unpublish_locked(std::shared_ptr<Registration> registration) {
  registration->attached.store(false, std::memory_order_release);
  auto next = std::make_shared<Index>(*index_);
  next->by_id.erase(registration->id);
  if (registration->all) {
    erase_value(next->all, registration);
  } else {
    for (const EventName& event : registration->events) {
      auto it = next->by_event.find(event);
      erase_value(it->second, registration);
      if (it->second.empty()) next->by_event.erase(it);
    }
  }
  index_ = std::move(next);
}

std::vector<HandlerInfo> Telemetry::list_handlers(const EventName& prefix) const {
  std::shared_ptr<const Index> index;
  {
    std::lock_guard lock(mu_);
    index = index_;
  }
  auto matches = [&](const Registration& r) {
    if (prefix.empty() || r.all) return true;
    return std::any_of(r.events.begin(), r.events.end(), [&](const EventName& e) {
      return e.size() >= prefix.size() && std::equal(prefix.begin(), prefix.end(), e.begin());
    });
  };
  std::vector<const Registration*> found;
  for (const auto& [id, r] : index->by_id) {
    if (matches(*r)) found.push_back(r.get());
  }
  std::sort(found.begin(), found.end(),
            [](const Registration* a, const Registration* b) { return a->sequence < b->sequence; });
  std::vector<HandlerInfo> out;
  out.reserve(found.size());
  for (const Registration* r : found) out.push_back({r->id, r->events});
  return out;
}

Status Telemetry::execute(const EventName& event, const Measurements& measurements,
                          const Metadata& metadata) {
  MISHKA_RETURN_IF_ERROR(validate_event_name(event));
  for (const auto& [name, value] : measurements) {
    const ValueKind kind = value.kind();
    if (kind != ValueKind::integer && kind != ValueKind::real) {
      return invalid_argument("telemetry event " + join_event_name(event) + ": measurement '" +
                              name + "' is a " + std::string(value_kind_name(kind)) +
                              ", not a number");
    }
  }

  std::shared_ptr<const Index> index;
  {
    std::lock_guard lock(mu_);
    index = index_;
  }
  std::span<const std::shared_ptr<Registration>> by_name;
  if (auto named = index->by_event.find(event); named != index->by_event.end()) {
    by_name = named->second;
  }

  // The handlers of this name and those of every name, merged back into attach order.
  auto a = by_name.begin();
  auto b = index->all.begin();
  while (a != by_name.end() || b != index->all.end()) {
    const bool take_a =
        b == index->all.end() || (a != by_name.end() && (*a)->sequence < (*b)->sequence);
    const std::shared_ptr<Registration>& r = take_a ? *a++ : *b++;
    if (!r->attached.load(std::memory_order_acquire)) continue;
    try {
      r->handler(event, measurements, metadata);
    } catch (const std::exception& e) {
      drop_failed(r, event, e.what());
    } catch (...) {
      drop_failed(r, event, "non-standard exception");
    }
  }
  return Status::Ok();
}

void Telemetry::drop_failed(const std::shared_ptr<Registration>& registration,
                            const EventName& event, std::string_view why) {
  {
    std::lock_guard lock(mu_);
    auto found = index_->by_id.find(registration->id);
    // Already detached by its owner, or it threw on another thread too (logged there); the id
    // may even be attached again to another handler, which must stay.
    if (found == index_->by_id.end() || found->second != registration) return;
    unpublish_locked(registration);
  }
  log_to(log_, LogLevel::error,
         "telemetry handler '" + registration->id + "' threw on event " + join_event_name(event) +
             " and was detached: " + std::string(why));
}

void Telemetry::emit(const EventName& event, const Measurements& measurements,
                     const Metadata& metadata) {
  Status emitted = execute(event, measurements, metadata);
  if (!emitted.ok()) log_to(log_, LogLevel::error, "telemetry span: " + emitted.to_string());
}

std::int64_t Telemetry::span_start(const EventName& prefix, const Metadata& metadata) {
  const std::int64_t now = clock_->monotonic_time_ns();
  emit(with_suffix(prefix, "start"),
       {{"system_time", clock_->system_time_ns()}, {"monotonic_time", now}}, metadata);
  return now;
}

void Telemetry::span_stop(const EventName& prefix, std::int64_t start, const Metadata& metadata) {
  const std::int64_t now = clock_->monotonic_time_ns();
  emit(with_suffix(prefix, "stop"), {{"duration", now - start}, {"monotonic_time", now}}, metadata);
}

void Telemetry::span_exception(const EventName& prefix, std::int64_t start,
                               const Metadata& metadata, const std::exception_ptr& error) {
  const std::int64_t now = clock_->monotonic_time_ns();
  Metadata with_error = metadata;
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    with_error["kind"] = "error";
    with_error["reason"] = e.what();
  } catch (...) {
    with_error["kind"] = "throw";
    with_error["reason"] = "non-standard exception";
  }
  emit(with_suffix(prefix, "exception"), {{"duration", now - start}, {"monotonic_time", now}},
       with_error);
}

}  // namespace mishka::telemetry
