#include "store/snapshot.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/codec.h"
#include "common/sha256.h"

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

// Large enough for the decoder's two-thread paths (checksum beside the decoding, the records in
// two halves, the index beside the rows).
Catalog large_catalog(int records) {
  Catalog c;
  TableSpec spec;
  spec.name = "big";
  spec.attributes = {"id", "name", "payload"};
  spec.indexes = {"name"};
  EXPECT_TRUE(c.create_table(spec).ok());
  Table& t = *c.find("big");
  for (int i = 0; i < records; ++i) {
    // Names repeat and do not follow the keys, so that index order is not key order.
    EXPECT_TRUE(t.write({i, "n" + std::to_string((i * 7) % 1000), std::string(60, 'p')}).ok());
  }
  return c;
}

// A snapshot around a body of one table "big" (spec as above) made of `records`.
std::string snapshot_of(const std::vector<std::string>& records) {
  Catalog c = large_catalog(0);
  std::string body;
  encode_value(Value(1), body);
  encode_value(table_spec_to_value(c.find("big")->spec()), body);
  encode_value(Value(static_cast<std::int64_t>(records.size())), body);
  for (const std::string& r : records) body += r;
  std::string out = encode_snapshot(Catalog(), 3).substr(0, 28);
  for (int i = 0; i < 8; ++i) out[20 + i] = static_cast<char>(body.size() >> (8 * (7 - i)));
  out += body;
  const Sha256Digest sum = Sha256::of(out);
  out.append(reinterpret_cast<const char*>(sum.data()), sum.size());
  return out;
}

TEST(Snapshot, LargeRoundTripKeepsEverything) {
  const Catalog c = large_catalog(20000);
  const std::string bytes = encode_snapshot(c, 9);
  auto back = decode_snapshot(bytes);
  ASSERT_TRUE(back.ok()) << back.status().to_string();
  EXPECT_EQ(back->revision, 9u);
  EXPECT_EQ(back->catalog.digest_hex(), c.digest_hex());
  const Table& t = *back->catalog.find("big");
  EXPECT_EQ(t.count(), 20000u);
  EXPECT_EQ(t.index_read("name", "n7")->size(), c.find("big")->index_read("name", "n7")->size());
  // Written again, the snapshot is the same bytes: the order does not depend on how the
  // table was filled.
  EXPECT_EQ(encode_snapshot(back->catalog, 9), bytes);
}

TEST(Snapshot, LargeRefusesDamage) {
  std::string bytes = encode_snapshot(large_catalog(20000), 9);
  bytes[bytes.size() * 3 / 4] ^= 0x01;
  expect_corrupt(bytes, "checksum mismatch");

  std::vector<std::string> records;
  for (int i = 0; i < 18000; ++i) {
    records.push_back(encode_record({i, "n" + std::to_string(i % 100), "p"}));
  }
  ASSERT_TRUE(decode_snapshot(snapshot_of(records)).ok());

  std::vector<std::string> duplicate = records;
  duplicate[17500] = encode_record({5, "other", "p"});
  expect_corrupt(snapshot_of(duplicate), "repeats the key 5");

  std::vector<std::string> malformed = records;
  malformed[15000] = "\x93\xc1\x01\x01";  // 0xc1 is never a valid type byte
  expect_corrupt(snapshot_of(malformed), "record 15000");

  // Well-formed MessagePack that is not a value: the scan passes it, the decoder refuses it.
  std::vector<std::string> too_large = records;
  too_large[100] = std::string("\x93\x64\xcf\xff\xff\xff\xff\xff\xff\xff\xff\x01", 12);
  expect_corrupt(snapshot_of(too_large), "record 100");

  std::vector<std::string> short_record = records;
  short_record[10000] = encode_record({10000, "n"});
  expect_corrupt(snapshot_of(short_record), "record 10000");

  std::vector<std::string> ext = records;
  ext[3] = "\x93\x03\xd4\x00\x00\x01";
  expect_corrupt(snapshot_of(ext), "record 3");
}

}  // namespace
}  // namespace mishka::store
