// JSON <-> Value for the admin HTTP (docs/admin.md, "JSON and values"): values, records of a
// table, and the keys of record URLs.
//
// The mapping is the one of telemetry::json_of_value() (src/telemetry/json_lines_exporter.h),
// read both ways:
//   null, true/false, strings                <-> themselves
//   integers (int64)                         <-> JSON integers; an integer outside int64 is
//                                                refused when read, never turned into a double
//   doubles                                  <-> JSON numbers with a fraction or exponent
//                                                (1.0 stays a double); NaN and the infinities
//                                                are written as the strings "NaN", "Infinity",
//                                                "-Infinity" and read back as those strings
//   lists                                    <-> arrays
//   maps whose keys are all strings          <-> objects
//   bytes                                    <-> {"base64": "<RFC 4648 base64, padded>"}
//   any other map                            <-> {"entries": [[key, value], ...]}
// An object with exactly one member named "base64" or "entries" is always read as bytes or as
// an entries map, and refused when its value does not fit that form. So that every value
// round-trips exactly, the writer here uses the entries form for a string-keyed map whose only
// key is "base64" or "entries" (telemetry::json_of_value() would write an object, which reads
// back as something else).
//
// Arrays and objects may nest at most kMaxJsonNesting levels (a record body's own object does
// not count): the store refuses deeper values (TableSpec::check_record), and the reader refuses
// deeper text while it parses, before building anything of it, so that no request can make the
// server recurse deeply (nlohmann's SAX parser itself does not recurse).
//
// Every function is pure and thread-safe. Errors are invalid_argument with a message that says
// where (a JSON pointer such as /tags/0, or the line and column of a syntax error) and what.
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "mishka/status.h"
#include "mishka/table_spec.h"
#include "mishka/value.h"

namespace mishka::admin {

// The deepest nesting of arrays and objects that the reader accepts: 63, as the store's
// (src/store/table_spec.cc). {"base64": ...} and {"entries": ...} count as the objects and
// arrays they are in the text.
inline constexpr std::size_t kMaxJsonNesting = 63;

// Objects keep the order in which members are added (records in attribute order).
using Json = nlohmann::ordered_json;

// ---- Value -> JSON ----

// Recurses once per level of nesting of `value` (and nlohmann's writer and destructor recurse
// on the JSON): meant for values whose depth is bounded, as those of the store and of this
// reader are (about 64 levels).
Json json_of_value(const Value& value);
// One line of compact JSON text; invalid UTF-8 in strings becomes U+FFFD.
std::string json_text_of_value(const Value& value);
std::string json_text(const Json& json);

// A record as an object of its attributes in the spec's order. The record must have one value
// per attribute (a missing value is written as null).
Json json_of_record(const TableSpec& spec, const Record& record);

// ---- JSON -> Value ----

// The whole text as one value. Errors: not JSON ("not JSON: parse error at line 1, column 7:
// ..."), an integer outside int64, a malformed {"base64"} or {"entries"} object, a key that
// appears twice in one object, arrays and objects nested more than kMaxJsonNesting levels
// ("... nest more than 63 levels deep at /a/0/...", naming where the 64th level starts).
Result<Value> value_of_json_text(std::string_view text);

// The members of a JSON object, in text order, each value read as value_of_json_text() reads
// it (the object itself is never taken for the base64 or entries form). Errors: those of
// value_of_json_text(), and "not a JSON object" (naming what it is instead).
Result<std::vector<std::pair<std::string, Value>>> members_of_json_object_text(
    std::string_view text);

// The record of table `spec` that a PUT body describes, for the record key `key` of the URL.
// The body is a JSON object of attributes: every attribute of the spec but the key must be
// there; the key attribute may be left out (then `key` is used) or must equal `key`. Errors
// (invalid_argument, naming the table and the attribute): an empty (or all blank) body, those
// of members_of_json_object_text(), an unknown attribute (listing the known ones), a key
// attribute that differs from the URL's key, missing attributes (naming each).
Result<Record> record_of_json_text(const TableSpec& spec, std::string_view body, const Value& key);

// The record key that a URL's {key} segment names. `segment` is already percent-decoded.
// `key_format`: absent (std::nullopt), the segment is the key as a string; "json", the
// segment is JSON text read as value_of_json_text() reads it (42, "42", [1,2]). Any other
// key_format, or JSON text that does not read, is refused naming it.
Result<Value> key_of_path_segment(std::string_view segment,
                                  const std::optional<std::string>& key_format);

}  // namespace mishka::admin
