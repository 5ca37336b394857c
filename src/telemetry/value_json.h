// Values as JSON, the one writer the telemetry log and the admin HTTP share (docs/telemetry.md,
// "JSON lines"; docs/admin.md, "JSON and values"). Internal: it exposes nlohmann's type, which
// only the libraries that link nlohmann-json themselves may include.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "mishka/value.h"

namespace mishka::telemetry {

// null, booleans, integers (exact, all 64 bits), strings and lists as themselves; doubles as
// numbers, but NaN and the infinities as the strings "NaN", "Infinity", "-Infinity"; bytes as
// {"base64": "<RFC 4648 base64>"}; a map whose keys are all strings as an object, except a map
// whose only key is "base64" or "entries" (it would read back as bytes or as the next form);
// any other map as {"entries": [[key, value], ...]}. So every value but NaN and the infinities
// reads back as itself (src/admin/json_codec.h is the reader).
//
// Recurses once per level of nesting: for values of bounded depth, as the store's are (63).
nlohmann::ordered_json value_to_json(const Value& value);

// Padded RFC 4648 base64 with the standard alphabet.
std::string base64_encode(std::string_view bytes);

}  // namespace mishka::telemetry
