// Telemetry events, the project's counterpart of Erlang's `:telemetry` (docs/telemetry.md):
// code emits named events with numeric measurements and free-form metadata; whoever cares
// attaches handlers to the names. The contract of the events mishka emits is CONTRACT.md
// section 7; exporters (json_lines_exporter.h, prometheus.h) turn events into files and metrics.
//
// There is no process-wide registry: a Telemetry object belongs to its owner (a node, a test),
// and many of them may live in one process.
#pragma once

#include <cstdint>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "mishka/log.h"
#include "mishka/status.h"
#include "mishka/value.h"

namespace mishka::telemetry {

// An event name: a non-empty list of non-empty segments, e.g.
// {"mishka_installer", "mnesia", "init", "start"}. Handlers match names exactly.
using EventName = std::vector<std::string>;

// ok, or invalid_argument when `event` is empty or has an empty segment.
Status validate_event_name(const EventName& event);
// The segments joined with dots, "mishka_installer.mnesia.init.start": how logs and metric
// labels name an event.
std::string join_event_name(const EventName& event);

// Numbers only: each value is an integer or a double (execute() refuses anything else).
// Integers keep nanosecond times exact, which a double would not past 2^53 ns (104 days).
using Measurements = std::map<std::string, Value, std::less<>>;

// Anything: each value may be any Value (string, list, map...).
using Metadata = std::map<std::string, Value, std::less<>>;

// Called for each event a handler is attached to, on the thread that called execute(). It may
// call any method of the Telemetry it is attached to (attach, detach, execute) without
// deadlock. It should return quickly: the emitting code waits for it. If it throws, it is
// detached and the failure is logged; the exception never reaches the emitting code.
using Handler = std::function<void(const EventName& event, const Measurements& measurements,
                                   const Metadata& metadata)>;

// The two clocks of events, as a seam for tests. Both in nanoseconds.
class Clock {
 public:
  virtual ~Clock() = default;
  // Wall-clock time since the Unix epoch (`system_time`, and the time of exported lines).
  virtual std::int64_t system_time_ns() const = 0;
  // A clock that never goes back, with an arbitrary origin (`monotonic_time`, durations).
  virtual std::int64_t monotonic_time_ns() const = 0;
};

// std::chrono::system_clock and std::chrono::steady_clock.
std::shared_ptr<const Clock> system_clock();

struct TelemetryOptions {
  // Where handler failures (and misuse of span()) are reported. May be empty: then nothing is
  // logged, and a failing handler is still detached.
  LogSink log;
  // The clock of span(); null means system_clock().
  std::shared_ptr<const Clock> clock;
};

// What list_handlers() reports of one attached handler.
struct HandlerInfo {
  std::string id;
  std::vector<EventName> events;  // sorted, once each; empty for a handler of attach_all()
};

// Threading: every method may be called from any thread at once, and from inside a handler.
// Handlers run synchronously on the caller's thread of execute() (or span()), in the order they
// were attached; no lock is held while they run, so one handler may run on several threads at
// once (it must be thread-safe itself).
//
// The set of handlers an execute() call runs is the one attached when the call starts: a
// handler attached meanwhile is not called by it; a handler detached meanwhile is skipped if it
// has not been reached yet. A call already running on another thread may still be finishing
// after detach() returns; the handler (and what it captured) is destroyed when the last such
// call ends.
//
// The Telemetry must outlive every call into it: destroy it only when no thread is inside
// execute(), span() or a handler.
class Telemetry {
 public:
  explicit Telemetry(TelemetryOptions options = {});
  ~Telemetry();
  Telemetry(const Telemetry&) = delete;
  Telemetry& operator=(const Telemetry&) = delete;

  // Attaches `handler` under `handler_id` to each of `events` (exact names). Errors:
  // already_exists when `handler_id` is attached already (to anything); invalid_argument when
  // the id is empty, `events` is empty, an event name is malformed (see EventName) or the
  // handler is empty. Nothing is attached on error.
  Status attach(std::string handler_id, std::vector<EventName> events, Handler handler);

  // Attaches `handler` to every event this Telemetry emits, whatever its name (exporters that
  // record everything). Same errors as attach() but for `events`. It runs in attach order among
  // the handlers of each event.
  Status attach_all(std::string handler_id, Handler handler);

  // Detaches the handler attached under `handler_id`. not_found when there is none.
  Status detach(std::string_view handler_id);

  // The handlers attached now, in attach order. With a non-empty `prefix`, only those attached
  // to at least one event whose name starts with it (handlers of attach_all() included).
  std::vector<HandlerInfo> list_handlers(const EventName& prefix = {}) const;

  // Runs every handler attached to `event` (then returns ok even if some failed: those are
  // detached and logged). invalid_argument, and no handler runs, when `event` is malformed or a
  // measurement is neither an integer nor a double.
  Status execute(const EventName& event, const Measurements& measurements,
                 const Metadata& metadata);

  // Runs `fn` inside a span of events, like `:telemetry.span/3`:
  //   prefix + "start"      measurements {system_time, monotonic_time}, metadata `metadata`
  //   prefix + "stop"       measurements {duration, monotonic_time}, metadata: `metadata` as
  //                         fn left it (fn gets it by reference to add e.g. `result`)
  //   prefix + "exception"  when fn throws: measurements {duration, monotonic_time}, metadata
  //                         `metadata` as fn left it plus `kind` and `reason`; the exception is
  //                         then rethrown unchanged
  // Every time is an integer of nanoseconds: system_time since the Unix epoch, monotonic_time
  // on the monotonic clock, duration from start to stop (or exception) on that clock.
  // `kind` is "error" for a std::exception (`reason` its what()) and "throw" for anything else
  // thrown (`reason` "non-standard exception").
  // Returns what fn returns (fn is called with a Metadata& and may return void). A malformed
  // prefix is a bug in the caller: fn still runs, no event is emitted, and an error is logged.
  template <typename Fn>
  std::invoke_result_t<Fn&, Metadata&> span(const EventName& prefix, Metadata metadata, Fn&& fn);

  // The clock of span(), for code that builds its own measurements (`system_time`).
  const Clock& clock() const { return *clock_; }

 private:
  struct Registration;
  struct Index;

  Status add(std::string handler_id, std::vector<EventName> events, bool all, Handler handler);
  // Removes `registration` from a new index_. mu_ must be held. By value: the caller's
  // reference may point into the index being replaced.
  void unpublish_locked(std::shared_ptr<Registration> registration);
  // Detaches `registration` if it is still the one under its id (it threw).
  void drop_failed(const std::shared_ptr<Registration>& registration, const EventName& event,
                   std::string_view why);

  // execute() for span(), which has no way to return an error: a failure is logged.
  void emit(const EventName& event, const Measurements& measurements, const Metadata& metadata);
  // span()'s three events; span_start returns the monotonic time it stamped.
  std::int64_t span_start(const EventName& prefix, const Metadata& metadata);
  void span_stop(const EventName& prefix, std::int64_t start, const Metadata& metadata);
  void span_exception(const EventName& prefix, std::int64_t start, const Metadata& metadata,
                      const std::exception_ptr& error);

  const LogSink log_;
  const std::shared_ptr<const Clock> clock_;

  mutable std::mutex mu_;
  // Guarded by mu_. Copy-on-write: execute() takes a reference under the lock and reads it
  // after releasing the lock, so handlers run unlocked and may attach and detach.
  std::shared_ptr<const Index> index_;
  std::uint64_t next_sequence_ = 0;  // guarded by mu_; orders registrations by attach time
};

template <typename Fn>
std::invoke_result_t<Fn&, Metadata&> Telemetry::span(const EventName& prefix, Metadata metadata,
                                                     Fn&& fn) {
  using R = std::invoke_result_t<Fn&, Metadata&>;
  const std::int64_t start = span_start(prefix, metadata);
  // Only fn's own exceptions make an exception event; the stop event is emitted outside.
  auto run = [&]() -> R {
    try {
      return fn(metadata);
    } catch (...) {
      span_exception(prefix, start, metadata, std::current_exception());
      throw;
    }
  };
  if constexpr (std::is_void_v<R>) {
    run();
    span_stop(prefix, start, metadata);
  } else {
    R result = run();
    span_stop(prefix, start, metadata);
    return result;
  }
}

}  // namespace mishka::telemetry
