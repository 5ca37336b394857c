// The value type of records: null, bool, int64, double, string, bytes, list and map.
//
// Values are plain data: copyable, comparable with a total order, hashable. Reads hand out
// records by shared pointer (see record.h), so values are rarely copied on the read path.
#pragma once

#include <compare>
#include <cstdint>
#include <initializer_list>
#include <iosfwd>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace mishka {

// Never renumber: the digest and the documentation of the orders depend on these numbers.
enum class ValueKind : std::uint8_t {
  null = 0,
  boolean = 1,
  integer = 2,
  real = 3,
  string = 4,
  bytes = 5,
  list = 6,
  map = 7,
};

std::string_view value_kind_name(ValueKind kind);

class Value;

// Raw bytes; a distinct kind from string (MessagePack bin versus str).
struct Bytes {
  std::string data;
  friend bool operator==(const Bytes&, const Bytes&) = default;
  friend auto operator<=>(const Bytes& a, const Bytes& b) { return a.data <=> b.data; }
};

using List = std::vector<Value>;

// A map from values to values, kept sorted by key with unique keys, so that two maps with the
// same entries are equal, encode to the same bytes and have the same digest whatever the
// order in which they were built.
class Map {
 public:
  using Entry = std::pair<Value, Value>;

  Map() = default;
  // Later entries win over earlier ones with an equal key.
  Map(std::initializer_list<Entry> entries);
  explicit Map(std::vector<Entry> entries);

  // Inserts or replaces.
  void set(Value key, Value value);
  // nullptr when absent. The pointer is valid until the map is modified.
  const Value* find(const Value& key) const;

  const std::vector<Entry>& entries() const { return entries_; }
  // Defined below Value: their bodies need Value complete (clang instantiates the constexpr
  // vector members at this point).
  std::size_t size() const;
  bool empty() const;

  friend bool operator==(const Map& a, const Map& b);
  friend std::strong_ordering operator<=>(const Map& a, const Map& b);

 private:
  std::vector<Entry> entries_;  // sorted by key, unique keys
};

class Value {
 public:
  using Storage =
      std::variant<std::monostate, bool, std::int64_t, double, std::string, Bytes, List, Map>;

  Value() = default;        // null
  Value(std::nullptr_t) {}  // NOLINT
  Value(bool b) : v_(b) {}  // NOLINT
  template <typename I, std::enable_if_t<std::is_integral_v<I> && !std::is_same_v<I, bool>,
                                         int> = 0>
  Value(I i) : v_(static_cast<std::int64_t>(i)) {  // NOLINT
    static_assert(sizeof(I) < 8 || std::is_signed_v<I>,
                  "unsigned 64-bit integers do not fit int64; convert explicitly");
  }
  Value(double d) : v_(d) {}                         // NOLINT
  Value(std::string s) : v_(std::move(s)) {}         // NOLINT
  Value(std::string_view s) : v_(std::string(s)) {}  // NOLINT
  Value(const char* s) : v_(std::string(s)) {}       // NOLINT
  Value(Bytes b) : v_(std::move(b)) {}               // NOLINT
  Value(List l) : v_(std::move(l)) {}                // NOLINT
  Value(Map m) : v_(std::move(m)) {}                 // NOLINT

  static Value bytes(std::string data) { return Value(Bytes{std::move(data)}); }

  ValueKind kind() const { return static_cast<ValueKind>(v_.index()); }
  bool is_null() const { return kind() == ValueKind::null; }

  // Typed access. Each get_* returns nullptr when the value is of another kind.
  const bool* get_bool() const { return std::get_if<bool>(&v_); }
  const std::int64_t* get_int() const { return std::get_if<std::int64_t>(&v_); }
  const double* get_double() const { return std::get_if<double>(&v_); }
  const std::string* get_string() const { return std::get_if<std::string>(&v_); }
  const Bytes* get_bytes() const { return std::get_if<Bytes>(&v_); }
  const List* get_list() const { return std::get_if<List>(&v_); }
  const Map* get_map() const { return std::get_if<Map>(&v_); }

  const Storage& storage() const { return v_; }

  // A total order: first by kind (in ValueKind order), then by content. Integers and doubles
  // are different kinds, so 1 and 1.0 are different keys. Doubles use IEEE 754 totalOrder, so
  // -0.0 < +0.0 and NaNs are ordered (and equal only to the identical NaN).
  friend std::strong_ordering operator<=>(const Value& a, const Value& b);
  friend bool operator==(const Value& a, const Value& b);

  // A readable, unambiguous rendering for messages and logs, e.g. {"id": 1, "tags": [b"\x00"]}.
  std::string debug_string() const;

  template <typename H>
  friend H AbslHashValue(H h, const Value& v);

 private:
  Storage v_;
};

inline std::size_t Map::size() const {
  return entries_.size();
}
inline bool Map::empty() const {
  return entries_.empty();
}

// Writes debug_string(); also what GoogleTest prints for a Value.
std::ostream& operator<<(std::ostream& os, const Value& value);

// Total order on doubles (IEEE 754 totalOrder) used by Value.
std::strong_ordering total_order(double a, double b);

template <typename H>
H AbslHashValue(H h, const Value& v) {
  h = H::combine(std::move(h), v.v_.index());
  switch (v.kind()) {
    case ValueKind::null:
      return h;
    case ValueKind::boolean:
      return H::combine(std::move(h), *v.get_bool());
    case ValueKind::integer:
      return H::combine(std::move(h), *v.get_int());
    case ValueKind::real: {
      // Equality is bitwise (totalOrder), so hash the bits.
      double d = *v.get_double();
      std::uint64_t bits;
      static_assert(sizeof(bits) == sizeof(d));
      __builtin_memcpy(&bits, &d, sizeof(bits));
      return H::combine(std::move(h), bits);
    }
    case ValueKind::string:
      return H::combine(std::move(h), *v.get_string());
    case ValueKind::bytes:
      return H::combine(std::move(h), v.get_bytes()->data);
    case ValueKind::list: {
      const List& l = *v.get_list();
      for (const Value& e : l) h = H::combine(std::move(h), e);
      return H::combine(std::move(h), l.size());
    }
    case ValueKind::map: {
      const Map& m = *v.get_map();
      for (const auto& [k, e] : m.entries()) h = H::combine(std::move(h), k, e);
      return H::combine(std::move(h), m.size());
    }
  }
  return h;
}

}  // namespace mishka
