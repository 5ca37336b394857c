// The admin HTTP's JSON <-> Value codec (src/admin/json_codec.h): round trips of every value
// kind, agreement with the telemetry log's writer, and each refusal with its message.
#include "admin/json_codec.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

#include "telemetry/json_lines_exporter.h"

namespace mishka::admin {
namespace {

using ::testing::HasSubstr;

Value round_trip(const Value& v) {
  Result<Value> back = value_of_json_text(json_text_of_value(v));
  EXPECT_TRUE(back.ok()) << json_text_of_value(v) << ": " << back.status().to_string();
  return back.ok() ? *back : Value("<refused>");
}

std::string refusal(std::string_view text) {
  Result<Value> v = value_of_json_text(text);
  EXPECT_FALSE(v.ok()) << text << " was read as " << (v.ok() ? v->debug_string() : "");
  EXPECT_EQ(v.status().code(), StatusCode::invalid_argument);
  return v.status().message();
}

std::string all_bytes() {
  std::string s;
  for (int i = 0; i < 256; ++i) s += static_cast<char>(i);
  return s;
}

std::vector<Value> samples() {
  return {
      Value(), Value(true), Value(false), Value(0), Value(-1),
      Value(std::numeric_limits<std::int64_t>::max()),
      Value(std::numeric_limits<std::int64_t>::min()), Value(1.0), Value(-0.0), Value(0.1),
      Value(1e300), Value(5e-324), Value(-2.5e-7), Value(""), Value("plain"),
      Value("quotes \" backslash \\ newline \n tab \t nul " + std::string(1, '\0')),
      Value("unicode: żółw 🐢"), Value::bytes(""), Value::bytes("a"), Value::bytes("ab"),
      Value::bytes("abc"), Value::bytes(all_bytes()), Value(List{}),
      Value(List{Value(1), Value("two"), Value(List{Value(3.5), Value()})}), Value(Map{}),
      Value(Map{{"a", 1}, {"b", List{Value::bytes("\x01")}}, {"c", Map{{"d", nullptr}}}}),
      Value(Map{{1, "one"}, {2, "two"}}),
      Value(Map{{"s", 1}, {2, "mixed"}, {List{1, 2}, Map{{"x", 1}}}}),
      // String-keyed maps that look like the reserved forms: written as entries.
      Value(Map{{"base64", "not bytes"}}), Value(Map{{"entries", List{}}}),
      Value(Map{{"base64", "x"}, {"other", 1}}),  // two keys: an ordinary object
  };
}

TEST(JsonCodec, EveryValueKindRoundTrips) {
  for (const Value& v : samples()) {
    EXPECT_EQ(round_trip(v), v) << json_text_of_value(v);
  }
}

TEST(JsonCodec, ReadsWhatTheTelemetryLogWrites) {
  for (const Value& v : samples()) {
    const Map* map = v.get_map();
    // The one known difference: the telemetry log writes these maps as plain objects.
    if (map != nullptr && map->size() == 1 && map->entries()[0].first.get_string() != nullptr) {
      continue;
    }
    Result<Value> back = value_of_json_text(telemetry::json_of_value(v));
    ASSERT_TRUE(back.ok()) << back.status().to_string();
    EXPECT_EQ(*back, v) << telemetry::json_of_value(v);
  }
}

TEST(JsonCodec, WritesTheDocumentedForms) {
  EXPECT_EQ(json_text_of_value(Value(42)), "42");
  EXPECT_EQ(json_text_of_value(Value(1.0)), "1.0");
  EXPECT_EQ(json_text_of_value(Value::bytes(std::string("\x00\xff", 2))), R"({"base64":"AP8="})");
  EXPECT_EQ(json_text_of_value(Value(Map{{1, "one"}})), R"({"entries":[[1,"one"]]})");
  EXPECT_EQ(json_text_of_value(Value(Map{{"b", 1}, {"a", 2}})), R"({"a":2,"b":1})");
  EXPECT_EQ(json_text_of_value(Value(Map{{"base64", "x"}})), R"({"entries":[["base64","x"]]})");
}

TEST(JsonCodec, NonFiniteDoublesBecomeStrings) {
  EXPECT_EQ(json_text_of_value(Value(std::nan(""))), "\"NaN\"");
  EXPECT_EQ(json_text_of_value(Value(HUGE_VAL)), "\"Infinity\"");
  EXPECT_EQ(json_text_of_value(Value(-HUGE_VAL)), "\"-Infinity\"");
  EXPECT_EQ(round_trip(Value(-HUGE_VAL)), Value("-Infinity"));
}

TEST(JsonCodec, ReadsNumbersByTheirText) {
  EXPECT_EQ(*value_of_json_text("7"), Value(7));
  EXPECT_EQ(*value_of_json_text("-7"), Value(-7));
  EXPECT_EQ(*value_of_json_text("7.0"), Value(7.0));
  EXPECT_EQ(*value_of_json_text("1e2"), Value(100.0));
  EXPECT_EQ(*value_of_json_text("9223372036854775807"), Value(INT64_MAX));
  EXPECT_EQ(*value_of_json_text("-9223372036854775808"), Value(INT64_MIN));
}

TEST(JsonCodec, RefusesIntegersBeyondInt64) {
  EXPECT_THAT(refusal("9223372036854775808"),
              HasSubstr("integer 9223372036854775808 at the top level does not fit a signed "
                        "64-bit integer"));
  EXPECT_THAT(refusal("-9223372036854775809"), HasSubstr("-9223372036854775809"));
  EXPECT_THAT(refusal(R"({"a": [1, 1e2, 100000000000000000000000]})"),
              HasSubstr("integer 100000000000000000000000 at /a/2 does not fit"));
  EXPECT_THAT(refusal(R"({"x/y~": 18446744073709551615})"), HasSubstr("at /x~1y~0"));
}

TEST(JsonCodec, RefusesTextThatIsNotJsonSayingWhere) {
  const std::string message = refusal("{\"a\": }");
  EXPECT_THAT(message, HasSubstr("not JSON"));
  EXPECT_THAT(message, HasSubstr("line 1, column 7"));
  EXPECT_THAT(refusal(""), HasSubstr("not JSON"));
  EXPECT_THAT(refusal("[1, 2] trailing"), HasSubstr("not JSON"));
  EXPECT_THAT(refusal("{\n  \"a\": 1,\n  \"b\": nope\n}"), HasSubstr("line 3"));
  EXPECT_THAT(refusal("\"\xff\""), HasSubstr("not JSON"));  // invalid UTF-8
}

TEST(JsonCodec, RefusesDuplicateKeys) {
  EXPECT_THAT(refusal(R"({"a": {"b": 1, "b": 2}})"),
              HasSubstr("key \"b\" appears twice in the object at /a"));
}

TEST(JsonCodec, RefusesMalformedBase64Objects) {
  EXPECT_THAT(refusal(R"({"base64": 5})"),
              HasSubstr("{\"base64\": ...} at the top level must hold a string, got a number"));
  EXPECT_THAT(refusal(R"([{"base64": "abc"}])"),
              HasSubstr("invalid base64 at /0/base64: its length 3 is not a multiple of 4"));
  EXPECT_THAT(refusal(R"({"base64": "ab$="})"), HasSubstr("not of the base64 alphabet"));
  EXPECT_THAT(refusal(R"({"base64": "AB=="})"), HasSubstr("unused bits"));
  EXPECT_THAT(refusal(R"({"base64": "A==="})"), HasSubstr("not of the base64 alphabet"));
}

TEST(JsonCodec, RefusesMalformedEntriesObjects) {
  EXPECT_THAT(refusal(R"({"entries": {}})"),
              HasSubstr("must hold an array of [key, value] pairs, got an object"));
  EXPECT_THAT(refusal(R"({"entries": [[1, 2], [3]]})"),
              HasSubstr("map entry at /entries/1 is not a [key, value] pair"));
  EXPECT_THAT(refusal(R"({"entries": [[1, 2], [1, 3]]})"), HasSubstr("map key 1"));
  EXPECT_THAT(refusal(R"({"entries": [[1, 2], [1, 3]]})"), HasSubstr("appears twice"));
}

TEST(JsonCodec, ObjectMembersKeepTheTopLevelObjectAsIs) {
  auto members = members_of_json_object_text(R"({"base64": "AA==", "n": {"base64": "AA=="}})");
  ASSERT_TRUE(members.ok()) << members.status().to_string();
  ASSERT_EQ(members->size(), 2u);
  EXPECT_EQ((*members)[0], (std::pair<std::string, Value>("base64", Value("AA=="))));
  EXPECT_EQ((*members)[1].second, Value::bytes(std::string(1, '\0')));

  auto array = members_of_json_object_text("[1]");
  EXPECT_THAT(array.status().message(), HasSubstr("not a JSON object: got an array"));
  EXPECT_THAT(members_of_json_object_text("\"s\"").status().message(), HasSubstr("a string"));
  EXPECT_THAT(members_of_json_object_text("{").status().message(), HasSubstr("not JSON"));
}

// `depth` arrays around `inner`: [[[1]]] for 3.
std::string nested_arrays(std::size_t depth, std::string_view inner = "1") {
  return std::string(depth, '[') + std::string(inner) + std::string(depth, ']');
}

// "/0/0/0" for 3.
std::string zeros_pointer(std::size_t depth) {
  std::string out;
  for (std::size_t i = 0; i < depth; ++i) out += "/0";
  return out;
}

// The depth of lists and maps in `value` (recursive: for the shallow values of these tests).
std::size_t nesting(const Value& value) {
  std::size_t deepest = 0;
  if (const List* list = value.get_list()) {
    for (const Value& v : *list) deepest = std::max(deepest, nesting(v));
    return deepest + 1;
  }
  if (const Map* map = value.get_map()) {
    for (const auto& [k, v] : map->entries()) {
      deepest = std::max({deepest, nesting(k), nesting(v)});
    }
    return deepest + 1;
  }
  return 0;
}

TEST(JsonCodec, ReadsNestingUpToTheLimit) {
  ASSERT_EQ(kMaxJsonNesting, 63u);
  Result<Value> arrays = value_of_json_text(nested_arrays(63));
  ASSERT_TRUE(arrays.ok()) << arrays.status().to_string();
  EXPECT_EQ(nesting(*arrays), 63u);
  EXPECT_EQ(json_text_of_value(*arrays), nested_arrays(63));
  std::string objects = "1";
  for (int i = 0; i < 63; ++i) objects = R"({"a":)" + objects + "}";
  Result<Value> maps = value_of_json_text(objects);
  ASSERT_TRUE(maps.ok()) << maps.status().to_string();
  EXPECT_EQ(nesting(*maps), 63u);
  // What the store accepts (TableSpec::check_record counts the same way).
  TableSpec spec;
  spec.name = "deep";
  spec.attributes = {"id", "v"};
  EXPECT_TRUE(spec.check_record(Record{1, *arrays}).ok());
}

TEST(JsonCodec, RefusesDeeperNestingWhileParsingNamingWhere) {
  EXPECT_THAT(
      refusal(nested_arrays(64)),
      HasSubstr("arrays and objects nest more than 63 levels deep at " + zeros_pointer(63)));
  std::string objects = "1";
  for (int i = 0; i < 64; ++i) objects = R"({"a/":)" + objects + "}";
  std::string where;
  for (int i = 0; i < 63; ++i) where += "/a~1";
  EXPECT_THAT(refusal(objects), HasSubstr("nest more than 63 levels deep at " + where));
  // Far deeper than the stack could take if anything recursed per level (nlohmann's SAX
  // parser does not; the builder stops at level 64), closed or not.
  const std::size_t huge = 1000000;
  EXPECT_THAT(refusal(nested_arrays(huge)), HasSubstr("nest more than 63 levels deep"));
  EXPECT_THAT(refusal(std::string(huge, '[')), HasSubstr("nest more than 63 levels deep"));
  EXPECT_THAT(refusal(R"({"a": )" + nested_arrays(huge) + "}"),
              HasSubstr("nest more than 63 levels deep at /a" + zeros_pointer(62)));
}

TEST(JsonCodec, RecordBodiesNestUpToTheLimitBelowTheirOwnObject) {
  TableSpec spec;
  spec.name = "deep";
  spec.attributes = {"id", "v"};
  Result<Record> ok = record_of_json_text(spec, R"({"v": )" + nested_arrays(63) + "}", Value(1));
  ASSERT_TRUE(ok.ok()) << ok.status().to_string();
  EXPECT_EQ(nesting((*ok)[1]), 63u);
  EXPECT_TRUE(spec.check_record(*ok).ok());
  Result<Record> deep = record_of_json_text(spec, R"({"v": )" + nested_arrays(64) + "}", Value(1));
  EXPECT_EQ(deep.status().code(), StatusCode::invalid_argument);
  EXPECT_THAT(deep.status().message(),
              HasSubstr("record of table 'deep': arrays and objects nest more than 63 levels "
                        "deep at /v" +
                        zeros_pointer(63)));
  Result<Record> huge =
      record_of_json_text(spec, R"({"v": )" + nested_arrays(100000) + "}", Value(1));
  EXPECT_THAT(huge.status().message(), HasSubstr("nest more than 63 levels deep"));
  // A key (key_format=json) is a value like any other.
  EXPECT_TRUE(key_of_path_segment(nested_arrays(63), "json").ok());
  EXPECT_THAT(key_of_path_segment(nested_arrays(100000), "json").status().message(),
              HasSubstr("key (key_format=json): arrays and objects nest more than 63 levels"));
}

TableSpec users() {
  TableSpec spec;
  spec.name = "users";
  spec.attributes = {"id", "name", "age"};
  return spec;
}

std::string record_refusal(std::string_view body, const Value& key = Value("u1")) {
  Result<Record> r = record_of_json_text(users(), body, key);
  EXPECT_FALSE(r.ok()) << body;
  EXPECT_EQ(r.status().code(), StatusCode::invalid_argument);
  return r.status().message();
}

TEST(JsonCodec, RecordFromABodyWithOrWithoutTheKey) {
  Result<Record> without = record_of_json_text(users(), R"({"age": 7, "name": "Ann"})", "u1");
  ASSERT_TRUE(without.ok()) << without.status().to_string();
  EXPECT_EQ(*without, (Record{"u1", "Ann", 7}));
  Result<Record> with =
      record_of_json_text(users(), R"({"id": "u1", "name": null, "age": [1]})", Value("u1"));
  ASSERT_TRUE(with.ok()) << with.status().to_string();
  EXPECT_EQ(*with, (Record{"u1", nullptr, List{1}}));
}

TEST(JsonCodec, RecordRefusalsNameTheProblem) {
  EXPECT_THAT(record_refusal(R"({"name": "Ann", "age": 7, "nmae": 1})"),
              HasSubstr("table 'users' has no attribute 'nmae' (its attributes: id, name, age)"));
  EXPECT_THAT(record_refusal(R"({"name": "Ann"})"),
              HasSubstr("record of table 'users': missing attribute 'age'"));
  EXPECT_THAT(record_refusal(R"({})"), HasSubstr("missing attributes 'name', 'age'"));
  EXPECT_THAT(record_refusal(R"({"id": "u2", "name": "Ann", "age": 7})"),
              HasSubstr("attribute 'id' is the key of table 'users': it must equal the URL's key "
                        "\"u1\", got \"u2\""));
  // 1 and "1" are different keys.
  EXPECT_THAT(record_refusal(R"({"id": 1, "name": "Ann", "age": 7})", Value("1")),
              HasSubstr("got 1"));
  EXPECT_THAT(record_refusal(R"({"name": "Ann", )"),
              HasSubstr("record of table 'users': not JSON: parse error at line 1"));
  EXPECT_THAT(record_refusal("[]"), HasSubstr("not a JSON object: got an array"));
  EXPECT_THAT(record_refusal(""), HasSubstr("record of table 'users': the body is empty"));
  EXPECT_THAT(record_refusal(" \r\n"), HasSubstr("the body is empty"));
  EXPECT_THAT(record_refusal(R"({"name": "Ann", "age": 99999999999999999999})"),
              HasSubstr("at /age does not fit"));
}

TEST(JsonCodec, AttributesNamedLikeTheReservedFormsStayAttributes) {
  TableSpec spec;
  spec.name = "blobs";
  spec.attributes = {"id", "base64"};
  Result<Record> r = record_of_json_text(spec, R"({"base64": "x"})", Value(1));
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(*r, (Record{1, "x"}));
}

TEST(JsonCodec, RecordAsJsonKeepsTheAttributeOrder) {
  TableSpec spec;
  spec.name = "t";
  spec.attributes = {"z", "a", "m"};
  EXPECT_EQ(json_text(json_of_record(spec, Record{1, Value::bytes("\x01"), Map{{2, 3}}})),
            R"({"z":1,"a":{"base64":"AQ=="},"m":{"entries":[[2,3]]}})");
}

TEST(JsonCodec, KeysOfPathSegments) {
  EXPECT_EQ(*key_of_path_segment("42", std::nullopt), Value("42"));
  EXPECT_EQ(*key_of_path_segment("a/b c", std::nullopt), Value("a/b c"));
  EXPECT_EQ(*key_of_path_segment("42", "json"), Value(42));
  EXPECT_EQ(*key_of_path_segment("\"42\"", "json"), Value("42"));
  EXPECT_EQ(*key_of_path_segment("[1,2]", "json"), Value(List{1, 2}));

  auto bad_format = key_of_path_segment("42", "xml");
  EXPECT_EQ(bad_format.status().code(), StatusCode::invalid_argument);
  EXPECT_THAT(bad_format.status().message(),
              HasSubstr("key_format must be absent or \"json\", got \"xml\""));
  EXPECT_THAT(key_of_path_segment("42", "").status().message(), HasSubstr("got \"\""));
  auto bad_text = key_of_path_segment("[1,", "json");
  EXPECT_EQ(bad_text.status().code(), StatusCode::invalid_argument);
  EXPECT_THAT(bad_text.status().message(), HasSubstr("key (key_format=json): not JSON"));
  EXPECT_THAT(key_of_path_segment("abc", "json").status().message(), HasSubstr("not JSON"));
}

}  // namespace
}  // namespace mishka::admin
