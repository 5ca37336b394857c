#include "mishka/table_spec.h"

#include <gtest/gtest.h>

#include "common/codec.h"

namespace mishka {
namespace {

TableSpec installer_like() {
  TableSpec spec;
  spec.name = "installer";
  spec.attributes = {"id", "app", "version"};
  spec.indexes = {"app"};
  return spec;
}

void expect_invalid(const TableSpec& spec, std::string_view fragment) {
  Status s = spec.validate();
  EXPECT_EQ(s.code(), StatusCode::invalid_argument) << s.to_string();
  EXPECT_NE(s.message().find(fragment), std::string::npos)
      << "message '" << s.message() << "' lacks '" << fragment << "'";
}

TEST(TableSpec, ValidSpecPasses) {
  EXPECT_TRUE(installer_like().validate().ok());
}

TEST(TableSpec, RefusesBadTableNames) {
  TableSpec spec = installer_like();
  spec.name = "";
  expect_invalid(spec, "empty");
  spec.name = "9lives";
  expect_invalid(spec, "start with a letter");
  spec.name = "has space";
  expect_invalid(spec, "may contain only");
  spec.name = "a/b";
  expect_invalid(spec, "may contain only");
  spec.name = std::string(129, 'a');
  expect_invalid(spec, "longer than 128");
  spec.name = "schema";
  expect_invalid(spec, "reserved");
  spec.name = std::string(128, 'a');
  EXPECT_TRUE(spec.validate().ok());
}

TEST(TableSpec, RefusesBadAttributes) {
  TableSpec spec = installer_like();
  spec.attributes = {};
  spec.indexes = {};
  expect_invalid(spec, "no attributes");
  spec.attributes = {"id", "app", "id"};
  expect_invalid(spec, "duplicate attribute 'id'");
  spec.attributes = {"id", "bad name"};
  expect_invalid(spec, "attribute name 'bad name'");
}

TEST(TableSpec, RefusesBadIndexes) {
  TableSpec spec = installer_like();
  spec.indexes = {"nope"};
  expect_invalid(spec, "index on unknown attribute 'nope'");
  spec.indexes = {"id"};
  expect_invalid(spec, "key attribute 'id'");
  spec.indexes = {"app", "app"};
  expect_invalid(spec, "duplicate index 'app'");
}

TEST(TableSpec, ParsesTypeAndStorageNames) {
  EXPECT_EQ(*parse_table_type("ordered_set"), TableType::ordered_set);
  EXPECT_EQ(*parse_table_type("bag"), TableType::bag);
  EXPECT_EQ(parse_table_type("duplicate_bag").status().code(), StatusCode::invalid_argument);
  EXPECT_EQ(*parse_storage_type("ram_copies"), StorageType::ram_copies);
  auto bad = parse_storage_type("disc_only_copies");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("unsupported storage type 'disc_only_copies'"),
            std::string::npos);
}

TEST(TableSpec, AttributePositionAndRecordArity) {
  TableSpec spec = installer_like();
  EXPECT_EQ(spec.attribute_position("id"), 0u);
  EXPECT_EQ(spec.attribute_position("version"), 2u);
  EXPECT_FALSE(spec.attribute_position("missing").has_value());
  EXPECT_TRUE(spec.check_record({1, "a", "1.0"}).ok());
  Status s = spec.check_record({1, "a"});
  EXPECT_EQ(s.code(), StatusCode::invalid_argument);
  EXPECT_NE(s.message().find("has 2 values, expected 3"), std::string::npos);
}

// A value nested `levels` lists deep around the string "x".
Value nested_lists(int levels) {
  Value v("x");
  for (int i = 0; i < levels; ++i) v = Value(List{std::move(v)});
  return v;
}

// The limit is the decoder's: whatever check_record accepts decodes again, and one level more
// would not (a committed record that no node can read).
TEST(TableSpec, RecordNestingWithinWhatTheDecoderReads) {
  TableSpec spec = installer_like();
  const Record deepest{1, nested_lists(63), "1.0"};
  ASSERT_TRUE(spec.check_record(deepest).ok());
  Result<Record> decoded = decode_record(encode_record(deepest));
  ASSERT_TRUE(decoded.ok()) << decoded.status().to_string();
  EXPECT_EQ(*decoded, deepest);

  const Record too_deep{1, "a", nested_lists(64)};
  EXPECT_FALSE(decode_record(encode_record(too_deep)).ok());
  Status s = spec.check_record(too_deep);
  EXPECT_EQ(s.code(), StatusCode::invalid_argument);
  EXPECT_NE(s.message().find("attribute 'version' nests lists and maps more than 63 levels"),
            std::string::npos)
      << s.message();

  const Value deep_map(Map{{Value("k"), nested_lists(63)}});
  EXPECT_FALSE(spec.check_record({deep_map, "a", "1.0"}).ok());
}

TEST(TableSpec, ValueRoundTrip) {
  TableSpec spec = installer_like();
  spec.type = TableType::bag;
  spec.storage = StorageType::ram_copies;
  spec.local_content = true;
  auto back = table_spec_from_value(table_spec_to_value(spec));
  ASSERT_TRUE(back.ok()) << back.status().to_string();
  EXPECT_EQ(*back, spec);
}

TEST(TableSpec, FromValueRefusesMalformedMaps) {
  EXPECT_FALSE(table_spec_from_value(Value(1)).ok());
  Value good = table_spec_to_value(installer_like());
  Map m = *good.get_map();
  Map wrong_type = m;
  wrong_type.set("type", "heap");
  auto r = table_spec_from_value(Value(wrong_type));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("heap"), std::string::npos);
  Map extra = m;
  extra.set("colour", "blue");
  r = table_spec_from_value(Value(extra));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("colour"), std::string::npos);
  Map bad_index = m;
  bad_index.set("indexes", List{Value("ghost")});
  r = table_spec_from_value(Value(bad_index));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("ghost"), std::string::npos);
  Map not_bool = m;
  not_bool.set("local_content", 1);
  EXPECT_FALSE(table_spec_from_value(Value(not_bool)).ok());
}

}  // namespace
}  // namespace mishka
