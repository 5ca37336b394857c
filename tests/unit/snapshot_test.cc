#include "store/snapshot.h"

#include <gtest/gtest.h>

namespace mishka::store {
namespace {

Catalog sample_catalog() {
  Catalog c;
  TableSpec installer;
  installer.name = "installer";
  installer.attributes = {"id", "app", "payload"};
  installer.indexes = {"app"};
  EXPECT_TRUE(c.create_table(installer).ok());
  TableSpec events;
  events.name = "event";
  events.attributes = {"id", "name"};
  events.type = TableType::bag;
  events.storage = StorageType::ram_copies;
  EXPECT_TRUE(c.create_table(events).ok());
  TableSpec empty;
  empty.name = "empty";
  empty.attributes = {"k"};
  empty.type = TableType::ordered_set;
  empty.local_content = true;
  EXPECT_TRUE(c.create_table(empty).ok());
  Table& t = *c.find("installer");
  EXPECT_TRUE(t.write({1, "app", Value::bytes(std::string("\0\1\2", 3))}).ok());
  EXPECT_TRUE(t.write({"two", Value(), List{1, 2.5, Map{{"k", true}}}}).ok());
  EXPECT_TRUE(c.find("event")->write({1, "a"}).ok());
  EXPECT_TRUE(c.find("event")->write({1, "b"}).ok());
  return c;
}

TEST(Snapshot, RoundTripKeepsEverything) {
  Catalog c = sample_catalog();
  std::string bytes = encode_snapshot(c, 42);
  auto back = decode_snapshot(bytes);
  ASSERT_TRUE(back.ok()) << back.status().to_string();
  EXPECT_EQ(back->revision, 42u);
  EXPECT_EQ(back->catalog.digest_hex(), c.digest_hex());
  EXPECT_EQ(back->catalog.schema(), c.schema());
  EXPECT_EQ(back->catalog.find("event")->count(), 2u);
  // A bag keeps its insertion order through a snapshot.
  std::vector<RecordRef> bag = back->catalog.find("event")->read(1);
  ASSERT_EQ(bag.size(), 2u);
  EXPECT_EQ((*bag[0])[1], Value("a"));
  EXPECT_EQ((*bag[1])[1], Value("b"));
}

TEST(Snapshot, EmptyCatalog) {
  auto back = decode_snapshot(encode_snapshot(Catalog(), 0));
  ASSERT_TRUE(back.ok()) << back.status().to_string();
  EXPECT_EQ(back->catalog.table_count(), 0u);
}

void expect_corrupt(std::string_view bytes, std::string_view fragment) {
  auto r = decode_snapshot(bytes);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::corrupt);
  EXPECT_NE(r.status().message().find(fragment), std::string::npos) << r.status().message();
}

TEST(Snapshot, RefusesDamage) {
  std::string good = encode_snapshot(sample_catalog(), 7);
  expect_corrupt("", "truncated");
  expect_corrupt(good.substr(0, good.size() - 1), "truncated");
  expect_corrupt(good + "x", "trailing bytes");
  std::string magic = good;
  magic[0] = 'X';
  expect_corrupt(magic, "bad magic");
  std::string version = good;
  version[11] = 2;
  expect_corrupt(version, "unsupported format version 2");
  std::string flipped = good;
  flipped[good.size() / 2] ^= 0x10;
  expect_corrupt(flipped, "checksum mismatch");
  std::string revision = good;
  revision[19] ^= 1;
  expect_corrupt(revision, "checksum mismatch");
}

}  // namespace
}  // namespace mishka::store
