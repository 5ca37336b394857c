// Snapshots at the two extremes: a large catalog survives the round trip whole, and no
// single-byte change, truncation or extension of a small one is ever accepted.
#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "mishka/table_spec.h"
#include "store/catalog.h"
#include "store/snapshot.h"
#include "store/table.h"

namespace mishka::store {
namespace {

TableSpec spec(std::string name, TableType type, std::vector<std::string> indexes) {
  TableSpec s;
  s.name = std::move(name);
  s.attributes = {"id", "name", "score", "tags"};
  s.type = type;
  s.indexes = std::move(indexes);
  return s;
}

// `users` (set), `events` (bag, 3 records per key) and `log` (ordered_set, indexed on name):
// `records` records in all. (Indexes make loading slow in sanitizer builds: one is enough.)
Catalog sample_catalog(std::size_t records, std::size_t name_length) {
  Catalog catalog;
  EXPECT_TRUE(catalog.create_table(spec("users", TableType::set, {})).ok());
  EXPECT_TRUE(catalog.create_table(spec("events", TableType::bag, {})).ok());
  EXPECT_TRUE(catalog.create_table(spec("log", TableType::ordered_set, {"name"})).ok());
  Table& users = *catalog.find("users");
  Table& events = *catalog.find("events");
  Table& log = *catalog.find("log");
  const std::size_t per_table = records / 3;
  for (std::size_t i = 0; i < per_table; ++i) {
    const auto n = static_cast<std::int64_t>(i);
    std::string name = "user-" + std::to_string(i % 1000);
    name.resize(name_length, '.');
    EXPECT_TRUE(users
                    .write(Record{Value(n), Value(name), Value(0.5 * static_cast<double>(n)),
                                  Value(List{Value("a"), Value(n % 7)})})
                    .ok());
    EXPECT_TRUE(events
                    .write(Record{Value(n / 3), Value(name), Value(n % 3),
                                  Value::bytes(std::string(4, static_cast<char>(i % 256)))})
                    .ok());
    std::string key = "k";  // not "k" + ...: GCC 12 at -O3 warns falsely (-Wrestrict)
    key += std::to_string(i);
    EXPECT_TRUE(
        log.write(Record{Value(key), Value(name), Value(-n), Value(Map{{Value("i"), Value(n)}})})
            .ok());
  }
  // Whatever is left over by the division goes to users.
  for (std::size_t i = 3 * per_table; i < records; ++i) {
    EXPECT_TRUE(
        users.write(Record{Value(-1 - static_cast<std::int64_t>(i)), Value(), Value(), Value()})
            .ok());
  }
  return catalog;
}

std::size_t total_records(const Catalog& catalog) {
  std::size_t n = 0;
  catalog.for_each_table([&](const Table& table) { n += table.count(); });
  return n;
}

TEST(SnapshotLarge, RoundTrip100kRecords) {
  const Catalog original = sample_catalog(100'000, 24);
  ASSERT_EQ(total_records(original), 100'000u);
  const std::uint64_t revision = 123'456'789'012ull;

  const std::string bytes = encode_snapshot(original, revision);
  auto decoded = decode_snapshot(bytes);
  ASSERT_TRUE(decoded.ok()) << decoded.status().to_string();
  EXPECT_EQ(decoded->revision, revision);
  EXPECT_EQ(decoded->catalog.digest_hex(), original.digest_hex());
  EXPECT_EQ(decoded->catalog.schema(), original.schema());
  for (const std::string& name : original.table_names()) {
    SCOPED_TRACE("table " + name);
    const Table* table = decoded->catalog.find(name);
    ASSERT_NE(table, nullptr);
    EXPECT_EQ(table->count(), original.find(name)->count());
    EXPECT_EQ(table->key_count(), original.find(name)->key_count());
  }
  const Table& events = *decoded->catalog.find("events");
  EXPECT_EQ(events.read(Value(100)).size(), 3u);
  const Table& log = *decoded->catalog.find("log");
  EXPECT_EQ(log.first(), std::optional<Value>(Value("k0")));
  EXPECT_EQ(log.last(), std::optional<Value>(Value("k9999")));
  std::string name = "user-42";
  name.resize(24, '.');
  auto by_name = log.index_read("name", Value(name));
  ASSERT_TRUE(by_name.ok()) << by_name.status().to_string();
  // 33,333 records in log, names cycling through 1000: user-42 is on 34 of them.
  EXPECT_EQ(by_name->size(), 34u);
}

// Names the first few positions where a damaged snapshot was not refused as corrupt.
class RefusalLog {
 public:
  void check(std::string_view damaged, const std::string& what) {
    ++checked_;
    const auto result = decode_snapshot(damaged);
    if (result.ok()) {
      note(what + ": accepted");
    } else if (result.status().code() != StatusCode::corrupt) {
      note(what + ": refused with " + result.status().to_string() + " instead of corrupt");
    }
  }
  void expect_none() const {
    EXPECT_EQ(failures_, 0u) << failures_ << " of " << checked_
                             << " damaged snapshots were not refused as corrupt:" << first_;
  }

 private:
  void note(const std::string& line) {
    if (++failures_ <= 10) first_ += "\n  " + line;
  }
  std::size_t checked_ = 0;
  std::size_t failures_ = 0;
  std::string first_;
};

TEST(SnapshotCorruption, EverySingleByteCorruptionIsRefused) {
  const std::string bytes = encode_snapshot(sample_catalog(45, 8), 42);
  ASSERT_GE(bytes.size(), 1000u);
  ASSERT_LE(bytes.size(), 3072u);
  ASSERT_TRUE(decode_snapshot(bytes).ok());

  RefusalLog log;
  for (std::size_t position = 0; position < bytes.size(); ++position) {
    for (const unsigned mask : {0x01u, 0x80u, 0xFFu}) {
      std::string damaged = bytes;
      damaged[position] = static_cast<char>(static_cast<unsigned char>(damaged[position]) ^ mask);
      log.check(damaged, "byte " + std::to_string(position) + " ^ " + std::to_string(mask));
    }
  }
  log.expect_none();
}

TEST(SnapshotCorruption, EveryTruncationAndExtensionIsRefused) {
  const std::string bytes = encode_snapshot(sample_catalog(45, 8), 42);
  RefusalLog log;
  for (std::size_t length = 0; length < bytes.size(); ++length) {
    log.check(std::string_view(bytes).substr(0, length),
              "truncated to " + std::to_string(length) + " bytes");
  }
  for (const std::string& tail : {std::string(1, '\0'), std::string("x"), bytes}) {
    log.check(bytes + tail, "extended by " + std::to_string(tail.size()) + " bytes");
  }
  log.expect_none();
}

}  // namespace
}  // namespace mishka::store
