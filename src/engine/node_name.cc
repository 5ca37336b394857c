#include "engine/node_name.h"

#include <arpa/inet.h>

#include <charconv>

namespace mishka::engine {
namespace {

Status bad(std::string_view text, const std::string& why) {
  return Status(StatusCode::invalid_argument,
                "node name '" + std::string(text) + "' " + why + " (expected NAME@HOST:PORT)");
}

bool name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '.' || c == '-';
}

bool is_ipv4(const std::string& host) {
  in_addr addr{};
  return inet_pton(AF_INET, host.c_str(), &addr) == 1;
}

bool is_ipv6(const std::string& host) {
  in6_addr addr{};
  return inet_pton(AF_INET6, host.c_str(), &addr) == 1;
}

// RFC 1123 labels: letters, digits and '-', 1 to 63 bytes, not starting or ending with '-'.
bool is_dns_name(std::string_view host) {
  if (host.empty() || host.size() > kMaxHostBytes) return false;
  std::size_t start = 0;
  while (start <= host.size()) {
    std::size_t dot = host.find('.', start);
    if (dot == std::string_view::npos) dot = host.size();
    std::string_view label = host.substr(start, dot - start);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') {
      return false;
    }
    for (char c : label) {
      const bool ok =
          (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
      if (!ok) return false;
    }
    start = dot + 1;
  }
  return true;
}

std::string bracketed(const NodeName& n) {
  return is_ipv6(n.host) ? "[" + n.host + "]" : n.host;
}

}  // namespace

std::string NodeName::to_string() const {
  return name + "@" + client_endpoint();
}

std::string NodeName::client_endpoint() const {
  return bracketed(*this) + ":" + std::to_string(port);
}

bool NodeName::host_is_ip() const {
  return is_ipv4(host) || is_ipv6(host);
}

Result<std::uint16_t> NodeName::peer_port(std::optional<std::uint16_t> configured) const {
  if (configured) {
    if (*configured == 0 || *configured == port) {
      return Status(StatusCode::invalid_argument,
                    "peer port " + std::to_string(*configured) + " of node " + to_string() +
                        " must be 1..65535 and differ from its client port");
    }
    return *configured;
  }
  if (port == 65535) {
    return Status(StatusCode::invalid_argument,
                  "node " + to_string() +
                      " uses client port 65535, so its peer port (PORT+1) must be set explicitly");
  }
  return static_cast<std::uint16_t>(port + 1);
}

Result<NodeName> parse_node_name(std::string_view text) {
  const std::size_t at = text.find('@');
  if (at == std::string_view::npos) return bad(text, "has no '@'");
  NodeName out;
  std::string_view name = text.substr(0, at);
  std::string_view rest = text.substr(at + 1);
  if (name.empty()) return bad(text, "has an empty NAME");
  if (name.size() > kMaxNamePartBytes) {
    return bad(text, "has a NAME longer than " + std::to_string(kMaxNamePartBytes) + " bytes");
  }
  for (char c : name) {
    if (!name_char(c)) return bad(text, "has a NAME with a character outside [A-Za-z0-9_.-]");
  }
  out.name.assign(name);

  std::string_view port_text;
  if (!rest.empty() && rest.front() == '[') {
    const std::size_t close = rest.find(']');
    if (close == std::string_view::npos) return bad(text, "has an IPv6 host without ']'");
    out.host.assign(rest.substr(1, close - 1));
    if (!is_ipv6(out.host)) return bad(text, "has a malformed IPv6 host");
    rest.remove_prefix(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return bad(text, "has text after the IPv6 host that is not :PORT");
      port_text = rest.substr(1);
      if (port_text.empty()) return bad(text, "has an empty PORT");
    }
  } else {
    const std::size_t colon = rest.rfind(':');
    std::string_view host = colon == std::string_view::npos ? rest : rest.substr(0, colon);
    if (colon != std::string_view::npos) {
      port_text = rest.substr(colon + 1);
      if (port_text.empty()) return bad(text, "has an empty PORT");
    }
    if (host.empty()) return bad(text, "has an empty HOST");
    if (host.find(':') != std::string_view::npos) {
      return bad(text, "has an IPv6 host that is not in brackets");
    }
    out.host.assign(host);
    const bool looks_numeric = host.find_first_not_of("0123456789.") == std::string_view::npos;
    if (looks_numeric ? !is_ipv4(out.host) : !is_dns_name(host)) {
      return bad(text, looks_numeric ? "has a malformed IPv4 host" : "has a malformed host name");
    }
  }
  if (!port_text.empty()) {
    unsigned value = 0;
    auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), value);
    if (ec != std::errc() || end != port_text.data() + port_text.size() || value == 0 ||
        value > 65535) {
      return bad(text, "has a PORT that is not a number in 1..65535");
    }
    out.port = static_cast<std::uint16_t>(value);
  }
  return out;
}

}  // namespace mishka::engine
