// MessagePack encoding of values and records (docs/formats.md, "Values").
//
// Encoding is canonical: the smallest MessagePack form of each integer, str for strings, bin
// for bytes, float64 for doubles, maps in key order. Decoding accepts any well-formed
// MessagePack of the supported kinds and refuses everything else with an error; it never reads
// outside the given buffer and never allocates more than the input can justify.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "mishka/status.h"
#include "mishka/table_spec.h"
#include "mishka/value.h"

namespace mishka {

struct DecodeLimits {
  std::size_t max_depth = 64;  // nesting of lists and maps
};

// Appends the encoding of `value` to `out`.
void encode_value(const Value& value, std::string& out);
std::string encode_value(const Value& value);

// Decodes exactly one value occupying all of `bytes`. Errors: corrupt (malformed, truncated,
// trailing bytes, an integer above INT64_MAX, an ext type, a duplicate map key, too deep).
Result<Value> decode_value(std::string_view bytes, const DecodeLimits& limits = {});

// Decodes one value starting at `offset` and advances `offset` past it.
Result<Value> decode_value_at(std::string_view bytes, std::size_t& offset,
                              const DecodeLimits& limits = {});

// A record is encoded as a MessagePack array of its values.
void encode_record(const Record& record, std::string& out);
std::string encode_record(const Record& record);
// corrupt when the bytes are not exactly one array.
Result<Record> decode_record(std::string_view bytes, const DecodeLimits& limits = {});
// Decodes one record (an array) starting at `offset` and advances `offset` past it; the
// snapshot loader reads a stream of records this way.
Result<Record> decode_record_at(std::string_view bytes, std::size_t& offset,
                                const DecodeLimits& limits = {});

// Moves `offset` past the one value that starts there without building it, checking only the
// structure (type bytes and lengths, and that everything fits in `bytes`): a cheap way to find
// where the values of a stream start, so that parts of it can be decoded on several threads.
// The decoders still check each value. false, with `offset` unchanged, when the bytes there do
// not have the structure of one value of the supported kinds.
bool skip_value_at(std::string_view bytes, std::size_t& offset);

}  // namespace mishka
