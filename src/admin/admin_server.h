// The admin HTTP of one node (CONTRACT.md section 11; docs/admin.md is the guide): state,
// schemas, health, readiness, Prometheus metrics, records, and explicit removal, as JSON over
// HTTP/1.1 on one address. mishkad serves it; a program that embeds the repo may too.
//
// The server runs from the start of the node's boot: while no repo is running (boot not ended,
// or a supervisor between two restarts) it answers what it can (readyz 503, metrics) and 503
// {"error": "starting"} elsewhere. Bad input never gets a 500: it gets 400 (or 404, 413) with
// a body {"error": <code>, "message": <what was wrong>}.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "mishka/log.h"
#include "mishka/repo.h"
#include "mishka/status.h"
#include "mishka/telemetry.h"

namespace mishka::admin {

struct AdminOptions {
  // The address to listen on. Only what the operator chose: the default is loopback.
  std::string host = "127.0.0.1";
  // 0: a free port chosen by the kernel (port() tells which).
  std::uint16_t port = 4380;
  // Larger request bodies are refused with 413 (payload_too_large). The excess is read and
  // thrown away, never kept, so that the connection stays usable. At least 1.
  std::size_t max_body_bytes = 1 << 20;
  // Requests served at once (the server's thread pool), 1..1024. Of these, writes (PUT and
  // DELETE of records, member removal) take at most threads - 2 (at least 1): a write beyond
  // is answered 503 {"error": "busy"} at once, so that a write waiting for a lost quorum never
  // leaves /healthz, /readyz and reads without a thread. An idle keep-alive connection also
  // holds a thread, up to 2 s.
  int threads = 8;
  // Lines of the server (failed requests, start and stop).
  LogSink log;
};

// The repo of the moment: nullptr while none runs. Called on the server's threads for every
// request; it must be cheap and thread-safe (RepoSupervisor::child() is).
using RepoProvider = std::function<std::shared_ptr<MnesiaRepo>()>;

// Threading: start() and stop() from the owner; requests are served on the server's own
// threads.
class AdminServer {
 public:
  // Binds host:port and starts serving before it returns (a client may connect as soon as it
  // returned). The server counts `telemetry`'s events for /metrics from now on (`telemetry`
  // must outlive the server; pass the repo's, RepoOptions::telemetry). Errors:
  // invalid_argument for bad options or an empty provider (naming the field); io_error naming
  // the address when it cannot be bound (in use, no such address). The port is never shared
  // with another listener (no SO_REUSEPORT).
  static Result<std::unique_ptr<AdminServer>> start(AdminOptions options, RepoProvider repo,
                                                    telemetry::Telemetry& telemetry);

  ~AdminServer();  // stop()
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  // The port it listens on.
  std::uint16_t port() const;
  // Stops listening and waits for the requests being served (an idle keep-alive connection
  // holds it up to 2 s). Idempotent; not from a request's thread.
  void stop();

  class Impl;

 private:
  explicit AdminServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace mishka::admin
