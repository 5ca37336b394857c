// The keyspace layout check (store/cluster_meta.h) against a real etcd: every shape of
// "<root>meta" it may find, and the record it writes.
#include <gtest/gtest.h>

#include "common/codec.h"
#include "store/cluster_meta.h"
#include "store_fixture.h"

namespace mishka::test {
namespace {

using engine::Deadline;
using std::chrono::milliseconds;

class LayoutTest : public StoreTest {
 protected:
  Status Check() {
    return store::check_keyspace_layout(*a_->client, keys_, "seed@127.0.0.1",
                                        Deadline::after(milliseconds(5000)), {});
  }
  void Put(const std::string& bytes) {
    ASSERT_TRUE(
        a_->client->put(keys_.meta_key(), bytes, 0, Deadline::after(milliseconds(5000))).ok());
  }
};

TEST_F(LayoutTest, AbsentIsCreatedOnceAndLayoutOneIsAccepted) {
  const std::int64_t before = EtcdRevision();
  ASSERT_TRUE(Check().ok());
  const std::int64_t written = ModRevision(keys_.meta_key());
  EXPECT_EQ(written, before + 1) << "one write";
  auto r = a_->client->range(keys_.meta_key(), {}, Deadline::after(milliseconds(5000)));
  ASSERT_TRUE(r.ok() && r->kvs.size() == 1);
  EXPECT_EQ(r->kvs.front().lease, 0);
  auto value = decode_value(r->kvs.front().value);
  ASSERT_TRUE(value.ok() && value->get_map() != nullptr);
  const Map& map = *value->get_map();
  EXPECT_EQ(map.size(), 3u);
  EXPECT_EQ(*map.find(Value("layout")), Value(1));
  EXPECT_EQ(*map.find(Value("cluster")), Value("seed@127.0.0.1"));
  EXPECT_NE(map.find(Value("created_ms"))->get_int(), nullptr);

  // Present: checked, not written again.
  ASSERT_TRUE(Check().ok());
  EXPECT_EQ(ModRevision(keys_.meta_key()), written);
  // Other fields do not matter.
  Put(encode_value(Value(Map{{Value("layout"), Value(1)}, {Value("extra"), Value("x")}})));
  EXPECT_TRUE(Check().ok());
}

TEST_F(LayoutTest, OtherLayoutsAreUnsupportedAndOtherShapesCorrupt) {
  struct Case {
    std::string bytes;
    StatusCode code;
    std::string says;
  };
  const std::vector<Case> cases = {
      {encode_value(Value(Map{{Value("layout"), Value(2)}})), StatusCode::unsupported, "layout 2"},
      {encode_value(Value(Map{{Value("layout"), Value(0)}})), StatusCode::unsupported, "layout 0"},
      {std::string("\xc1"), StatusCode::corrupt, "undecodable"},
      {std::string(), StatusCode::corrupt, "undecodable"},
      {encode_value(Value(List{Value(1)})), StatusCode::corrupt, "not a layout record"},
      {encode_value(Value(Map{{Value("cluster"), Value("x")}})), StatusCode::corrupt,
       "not a layout record"},
      {encode_value(Value(Map{{Value("layout"), Value("1")}})), StatusCode::corrupt,
       "not a layout record"},
  };
  for (const Case& c : cases) {
    Put(c.bytes);
    const std::int64_t at = ModRevision(keys_.meta_key());
    Status s = Check();
    EXPECT_EQ(s.code(), c.code) << s.to_string();
    for (const std::string& part :
         {keys_.meta_key(), c.says, std::string("this build knows layout 1")}) {
      EXPECT_NE(s.message().find(part), std::string::npos) << part << " not in " << s.to_string();
    }
    EXPECT_EQ(ModRevision(keys_.meta_key()), at) << "the key was written";
  }
}

}  // namespace
}  // namespace mishka::test
