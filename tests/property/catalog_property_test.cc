// Random catalogs of several tables: the digest depends on the contents and the schema only,
// and a snapshot round trip keeps both (and the revision).
#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "mishka/table_spec.h"
#include "property_support.h"
#include "store/catalog.h"
#include "store/snapshot.h"
#include "store/table.h"

namespace mishka::store {
namespace {

using property::deref;
using property::Rng;

constexpr std::size_t kCatalogs = 150;  // times MISHKA_PROPERTY_SCALE

struct TableContents {
  TableSpec spec;
  std::vector<Record> records;  // in an order that reproduces the table (bag order included)
};

// Up to four tables of random type, storage, indexes and contents, built by random writes
// and erasures.
std::vector<TableContents> random_contents(Rng& rng) {
  std::vector<std::string> names = {"alpha", "beta", "gamma", "delta"};
  rng.shuffle(names);
  names.resize(rng.below(names.size() + 1));
  std::vector<TableContents> tables;
  for (const std::string& name : names) {
    TableSpec spec = property::model_spec(name, static_cast<TableType>(rng.below(3)));
    if (rng.chance(300)) spec.indexes = {"b"};
    if (rng.chance(200)) spec.indexes.clear();
    spec.storage = rng.chance(500) ? StorageType::disc_copies : StorageType::ram_copies;
    spec.local_content = rng.chance(200);
    auto table = Table::create(spec);
    EXPECT_TRUE(table.ok()) << table.status().to_string();
    if (!table.ok()) return {};
    for (std::size_t i = rng.below(80); i > 0; --i) {
      const Record record = property::random_record(rng, spec);
      if (rng.chance(150)) {
        (*table)->erase(record.front());
      } else {
        EXPECT_TRUE((*table)->write(record).ok());
      }
    }
    TableContents contents{spec, {}};
    (*table)->for_each([&](const RecordRef& record) { contents.records.push_back(*record); });
    tables.push_back(std::move(contents));
  }
  return tables;
}

// A catalog holding `tables`, created in the given order, each table's records written in
// order, or shuffled when `shuffle` (which keeps a bag's contents but not its order).
Catalog build(Rng& rng, std::vector<TableContents> tables, bool shuffle) {
  Catalog catalog;
  if (shuffle) rng.shuffle(tables);
  for (TableContents& contents : tables) {
    const Status created = catalog.create_table(contents.spec);
    EXPECT_TRUE(created.ok()) << created.to_string();
    Table* table = catalog.find(contents.spec.name);
    if (table == nullptr) continue;
    if (shuffle) rng.shuffle(contents.records);
    for (const Record& record : contents.records) {
      EXPECT_TRUE(table->write(record).ok());
    }
  }
  return catalog;
}

// The same records under a spec that differs in one way the schema makes visible.
TableSpec changed_spec(Rng& rng, TableSpec spec, const std::vector<TableContents>& tables) {
  switch (rng.below(5)) {
    case 0:
      if (spec.type != TableType::bag) {
        spec.type = spec.type == TableType::set ? TableType::ordered_set : TableType::set;
        return spec;
      }
      [[fallthrough]];
    case 1:
      if (spec.indexes.empty()) {
        spec.indexes = {"c"};
      } else {
        spec.indexes.pop_back();
      }
      return spec;
    case 2:
      spec.storage = spec.storage == StorageType::disc_copies ? StorageType::ram_copies
                                                              : StorageType::disc_copies;
      return spec;
    case 3:
      spec.local_content = !spec.local_content;
      return spec;
    default:
      for (std::string name : {"epsilon", "zeta"}) {
        bool taken = false;
        for (const TableContents& other : tables) taken = taken || other.spec.name == name;
        if (!taken) {
          spec.name = name;
          break;
        }
      }
      return spec;
  }
}

TEST(CatalogProperty, DigestDependsOnlyOnSchemaAndContents) {
  const std::size_t catalogs = kCatalogs * property::scale();
  for (std::size_t i = 0; i < catalogs && !HasFailure(); ++i) {
    const std::uint64_t seed = property::first_seed() + i;
    SCOPED_TRACE(property::seed_trace(seed));
    Rng rng(seed);
    const std::vector<TableContents> tables = random_contents(rng);
    const Catalog original = build(rng, tables, /*shuffle=*/false);
    const std::string digest = original.digest_hex();
    EXPECT_EQ(build(rng, tables, /*shuffle=*/true).digest_hex(), digest)
        << "the same tables created and filled in another order";

    // One more table, even empty, is another catalog.
    std::vector<TableContents> more = tables;
    more.push_back({property::model_spec("omega", TableType::set), {}});
    EXPECT_NE(build(rng, more, /*shuffle=*/true).digest_hex(), digest) << "an empty table added";
    if (tables.empty()) continue;

    // One table's spec changed, its records the same.
    std::vector<TableContents> respecified = tables;
    TableContents& target = respecified[rng.below(respecified.size())];
    const TableSpec before = target.spec;
    target.spec = changed_spec(rng, target.spec, tables);
    ASSERT_TRUE(target.spec.validate().ok()) << target.spec.validate().to_string();
    if (target.spec != before) {
      EXPECT_NE(build(rng, respecified, /*shuffle=*/true).digest_hex(), digest)
          << "spec of " << before.name << " changed to "
          << table_spec_to_value(target.spec).debug_string();
    }

    // One record removed from one non-empty table.
    std::vector<TableContents> fewer = tables;
    TableContents& shrunk = fewer[rng.below(fewer.size())];
    if (!shrunk.records.empty()) {
      shrunk.records.erase(shrunk.records.begin() +
                           static_cast<std::ptrdiff_t>(rng.below(shrunk.records.size())));
      EXPECT_NE(build(rng, fewer, /*shuffle=*/true).digest_hex(), digest)
          << "a record removed from " << shrunk.spec.name;
    }
  }
}

// The decoded catalog has the same schema and, key by key, the same records in the same
// order (a bag's insertion order survives the round trip).
void expect_same_tables(const Catalog& want, const Catalog& got) {
  ASSERT_EQ(got.table_names(), want.table_names());
  EXPECT_EQ(got.schema(), want.schema());
  for (const std::string& name : want.table_names()) {
    SCOPED_TRACE("table " + name);
    const Table& a = *want.find(name);
    const Table& b = *got.find(name);
    EXPECT_EQ(b.count(), a.count());
    EXPECT_EQ(b.key_count(), a.key_count());
    for (const Value& key : a.all_keys()) {
      EXPECT_EQ(deref(b.read(key)), deref(a.read(key))) << "key " << key.debug_string();
    }
    if (a.spec().type == TableType::ordered_set) {
      EXPECT_EQ(b.all_keys(), a.all_keys());
    }
  }
}

TEST(SnapshotProperty, RoundTripKeepsDigestRevisionAndRecords) {
  const std::size_t catalogs = kCatalogs * property::scale();
  for (std::size_t i = 0; i < catalogs && !HasFailure(); ++i) {
    const std::uint64_t seed = property::first_seed() + i;
    SCOPED_TRACE(property::seed_trace(seed));
    Rng rng(seed);
    const Catalog original = build(rng, random_contents(rng), /*shuffle=*/false);
    const std::uint64_t revisions[] = {0, 1, std::numeric_limits<std::uint64_t>::max(), rng.next()};
    const std::uint64_t revision = revisions[rng.below(4)];

    const std::string bytes = encode_snapshot(original, revision);
    auto decoded = decode_snapshot(bytes);
    ASSERT_TRUE(decoded.ok()) << decoded.status().to_string();
    EXPECT_EQ(decoded->revision, revision);
    EXPECT_EQ(decoded->catalog.digest_hex(), original.digest_hex());
    expect_same_tables(original, decoded->catalog);

    // Encoding the decoded catalog again gives a snapshot of the same contents.
    auto again = decode_snapshot(encode_snapshot(decoded->catalog, revision));
    ASSERT_TRUE(again.ok()) << again.status().to_string();
    EXPECT_EQ(again->catalog.digest_hex(), original.digest_hex());
    EXPECT_EQ(again->revision, revision);
  }
}

TEST(SnapshotProperty, EmptyCatalogRoundTrips) {
  const Catalog empty;
  auto decoded = decode_snapshot(encode_snapshot(empty, 7));
  ASSERT_TRUE(decoded.ok()) << decoded.status().to_string();
  EXPECT_EQ(decoded->revision, 7u);
  EXPECT_EQ(decoded->catalog.table_count(), 0u);
  EXPECT_EQ(decoded->catalog.digest_hex(), empty.digest_hex());
}

}  // namespace
}  // namespace mishka::store
