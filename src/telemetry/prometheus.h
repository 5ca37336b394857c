// Metrics in the Prometheus text exposition format 0.0.4 (docs/telemetry.md, "Prometheus"):
// a registry of counters, gauges and histograms with labels, rendered for a scrape, and an
// adapter that counts a Telemetry's events in it.
//
// Names are checked when a metric is registered, so that what render() produces passes
// `promtool check metrics`: metric and label names are snake_case ([a-z_][a-z0-9_]*), counters
// end in `_total` and nothing else does, `_bucket`, `_count` and `_sum` are left to histograms,
// label names do not start with `__` and are not `le` or `quantile`, and help text is required.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "mishka/status.h"
#include "mishka/telemetry.h"

namespace mishka::telemetry {

// The values of a series' labels, one per label name of its metric, in the same order. Any
// UTF-8 text (escaped when rendered); invalid UTF-8 is refused.
using LabelValues = std::vector<std::string>;

// Every method of the metric classes may be called from any thread at once. Each returns
// invalid_argument naming the metric when `labels` has the wrong number of values or invalid
// UTF-8, or the number is refused as said; the series is then unchanged. A series appears in
// render() from its first successful call.

class Counter {
 public:
  virtual ~Counter() = default;
  // Adds `amount`, which must be finite and >= 0 (a counter only goes up).
  virtual Status add(const LabelValues& labels, double amount) = 0;
  Status increment(const LabelValues& labels) { return add(labels, 1); }
};

class Gauge {
 public:
  virtual ~Gauge() = default;
  // Any double but NaN.
  virtual Status set(const LabelValues& labels, double value) = 0;
  virtual Status add(const LabelValues& labels, double delta) = 0;
};

class Histogram {
 public:
  virtual ~Histogram() = default;
  // Counts `value` (not NaN) in every bucket whose upper bound is >= value, and in the sum.
  virtual Status observe(const LabelValues& labels, double value) = 0;
};

// Threading: every method may be called from any thread at once.
class PrometheusRegistry {
 public:
  PrometheusRegistry();
  ~PrometheusRegistry();
  PrometheusRegistry(const PrometheusRegistry&) = delete;
  PrometheusRegistry& operator=(const PrometheusRegistry&) = delete;

  // Registers a metric, or returns the one registered under `name` when the type, help, label
  // names (and buckets) are the same, so that independent users can share it. Errors:
  // invalid_argument for a name, label name or help text that breaks the rules above (or
  // duplicate label names); already_exists when `name` is registered differently. The metric
  // is shared: it stays usable after the registry is destroyed (but is no longer rendered).
  Result<std::shared_ptr<Counter>> counter(std::string name, std::string help,
                                           std::vector<std::string> label_names = {});
  Result<std::shared_ptr<Gauge>> gauge(std::string name, std::string help,
                                       std::vector<std::string> label_names = {});
  // `bucket_bounds`: the upper bounds, finite and strictly increasing (may be empty); the +Inf
  // bucket is always added. invalid_argument otherwise.
  Result<std::shared_ptr<Histogram>> histogram(std::string name, std::string help,
                                               std::vector<std::string> label_names,
                                               std::vector<double> bucket_bounds);

  // Prometheus' default buckets, in seconds: 0.005 0.01 0.025 0.05 0.1 0.25 0.5 1 2.5 5 10.
  static std::vector<double> default_buckets();

  // The text exposition format 0.0.4 (Content-Type "text/plain; version=0.0.4"): metrics in
  // name order, each with its # HELP and # TYPE lines, its series in label-value order. A
  // consistent view of each metric, not of the registry as a whole.
  std::string render() const;

  class Metric;  // defined in prometheus.cc

 private:
  Result<std::shared_ptr<Metric>> add(std::shared_ptr<Metric> metric);

  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<Metric>, std::less<>> metrics_;  // guarded by mu_
};

// Counts every event a Telemetry emits, whatever its name, as
//   mishka_telemetry_events_total{event="mishka_installer.mnesia.init.start"} 1
// (the event name's segments joined with dots). Events count on the threads that emit them;
// detach() and the destructor must not run at the same time as each other.
class PrometheusEventCounter {
 public:
  static constexpr std::string_view kMetricName = "mishka_telemetry_events_total";

  // Registers the counter in `registry` (or shares it, if there) and attaches a handler to
  // every event of `telemetry` under `handler_id`. Errors: those of
  // PrometheusRegistry::counter() and Telemetry::attach_all() (already_exists when the id is
  // taken). `telemetry` must outlive the returned object; `registry` need not.
  static Result<std::unique_ptr<PrometheusEventCounter>> attach(
      Telemetry& telemetry, PrometheusRegistry& registry,
      std::string handler_id = "mishka_prometheus_event_counter");

  // Detaches (if still attached).
  ~PrometheusEventCounter();
  PrometheusEventCounter(const PrometheusEventCounter&) = delete;
  PrometheusEventCounter& operator=(const PrometheusEventCounter&) = delete;

  // Stops counting; the counts so far stay in the registry. not_found when already detached
  // (by this call before, or because the handler failed).
  Status detach();

 private:
  PrometheusEventCounter(Telemetry& telemetry, std::string handler_id)
      : telemetry_(telemetry), handler_id_(std::move(handler_id)) {}

  Telemetry& telemetry_;
  const std::string handler_id_;
  bool attached_ = true;
};

}  // namespace mishka::telemetry
