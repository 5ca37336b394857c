// Node names NAME@HOST:PORT (CONTRACT.md section 1).
#include "engine/node_name.h"

#include <gtest/gtest.h>

namespace mishka::engine {
namespace {

TEST(NodeName, ParsesTheThreeParts) {
  auto n = parse_node_name("mishka@127.0.0.1:4370");
  ASSERT_TRUE(n.ok()) << n.status().to_string();
  EXPECT_EQ(n->name, "mishka");
  EXPECT_EQ(n->host, "127.0.0.1");
  EXPECT_EQ(n->port, 4370);
  EXPECT_EQ(n->to_string(), "mishka@127.0.0.1:4370");
  EXPECT_EQ(n->client_endpoint(), "127.0.0.1:4370");
  EXPECT_TRUE(n->host_is_ip());
}

TEST(NodeName, ThePortDefaultsTo4370AndThePeerPortToPortPlusOne) {
  auto n = parse_node_name("a_b-c.d@db-1.example.org");
  ASSERT_TRUE(n.ok()) << n.status().to_string();
  EXPECT_EQ(n->port, kDefaultClientPort);
  EXPECT_FALSE(n->host_is_ip());
  EXPECT_EQ(n->to_string(), "a_b-c.d@db-1.example.org:4370");
  auto peer = n->peer_port();
  ASSERT_TRUE(peer.ok());
  EXPECT_EQ(*peer, 4371);
  EXPECT_EQ(*n->peer_port(std::uint16_t{9000}), 9000);
}

TEST(NodeName, Ipv6HostsAreBracketed) {
  auto n = parse_node_name("x@[::1]:5000");
  ASSERT_TRUE(n.ok()) << n.status().to_string();
  EXPECT_EQ(n->host, "::1");
  EXPECT_EQ(n->to_string(), "x@[::1]:5000");
  EXPECT_EQ(n->client_endpoint(), "[::1]:5000");
  EXPECT_TRUE(n->host_is_ip());
  auto again = parse_node_name(n->to_string());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *n);
}

TEST(NodeName, BadNamesSayWhatIsWrong) {
  const std::pair<const char*, const char*> cases[] = {
      {"", "no '@'"},
      {"noat", "no '@'"},
      {"@127.0.0.1:1", "empty NAME"},
      {"a/b@127.0.0.1:1", "outside [A-Za-z0-9_.-]"},
      {"a=b@127.0.0.1:1", "outside [A-Za-z0-9_.-]"},
      {"a,b@127.0.0.1:1", "outside [A-Za-z0-9_.-]"},
      {"a b@127.0.0.1:1", "outside [A-Za-z0-9_.-]"},
      {"a@", "empty HOST"},
      {"a@:4370", "empty HOST"},
      {"a@127.0.0.1:", "empty PORT"},
      {"a@127.0.0.1:0", "1..65535"},
      {"a@127.0.0.1:65536", "1..65535"},
      {"a@127.0.0.1:12x", "1..65535"},
      {"a@127.0.0.1:-1", "1..65535"},
      {"a@300.1.1.1:1", "malformed IPv4"},
      {"a@1.2.3:1", "malformed IPv4"},
      {"a@-bad-.org:1", "malformed host name"},
      {"a@under_score.org:1", "malformed host name"},
      {"a@::1:4370", "not in brackets"},
      {"a@[::1:4370", "without ']'"},
      {"a@[zz]:1", "malformed IPv6"},
      {"a@[::1]x", "not :PORT"},
  };
  for (const auto& [text, why] : cases) {
    auto n = parse_node_name(text);
    ASSERT_FALSE(n.ok()) << text;
    EXPECT_EQ(n.status().code(), StatusCode::invalid_argument) << text;
    EXPECT_NE(n.status().message().find(why), std::string::npos)
        << text << ": " << n.status().message();
    EXPECT_NE(n.status().message().find(text), std::string::npos) << "names the text";
  }
  EXPECT_FALSE(parse_node_name(std::string(65, 'n') + "@h:1").ok());
}

TEST(NodeName, PeerPortRules) {
  auto top = parse_node_name("a@127.0.0.1:65535");
  ASSERT_TRUE(top.ok());
  EXPECT_EQ(top->peer_port().status().code(), StatusCode::invalid_argument);
  EXPECT_TRUE(top->peer_port(std::uint16_t{100}).ok());
  EXPECT_FALSE(top->peer_port(std::uint16_t{65535}).ok()) << "equal to the client port";
  EXPECT_FALSE(top->peer_port(std::uint16_t{0}).ok());
}

}  // namespace
}  // namespace mishka::engine
