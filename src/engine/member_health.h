// The health probe of a local etcd member: an HTTP GET of etcd's /health endpoint over a plain
// socket. It needs neither the generated gRPC client nor a connection that outlives the call,
// which is what the supervisor wants while etcd is coming up.
#pragma once

#include <cstdint>
#include <string>

#include "engine/deadline.h"
#include "mishka/status.h"

namespace mishka::engine {

// GET http://host:port/health?exclude=NOSPACE. Ok when etcd answers 200 with
// {"health":"true"}: it has a leader and a quorum read went through. A raised NOSPACE alarm is
// ignored here (the member runs and serves reads; the client layer reports the alarm); any
// other alarm makes it unhealthy. Otherwise engine_unavailable naming the URL and what was
// wrong (connection refused, the HTTP status and body, ...), or timeout when `deadline`
// passed. `host` is an IPv4 or IPv6 literal. Blocks at most until `deadline`.
Status probe_member_health(const std::string& host, std::uint16_t port, Deadline deadline);

// "host:port", with an IPv6 literal in brackets.
std::string host_port(const std::string& host, std::uint16_t port);
// "scheme://host:port", likewise.
std::string make_url(const std::string& scheme, const std::string& host, std::uint16_t port);

}  // namespace mishka::engine
