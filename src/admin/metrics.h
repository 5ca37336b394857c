// The admin HTTP's /metrics (docs/admin.md, "Metrics"): a Prometheus registry that counts the
// repo's telemetry events (CONTRACT.md section 7) from the moment it is attached, the admin's
// own requests, and gauges of the repo's state refreshed at each scrape.
//
// A scrape never emits telemetry and never runs a health check: the health gauges that only a
// health check knows (member_healthy, replica_lag, etcd_restarts) come from the last report
// given to remember_health() (the admin server passes every health check it runs itself), and
// `healthy` follows the health_check events of whoever ran them (the repo's timer included).
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "mishka/repo.h"
#include "mishka/status.h"
#include "mishka/telemetry.h"
#include "telemetry/prometheus.h"

namespace mishka::admin {

// Threading: every method may be called from any thread at once; event handlers run on the
// threads that emit the events.
class AdminMetrics {
 public:
  // Registers the metrics and attaches handlers to `telemetry` under ids starting with
  // `handler_id` (which must not be taken: already_exists). `telemetry` must outlive the
  // object.
  static Result<std::unique_ptr<AdminMetrics>> attach(telemetry::Telemetry& telemetry,
                                                      const std::string& handler_id);
  ~AdminMetrics();  // detaches the handlers
  AdminMetrics(const AdminMetrics&) = delete;
  AdminMetrics& operator=(const AdminMetrics&) = delete;

  // One answered request: `route` is a fixed name (docs/admin.md), `http_status` its status.
  void count_request(std::string_view route, int http_status);

  // The last health report this server saw (the gauges that only a health check knows).
  void remember_health(const HealthReport& report);

  // Refreshes the gauges from `repo` (nullptr: no repo runs now) and renders every metric in
  // the text format 0.0.4. Calls repo->state(), which may wait on etcd for a bounded time.
  std::string scrape(MnesiaRepo* repo);

  class Instruments;

 private:
  AdminMetrics(telemetry::Telemetry& telemetry, std::string handler_id);

  telemetry::Telemetry& telemetry_;
  const std::string handler_id_;
  telemetry::PrometheusRegistry registry_;
  std::unique_ptr<telemetry::PrometheusEventCounter> event_counter_;
  std::shared_ptr<Instruments> instruments_;  // shared with the telemetry handler
};

}  // namespace mishka::admin
