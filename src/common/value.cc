#include "mishka/value.h"

#include <algorithm>
#include <bit>
#include <charconv>
#include <cmath>
#include <compare>
#include <cstdint>
#include <ostream>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace mishka {

std::string_view value_kind_name(ValueKind kind) {
  switch (kind) {
    case ValueKind::null:
      return "null";
    case ValueKind::boolean:
      return "boolean";
    case ValueKind::integer:
      return "integer";
    case ValueKind::real:
      return "real";
    case ValueKind::string:
      return "string";
    case ValueKind::bytes:
      return "bytes";
    case ValueKind::list:
      return "list";
    case ValueKind::map:
      return "map";
  }
  return "unknown";
}

namespace {

// IEEE 754-2008 section 5.10 (totalOrder) as an integer key: the bits of a double read as a
// signed integer already order every non-negative double, NaNs included (by payload, above
// +inf). Negative doubles have the sign bit set, so they sort below; flipping their other 63
// bits reverses their order, since a larger magnitude must sort lower. -0.0 becomes -1 and
// sorts just below +0.0 (0); a negative NaN sorts below -inf.
std::int64_t total_order_key(double d) {
  const auto bits = std::bit_cast<std::int64_t>(d);
  const auto sign_fill = static_cast<std::uint64_t>(bits >> 63);  // all ones when negative
  return bits ^ static_cast<std::int64_t>(sign_fill >> 1);
}

std::strong_ordering compare_entries(const Map::Entry& a, const Map::Entry& b) {
  if (auto c = a.first <=> b.first; c != 0) return c;
  return a.second <=> b.second;
}

bool key_less(const Map::Entry& a, const Map::Entry& b) {
  return a.first < b.first;
}

// Sorts by key and keeps, for each key, the entry that came last.
void normalize(std::vector<Map::Entry>& entries) {
  auto not_strictly_increasing = [](const Map::Entry& a, const Map::Entry& b) {
    return !(a.first < b.first);
  };
  // Encoded maps and maps built in key order are the common case: one pass, no sort.
  if (std::adjacent_find(entries.begin(), entries.end(), not_strictly_increasing) ==
      entries.end()) {
    return;
  }
  // Stable, so that entries with equal keys stay in insertion order and the last one wins.
  std::stable_sort(entries.begin(), entries.end(), key_less);
  std::size_t out = 0;
  for (std::size_t i = 0; i < entries.size(); ++i) {
    if (out > 0 && entries[out - 1].first == entries[i].first) {
      entries[out - 1].second = std::move(entries[i].second);
    } else {
      if (out != i) entries[out] = std::move(entries[i]);
      ++out;
    }
  }
  entries.erase(entries.begin() + static_cast<std::ptrdiff_t>(out), entries.end());
}

}  // namespace

std::strong_ordering total_order(double a, double b) {
  return total_order_key(a) <=> total_order_key(b);
}

// ---- Map ----

Map::Map(std::initializer_list<Entry> entries) : entries_(entries) {
  normalize(entries_);
}

Map::Map(std::vector<Entry> entries) : entries_(std::move(entries)) {
  normalize(entries_);
}

void Map::set(Value key, Value value) {
  auto it = std::lower_bound(entries_.begin(), entries_.end(), key,
                             [](const Entry& e, const Value& k) { return e.first < k; });
  if (it != entries_.end() && it->first == key) {
    it->second = std::move(value);
  } else {
    entries_.emplace(it, std::move(key), std::move(value));
  }
}

const Value* Map::find(const Value& key) const {
  auto it = std::lower_bound(entries_.begin(), entries_.end(), key,
                             [](const Entry& e, const Value& k) { return e.first < k; });
  if (it == entries_.end() || it->first != key) return nullptr;
  return &it->second;
}

bool operator==(const Map& a, const Map& b) {
  return a.entries_ == b.entries_;
}

std::strong_ordering operator<=>(const Map& a, const Map& b) {
  return std::lexicographical_compare_three_way(
      a.entries_.begin(), a.entries_.end(), b.entries_.begin(), b.entries_.end(), compare_entries);
}

// ---- Value ----

// Both operators dispatch on a's alternative; b holds the same one once the indexes match.
std::strong_ordering operator<=>(const Value& a, const Value& b) {
  if (auto c = a.v_.index() <=> b.v_.index(); c != 0) return c;
  return std::visit(
      [&b](const auto& x) -> std::strong_ordering {
        using T = std::decay_t<decltype(x)>;
        const T& y = std::get<T>(b.v_);
        if constexpr (std::is_same_v<T, std::monostate>) {
          return std::strong_ordering::equal;
        } else if constexpr (std::is_same_v<T, double>) {
          return total_order(x, y);
        } else if constexpr (std::is_same_v<T, List>) {
          return std::lexicographical_compare_three_way(x.begin(), x.end(), y.begin(), y.end());
        } else {
          return x <=> y;
        }
      },
      a.v_);
}

bool operator==(const Value& a, const Value& b) {
  if (a.v_.index() != b.v_.index()) return false;
  return std::visit(
      [&b](const auto& x) -> bool {
        using T = std::decay_t<decltype(x)>;
        const T& y = std::get<T>(b.v_);
        if constexpr (std::is_same_v<T, std::monostate>) {
          return true;
        } else if constexpr (std::is_same_v<T, double>) {
          // totalOrder equality is identity of the bits: -0.0 != +0.0, a NaN equals itself.
          return std::bit_cast<std::uint64_t>(x) == std::bit_cast<std::uint64_t>(y);
        } else {
          return x == y;
        }
      },
      a.v_);
}

// ---- debug_string ----

namespace {

constexpr char kHexDigits[] = "0123456789abcdef";

void append_hex_byte(unsigned char c, std::string& out) {
  out += kHexDigits[c >> 4];
  out += kHexDigits[c & 0xf];
}

// JSON string syntax (RFC 8259 section 7); bytes of 0x80 and above are passed through, so
// UTF-8 text stays readable.
void append_quoted_string(std::string_view s, std::string& out) {
  out += '"';
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          append_hex_byte(c, out);
        } else {
          out += ch;
        }
    }
  }
  out += '"';
}

// b"..." with printable ASCII as is and every other byte as \xNN.
void append_quoted_bytes(std::string_view s, std::string& out) {
  out += "b\"";
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += ch;
    } else if (c >= 0x20 && c < 0x7f) {
      out += ch;
    } else {
      out += "\\x";
      append_hex_byte(c, out);
    }
  }
  out += '"';
}

// The shortest form that reads back to the same double, always distinguishable from an
// integer: 1.0 is "1.0", not "1".
void append_double(double d, std::string& out) {
  if (std::isnan(d)) {
    const auto bits = std::bit_cast<std::uint64_t>(d);
    if (bits == 0x7ff8000000000000u) {
      out += "nan";
    } else if (bits == 0xfff8000000000000u) {
      out += "-nan";
    } else {
      // Other NaNs are distinct values: show every bit.
      out += "nan(0x";
      for (int shift = 56; shift >= 0; shift -= 8) {
        append_hex_byte(static_cast<unsigned char>(bits >> shift), out);
      }
      out += ')';
    }
    return;
  }
  if (std::isinf(d)) {
    out += d < 0 ? "-inf" : "inf";
    return;
  }
  char buf[64];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), d);
  const std::string_view text(buf, ec == std::errc() ? static_cast<std::size_t>(end - buf) : 0);
  out += text;
  if (text.find_first_of(".e") == std::string_view::npos) out += ".0";
}

void append_debug(const Value& v, std::string& out) {
  switch (v.kind()) {
    case ValueKind::null:
      out += "null";
      return;
    case ValueKind::boolean:
      out += std::get<bool>(v.storage()) ? "true" : "false";
      return;
    case ValueKind::integer: {
      char buf[24];
      const auto [end, ec] =
          std::to_chars(buf, buf + sizeof(buf), std::get<std::int64_t>(v.storage()));
      out.append(buf, ec == std::errc() ? static_cast<std::size_t>(end - buf) : 0);
      return;
    }
    case ValueKind::real:
      append_double(std::get<double>(v.storage()), out);
      return;
    case ValueKind::string:
      append_quoted_string(std::get<std::string>(v.storage()), out);
      return;
    case ValueKind::bytes:
      append_quoted_bytes(std::get<Bytes>(v.storage()).data, out);
      return;
    case ValueKind::list: {
      out += '[';
      bool first = true;
      for (const Value& e : std::get<List>(v.storage())) {
        if (!first) out += ", ";
        first = false;
        append_debug(e, out);
      }
      out += ']';
      return;
    }
    case ValueKind::map: {
      out += '{';
      bool first = true;
      for (const auto& [key, value] : std::get<Map>(v.storage()).entries()) {
        if (!first) out += ", ";
        first = false;
        append_debug(key, out);
        out += ": ";
        append_debug(value, out);
      }
      out += '}';
      return;
    }
  }
}

}  // namespace

std::string Value::debug_string() const {
  std::string out;
  append_debug(*this, out);
  return out;
}

std::ostream& operator<<(std::ostream& os, const Value& value) {
  return os << value.debug_string();
}

}  // namespace mishka
