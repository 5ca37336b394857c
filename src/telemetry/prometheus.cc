#include "telemetry/prometheus.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <set>

namespace mishka::telemetry {
namespace {

bool is_snake_case(std::string_view name) {
  if (name.empty()) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool ok = (c >= 'a' && c <= 'z') || c == '_' || (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// Well-formed UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above U+10FFFF.
// Prometheus refuses label values and help text that are not.
bool is_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t len = 0;
    std::uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xe0) == 0xc0) {
      len = 2;
      cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      len = 3;
      cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > s.size()) return false;
    for (std::size_t k = 1; k < len; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3f);
    }
    static constexpr std::uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    i += len;
  }
  return true;
}

// Numbers as Go's strconv.ParseFloat reads them: the shortest text that reads back exactly,
// and Prometheus' spellings of the infinities and NaN.
void append_number(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "NaN";
  } else if (std::isinf(v)) {
    out += v > 0 ? "+Inf" : "-Inf";
  } else {
    char buf[32];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, ec == std::errc() ? end : buf);
  }
}

// Label values escape backslash, double quote and newline; help text backslash and newline.
void append_escaped(std::string& out, std::string_view text, bool quote) {
  for (const char c : text) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '"' && quote) {
      out += "\\\"";
    } else {
      out += c;
    }
  }
}

Status check_label_names(std::string_view metric, const std::vector<std::string>& names) {
  std::set<std::string_view> seen;
  for (const std::string& name : names) {
    const std::string where = "metric " + std::string(metric) + ": label name '" + name + "'";
    if (!is_snake_case(name))
      return invalid_argument(where + " is not snake_case [a-z_][a-z0-9_]*");
    if (name.rfind("__", 0) == 0) return invalid_argument(where + " is reserved (starts with __)");
    if (name == "le" || name == "quantile") {
      return invalid_argument(where + " is reserved for histograms and summaries");
    }
    if (!seen.insert(name).second) return invalid_argument(where + " appears twice");
  }
  return Status::Ok();
}

}  // namespace

// What the registry holds of each metric: its identity, and how it renders.
class PrometheusRegistry::Metric {
 public:
  Metric(std::string name, std::string help, std::string_view type,
         std::vector<std::string> label_names)
      : name_(std::move(name)),
        help_(std::move(help)),
        type_(type),
        label_names_(std::move(label_names)) {}
  virtual ~Metric() = default;

  const std::string& name() const { return name_; }

  // Whether registering `other` under this name means the same metric.
  virtual bool same_as(const Metric& other) const {
    return type_ == other.type_ && help_ == other.help_ && label_names_ == other.label_names_;
  }

  void render(std::string& out) const {
    out += "# HELP " + name_ + " ";
    append_escaped(out, help_, false);
    out += "\n# TYPE " + name_ + " " + type_ + "\n";
    render_series(out);
  }

 protected:
  virtual void render_series(std::string& out) const = 0;

  Status check_labels(const LabelValues& labels) const {
    if (labels.size() != label_names_.size()) {
      return invalid_argument("metric " + name_ + ": " + std::to_string(labels.size()) +
                              " label values for " + std::to_string(label_names_.size()) +
                              " label names");
    }
    for (std::size_t i = 0; i < labels.size(); ++i) {
      if (!is_utf8(labels[i])) {
        return invalid_argument("metric " + name_ + ": the value of label " + label_names_[i] +
                                " is not UTF-8");
      }
    }
    return Status::Ok();
  }

  // `name{a="x",b="y"} value`, with an extra label (a histogram's `le`) when `extra` is set.
  void append_sample(std::string& out, std::string_view suffix, const LabelValues& labels,
                     const char* extra_name, double extra_value, double value) const {
    out += name_;
    out += suffix;
    if (!labels.empty() || extra_name != nullptr) {
      out += '{';
      for (std::size_t i = 0; i < labels.size(); ++i) {
        if (i > 0) out += ',';
        out += label_names_[i] + "=\"";
        append_escaped(out, labels[i], true);
        out += '"';
      }
      if (extra_name != nullptr) {
        if (!labels.empty()) out += ',';
        out += std::string(extra_name) + "=\"";
        append_number(out, extra_value);
        out += '"';
      }
      out += '}';
    }
    out += ' ';
    append_number(out, value);
    out += '\n';
  }

  void append_sample(std::string& out, const LabelValues& labels, double value) const {
    append_sample(out, "", labels, nullptr, 0, value);
  }

 private:
  const std::string name_;
  const std::string help_;
  const std::string type_;
  const std::vector<std::string> label_names_;
};

namespace {

// A counter's or a gauge's series: one number per label values.
class ScalarMetric : public PrometheusRegistry::Metric {
 public:
  using Metric::Metric;

 protected:
  template <typename Update>
  Status update(const LabelValues& labels, Update&& fn) {
    MISHKA_RETURN_IF_ERROR(check_labels(labels));
    std::lock_guard lock(mu_);
    fn(series_[labels]);
    return Status::Ok();
  }

  void render_series(std::string& out) const override {
    std::lock_guard lock(mu_);
    for (const auto& [labels, value] : series_) append_sample(out, labels, value);
  }

 private:
  mutable std::mutex mu_;
  std::map<LabelValues, double> series_;  // guarded by mu_
};

class CounterMetric final : public Counter, public ScalarMetric {
 public:
  CounterMetric(std::string name, std::string help, std::vector<std::string> label_names)
      : ScalarMetric(std::move(name), std::move(help), "counter", std::move(label_names)) {}

  Status add(const LabelValues& labels, double amount) override {
    if (!std::isfinite(amount) || amount < 0) {
      return invalid_argument("counter " + name() + ": cannot add " + std::to_string(amount) +
                              " (a counter only goes up)");
    }
    return update(labels, [&](double& v) { v += amount; });
  }
};

class GaugeMetric final : public Gauge, public ScalarMetric {
 public:
  GaugeMetric(std::string name, std::string help, std::vector<std::string> label_names)
      : ScalarMetric(std::move(name), std::move(help), "gauge", std::move(label_names)) {}

  Status set(const LabelValues& labels, double value) override {
    if (std::isnan(value)) return invalid_argument("gauge " + name() + ": cannot set NaN");
    return update(labels, [&](double& v) { v = value; });
  }
  Status add(const LabelValues& labels, double delta) override {
    if (std::isnan(delta)) return invalid_argument("gauge " + name() + ": cannot add NaN");
    return update(labels, [&](double& v) { v += delta; });
  }
};

class HistogramMetric final : public Histogram, public PrometheusRegistry::Metric {
 public:
  HistogramMetric(std::string name, std::string help, std::vector<std::string> label_names,
                  std::vector<double> bounds)
      : Metric(std::move(name), std::move(help), "histogram", std::move(label_names)),
        bounds_(std::move(bounds)) {}

  bool same_as(const Metric& other) const override {
    const auto* h = dynamic_cast<const HistogramMetric*>(&other);
    return h != nullptr && Metric::same_as(other) && h->bounds_ == bounds_;
  }

  Status observe(const LabelValues& labels, double value) override {
    if (std::isnan(value)) return invalid_argument("histogram " + name() + ": cannot observe NaN");
    MISHKA_RETURN_IF_ERROR(check_labels(labels));
    // The first bucket whose bound is >= value; bounds_.size() is the +Inf bucket.
    const auto bucket = static_cast<std::size_t>(
        std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin());
    std::lock_guard lock(mu_);
    Series& s = series_[labels];
    if (s.buckets.empty()) s.buckets.resize(bounds_.size() + 1);
    ++s.buckets[bucket];
    s.sum += value;
    return Status::Ok();
  }

 protected:
  void render_series(std::string& out) const override {
    std::lock_guard lock(mu_);
    for (const auto& [labels, s] : series_) {
      // The exposition format's buckets are cumulative.
      std::uint64_t cumulative = 0;
      for (std::size_t i = 0; i < s.buckets.size(); ++i) {
        cumulative += s.buckets[i];
        const double bound = i < bounds_.size() ? bounds_[i] : HUGE_VAL;
        append_sample(out, "_bucket", labels, "le", bound, static_cast<double>(cumulative));
      }
      append_sample(out, "_sum", labels, nullptr, 0, s.sum);
      append_sample(out, "_count", labels, nullptr, 0, static_cast<double>(cumulative));
    }
  }

 private:
  struct Series {
    std::vector<std::uint64_t> buckets;  // per bucket, not cumulative; +Inf last
    double sum = 0;
  };

  const std::vector<double> bounds_;
  mutable std::mutex mu_;
  std::map<LabelValues, Series> series_;  // guarded by mu_
};

// The rules every metric name and help text follow (prometheus.h).
Status check_metric(std::string_view name, std::string_view help, bool counter) {
  const std::string where = "metric '" + std::string(name) + "'";
  if (!is_snake_case(name)) {
    return invalid_argument(where + ": the name is not snake_case [a-z_][a-z0-9_]*");
  }
  if (counter != ends_with(name, "_total")) {
    return invalid_argument(where + (counter ? ": a counter's name must end in _total"
                                             : ": only a counter's name may end in _total"));
  }
  for (std::string_view reserved : {"_bucket", "_count", "_sum"}) {
    if (ends_with(name, reserved)) {
      return invalid_argument(where + ": names ending in " + std::string(reserved) +
                              " are reserved for histograms' series");
    }
  }
  if (help.empty()) return invalid_argument(where + ": no help text");
  if (!is_utf8(help)) return invalid_argument(where + ": the help text is not UTF-8");
  return Status::Ok();
}

template <typename Concrete, typename Interface>
Result<std::shared_ptr<Interface>> as(Result<std::shared_ptr<PrometheusRegistry::Metric>> found) {
  if (!found.ok()) return found.status();
  return std::shared_ptr<Interface>(std::static_pointer_cast<Concrete>(*found));
}

}  // namespace

PrometheusRegistry::PrometheusRegistry() = default;
PrometheusRegistry::~PrometheusRegistry() = default;

Result<std::shared_ptr<PrometheusRegistry::Metric>> PrometheusRegistry::add(
    std::shared_ptr<Metric> metric) {
  std::lock_guard lock(mu_);
  auto [it, inserted] = metrics_.emplace(metric->name(), metric);
  if (inserted) return metric;
  // same_as compares the type first, so the caller's cast of the existing metric is safe.
  if (!it->second->same_as(*metric)) {
    return already_exists("metric '" + metric->name() +
                          "' is registered with another type, help, labels or buckets");
  }
  return it->second;
}

Result<std::shared_ptr<Counter>> PrometheusRegistry::counter(std::string name, std::string help,
                                                             std::vector<std::string> label_names) {
  MISHKA_RETURN_IF_ERROR(check_metric(name, help, true));
  MISHKA_RETURN_IF_ERROR(check_label_names(name, label_names));
  return as<CounterMetric, Counter>(add(
      std::make_shared<CounterMetric>(std::move(name), std::move(help), std::move(label_names))));
}

Result<std::shared_ptr<Gauge>> PrometheusRegistry::gauge(std::string name, std::string help,
                                                         std::vector<std::string> label_names) {
  MISHKA_RETURN_IF_ERROR(check_metric(name, help, false));
  MISHKA_RETURN_IF_ERROR(check_label_names(name, label_names));
  return as<GaugeMetric, Gauge>(
      add(std::make_shared<GaugeMetric>(std::move(name), std::move(help), std::move(label_names))));
}

Result<std::shared_ptr<Histogram>> PrometheusRegistry::histogram(
    std::string name, std::string help, std::vector<std::string> label_names,
    std::vector<double> bucket_bounds) {
  MISHKA_RETURN_IF_ERROR(check_metric(name, help, false));
  MISHKA_RETURN_IF_ERROR(check_label_names(name, label_names));
  for (std::size_t i = 0; i < bucket_bounds.size(); ++i) {
    if (!std::isfinite(bucket_bounds[i]) || (i > 0 && !(bucket_bounds[i - 1] < bucket_bounds[i]))) {
      return invalid_argument("histogram '" + name +
                              "': bucket bounds must be finite and strictly increasing");
    }
  }
  return as<HistogramMetric, Histogram>(add(std::make_shared<HistogramMetric>(
      std::move(name), std::move(help), std::move(label_names), std::move(bucket_bounds))));
}

std::vector<double> PrometheusRegistry::default_buckets() {
  return {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

std::string PrometheusRegistry::render() const {
  std::vector<std::shared_ptr<Metric>> metrics;
  {
    std::lock_guard lock(mu_);
    for (const auto& [name, metric] : metrics_) metrics.push_back(metric);
  }
  std::string out;
  for (const auto& metric : metrics) metric->render(out);
  return out;
}

Result<std::unique_ptr<PrometheusEventCounter>> PrometheusEventCounter::attach(
    Telemetry& telemetry, PrometheusRegistry& registry, std::string handler_id) {
  auto counter = registry.counter(std::string(kMetricName),
                                  "Telemetry events emitted, by event name.", {"event"});
  if (!counter.ok()) return counter.status();
  Status attached = telemetry.attach_all(
      handler_id, [counter = std::move(*counter)](const EventName& event, const Measurements&,
                                                  const Metadata&) {
        // Only invalid UTF-8 in the event name fails: such an event is not counted.
        (void)counter->increment({join_event_name(event)});
      });
  if (!attached.ok()) return attached;
  return std::unique_ptr<PrometheusEventCounter>(
      new PrometheusEventCounter(telemetry, std::move(handler_id)));
}

PrometheusEventCounter::~PrometheusEventCounter() {
  if (attached_) (void)telemetry_.detach(handler_id_);
}

Status PrometheusEventCounter::detach() {
  if (!attached_) return not_found("telemetry handler '" + handler_id_ + "' is not attached");
  attached_ = false;
  return telemetry_.detach(handler_id_);
}

}  // namespace mishka::telemetry
