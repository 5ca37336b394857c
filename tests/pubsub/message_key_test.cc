// The key of a pub/sub message in etcd (docs/keyspace.md): encoding, parsing, and what parsing
// refuses. No etcd needed.

#include <gtest/gtest.h>

#include <string>

#include "engine/cluster_broadcast.h"

namespace mishka::engine {
namespace {

constexpr char kPrefix[] = "/test/ps/";

TEST(MessageKeyTest, EncodesAndParsesBackAndRefusesOtherShapes) {
  const MessageKey key{"mishka:plugin:mnesia", "n1@10.0.0.1:4370", 0x0123456789abcdefULL, 42};
  const std::string encoded = encode_message_key(kPrefix, key);
  EXPECT_EQ(encoded,
            "/test/ps/mishka:plugin:mnesia/n1@10.0.0.1:4370/0123456789abcdef/000000000000002a");
  Result<MessageKey> parsed = parse_message_key(kPrefix, encoded);
  ASSERT_TRUE(parsed.ok()) << parsed.status().to_string();
  EXPECT_EQ(parsed->topic, key.topic);
  EXPECT_EQ(parsed->sender, key.sender);
  EXPECT_EQ(parsed->incarnation, key.incarnation);
  EXPECT_EQ(parsed->seq, key.seq);
  for (const std::string bad :
       {"/other/t/s/0000000000000000/0000000000000000", "/test/ps/t/s/0000000000000000",
        "/test/ps/t/s/0000000000000000/0000000000000000/x", "/test/ps//s/0000000000000000/00",
        "/test/ps/t/s/0000000000000000/000000000000000A",
        "/test/ps/t/s/000000000000000/00000000000000001", "/test/ps/t//0000000000000000/0"}) {
    EXPECT_EQ(parse_message_key(kPrefix, bad).status().code(), StatusCode::corrupt) << bad;
  }
}

}  // namespace
}  // namespace mishka::engine
