#include "common/codec.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <ostream>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace mishka {

// Lets GoogleTest print values in failure messages.
static void PrintTo(const Value& v, std::ostream* os) {
  *os << v.debug_string();
}

namespace {

using Limits64 = std::numeric_limits<std::int64_t>;

// "cd 01 2c" -> the three bytes.
std::string unhex(std::string_view hex) {
  std::string out;
  int high = -1;
  for (char c : hex) {
    int digit;
    if (c >= '0' && c <= '9') {
      digit = c - '0';
    } else if (c >= 'a' && c <= 'f') {
      digit = c - 'a' + 10;
    } else {
      continue;
    }
    if (high < 0) {
      high = digit;
    } else {
      out += static_cast<char>(high * 16 + digit);
      high = -1;
    }
  }
  return out;
}

std::string hex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (char ch : bytes) {
    const auto c = static_cast<unsigned char>(ch);
    if (!out.empty()) out += ' ';
    out += kDigits[c >> 4];
    out += kDigits[c & 0xf];
  }
  return out;
}

// Decodes and expects `corrupt` with every fragment of `words` in the message.
void expect_corrupt(std::string_view bytes, std::initializer_list<std::string_view> words) {
  Result<Value> r = decode_value(bytes);
  ASSERT_FALSE(r.ok()) << hex(bytes) << " decoded as " << r->debug_string();
  EXPECT_EQ(r.status().code(), StatusCode::corrupt) << r.status().to_string();
  for (std::string_view w : words) {
    EXPECT_NE(r.status().message().find(w), std::string::npos)
        << "'" << w << "' not in: " << r.status().message();
  }
}

Value round_trip(const Value& v) {
  const std::string bytes = encode_value(v);
  Result<Value> r = decode_value(bytes);
  EXPECT_TRUE(r.ok()) << v.debug_string() << ": " << r.status().to_string();
  if (!r.ok()) return Value();
  EXPECT_EQ(encode_value(*r), bytes) << "re-encoding differs for " << v.debug_string();
  return std::move(r).value();
}

// A record with one value of every kind, nested, with empty containers and long strings.
Value complex_value() {
  return List{
      Value(),
      true,
      false,
      0,
      -1,
      300,
      Limits64::min(),
      Limits64::max(),
      1.5,
      -0.0,
      "",
      "hello",
      std::string(40, 'x'),
      Value::bytes(""),
      Value::bytes(std::string("\x00\x01\xff", 3)),
      List{},
      Map{},
      Map{{"id", 7}, {"tags", List{"a", "b", List{Map{{1, 2.25}}}}}, {Value::bytes("k"), Value()}},
      List{Value(List{Value(List{1})})},
  };
}

// Random values for round-trip tests, with every kind and bounded nesting.
class ValueGenerator {
 public:
  explicit ValueGenerator(std::uint64_t seed) : rng_(seed) {}

  Value next(int depth = 0) {
    const int kind = pick(depth >= 4 ? 6 : 8);
    switch (kind) {
      case 0:
        return Value();
      case 1:
        return pick(2) == 1;
      case 2:
        return integer();
      case 3:
        return std::bit_cast<double>(std::uniform_int_distribution<std::uint64_t>()(rng_));
      case 4:
        return text();
      case 5:
        return Value::bytes(text());
      case 6: {
        List l;
        const int n = pick(6);
        for (int i = 0; i < n; ++i) l.push_back(next(depth + 1));
        return l;
      }
      default: {
        Map m;
        const int n = pick(5);
        for (int i = 0; i < n; ++i) m.set(next(depth + 1), next(depth + 1));
        return m;
      }
    }
  }

 private:
  int pick(int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng_); }

  std::int64_t integer() {
    // Mostly near the boundaries of the MessagePack integer forms.
    static constexpr std::int64_t kEdges[] = {
        0,   1,   31,   32,   127,    128,    255,     256,          65535,    65536,
        -32, -33, -128, -129, -32768, -32769, 1 << 30, -(1LL << 31), 1LL << 32};
    switch (pick(3)) {
      case 0:
        return kEdges[pick(static_cast<int>(std::size(kEdges)))] + pick(3) - 1;
      case 1:
        return pick(2) == 0 ? Limits64::max() - pick(2) : Limits64::min() + pick(2);
      default:
        return std::uniform_int_distribution<std::int64_t>()(rng_);
    }
  }

  std::string text() {
    std::string s(static_cast<std::size_t>(pick(3) == 0 ? pick(300) : pick(8)), '\0');
    for (char& c : s) c = static_cast<char>(pick(256));
    return s;
  }

  std::mt19937_64 rng_;
};

// ---- Encoding: exact canonical bytes ----

TEST(CodecEncodeTest, Scalars) {
  EXPECT_EQ(hex(encode_value(Value())), "c0");
  EXPECT_EQ(hex(encode_value(false)), "c2");
  EXPECT_EQ(hex(encode_value(true)), "c3");
}

TEST(CodecEncodeTest, IntegersUseTheSmallestForm) {
  const std::vector<std::pair<std::int64_t, std::string>> cases = {
      {0, "00"},
      {1, "01"},
      {127, "7f"},
      {128, "cc 80"},
      {255, "cc ff"},
      {256, "cd 01 00"},
      {300, "cd 01 2c"},
      {65535, "cd ff ff"},
      {65536, "ce 00 01 00 00"},
      {4294967295, "ce ff ff ff ff"},
      {4294967296, "cf 00 00 00 01 00 00 00 00"},
      {Limits64::max(), "cf 7f ff ff ff ff ff ff ff"},
      {-1, "ff"},
      {-32, "e0"},
      {-33, "d0 df"},
      {-128, "d0 80"},
      {-129, "d1 ff 7f"},
      {-32768, "d1 80 00"},
      {-32769, "d2 ff ff 7f ff"},
      {-2147483648LL, "d2 80 00 00 00"},
      {-2147483649LL, "d3 ff ff ff ff 7f ff ff ff"},
      {Limits64::min(), "d3 80 00 00 00 00 00 00 00"},
  };
  for (const auto& [n, expected] : cases) {
    EXPECT_EQ(hex(encode_value(n)), expected) << n;
    EXPECT_EQ(decode_value(unhex(expected)).value(), Value(n)) << n;
  }
}

TEST(CodecEncodeTest, DoublesAreAlwaysFloat64) {
  EXPECT_EQ(hex(encode_value(1.5)), "cb 3f f8 00 00 00 00 00 00");
  // Integral doubles stay doubles (msgpack-cxx's pack_double would write 01).
  EXPECT_EQ(hex(encode_value(1.0)), "cb 3f f0 00 00 00 00 00 00");
  EXPECT_EQ(hex(encode_value(0.0)), "cb 00 00 00 00 00 00 00 00");
  EXPECT_EQ(hex(encode_value(-0.0)), "cb 80 00 00 00 00 00 00 00");
  EXPECT_EQ(hex(encode_value(std::numeric_limits<double>::infinity())),
            "cb 7f f0 00 00 00 00 00 00");
  EXPECT_EQ(hex(encode_value(std::bit_cast<double>(std::uint64_t{0x7ff8000000000123}))),
            "cb 7f f8 00 00 00 00 01 23");
}

TEST(CodecEncodeTest, StringsAndBytes) {
  EXPECT_EQ(hex(encode_value("a")), "a1 61");
  EXPECT_EQ(hex(encode_value("")), "a0");
  EXPECT_EQ(hex(encode_value(Value::bytes(""))), "c4 00");
  EXPECT_EQ(hex(encode_value(Value::bytes("a"))), "c4 01 61");
  EXPECT_EQ(hex(encode_value(std::string(31, 'x')).substr(0, 1)), "bf");
  EXPECT_EQ(hex(encode_value(std::string(32, 'x')).substr(0, 2)), "d9 20");
  EXPECT_EQ(hex(encode_value(std::string(255, 'x')).substr(0, 2)), "d9 ff");
  EXPECT_EQ(hex(encode_value(std::string(256, 'x')).substr(0, 3)), "da 01 00");
  EXPECT_EQ(hex(encode_value(std::string(65536, 'x')).substr(0, 5)), "db 00 01 00 00");
  EXPECT_EQ(hex(encode_value(Value::bytes(std::string(256, 'x'))).substr(0, 3)), "c5 01 00");
  EXPECT_EQ(hex(encode_value(Value::bytes(std::string(65536, 'x'))).substr(0, 5)),
            "c6 00 01 00 00");
}

TEST(CodecEncodeTest, Containers) {
  EXPECT_EQ(hex(encode_value(List{})), "90");
  EXPECT_EQ(hex(encode_value(Map{})), "80");
  EXPECT_EQ(hex(encode_value(List{1, "a"})), "92 01 a1 61");
  EXPECT_EQ(hex(encode_value(List(15, Value())).substr(0, 1)), "9f");
  EXPECT_EQ(hex(encode_value(List(16, Value())).substr(0, 3)), "dc 00 10");
  EXPECT_EQ(hex(encode_value(List(65536, Value())).substr(0, 5)), "dd 00 01 00 00");
  EXPECT_EQ(hex(encode_value(Map{{"b", 2}, {"a", 1}})), "82 a1 61 01 a1 62 02");
  Map sixteen;
  for (int i = 0; i < 16; ++i) sixteen.set(i, i);
  EXPECT_EQ(hex(encode_value(sixteen).substr(0, 3)), "de 00 10");
}

TEST(CodecEncodeTest, AppendsToTheOutput) {
  std::string out = "xy";
  encode_value(1, out);
  encode_record(Record{true}, out);
  EXPECT_EQ(hex(out), "78 79 01 91 c3");
}

TEST(CodecEncodeTest, RecordIsAnArray) {
  EXPECT_EQ(hex(encode_record(Record{1, "a"})), "92 01 a1 61");
  EXPECT_EQ(encode_record(Record{1, "a"}), encode_value(List{1, "a"}));
  EXPECT_EQ(hex(encode_record(Record{})), "90");
}

TEST(CodecEncodeTest, MapsInAnyOrderEncodeAlike) {
  const std::string a = encode_value(Map{{"x", 1}, {2, "y"}, {List{}, Map{}}, {1.5, 0}});
  const std::string b = encode_value(Map{{1.5, 0}, {List{}, Map{}}, {"x", 1}, {2, "y"}});
  EXPECT_EQ(a, b);
}

// ---- Round trips ----

TEST(CodecRoundTripTest, EveryKind) {
  const Value all = complex_value();
  for (const Value& v : std::get<List>(all.storage())) EXPECT_EQ(round_trip(v), v);
  EXPECT_EQ(round_trip(complex_value()), complex_value());
}

TEST(CodecRoundTripTest, DoublesKeepTheirBits) {
  const double inf = std::numeric_limits<double>::infinity();
  for (double d : {0.0, -0.0, 1.0, -1.0, 0.1, inf, -inf, std::numeric_limits<double>::denorm_min(),
                   std::numeric_limits<double>::max(),
                   std::bit_cast<double>(std::uint64_t{0x7ff8000000000000}),
                   std::bit_cast<double>(std::uint64_t{0xfff8000000000abc}),
                   std::bit_cast<double>(std::uint64_t{0x7ff0000000000001})}) {
    const Value back = round_trip(d);
    ASSERT_NE(back.get_double(), nullptr);
    EXPECT_EQ(std::bit_cast<std::uint64_t>(std::get<double>(back.storage())),
              std::bit_cast<std::uint64_t>(d));
  }
}

TEST(CodecRoundTripTest, IntegerBoundaries) {
  for (int shift = 0; shift < 63; ++shift) {
    const std::int64_t p = std::int64_t{1} << shift;
    for (std::int64_t n : {p - 1, p, p + 1, -p - 1, -p, -p + 1}) EXPECT_EQ(round_trip(n), Value(n));
  }
  EXPECT_EQ(round_trip(Limits64::max()), Value(Limits64::max()));
  EXPECT_EQ(round_trip(Limits64::min()), Value(Limits64::min()));
}

TEST(CodecRoundTripTest, LargeContainersAndStrings) {
  EXPECT_EQ(round_trip(std::string(70000, 'q')), Value(std::string(70000, 'q')));
  EXPECT_EQ(round_trip(Value::bytes(std::string(70000, '\xee'))),
            Value::bytes(std::string(70000, '\xee')));
  List big;
  for (int i = 0; i < 70000; ++i) big.emplace_back(i);
  EXPECT_EQ(round_trip(big), Value(big));
  Map m;
  for (int i = 0; i < 1000; ++i) m.set(std::to_string(i), i);
  EXPECT_EQ(round_trip(m), Value(m));
}

TEST(CodecRoundTripTest, DeepestAllowedNesting) {
  Value v = List{};
  for (int i = 1; i < 64; ++i) v = (i % 2 == 0) ? Value(List{v}) : Value(Map{{i, v}});
  EXPECT_EQ(round_trip(v), v);
}

TEST(CodecRoundTripTest, RandomValues) {
  ValueGenerator gen(2024);
  for (int i = 0; i < 2000; ++i) {
    const Value v = gen.next();
    EXPECT_EQ(round_trip(v), v);
  }
}

TEST(CodecRoundTripTest, Records) {
  const Record record = std::get<List>(complex_value().storage());
  Result<Record> back = decode_record(encode_record(record));
  ASSERT_TRUE(back.ok()) << back.status().to_string();
  EXPECT_EQ(*back, record);
  Result<Record> empty = decode_record(encode_record(Record{}));
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
}

TEST(CodecRoundTripTest, DecodeValueAtWalksAStream) {
  const std::vector<Value> values = {1, "two", List{3}, Map{{4, 5}}, Value(), 6.5};
  std::string stream;
  for (const Value& v : values) encode_value(v, stream);
  std::size_t offset = 0;
  for (const Value& v : values) {
    Result<Value> r = decode_value_at(stream, offset);
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    EXPECT_EQ(*r, v);
  }
  EXPECT_EQ(offset, stream.size());
  Result<Value> past = decode_value_at(stream, offset);
  EXPECT_EQ(past.status().code(), StatusCode::corrupt);
  EXPECT_EQ(offset, stream.size());
  std::size_t beyond = stream.size() + 1;
  EXPECT_EQ(decode_value_at(stream, beyond).status().code(), StatusCode::invalid_argument);
}

TEST(CodecRoundTripTest, DecodeRecordAtWalksAStream) {
  const std::vector<Record> records = {{1, "a"}, {}, {2, List{3}, Map{{"k", 4}}}};
  std::string stream;
  for (const Record& r : records) encode_record(r, stream);
  std::size_t offset = 0;
  for (const Record& expected : records) {
    Result<Record> r = decode_record_at(stream, offset);
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    EXPECT_EQ(*r, expected);
  }
  EXPECT_EQ(offset, stream.size());
}

TEST(CodecRoundTripTest, OffsetIsUnchangedOnError) {
  const std::string stream = unhex("01 92 01");
  std::size_t offset = 1;
  EXPECT_FALSE(decode_value_at(stream, offset).ok());
  EXPECT_EQ(offset, 1u);
  EXPECT_FALSE(decode_record_at(stream, offset).ok());
  EXPECT_EQ(offset, 1u);
}

// ---- Decoding what another encoder may write ----

TEST(CodecDecodeTest, AcceptsNonCanonicalForms) {
  EXPECT_EQ(decode_value(unhex("cc 05")).value(), Value(5));
  EXPECT_EQ(decode_value(unhex("cd 00 05")).value(), Value(5));
  EXPECT_EQ(decode_value(unhex("cf 00 00 00 00 00 00 00 05")).value(), Value(5));
  EXPECT_EQ(decode_value(unhex("d0 05")).value(), Value(5));
  EXPECT_EQ(decode_value(unhex("d3 ff ff ff ff ff ff ff ff")).value(), Value(-1));
  EXPECT_EQ(decode_value(unhex("d9 01 61")).value(), Value("a"));
  EXPECT_EQ(decode_value(unhex("db 00 00 00 00")).value(), Value(""));
  EXPECT_EQ(decode_value(unhex("c5 00 01 61")).value(), Value::bytes("a"));
  EXPECT_EQ(decode_value(unhex("dc 00 01 01")).value(), Value(List{1}));
  EXPECT_EQ(decode_value(unhex("dd 00 00 00 00")).value(), Value(List{}));
  EXPECT_EQ(decode_value(unhex("de 00 01 01 02")).value(), Value(Map{{1, 2}}));
}

TEST(CodecDecodeTest, UnsortedMapsAreSorted) {
  Result<Value> r = decode_value(unhex("83 a1 63 03 a1 61 01 a1 62 02"));
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(*r, Value(Map{{"a", 1}, {"b", 2}, {"c", 3}}));
  EXPECT_EQ(hex(encode_value(*r)), "83 a1 61 01 a1 62 02 a1 63 03");
}

TEST(CodecDecodeTest, Float32IsWidened) {
  EXPECT_EQ(decode_value(unhex("ca 3f c0 00 00")).value(), Value(1.5));
  EXPECT_EQ(decode_value(unhex("ca 80 00 00 00")).value(), Value(-0.0));
  EXPECT_EQ(decode_value(unhex("ca 7f 80 00 00")).value(),
            Value(std::numeric_limits<double>::infinity()));
  Result<Value> nan = decode_value(unhex("ca 7f c0 00 00"));
  ASSERT_TRUE(nan.ok());
  ASSERT_EQ(nan->kind(), ValueKind::real);
  EXPECT_TRUE(std::isnan(std::get<double>(nan->storage())));
  EXPECT_EQ(decode_value(unhex("92 ca 3f c0 00 00 01")).value(), Value(List{1.5, 1}));
}

TEST(CodecDecodeTest, Int64MaxAsUint64IsAccepted) {
  EXPECT_EQ(decode_value(unhex("cf 7f ff ff ff ff ff ff ff")).value(), Value(Limits64::max()));
}

// ---- Errors ----

TEST(CodecErrorTest, EmptyInput) {
  expect_corrupt("", {"truncated", "offset 0"});
  EXPECT_EQ(decode_record("").status().code(), StatusCode::corrupt);
}

TEST(CodecErrorTest, TrailingBytes) {
  expect_corrupt(unhex("c0 c0"), {"trailing", "offset 1"});
  expect_corrupt(unhex("92 01 02 03 04"), {"2 trailing", "offset 3"});
  Result<Record> r = decode_record(unhex("91 01 00"));
  EXPECT_EQ(r.status().code(), StatusCode::corrupt);
  EXPECT_NE(r.status().message().find("trailing"), std::string::npos);
}

TEST(CodecErrorTest, UnsignedAboveInt64Max) {
  expect_corrupt(unhex("cf 80 00 00 00 00 00 00 00"), {"9223372036854775808", "offset 0"});
  expect_corrupt(unhex("92 00 cf ff ff ff ff ff ff ff ff"), {"18446744073709551615", "offset 2"});
}

TEST(CodecErrorTest, ExtTypes) {
  expect_corrupt(unhex("d4 01 02"), {"ext", "offset 0"});  // fixext 1
  expect_corrupt(unhex("91 d5 01 02 03"), {"ext", "offset 1"});
  expect_corrupt(unhex("d6 01 00 00 00 00"), {"ext"});
  expect_corrupt(unhex("d7 ff 00 00 00 00 00 00 00 00"), {"ext"});  // timestamp
  expect_corrupt(unhex("d8 01 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00"), {"ext"});
  expect_corrupt(unhex("c7 00 01"), {"ext"});
  expect_corrupt(unhex("c7 02 01 aa bb"), {"ext"});
  expect_corrupt(unhex("c8 00 01 05 01 02 03 04 05"), {"ext"});
  expect_corrupt(unhex("c9 00 00 00 01 05 01"), {"ext"});
  // Ext with a size the input cannot hold.
  expect_corrupt(unhex("c9 ff ff ff ff 05"), {"truncated"});
}

TEST(CodecErrorTest, InvalidTypeByte) {
  expect_corrupt(unhex("c1"), {"invalid", "offset 0"});
  expect_corrupt(unhex("93 01 02 c1"), {"invalid", "offset 3"});
}

TEST(CodecErrorTest, DuplicateMapKeys) {
  expect_corrupt(unhex("82 a1 61 01 a1 61 02"), {"duplicate key \"a\"", "offset 0"});
  expect_corrupt(unhex("91 83 01 00 02 00 01 00"), {"duplicate key 1", "offset 1"});
  // Equal as values although encoded differently.
  expect_corrupt(unhex("82 05 00 cc 05 00"), {"duplicate key 5"});
  // 1 and 1.0 are different keys.
  EXPECT_TRUE(decode_value(unhex("82 01 00 cb 3f f0 00 00 00 00 00 00 00")).ok());
}

TEST(CodecErrorTest, HugeClaimedLengths) {
  expect_corrupt(unhex("dd ff ff ff ff 00 00"), {"truncated", "array", "4294967295", "offset 0"});
  expect_corrupt(unhex("df ff ff ff ff 00 00"), {"truncated", "map", "4294967295"});
  expect_corrupt(unhex("db ff ff ff ff 61"), {"truncated", "offset 0"});
  expect_corrupt(unhex("c6 ff ff ff ff 61"), {"truncated"});
  expect_corrupt(unhex("dc ff ff 01"), {"truncated", "65535"});
  // A map needs two bytes per entry: 2 entries cannot fit in 3 bytes.
  expect_corrupt(unhex("82 01 02 03"), {"truncated", "map", "2 entries"});
  // The outer array's second element needs a byte too, so the inner one cannot claim all
  // of the five bytes that follow it.
  expect_corrupt(unhex("92 dc 00 05 01 02 03 04 05"), {"truncated", "offset 1", "claims 5"});
  std::string many = unhex("dd 00 10 00 00");  // claims 1 Mi elements, has 1 Ki
  many += std::string(1024, '\x01');
  expect_corrupt(many, {"truncated"});
}

TEST(CodecErrorTest, NestingDepth) {
  std::string ok_depth(63, '\x91');
  ok_depth += '\x90';  // 64 levels
  Result<Value> ok = decode_value(ok_depth);
  EXPECT_TRUE(ok.ok()) << ok.status().to_string();

  std::string too_deep(64, '\x91');
  too_deep += '\x90';  // 65 levels
  expect_corrupt(too_deep, {"deeper", "64", "offset 64"});

  std::string maps;
  for (int i = 0; i < 65; ++i) maps += unhex("81 00");
  maps += '\x00';
  expect_corrupt(maps, {"deeper"});

  // Far deeper than the limit: refused without recursion or crash.
  expect_corrupt(std::string(1 << 20, '\x91'), {"deeper"});
}

TEST(CodecErrorTest, NestingDepthLimitIsConfigurable) {
  DecodeLimits two{.max_depth = 2};
  EXPECT_TRUE(decode_value(unhex("91 90"), two).ok());
  EXPECT_EQ(decode_value(unhex("91 91 90"), two).status().code(), StatusCode::corrupt);
  DecodeLimits zero{.max_depth = 0};
  EXPECT_TRUE(decode_value(unhex("01"), zero).ok());
  EXPECT_FALSE(decode_value(unhex("90"), zero).ok());
  EXPECT_TRUE(decode_record(unhex("91 01"), DecodeLimits{.max_depth = 1}).ok());
  EXPECT_FALSE(decode_record(unhex("91 91 01"), DecodeLimits{.max_depth = 1}).ok());
}

TEST(CodecErrorTest, RecordMustBeAnArray) {
  for (const char* bytes : {"01", "a1 61", "80", "81 01 02", "c0", "cb 00 00 00 00 00 00 00 00"}) {
    Result<Record> r = decode_record(unhex(bytes));
    ASSERT_FALSE(r.ok()) << bytes;
    EXPECT_EQ(r.status().code(), StatusCode::corrupt);
    EXPECT_NE(r.status().message().find("must be an array"), std::string::npos)
        << r.status().message();
  }
}

TEST(CodecErrorTest, EveryPrefixOfAValidEncodingFails) {
  const std::string full = encode_value(complex_value());
  ASSERT_TRUE(decode_value(full).ok());
  for (std::size_t n = 0; n < full.size(); ++n) {
    const std::string_view prefix(full.data(), n);
    Result<Value> r = decode_value(prefix);
    ASSERT_FALSE(r.ok()) << "prefix of " << n << " bytes decoded";
    EXPECT_EQ(r.status().code(), StatusCode::corrupt) << r.status().to_string();
    EXPECT_NE(r.status().message().find("truncated"), std::string::npos)
        << n << ": " << r.status().message();
    std::size_t offset = 0;
    EXPECT_FALSE(decode_value_at(prefix, offset).ok());
    EXPECT_EQ(offset, 0u);
    EXPECT_EQ(decode_record(prefix).status().code(), StatusCode::corrupt);
  }
}

TEST(CodecErrorTest, EveryPrefixOfEveryKindFails) {
  const Value all = complex_value();
  for (const Value& v : std::get<List>(all.storage())) {
    const std::string full = encode_value(v);
    for (std::size_t n = 0; n < full.size(); ++n) {
      Result<Value> r = decode_value(std::string_view(full.data(), n));
      ASSERT_FALSE(r.ok()) << v.debug_string() << " prefix " << n;
      EXPECT_EQ(r.status().code(), StatusCode::corrupt);
    }
  }
}

// Corrupting any byte of a valid encoding yields a value or `corrupt`, never a crash and
// never `internal` (which would mean the decoder lost track of its position).
TEST(CodecErrorTest, CorruptedBytesFailCleanly) {
  const std::string full = encode_value(complex_value());
  const unsigned char replacements[] = {0x00, 0x01, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0,
                                        0xc1, 0xc4, 0xc6, 0xc7, 0xc9, 0xca, 0xcb, 0xcf, 0xd3, 0xd4,
                                        0xd8, 0xd9, 0xdb, 0xdc, 0xdd, 0xde, 0xdf, 0xe0, 0xff};
  for (std::size_t i = 0; i < full.size(); ++i) {
    std::string bytes = full;
    for (unsigned char c : replacements) {
      bytes[i] = static_cast<char>(c);
      Result<Value> r = decode_value(bytes);
      if (!r.ok()) {
        EXPECT_EQ(r.status().code(), StatusCode::corrupt) << r.status().to_string();
      } else {
        EXPECT_EQ(decode_value(encode_value(*r)).value(), *r);
      }
    }
    for (int bit = 0; bit < 8; ++bit) {
      bytes = full;
      bytes[i] = static_cast<char>(bytes[i] ^ (1 << bit));
      Result<Value> r = decode_value(bytes);
      if (!r.ok()) {
        EXPECT_EQ(r.status().code(), StatusCode::corrupt) << r.status().to_string();
      }
    }
  }
}

TEST(CodecErrorTest, ErrorsAreCorruptWithAnOffset) {
  for (const char* bytes : {"", "c1", "92 01", "c0 c0", "d4 00 00", "cf ff ff ff ff ff ff ff ff",
                            "82 00 00 00 00", "dd ff ff ff ff"}) {
    Result<Value> r = decode_value(unhex(bytes));
    ASSERT_FALSE(r.ok()) << bytes;
    EXPECT_EQ(r.status().code(), StatusCode::corrupt) << bytes;
    EXPECT_NE(r.status().message().find("offset"), std::string::npos) << r.status().message();
  }
}

// ---- The record fast path and skip_value_at agree with the general decoder ----

// decode_record reads plain arrays of scalars without the general decoder. On every input it
// must give what the general decoder gives for the same array: the same values, or the same
// error (the fast path hands anything unusual to the general decoder).
void expect_record_matches_general(const std::string& bytes) {
  Result<Value> general = decode_value(bytes);
  Result<Record> fast = decode_record(bytes);
  const unsigned char first = bytes.empty() ? 0 : static_cast<unsigned char>(bytes[0]);
  const bool array = (first >= 0x90 && first <= 0x9f) || first == 0xdc || first == 0xdd;
  if (!array) {  // not a record: refused, with a message of its own
    EXPECT_FALSE(fast.ok()) << hex(bytes);
    return;
  }
  ASSERT_EQ(fast.ok(), general.ok()) << hex(bytes);
  if (general.ok()) {
    EXPECT_EQ(*fast, *general->get_list()) << hex(bytes);
  } else {
    EXPECT_EQ(fast.status().to_string(), general.status().to_string()) << hex(bytes);
  }
}

// skip_value_at must end where decode_value_at ends whenever the latter succeeds.
void expect_skip_matches_decode(const std::string& bytes) {
  std::size_t decoded_end = 0;
  if (!decode_value_at(bytes, decoded_end).ok()) return;
  std::size_t skipped_end = 0;
  ASSERT_TRUE(skip_value_at(bytes, skipped_end)) << hex(bytes);
  EXPECT_EQ(skipped_end, decoded_end) << hex(bytes);
}

TEST(CodecRecordFastPathTest, NonCanonicalScalarForms) {
  // uint8/16/32/64 and int8..64 of small values, str8/16/32, bin8/16/32, float32, nested.
  for (const char* bytes :
       {"9e cc 05 cd 00 05 ce 00 00 00 05 cf 00 00 00 00 00 00 00 05 d0 fb d1 ff fb d2 ff ff ff fb "
        "d3 ff ff ff ff ff ff ff fb d9 01 61 da 00 01 61 db 00 00 00 01 61 c4 01 00 c5 00 01 00 "
        "c6 00 00 00 01 00",
        "94 ca 3f c0 00 00 cb 3f f8 00 00 00 00 00 00 c0 c3", "93 a0 c4 00 d9 00",
        "94 92 01 92 02 03 81 a1 6b c2 dc 00 01 05 de 00 01 01 02", "90", "dc 00 00",
        "dd 00 00 00 02 7f e0"}) {
    const std::string encoded = unhex(bytes);
    expect_record_matches_general(encoded);
    expect_skip_matches_decode(encoded);
    EXPECT_TRUE(decode_record(encoded).ok()) << bytes;
  }
}

TEST(CodecRecordFastPathTest, ErrorsAreThoseOfTheGeneralDecoder) {
  for (const char* bytes :
       {"92 01", "91 cf ff ff ff ff ff ff ff ff", "91 c1", "91 d4 00 00", "91 a5 61", "91 d9",
        "91 cd 01", "dd ff ff ff ff 01", "91 92 01", "91 82 01 00 01 00", "93 01 02", "dc 00"}) {
    const std::string encoded = unhex(bytes);
    EXPECT_FALSE(decode_record(encoded).ok()) << bytes;
    expect_record_matches_general(encoded);
  }
  // The depth limit counts the record itself, as in the general decoder.
  EXPECT_EQ(decode_record(unhex("91 91 01"), DecodeLimits{.max_depth = 1}).status().to_string(),
            decode_value(unhex("91 91 01"), DecodeLimits{.max_depth = 1}).status().to_string());
  EXPECT_TRUE(decode_record(unhex("91 91 01"), DecodeLimits{.max_depth = 2}).ok());
  EXPECT_FALSE(decode_record(unhex("91 91 91 01"), DecodeLimits{.max_depth = 2}).ok());
}

TEST(CodecRecordFastPathTest, RandomAndCorruptedRecords) {
  ValueGenerator gen(77);
  const unsigned char replacements[] = {0x00, 0x7f, 0x81, 0x91, 0xa1, 0xc0, 0xc1, 0xc4, 0xca,
                                        0xcb, 0xcf, 0xd3, 0xd4, 0xd9, 0xdc, 0xde, 0xe0, 0xff};
  for (int i = 0; i < 200; ++i) {
    List items;
    const int n = i % 7;
    for (int j = 0; j < n; ++j) items.push_back(gen.next(2));
    const std::string full = encode_value(Value(items));
    expect_record_matches_general(full);
    expect_skip_matches_decode(full);
    for (std::size_t at = 0; at < full.size(); at += 1 + full.size() / 24) {
      std::string bytes = full;
      for (unsigned char c : replacements) {
        bytes[at] = static_cast<char>(c);
        expect_record_matches_general(bytes);
        expect_skip_matches_decode(bytes);
      }
      expect_record_matches_general(full.substr(0, at));
    }
  }
}

TEST(CodecSkipTest, WalksAStreamAndRefusesMalformedValues) {
  const Value v = complex_value();
  std::string stream = encode_value(v) + encode_value(Value(7)) + encode_value(Value("x"));
  std::size_t offset = 0;
  ASSERT_TRUE(skip_value_at(stream, offset));
  EXPECT_EQ(offset, encode_value(v).size());
  ASSERT_TRUE(skip_value_at(stream, offset));
  ASSERT_TRUE(skip_value_at(stream, offset));
  EXPECT_EQ(offset, stream.size());
  EXPECT_FALSE(skip_value_at(stream, offset));
  for (const char* bytes : {"", "c1", "92 01", "d4 00 00", "a2 61", "dd ff ff ff ff", "c4 05 00",
                            "df 00 00 00 01 01"}) {
    std::size_t at = 0;
    EXPECT_FALSE(skip_value_at(unhex(bytes), at)) << bytes;
    EXPECT_EQ(at, 0u);
  }
}

}  // namespace
}  // namespace mishka
