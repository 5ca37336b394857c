// Node names: NAME@HOST:PORT (CONTRACT.md section 1). PORT is the node's etcd client port; its
// peer port is PORT+1 unless configured. The name is what etcd gets as --name, what the
// identity file records and what presence keys and local_content prefixes carry, so its
// alphabet excludes every separator those use ('/', '=', ',', whitespace).
//
// Threading: plain values and functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "mishka/status.h"

namespace mishka::engine {

inline constexpr std::uint16_t kDefaultClientPort = 4370;
inline constexpr std::size_t kMaxNamePartBytes = 64;
inline constexpr std::size_t kMaxHostBytes = 253;  // a DNS name's limit

struct NodeName {
  std::string name;  // [A-Za-z0-9_.-], 1 to kMaxNamePartBytes bytes
  std::string host;  // an IPv4 literal, an IPv6 literal (kept without brackets), or a DNS name
  std::uint16_t port = kDefaultClientPort;

  // The canonical form, NAME@HOST:PORT, with IPv6 hosts in brackets. parse(to_string()) == *this.
  std::string to_string() const;
  // "HOST:PORT" for gRPC (IPv6 in brackets).
  std::string client_endpoint() const;
  // PORT+1 when `peer_port` is not given; invalid_argument when PORT is 65535 and no peer port
  // is given, or a given peer port equals PORT or is 0.
  Result<std::uint16_t> peer_port(std::optional<std::uint16_t> configured = std::nullopt) const;
  // True when host is an IP literal (etcd listens only on IP literals).
  bool host_is_ip() const;

  friend bool operator==(const NodeName&, const NodeName&) = default;
};

// Parses NAME@HOST[:PORT] (PORT defaults to kDefaultClientPort). invalid_argument naming the
// text and what is wrong: no '@', an empty or over-long part, a character outside the
// alphabet, a malformed IP literal or DNS name, a port that is not a number in 1..65535.
Result<NodeName> parse_node_name(std::string_view text);

}  // namespace mishka::engine
