#include "telemetry/value_json.h"

#include <cmath>
#include <cstdint>

namespace mishka::telemetry {

std::string base64_encode(std::string_view bytes) {
  static constexpr std::string_view kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  auto byte = [&](std::size_t k) {
    return static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[k]));
  };
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const std::uint32_t n = byte(i) << 16 | byte(i + 1) << 8 | byte(i + 2);
    for (int shift : {18, 12, 6, 0}) out += kAlphabet[(n >> shift) & 63];
  }
  const std::size_t left = bytes.size() - i;
  if (left > 0) {
    std::uint32_t n = byte(i) << 16;
    if (left == 2) n |= byte(i + 1) << 8;
    out += kAlphabet[n >> 18];
    out += kAlphabet[(n >> 12) & 63];
    out += left == 2 ? kAlphabet[(n >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

nlohmann::ordered_json value_to_json(const Value& value) {
  using Json = nlohmann::ordered_json;
  switch (value.kind()) {
    case ValueKind::null:
      return nullptr;
    case ValueKind::boolean:
      return *value.get_bool();
    case ValueKind::integer:
      return *value.get_int();
    case ValueKind::real: {
      const double d = *value.get_double();
      if (std::isnan(d)) return "NaN";
      if (std::isinf(d)) return d > 0 ? "Infinity" : "-Infinity";
      return d;
    }
    case ValueKind::string:
      return *value.get_string();
    case ValueKind::bytes:
      return Json{{"base64", base64_encode(value.get_bytes()->data)}};
    case ValueKind::list: {
      Json out = Json::array();
      for (const Value& v : *value.get_list()) out.push_back(value_to_json(v));
      return out;
    }
    case ValueKind::map: {
      const Map& map = *value.get_map();
      bool as_object = true;
      for (const auto& [k, v] : map.entries()) as_object &= k.kind() == ValueKind::string;
      // {"base64": ...} or {"entries": ...} as an object would read back as bytes or entries.
      if (as_object && map.size() == 1) {
        const std::string& only = *map.entries()[0].first.get_string();
        as_object = only != "base64" && only != "entries";
      }
      if (as_object) {
        Json out = Json::object();
        for (const auto& [k, v] : map.entries()) out[*k.get_string()] = value_to_json(v);
        return out;
      }
      Json entries = Json::array();
      for (const auto& [k, v] : map.entries()) {
        entries.push_back(Json::array({value_to_json(k), value_to_json(v)}));
      }
      return Json{{"entries", std::move(entries)}};
    }
  }
  return nullptr;
}

}  // namespace mishka::telemetry
