#include "admin/json_codec.h"

#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>

#include "telemetry/value_json.h"

namespace mishka::admin {
namespace {

constexpr std::string_view kBase64Alphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// Strict RFC 4648 base64: padded to a multiple of 4, the standard alphabet, and unused bits of
// the last group zero, so that each byte string has exactly one text.
Result<std::string> base64_decode(std::string_view text) {
  if (text.size() % 4 != 0) {
    return invalid_argument("its length " + std::to_string(text.size()) +
                            " is not a multiple of 4");
  }
  std::size_t padding = 0;
  while (padding < 2 && padding < text.size() && text[text.size() - 1 - padding] == '=') {
    ++padding;
  }
  std::string out;
  out.reserve(text.size() / 4 * 3);
  std::uint32_t bits = 0;
  int nbits = 0;
  for (std::size_t i = 0; i < text.size() - padding; ++i) {
    const std::size_t sextet = kBase64Alphabet.find(text[i]);
    if (sextet == std::string_view::npos) {
      return invalid_argument("character " + std::to_string(i) + " is not of the base64 alphabet");
    }
    bits = bits << 6 | static_cast<std::uint32_t>(sextet);
    nbits += 6;
    if (nbits >= 8) {
      nbits -= 8;
      out += static_cast<char>((bits >> nbits) & 0xff);
    }
  }
  if ((bits & ((1u << nbits) - 1)) != 0) {
    return invalid_argument("the unused bits of its last group are not zero");
  }
  return out;
}

// "/a/0" style locations (RFC 6901), for messages.
std::string pointer_token(std::string_view key) {
  std::string out;
  for (char c : key) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out += c;
    }
  }
  return out;
}

// What a value read from JSON was, in JSON's words, for messages.
std::string json_kind(const Value& value) {
  switch (value.kind()) {
    case ValueKind::null:
      return "null";
    case ValueKind::boolean:
      return "a boolean";
    case ValueKind::integer:
    case ValueKind::real:
      return "a number";
    case ValueKind::string:
      return "a string";
    case ValueKind::list:
      return "an array";
    case ValueKind::bytes:
    case ValueKind::map:
      return "an object";
  }
  return "a value";
}

std::string at(const std::string& pointer) {
  return pointer.empty() ? "at the top level" : "at " + pointer;
}

using Members = std::vector<std::pair<std::string, Value>>;

// An object with exactly one member named "base64" or "entries" is the JSON form of bytes or of
// a map with keys that are not all strings (json_codec.h).
bool is_reserved_form(const Members& members) {
  return members.size() == 1 && (members[0].first == "base64" || members[0].first == "entries");
}

Result<Value> reserved_form_value(Members members, const std::string& where) {
  const std::string& name = members[0].first;
  Value& inner = members[0].second;
  const std::string inner_at = where + "/" + name;
  if (name == "base64") {
    const std::string* text = inner.get_string();
    if (text == nullptr) {
      return invalid_argument("{\"base64\": ...} " + at(where) + " must hold a string, got " +
                              json_kind(inner));
    }
    Result<std::string> bytes = base64_decode(*text);
    if (!bytes.ok()) {
      return invalid_argument("invalid base64 " + at(inner_at) + ": " + bytes.status().message());
    }
    return Value::bytes(std::move(bytes).value());
  }
  const List* entries = inner.get_list();
  if (entries == nullptr) {
    return invalid_argument("{\"entries\": ...} " + at(where) +
                            " must hold an array of [key, value] pairs, got " + json_kind(inner));
  }
  std::vector<Map::Entry> pairs;
  std::set<Value> seen;
  for (std::size_t i = 0; i < entries->size(); ++i) {
    const List* pair = (*entries)[i].get_list();
    const std::string pair_at = inner_at + "/" + std::to_string(i);
    if (pair == nullptr || pair->size() != 2) {
      return invalid_argument("map entry " + at(pair_at) + " is not a [key, value] pair");
    }
    if (!seen.insert((*pair)[0]).second) {
      return invalid_argument("map key " + (*pair)[0].debug_string() + " " + at(pair_at) +
                              " appears twice");
    }
    pairs.emplace_back((*pair)[0], (*pair)[1]);
  }
  return Value(Map(std::move(pairs)));
}

Value plain_map(Members members) {
  std::vector<Map::Entry> entries;
  entries.reserve(members.size());
  for (auto& [k, v] : members) entries.emplace_back(Value(std::move(k)), std::move(v));
  return Value(Map(std::move(entries)));
}

// Builds Values from nlohmann's SAX events. The raw text of numbers that do not fit int64 or
// uint64 reaches number_float(), which is how integers beyond int64 are told from doubles.
class ValueBuilder {
 public:
  using number_integer_t = nlohmann::json::number_integer_t;
  using number_unsigned_t = nlohmann::json::number_unsigned_t;
  using number_float_t = nlohmann::json::number_float_t;
  using string_t = nlohmann::json::string_t;
  using binary_t = nlohmann::json::binary_t;

  // keep_top_members: leave the members of a top-level object as they are (a record body).
  // That object is not a value: its level does not count against kMaxJsonNesting.
  explicit ValueBuilder(bool keep_top_members)
      : keep_top_members_(keep_top_members),
        max_frames_(kMaxJsonNesting + (keep_top_members ? 1 : 0)) {}

  bool null() { return put(Value()); }
  bool boolean(bool b) { return put(Value(b)); }
  bool number_integer(number_integer_t i) { return put(Value(static_cast<std::int64_t>(i))); }
  bool number_unsigned(number_unsigned_t u) {
    if (u > static_cast<number_unsigned_t>(std::numeric_limits<std::int64_t>::max())) {
      return fail(out_of_range(std::to_string(u)));
    }
    return put(Value(static_cast<std::int64_t>(u)));
  }
  bool number_float(number_float_t d, const string_t& text) {
    if (text.find_first_of(".eE") == std::string::npos) return fail(out_of_range(text));
    return put(Value(static_cast<double>(d)));
  }
  bool string(string_t& s) { return put(Value(std::move(s))); }
  bool binary(binary_t&) { return fail(invalid_argument("binary values are not JSON")); }
  bool start_object(std::size_t) {
    if (!enter()) return false;
    frames_.emplace_back();
    frames_.back().object = true;
    return true;
  }
  bool key(string_t& k) {
    Frame& top = frames_.back();
    if (!top.keys.insert(k).second) {
      return fail(invalid_argument("key \"" + k + "\" appears twice in the object " +
                                   at(pointer(frames_.size() - 1))));
    }
    top.key = std::move(k);
    return true;
  }
  bool end_object() {
    const std::string where = pointer(frames_.size() - 1);
    Members members = std::move(frames_.back().members);
    frames_.pop_back();
    if (frames_.empty() && keep_top_members_) {
      top_members_ = std::move(members);
      top_is_object_ = true;
      return true;
    }
    if (!is_reserved_form(members)) return put(plain_map(std::move(members)));
    Result<Value> value = reserved_form_value(std::move(members), where);
    if (!value.ok()) return fail(value.status());
    return put(std::move(value).value());
  }
  bool start_array(std::size_t) {
    if (!enter()) return false;
    frames_.emplace_back();
    return true;
  }
  bool end_array() {
    List items = std::move(frames_.back().items);
    frames_.pop_back();
    return put(Value(std::move(items)));
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::json::exception& e) {
    // what() reads "[json.exception.parse_error.101] parse error at line 1, column 7: ...".
    std::string what = e.what();
    if (const std::size_t end = what.find("] ");
        what.rfind("[json.exception", 0) == 0 && end != std::string::npos) {
      what.erase(0, end + 2);
    }
    return fail(invalid_argument("not JSON: " + what));
  }

  const Status& error() const { return error_; }
  Value take_value() { return std::move(value_); }
  bool top_is_object() const { return top_is_object_; }
  Members take_top_members() { return std::move(top_members_); }
  const Value& top_value() const { return value_; }

 private:
  struct Frame {
    bool object = false;
    Members members;             // object
    std::set<std::string> keys;  // object: the member names so far
    std::string key;             // object: the member being read
    List items;                  // array
  };

  // Refuses an array or object one level too deep before anything of it is built: the parse
  // stops there, so no deep Value (whose destruction, comparison and encoding recurse) is
  // ever made, however deep the text goes. nlohmann's SAX parser keeps its own nesting in a
  // vector, not on the stack.
  bool enter() {
    if (frames_.size() < max_frames_) return true;
    return fail(invalid_argument("arrays and objects nest more than " +
                                 std::to_string(kMaxJsonNesting) + " levels deep " +
                                 at(pointer(frames_.size()))));
  }

  bool put(Value v) {
    if (frames_.empty()) {
      value_ = std::move(v);
    } else if (frames_.back().object) {
      frames_.back().members.emplace_back(frames_.back().key, std::move(v));
    } else {
      frames_.back().items.push_back(std::move(v));
    }
    return true;
  }

  bool fail(Status status) {
    if (error_.ok()) error_ = std::move(status);
    return false;  // stops the parse
  }

  Status out_of_range(const std::string& text) const {
    return invalid_argument("integer " + text + " " + at(pointer(frames_.size())) +
                            " does not fit a signed 64-bit integer");
  }

  // Where the value being read sits, through the first `depth` frames.
  std::string pointer(std::size_t depth) const {
    std::string out;
    for (std::size_t i = 0; i < depth; ++i) {
      const Frame& f = frames_[i];
      out += "/" + (f.object ? pointer_token(f.key) : std::to_string(f.items.size()));
    }
    return out;
  }

  const bool keep_top_members_;
  const std::size_t max_frames_;  // arrays and objects open at once, at most
  std::vector<Frame> frames_;
  Value value_;
  bool top_is_object_ = false;
  Members top_members_;
  Status error_;
};

Status parse(std::string_view text, ValueBuilder& builder) {
  const bool parsed = nlohmann::json::sax_parse(text.begin(), text.end(), &builder);
  if (!builder.error().ok()) return builder.error();
  if (!parsed) return invalid_argument("not JSON");  // nlohmann always says why; defensive
  return Status::Ok();
}

std::string single_quoted(std::string_view name) {
  return "'" + std::string(name) + "'";
}

std::string attribute_list(const TableSpec& spec) {
  std::string out;
  for (const std::string& a : spec.attributes) out += (out.empty() ? "" : ", ") + a;
  return out;
}

}  // namespace

Json json_of_value(const Value& value) {
  return telemetry::value_to_json(value);
}

std::string json_text(const Json& json) {
  return json.dump(-1, ' ', false, Json::error_handler_t::replace);
}

std::string json_text_of_value(const Value& value) {
  return json_text(json_of_value(value));
}

Json json_of_record(const TableSpec& spec, const Record& record) {
  Json out = Json::object();
  for (std::size_t i = 0; i < spec.attributes.size(); ++i) {
    out[spec.attributes[i]] = i < record.size() ? json_of_value(record[i]) : Json(nullptr);
  }
  return out;
}

Result<Value> value_of_json_text(std::string_view text) {
  ValueBuilder builder(false);
  MISHKA_RETURN_IF_ERROR(parse(text, builder));
  return builder.take_value();
}

Result<std::vector<std::pair<std::string, Value>>> members_of_json_object_text(
    std::string_view text) {
  ValueBuilder builder(true);
  MISHKA_RETURN_IF_ERROR(parse(text, builder));
  if (!builder.top_is_object()) {
    return invalid_argument("not a JSON object: got " + json_kind(builder.top_value()));
  }
  return builder.take_top_members();
}

Result<Record> record_of_json_text(const TableSpec& spec, std::string_view body, const Value& key) {
  const std::string table = "table " + single_quoted(spec.name);
  if (body.find_first_not_of(" \t\r\n") == std::string_view::npos) {
    return invalid_argument("record of " + table +
                            ": the body is empty (it must be a JSON object of the record's "
                            "attributes)");
  }
  auto members = members_of_json_object_text(body);
  if (!members.ok()) return members.status().with_context("record of " + table);
  Record record(spec.attributes.size());
  std::vector<bool> given(spec.attributes.size(), false);
  for (auto& [name, value] : *members) {
    const std::optional<std::size_t> position = spec.attribute_position(name);
    if (!position) {
      return invalid_argument(table + " has no attribute " + single_quoted(name) +
                              " (its attributes: " + attribute_list(spec) + ")");
    }
    if (*position == 0 && value != key) {
      return invalid_argument("attribute " + single_quoted(name) + " is the key of " + table +
                              ": it must equal the URL's key " + key.debug_string() + ", got " +
                              value.debug_string());
    }
    record[*position] = std::move(value);
    given[*position] = true;
  }
  record[0] = key;
  given[0] = true;
  std::vector<std::string> missing;
  for (std::size_t i = 0; i < given.size(); ++i) {
    if (!given[i]) missing.push_back(single_quoted(spec.attributes[i]));
  }
  if (!missing.empty()) {
    std::string names;
    for (const std::string& m : missing) names += (names.empty() ? "" : ", ") + m;
    return invalid_argument("record of " + table + ": missing attribute" +
                            (missing.size() > 1 ? "s " : " ") + names +
                            " (every attribute but the key is required)");
  }
  return record;
}

Result<Value> key_of_path_segment(std::string_view segment,
                                  const std::optional<std::string>& key_format) {
  if (!key_format) return Value(segment);
  if (*key_format != "json") {
    return invalid_argument("key_format must be absent or \"json\", got \"" + *key_format + "\"");
  }
  Result<Value> key = value_of_json_text(segment);
  if (!key.ok()) return key.status().with_context("key (key_format=json)");
  return key;
}

}  // namespace mishka::admin
