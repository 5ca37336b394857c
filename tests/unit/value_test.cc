#include "mishka/value.h"

#include <absl/hash/hash.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <ostream>
#include <random>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace mishka {

// Lets GoogleTest print values in failure messages.
static void PrintTo(const Value& v, std::ostream* os) {
  *os << v.debug_string();
}

namespace {

using Limits64 = std::numeric_limits<std::int64_t>;
using LimitsD = std::numeric_limits<double>;

double from_bits(std::uint64_t bits) {
  return std::bit_cast<double>(bits);
}
std::uint64_t bits_of(double d) {
  return std::bit_cast<std::uint64_t>(d);
}

constexpr std::uint64_t kQuietNan = 0x7ff8000000000000u;
constexpr std::uint64_t kSignBit = std::uint64_t{1} << 63;

// Values of every kind, in strictly increasing order.
std::vector<Value> ordered_samples() {
  const double inf = LimitsD::infinity();
  return {
      Value(),
      false,
      true,
      Limits64::min(),
      Limits64::min() + 1,
      -1,
      0,
      1,
      Limits64::max(),
      from_bits(0xfff8000000000001u),  // -NaN, larger payload first
      from_bits(0xfff8000000000000u),
      from_bits(0xfff0000000000001u),  // -sNaN
      -inf,
      -LimitsD::max(),
      -1.0,
      -LimitsD::min(),
      -LimitsD::denorm_min(),
      -0.0,
      0.0,
      LimitsD::denorm_min(),
      LimitsD::min(),
      1.0,
      LimitsD::max(),
      inf,
      from_bits(0x7ff0000000000001u),  // sNaN
      from_bits(kQuietNan),
      from_bits(0x7ff8000000000001u),
      from_bits(0x7fffffffffffffffu),
      "",
      std::string(1, '\0'),
      "a",
      "ab",
      "b",
      "\x7f",
      "\x80",  // bytewise unsigned: above every ASCII character
      "\xff",
      Value::bytes(""),
      Value::bytes(std::string(1, '\0')),
      Value::bytes("a"),
      Value::bytes("\xff"),
      List{},
      List{Value()},
      List{0},
      List{0, 0},
      List{0, "a"},
      List{1},
      List{Value(List{})},  // not List{List{}}, which may copy the inner list
      Map{},
      Map{{Value(), 5}},
      Map{{0, 0}},
      Map{{0, 0}, {1, 0}},
      Map{{0, 1}},
      Map{{1, 0}},
      Map{{"a", 0}},
  };
}

TEST(ValueTest, KindsAndAccessors) {
  EXPECT_EQ(Value().kind(), ValueKind::null);
  EXPECT_TRUE(Value(nullptr).is_null());
  EXPECT_EQ(Value(true).kind(), ValueKind::boolean);
  EXPECT_EQ(Value(7).kind(), ValueKind::integer);
  EXPECT_EQ(Value(7.0).kind(), ValueKind::real);
  EXPECT_EQ(Value("s").kind(), ValueKind::string);
  EXPECT_EQ(Value(std::string_view("s")).kind(), ValueKind::string);
  EXPECT_EQ(Value::bytes("b").kind(), ValueKind::bytes);
  EXPECT_EQ(Value(List{}).kind(), ValueKind::list);
  EXPECT_EQ(Value(Map{}).kind(), ValueKind::map);

  Value i(std::uint32_t{4000000000u});
  ASSERT_NE(i.get_int(), nullptr);
  EXPECT_EQ(std::get<std::int64_t>(i.storage()), 4000000000);
  EXPECT_EQ(i.get_double(), nullptr);
  EXPECT_EQ(i.get_string(), nullptr);
  EXPECT_EQ(std::get<std::int64_t>(Value(std::int8_t{-3}).storage()), -3);
  EXPECT_EQ(std::get<std::string>(Value("x").storage()), "x");
  EXPECT_EQ(std::get<Bytes>(Value::bytes("x").storage()).data, "x");
  EXPECT_EQ(Value("x").get_bytes(), nullptr);
}

TEST(ValueTest, KindNames) {
  EXPECT_EQ(value_kind_name(ValueKind::null), "null");
  EXPECT_EQ(value_kind_name(ValueKind::boolean), "boolean");
  EXPECT_EQ(value_kind_name(ValueKind::integer), "integer");
  EXPECT_EQ(value_kind_name(ValueKind::real), "real");
  EXPECT_EQ(value_kind_name(ValueKind::string), "string");
  EXPECT_EQ(value_kind_name(ValueKind::bytes), "bytes");
  EXPECT_EQ(value_kind_name(ValueKind::list), "list");
  EXPECT_EQ(value_kind_name(ValueKind::map), "map");
}

TEST(ValueTest, SamplesAreStrictlyOrdered) {
  const std::vector<Value> v = ordered_samples();
  for (std::size_t i = 0; i < v.size(); ++i) {
    EXPECT_EQ(v[i], v[i]) << i;
    EXPECT_TRUE((v[i] <=> v[i]) == 0) << i;
    for (std::size_t j = i + 1; j < v.size(); ++j) {
      EXPECT_TRUE(v[i] < v[j]) << v[i].debug_string() << " < " << v[j].debug_string();
      EXPECT_TRUE(v[j] > v[i]) << v[j].debug_string() << " > " << v[i].debug_string();
      EXPECT_NE(v[i], v[j]) << v[i].debug_string() << " != " << v[j].debug_string();
    }
  }
}

TEST(ValueTest, SortingShuffledSamplesRestoresTheOrder) {
  const std::vector<Value> expected = ordered_samples();
  std::vector<Value> v = expected;
  std::mt19937 rng(42);
  for (int round = 0; round < 5; ++round) {
    std::shuffle(v.begin(), v.end(), rng);
    std::sort(v.begin(), v.end());
    EXPECT_EQ(v, expected);
  }
}

TEST(ValueTest, KindsOrderBeforeContent) {
  EXPECT_LT(Value(true), Value(Limits64::min()));
  EXPECT_LT(Value(Limits64::max()), Value(-LimitsD::infinity()));
  EXPECT_LT(Value(from_bits(kQuietNan)), Value(""));
  EXPECT_LT(Value("\xff\xff"), Value::bytes(""));
  EXPECT_LT(Value::bytes("\xff"), Value(List{}));
  EXPECT_LT(Value(List{Map{}}), Value(Map{}));
}

TEST(ValueTest, IntegersAndDoublesAreDifferentKeys) {
  EXPECT_NE(Value(1), Value(1.0));
  EXPECT_LT(Value(1), Value(1.0));
  EXPECT_LT(Value(2), Value(1.0));
  EXPECT_NE(Value(0), Value(0.0));
}

TEST(ValueTest, ZerosAndNans) {
  EXPECT_NE(Value(0.0), Value(-0.0));
  EXPECT_LT(Value(-0.0), Value(0.0));
  const double nan = from_bits(kQuietNan);
  EXPECT_EQ(Value(nan), Value(nan));  // unlike IEEE ==, a NaN equals the identical NaN
  EXPECT_NE(Value(nan), Value(from_bits(kQuietNan | 1)));
  EXPECT_NE(Value(nan), Value(-nan));
  EXPECT_LT(Value(-nan), Value(-LimitsD::infinity()));
  EXPECT_GT(Value(nan), Value(LimitsD::infinity()));
}

TEST(TotalOrderTest, FollowsIeeeTotalOrder) {
  const double inf = LimitsD::infinity();
  EXPECT_EQ(total_order(-0.0, 0.0), std::strong_ordering::less);
  EXPECT_EQ(total_order(0.0, -0.0), std::strong_ordering::greater);
  EXPECT_EQ(total_order(0.0, 0.0), std::strong_ordering::equal);
  EXPECT_EQ(total_order(-0.0, -0.0), std::strong_ordering::equal);
  EXPECT_EQ(total_order(1.0, 2.0), std::strong_ordering::less);
  EXPECT_EQ(total_order(-1.0, -2.0), std::strong_ordering::greater);
  EXPECT_EQ(total_order(-inf, -LimitsD::max()), std::strong_ordering::less);
  EXPECT_EQ(total_order(inf, LimitsD::max()), std::strong_ordering::greater);
  EXPECT_EQ(total_order(-LimitsD::denorm_min(), -0.0), std::strong_ordering::less);
  // NaNs: positive above +inf and ordered by payload, negative below -inf in reverse.
  EXPECT_EQ(total_order(from_bits(kQuietNan), inf), std::strong_ordering::greater);
  EXPECT_EQ(total_order(from_bits(kQuietNan), from_bits(kQuietNan | 2)),
            std::strong_ordering::less);
  EXPECT_EQ(total_order(from_bits(kQuietNan | kSignBit), -inf), std::strong_ordering::less);
  EXPECT_EQ(total_order(from_bits((kQuietNan | 2) | kSignBit), from_bits(kQuietNan | kSignBit)),
            std::strong_ordering::less);
  EXPECT_EQ(total_order(from_bits(kQuietNan), from_bits(kQuietNan)), std::strong_ordering::equal);
}

TEST(TotalOrderTest, AgreesWithLessOnOrdinaryNumbers) {
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> dist(-1e6, 1e6);
  for (int i = 0; i < 2000; ++i) {
    const double a = dist(rng);
    const double b = i % 10 == 0 ? a : dist(rng);
    const auto expected = a < b   ? std::strong_ordering::less
                          : a > b ? std::strong_ordering::greater
                                  : std::strong_ordering::equal;
    EXPECT_EQ(total_order(a, b), expected) << a << " " << b;
  }
}

TEST(ValueTest, ListsCompareLexicographically) {
  EXPECT_LT(Value(List{}), Value(List{Value()}));
  EXPECT_LT(Value(List{1, 2}), Value(List{1, 3}));
  EXPECT_LT(Value(List{1, 2}), Value(List{1, 2, 0}));
  EXPECT_LT(Value(List{1, 9, 9}), Value(List{2}));
  EXPECT_EQ(Value(List{1, List{"x"}}), Value(List{1, List{"x"}}));
  EXPECT_NE(Value(List{1, List{"x"}}), Value(List{1, List{"y"}}));
}

TEST(ValueTest, MapsCompareByEntries) {
  EXPECT_LT(Value(Map{}), Value(Map{{"a", 1}}));
  EXPECT_LT(Value(Map{{"a", 1}}), Value(Map{{"a", 2}}));
  EXPECT_LT(Value(Map{{"a", 9}}), Value(Map{{"b", 0}}));
  EXPECT_LT(Value(Map{{"a", 1}}), Value(Map{{"a", 1}, {"b", 0}}));
  // Key before value: {a: 100} < {b: 0} although 100 > 0.
  EXPECT_LT(Value(Map{{"a", 100}}), Value(Map{{"b", 0}}));
}

TEST(ValueTest, HashAgreesWithEquality) {
  const std::vector<Value> v = ordered_samples();
  const std::vector<Value> rebuilt = ordered_samples();  // equal values, distinct objects
  absl::Hash<Value> hash;
  for (std::size_t i = 0; i < v.size(); ++i) {
    EXPECT_EQ(hash(rebuilt[i]), hash(v[i])) << v[i].debug_string();
    for (std::size_t j = i + 1; j < v.size(); ++j) {
      EXPECT_NE(hash(v[i]), hash(v[j])) << v[i].debug_string() << " vs " << v[j].debug_string();
    }
  }
  // Equal maps built in different orders hash alike.
  EXPECT_EQ(hash(Value(Map{{"a", 1}, {"b", 2}})), hash(Value(Map{{"b", 2}, {"a", 1}})));
  // Nesting is part of the hash.
  EXPECT_NE(hash(Value(List{List{1}, 2})), hash(Value(List{1, List{2}})));
  EXPECT_NE(hash(Value(List{List{}, List{1}})), hash(Value(List{List{1}, List{}})));
}

TEST(MapTest, SortsByKey) {
  Map m{{"c", 3}, {"a", 1}, {"b", 2}};
  ASSERT_EQ(m.size(), 3u);
  EXPECT_EQ(m.entries()[0].first, Value("a"));
  EXPECT_EQ(m.entries()[1].first, Value("b"));
  EXPECT_EQ(m.entries()[2].first, Value("c"));
}

TEST(MapTest, SameEntriesInAnyOrderAreEqual) {
  std::vector<Map::Entry> entries;
  entries.reserve(100);
  for (int i = 0; i < 100; ++i)
    entries.emplace_back(i % 3 == 0 ? Value(i) : Value(std::to_string(i)), i);
  const Map reference(entries);
  std::mt19937 rng(1);
  for (int round = 0; round < 10; ++round) {
    std::shuffle(entries.begin(), entries.end(), rng);
    Map m(entries);
    EXPECT_EQ(m, reference);
    EXPECT_TRUE(std::is_sorted(m.entries().begin(), m.entries().end(),
                               [](const auto& a, const auto& b) { return a.first < b.first; }));
    Map built;
    for (const auto& [k, v] : entries) built.set(k, v);
    EXPECT_EQ(built, reference);
  }
}

TEST(MapTest, LaterDuplicatesWin) {
  Map m{{"a", 1}, {"b", 1}, {"a", 2}};
  ASSERT_EQ(m.size(), 2u);
  EXPECT_EQ(*m.find("a"), Value(2));

  Map n(std::vector<Map::Entry>{{"b", 1}, {"a", 1}, {"b", 2}, {"a", 3}, {"b", 3}, {"c", 0}});
  ASSERT_EQ(n.size(), 3u);
  EXPECT_EQ(*n.find("a"), Value(3));
  EXPECT_EQ(*n.find("b"), Value(3));
  EXPECT_EQ(*n.find("c"), Value(0));

  // Duplicates that are already adjacent and in order.
  Map o{{"a", 1}, {"a", 2}, {"a", 3}};
  ASSERT_EQ(o.size(), 1u);
  EXPECT_EQ(*o.find("a"), Value(3));
}

TEST(MapTest, SetInsertsOrReplaces) {
  Map m;
  EXPECT_TRUE(m.empty());
  m.set("b", 2);
  m.set("a", 1);
  m.set("c", 3);
  m.set("b", 20);
  ASSERT_EQ(m.size(), 3u);
  EXPECT_EQ(*m.find("b"), Value(20));
  EXPECT_EQ(m, (Map{{"a", 1}, {"b", 20}, {"c", 3}}));
}

TEST(MapTest, FindDistinguishesKinds) {
  Map m{{1, "int"}, {1.0, "double"}, {"1", "string"}, {Value::bytes("1"), "bytes"}};
  ASSERT_EQ(m.size(), 4u);
  EXPECT_EQ(*m.find(1), Value("int"));
  EXPECT_EQ(*m.find(1.0), Value("double"));
  EXPECT_EQ(*m.find("1"), Value("string"));
  EXPECT_EQ(*m.find(Value::bytes("1")), Value("bytes"));
  EXPECT_EQ(m.find(2), nullptr);
  EXPECT_EQ(m.find(Value()), nullptr);
  EXPECT_EQ(Map().find(1), nullptr);
}

TEST(MapTest, ComplexKeys) {
  Map m{{List{1, 2}, "a"}, {Map{{"k", 1}}, "b"}, {List{1}, "c"}};
  EXPECT_EQ(*m.find(List{1}), Value("c"));
  EXPECT_EQ(*m.find(Map{{"k", 1}}), Value("b"));
  EXPECT_EQ(m.entries()[0].first, Value(List{1}));
}

TEST(DebugStringTest, Scalars) {
  EXPECT_EQ(Value().debug_string(), "null");
  EXPECT_EQ(Value(true).debug_string(), "true");
  EXPECT_EQ(Value(false).debug_string(), "false");
  EXPECT_EQ(Value(1).debug_string(), "1");
  EXPECT_EQ(Value(-42).debug_string(), "-42");
  EXPECT_EQ(Value(Limits64::min()).debug_string(), "-9223372036854775808");
  EXPECT_EQ(Value(Limits64::max()).debug_string(), "9223372036854775807");
}

TEST(DebugStringTest, Doubles) {
  EXPECT_EQ(Value(1.5).debug_string(), "1.5");
  EXPECT_EQ(Value(1.0).debug_string(), "1.0");
  EXPECT_EQ(Value(-2.0).debug_string(), "-2.0");
  EXPECT_EQ(Value(0.0).debug_string(), "0.0");
  EXPECT_EQ(Value(-0.0).debug_string(), "-0.0");
  EXPECT_EQ(Value(0.1).debug_string(), "0.1");
  EXPECT_EQ(Value(1e100).debug_string(), "1e+100");
  EXPECT_EQ(Value(LimitsD::infinity()).debug_string(), "inf");
  EXPECT_EQ(Value(-LimitsD::infinity()).debug_string(), "-inf");
  EXPECT_EQ(Value(from_bits(kQuietNan)).debug_string(), "nan");
  EXPECT_EQ(Value(-from_bits(kQuietNan)).debug_string(), "-nan");
  EXPECT_EQ(Value(from_bits(kQuietNan | 5)).debug_string(), "nan(0x7ff8000000000005)");
}

TEST(DebugStringTest, DoublesReadBackExactly) {
  for (double d : {0.1, 1.0 / 3, 2.0 / 3, 1e-300, 5e-324, 1.7976931348623157e308, 123456789.125,
                   -9007199254740993.0}) {
    const std::string s = Value(d).debug_string();
    EXPECT_EQ(bits_of(std::strtod(s.c_str(), nullptr)), bits_of(d)) << s;
  }
}

TEST(DebugStringTest, StringsAreJsonQuoted) {
  EXPECT_EQ(Value("").debug_string(), R"("")");
  EXPECT_EQ(Value("abc").debug_string(), R"("abc")");
  EXPECT_EQ(Value("a\"b\\c").debug_string(), R"("a\"b\\c")");
  EXPECT_EQ(Value("\n\r\t\b\f").debug_string(), R"("\n\r\t\b\f")");
  EXPECT_EQ(Value(std::string("\x01\x1f\0", 3)).debug_string(), R"("\u0001\u001f\u0000")");
  EXPECT_EQ(Value("h\xc3\xa9").debug_string(), "\"h\xc3\xa9\"");  // UTF-8 as is
}

TEST(DebugStringTest, BytesAreEscaped) {
  EXPECT_EQ(Value::bytes("").debug_string(), R"(b"")");
  EXPECT_EQ(Value::bytes(std::string("\x00", 1)).debug_string(), R"(b"\x00")");
  EXPECT_EQ(Value::bytes("ab\xff\x7f\n").debug_string(), R"(b"ab\xff\x7f\x0a")");
  EXPECT_EQ(Value::bytes("\"\\").debug_string(), R"(b"\"\\")");
}

TEST(DebugStringTest, Containers) {
  EXPECT_EQ(Value(List{}).debug_string(), "[]");
  EXPECT_EQ(Value(Map{}).debug_string(), "{}");
  EXPECT_EQ(Value(List{1, "a", 2.5, Value()}).debug_string(), R"([1, "a", 2.5, null])");
  EXPECT_EQ(
      Value(Map{{"tags", List{Value::bytes(std::string("\0", 1))}}, {"id", 1}}).debug_string(),
      R"({"id": 1, "tags": [b"\x00"]})");
  EXPECT_EQ(Value(List{List{}, Map{{1, List{}}}}).debug_string(), "[[], {1: []}]");
}

TEST(DebugStringTest, DistinctValuesRenderDistinctly) {
  const std::vector<Value> v = ordered_samples();
  for (std::size_t i = 0; i < v.size(); ++i) {
    for (std::size_t j = i + 1; j < v.size(); ++j) {
      EXPECT_NE(v[i].debug_string(), v[j].debug_string());
    }
  }
  EXPECT_NE(Value(1).debug_string(), Value(1.0).debug_string());
  EXPECT_NE(Value("1").debug_string(), Value(1).debug_string());
  EXPECT_NE(Value("a").debug_string(), Value::bytes("a").debug_string());
  EXPECT_NE(Value("null").debug_string(), Value().debug_string());
}

}  // namespace
}  // namespace mishka
