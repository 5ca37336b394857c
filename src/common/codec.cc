#include "common/codec.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <limits>
#include <new>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <variant>
#include <vector>

#include "msgpack/pack.hpp"
#include "msgpack/parse.hpp"
#include "msgpack/unpack.hpp"  // completes the helper types parse.hpp instantiates

namespace mishka {

// ---- Encoding ----

namespace {

// The Stream that msgpack::packer writes to: appends to a string the caller owns.
class StringSink {
 public:
  explicit StringSink(std::string& out) : out_(out) {}
  void write(const char* data, std::size_t size) { out_.append(data, size); }
  std::string& out() { return out_; }

 private:
  std::string& out_;
};

using Packer = msgpack::packer<StringSink>;

// MessagePack cannot express a length above 2^32 - 1 and encode_* cannot fail, so a longer
// string or container is a broken precondition (etcd refuses requests far smaller).
std::uint32_t checked_length(std::size_t size, const char* what) {
  if (size > std::numeric_limits<std::uint32_t>::max()) {
    std::fprintf(stderr, "mishka: cannot encode a %s of %zu elements or bytes in MessagePack\n",
                 what, size);
    std::abort();
  }
  return static_cast<std::uint32_t>(size);
}

// Always float64 (0xcb, big-endian IEEE 754). msgpack::packer::pack_double is not usable:
// it writes integral doubles as integers, which would decode as another kind.
void pack_float64(double d, StringSink& sink) {
  const auto bits = std::bit_cast<std::uint64_t>(d);
  char buf[9];
  buf[0] = static_cast<char>(0xcb);
  for (int i = 0; i < 8; ++i) buf[1 + i] = static_cast<char>(bits >> (56 - 8 * i));
  sink.write(buf, sizeof(buf));
}

void pack_value(const Value& value, Packer& packer, StringSink& sink) {
  switch (value.kind()) {
    case ValueKind::null:
      packer.pack_nil();
      return;
    case ValueKind::boolean:
      if (std::get<bool>(value.storage())) {
        packer.pack_true();
      } else {
        packer.pack_false();
      }
      return;
    case ValueKind::integer:
      // The smallest form: positive fixint or uint 8..64 for non-negative values, negative
      // fixint or int 8..64 for negative ones.
      packer.pack_int64(std::get<std::int64_t>(value.storage()));
      return;
    case ValueKind::real:
      pack_float64(std::get<double>(value.storage()), sink);
      return;
    case ValueKind::string: {
      const std::string& s = std::get<std::string>(value.storage());
      const std::uint32_t n = checked_length(s.size(), "string");
      packer.pack_str(n);
      packer.pack_str_body(s.data(), n);
      return;
    }
    case ValueKind::bytes: {
      const std::string& b = std::get<Bytes>(value.storage()).data;
      const std::uint32_t n = checked_length(b.size(), "bytes value");
      packer.pack_bin(n);
      packer.pack_bin_body(b.data(), n);
      return;
    }
    case ValueKind::list: {
      const List& list = std::get<List>(value.storage());
      packer.pack_array(checked_length(list.size(), "list"));
      for (const Value& e : list) pack_value(e, packer, sink);
      return;
    }
    case ValueKind::map: {
      const Map& map = std::get<Map>(value.storage());
      packer.pack_map(checked_length(map.size(), "map"));
      for (const auto& [k, v] : map.entries()) {  // already in key order: canonical
        pack_value(k, packer, sink);
        pack_value(v, packer, sink);
      }
      return;
    }
  }
}

}  // namespace

void encode_value(const Value& value, std::string& out) {
  StringSink sink(out);
  Packer packer(sink);
  pack_value(value, packer, sink);
}

std::string encode_value(const Value& value) {
  std::string out;
  encode_value(value, out);
  return out;
}

void encode_record(const Record& record, std::string& out) {
  StringSink sink(out);
  Packer packer(sink);
  packer.pack_array(checked_length(record.size(), "record"));
  for (const Value& v : record) pack_value(v, packer, sink);
}

std::string encode_record(const Record& record) {
  std::string out;
  encode_record(record, out);
  return out;
}

// ---- Decoding ----

namespace {

// Length of the type byte plus the fixed-size part that follows it (length or number), by
// type byte; str and bin add their payload. Used to keep the offset of the item being
// visited, which msgpack's visitor interface does not pass. Ext types (refused on sight)
// and 0xc1 (never used) are never skipped, so their entries do not matter.
constexpr std::array<std::uint8_t, 256> make_header_sizes() {
  std::array<std::uint8_t, 256> sizes{};
  for (std::size_t b = 0; b < sizes.size(); ++b) {
    switch (b) {
      case 0xc4:  // bin 8
      case 0xcc:  // uint 8
      case 0xd0:  // int 8
      case 0xd9:  // str 8
        sizes[b] = 2;
        break;
      case 0xc5:  // bin 16
      case 0xcd:  // uint 16
      case 0xd1:  // int 16
      case 0xda:  // str 16
      case 0xdc:  // array 16
      case 0xde:  // map 16
        sizes[b] = 3;
        break;
      case 0xc6:  // bin 32
      case 0xca:  // float 32
      case 0xce:  // uint 32
      case 0xd2:  // int 32
      case 0xdb:  // str 32
      case 0xdd:  // array 32
      case 0xdf:  // map 32
        sizes[b] = 5;
        break;
      case 0xcb:  // float 64
      case 0xcf:  // uint 64
      case 0xd3:  // int 64
        sizes[b] = 9;
        break;
      default:  // fixint, fixmap, fixarray, fixstr, nil, false, true
        sizes[b] = 1;
    }
  }
  return sizes;
}

constexpr std::array<std::uint8_t, 256> kHeaderSizes = make_header_sizes();

std::string at_offset(std::size_t offset) {
  return " at offset " + std::to_string(offset);
}

// The msgpack-cxx visitor (msgpack/v2/null_visitor.hpp lists the interface) that builds a
// Value, or a Record, directly from the parser's events. Open lists and maps live on an
// explicit stack bounded by DecodeLimits::max_depth, so nothing here recurses on the input.
//
// Memory is bounded by the input: every element still to come needs at least one byte, so
// `need_` counts the bytes the open containers have claimed, and a container whose claimed
// size does not fit in the bytes left (minus `need_`) is refused before anything is reserved.
class ValueBuilder {
 public:
  ValueBuilder(std::string_view bytes, std::size_t start, const DecodeLimits& limits, bool record)
      : data_(bytes.data()),
        len_(bytes.size()),
        start_(start),
        pos_(start),
        max_depth_(limits.max_depth),
        record_(record) {}

  // --- msgpack visitor interface ---

  bool visit_nil() { return advance(0) && emit(); }
  bool visit_boolean(bool b) { return advance(0) && emit(b); }

  bool visit_positive_integer(std::uint64_t v) {
    const std::size_t at = pos_;
    if (!advance(0)) return false;
    if (v > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      return fail(
          corrupt("integer " + std::to_string(v) + at_offset(at) + " is above the int64 range"));
    }
    return emit(static_cast<std::int64_t>(v));
  }
  // Every signed form (negative fixint, int 8..64), whatever the sign of the value.
  bool visit_negative_integer(std::int64_t v) { return advance(0) && emit(v); }

  bool visit_float32(float f) { return advance(0) && emit(static_cast<double>(f)); }
  bool visit_float64(double d) { return advance(0) && emit(d); }

  bool visit_str(const char* p, std::uint32_t size) {
    if (!advance_payload(p, size)) return false;
    // Built straight from the input; `p` may be null when size is 0.
    return emit(size == 0 ? std::string_view() : std::string_view(p, size));
  }
  bool visit_bin(const char* p, std::uint32_t size) {
    if (!advance_payload(p, size)) return false;
    return size == 0 ? emit(Bytes{}) : emit(Bytes{std::string(p, size)});
  }
  bool visit_ext(const char* /*p*/, std::uint32_t /*size*/) {
    return fail(corrupt("unsupported MessagePack ext type" + at_offset(pos_)));
  }

  bool start_array(std::uint32_t size) { return start_container(false, size); }
  bool start_array_item() { return start_element(); }
  bool end_array_item() { return true; }
  bool end_array() {
    // The popped frame stays in place (frames are reused), so its list can be moved from
    // while emit() fills the parent.
    Frame& done = frames_.pop();
    if (record_ && frames_.empty()) {
      record_result_ = std::move(done.items);
      return true;
    }
    return emit(std::move(done.items));
  }

  bool start_map(std::uint32_t size) { return start_container(true, size); }
  bool start_map_key() { return start_element(); }
  bool end_map_key() { return true; }
  bool start_map_value() { return start_element(); }
  bool end_map_value() { return true; }
  bool end_map() {
    Frame& done = frames_.pop();
    std::vector<Map::Entry>& entries = done.entries;
    auto key_not_less = [](const Map::Entry& a, const Map::Entry& b) {
      return !(a.first < b.first);
    };
    // Canonical encodings are strictly sorted; anything else is sorted here and must still
    // have unique keys.
    if (std::adjacent_find(entries.begin(), entries.end(), key_not_less) != entries.end()) {
      std::sort(entries.begin(), entries.end(),
                [](const Map::Entry& a, const Map::Entry& b) { return a.first < b.first; });
      auto dup = std::adjacent_find(
          entries.begin(), entries.end(),
          [](const Map::Entry& a, const Map::Entry& b) { return a.first == b.first; });
      if (dup != entries.end()) {
        return fail(corrupt("duplicate key " + dup->first.debug_string() + " in the map" +
                            at_offset(done.offset)));
      }
    }
    return emit(Map(std::move(entries)));
  }

  void parse_error(std::size_t /*parsed_offset*/, std::size_t error_offset) {
    fail(corrupt("invalid MessagePack type byte" + at_offset(error_offset)));
  }
  void insufficient_bytes(std::size_t /*parsed_offset*/, std::size_t /*error_offset*/) {
    if (pos_ < len_) {
      fail(corrupt("truncated: the item" + at_offset(pos_) + " runs past the end of the " +
                   std::to_string(len_) + " bytes"));
    } else {
      fail(corrupt("truncated: the input ends" + at_offset(len_) + " before the value that starts" +
                   at_offset(start_) + " is complete"));
    }
  }
  bool referenced() const { return false; }
  void set_referenced(bool /*referenced*/) {}

  // --- results ---

  const Status& error() const { return error_; }
  std::size_t position() const { return pos_; }
  Value take_value() { return std::move(value_result_); }
  Record take_record() { return std::move(record_result_); }

 private:
  // An open array or map.
  struct Frame {
    List items;                       // arrays
    std::vector<Map::Entry> entries;  // maps; while has_key, the last entry awaits its value
    std::size_t offset = 0;           // of the array or map header, for messages
    bool is_map = false;
    bool has_key = false;
  };

  // The open containers, innermost last. The first few frames live inline and every frame is
  // reused, so a record (one or two levels deep) costs no allocation for them.
  class FrameStack {
   public:
    bool empty() const { return depth_ == 0; }
    std::size_t size() const { return depth_; }
    Frame& top() { return at(depth_ - 1); }
    Frame& push() {
      if (depth_ >= kInline && depth_ - kInline == overflow_.size()) overflow_.emplace_back();
      Frame& frame = at(depth_++);
      frame.items.clear();
      frame.entries.clear();
      frame.has_key = false;
      return frame;
    }
    // The frame stays valid until the next push.
    Frame& pop() { return at(--depth_); }

   private:
    static constexpr std::size_t kInline = 4;
    Frame& at(std::size_t i) { return i < kInline ? inline_[i] : overflow_[i - kInline]; }

    std::array<Frame, kInline> inline_;
    std::vector<Frame> overflow_;
    std::size_t depth_ = 0;
  };

  bool fail(Status status) {
    if (error_.ok()) error_ = std::move(status);
    return false;
  }

  // A broken assumption about msgpack-cxx's parser rather than bad input.
  bool lost_track() {
    return fail(Status(StatusCode::internal,
                       "MessagePack decoder lost track of the position" + at_offset(pos_)));
  }

  // Moves past the item at pos_ (type byte, fixed part, then `payload` bytes).
  bool advance(std::size_t payload) {
    if (pos_ >= len_) return lost_track();
    const std::size_t size = kHeaderSizes[static_cast<unsigned char>(data_[pos_])] + payload;
    if (size > len_ - pos_) return lost_track();
    pos_ += size;
    return true;
  }

  // str and bin: the parser hands out a pointer into the input, which must be where the
  // offset says (for empty payloads it may be null or point elsewhere).
  bool advance_payload(const char* p, std::uint32_t size) {
    if (size > 0 && pos_ < len_ &&
        p != data_ + pos_ + kHeaderSizes[static_cast<unsigned char>(data_[pos_])]) {
      return lost_track();
    }
    return advance(size);
  }

  bool start_element() {
    --need_;  // this element is now being read; its own bytes move pos_
    return true;
  }

  bool start_container(bool is_map, std::uint32_t size) {
    const std::size_t at = pos_;
    if (!advance(0)) return false;
    const char* kind = is_map ? "map" : "array";
    if (record_ && frames_.empty() && is_map) {
      return fail(corrupt("a record must be an array, found a map" + at_offset(at)));
    }
    if (frames_.size() >= max_depth_) {
      return fail(corrupt(std::string(kind) + at_offset(at) + " nests deeper than the limit of " +
                          std::to_string(max_depth_)));
    }
    // Each array element needs at least one byte, each map entry two.
    const std::size_t claimed = is_map ? 2 * std::size_t{size} : std::size_t{size};
    const std::size_t left = len_ - pos_;
    const std::size_t room = left > need_ ? left - need_ : 0;
    if (claimed > room) {
      return fail(corrupt("truncated: " + std::string(kind) + at_offset(at) + " claims " +
                          std::to_string(size) + (is_map ? " entries" : " elements") +
                          " but only " + std::to_string(room) + " bytes remain for them"));
    }
    need_ += claimed;
    Frame& frame = frames_.push();
    frame.is_map = is_map;
    frame.offset = at;
    if (is_map) {
      frame.entries.reserve(size);
    } else {
      frame.items.reserve(size);
    }
    return true;
  }

  // Adds a decoded value, constructed in place from `args`, to the innermost open container
  // (or makes it the result).
  template <typename... Args>
  bool emit(Args&&... args) {
    if (frames_.empty()) {
      if (record_) {
        const Value v(std::forward<Args>(args)...);
        return fail(corrupt("a record must be an array, found a " +
                            std::string(value_kind_name(v.kind())) + at_offset(start_)));
      }
      value_result_ = Value(std::forward<Args>(args)...);
      return true;
    }
    Frame& top = frames_.top();
    if (!top.is_map) {
      top.items.emplace_back(std::forward<Args>(args)...);
    } else if (!top.has_key) {
      top.entries.emplace_back(std::piecewise_construct,
                               std::forward_as_tuple(std::forward<Args>(args)...),
                               std::forward_as_tuple());
      top.has_key = true;
    } else {
      top.entries.back().second = Value(std::forward<Args>(args)...);
      top.has_key = false;
    }
    return true;
  }

  const char* data_;
  std::size_t len_;
  std::size_t start_;
  std::size_t pos_;
  std::size_t need_ = 0;
  std::size_t max_depth_;
  bool record_;
  FrameStack frames_;
  Value value_result_;
  Record record_result_;
  Status error_;
};

// Runs msgpack-cxx's parser over one value at `offset`; on success advances `offset`.
Status run_parser(std::string_view bytes, std::size_t& offset, ValueBuilder& builder) {
  std::size_t off = offset;
  bool parsed = false;
  try {
    parsed = msgpack::v2::parse(bytes.data(), bytes.size(), off, builder);
  } catch (const std::bad_alloc&) {
    return Status(StatusCode::internal,
                  "out of memory decoding MessagePack" + at_offset(builder.position()));
  } catch (const std::exception& e) {
    return corrupt(std::string("MessagePack parser: ") + e.what() + at_offset(builder.position()));
  } catch (...) {
    return Status(StatusCode::internal,
                  "unknown exception decoding MessagePack" + at_offset(builder.position()));
  }
  if (!parsed) {
    if (!builder.error().ok()) return builder.error();
    return Status(StatusCode::internal,
                  "MessagePack parser stopped without saying why" + at_offset(builder.position()));
  }
  if (off != builder.position()) {
    return Status(StatusCode::internal, "MessagePack decoder ended" +
                                            at_offset(builder.position()) + " but the parser" +
                                            at_offset(off));
  }
  offset = off;
  return Status::Ok();
}

Status check_start(std::string_view bytes, std::size_t offset) {
  if (offset > bytes.size()) {
    return invalid_argument("decode offset " + std::to_string(offset) + " is past the end of " +
                            std::to_string(bytes.size()) + " bytes");
  }
  if (offset == bytes.size()) {
    return corrupt("truncated: no value" + at_offset(offset) + " (end of input)");
  }
  return Status::Ok();
}

Status check_no_trailing_bytes(std::string_view bytes, std::size_t end) {
  if (end == bytes.size()) return Status::Ok();
  return corrupt(std::to_string(bytes.size() - end) + " trailing bytes after the value" +
                 at_offset(end));
}

// ---- Fast path for records ----
//
// Records are arrays of mostly scalar values, and the snapshot loader and the watch decode
// millions of them. This reads such an array directly, without the parser's visitor machinery:
// scalars are built in place and nested lists or maps go through decode_value_at. It accepts
// exactly what the general decoder accepts; on anything unusual (a malformed or truncated
// item, an ext type, an integer above the int64 range, a claim larger than the input) it gives
// up and leaves `offset` alone, so that the general decoder runs and reports the error with
// its usual wording.
class FastRecordReader {
 public:
  FastRecordReader(std::string_view bytes, std::size_t offset)
      : p_(reinterpret_cast<const unsigned char*>(bytes.data())),
        len_(bytes.size()),
        pos_(offset),
        bytes_(bytes) {}

  bool read(const DecodeLimits& limits, Record& out) {
    std::uint64_t count = 0;
    if (!array_header(count)) return false;
    // Each element takes at least one byte (what the general decoder checks, too).
    if (count > len_ - pos_ || limits.max_depth < 1) return false;
    out.clear();
    out.reserve(static_cast<std::size_t>(count));
    const DecodeLimits inner{.max_depth = limits.max_depth - 1};
    for (std::uint64_t i = 0; i < count; ++i) {
      if (!element(inner, out)) return false;
    }
    return true;
  }

  std::size_t position() const { return pos_; }

 private:
  bool have(std::size_t n) const { return n <= len_ - pos_; }

  // Big-endian unsigned integer of `n` bytes at pos_ (the caller checked they are there).
  std::uint64_t be(std::size_t n) {
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < n; ++i) v = (v << 8) | p_[pos_ + i];
    pos_ += n;
    return v;
  }

  bool array_header(std::uint64_t& count) {
    if (!have(1)) return false;
    const unsigned char b = p_[pos_];
    if (b >= 0x90 && b <= 0x9f) {
      ++pos_;
      count = b & 0x0f;
      return true;
    }
    const std::size_t n = b == 0xdc ? 2 : b == 0xdd ? 4 : 0;
    if (n == 0 || !have(1 + n)) return false;
    ++pos_;
    count = be(n);
    return true;
  }

  // A str or bin payload of `n` bytes at pos_.
  bool payload(std::size_t n, std::string_view& out) {
    if (!have(n)) return false;
    out = bytes_.substr(pos_, n);
    pos_ += n;
    return true;
  }

  bool element(const DecodeLimits& inner, Record& out) {
    if (!have(1)) return false;
    const unsigned char b = p_[pos_];
    if (b <= 0x7f) {  // positive fixint
      ++pos_;
      out.emplace_back(static_cast<std::int64_t>(b));
      return true;
    }
    if (b >= 0xe0) {  // negative fixint
      ++pos_;
      out.emplace_back(static_cast<std::int64_t>(static_cast<std::int8_t>(b)));
      return true;
    }
    if (b >= 0xa0 && b <= 0xbf) {  // fixstr
      ++pos_;
      std::string_view s;
      if (!payload(b & 0x1f, s)) return false;
      out.emplace_back(s);
      return true;
    }
    if (b <= 0x9f || b == 0xdc || b == 0xdd || b == 0xde || b == 0xdf) {
      // fixmap, fixarray, array 16/32, map 16/32: nested values take the general path.
      std::size_t at = pos_;
      auto nested = decode_value_at(bytes_, at, inner);
      if (!nested.ok()) return false;
      pos_ = at;
      out.push_back(std::move(*nested));
      return true;
    }
    const std::size_t fixed = kHeaderSizes[b] - 1;  // bytes after the type byte
    if (!have(1 + fixed)) return false;
    ++pos_;
    switch (b) {
      case 0xc0:
        out.emplace_back();
        return true;
      case 0xc2:
        out.emplace_back(false);
        return true;
      case 0xc3:
        out.emplace_back(true);
        return true;
      case 0xcc:
      case 0xcd:
      case 0xce:
        out.emplace_back(static_cast<std::int64_t>(be(fixed)));
        return true;
      case 0xcf: {
        const std::uint64_t v = be(8);
        if (v > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) return false;
        out.emplace_back(static_cast<std::int64_t>(v));
        return true;
      }
      case 0xd0:
        out.emplace_back(static_cast<std::int64_t>(static_cast<std::int8_t>(be(1))));
        return true;
      case 0xd1:
        out.emplace_back(static_cast<std::int64_t>(static_cast<std::int16_t>(be(2))));
        return true;
      case 0xd2:
        out.emplace_back(static_cast<std::int64_t>(static_cast<std::int32_t>(be(4))));
        return true;
      case 0xd3:
        out.emplace_back(static_cast<std::int64_t>(be(8)));
        return true;
      case 0xca:
        out.emplace_back(
            static_cast<double>(std::bit_cast<float>(static_cast<std::uint32_t>(be(4)))));
        return true;
      case 0xcb:
        out.emplace_back(std::bit_cast<double>(be(8)));
        return true;
      case 0xd9:
      case 0xda:
      case 0xdb: {
        std::string_view s;
        if (!payload(static_cast<std::size_t>(be(fixed)), s)) return false;
        out.emplace_back(s);
        return true;
      }
      case 0xc4:
      case 0xc5:
      case 0xc6: {
        std::string_view s;
        if (!payload(static_cast<std::size_t>(be(fixed)), s)) return false;
        out.emplace_back(Bytes{std::string(s)});
        return true;
      }
      default:  // 0xc1 (never used) and the ext types: the general decoder refuses them
        return false;
    }
  }

  const unsigned char* p_;
  std::size_t len_;
  std::size_t pos_;
  std::string_view bytes_;
};

// True when the fast path decoded the record at `offset` (and advanced it).
// Out of memory (allocations are bounded by the input, so only a real shortage) makes it give
// up, and the general decoder reports it as it does.
bool decode_record_fast(std::string_view bytes, std::size_t& offset, const DecodeLimits& limits,
                        Record& out) {
  FastRecordReader reader(bytes, offset);
  try {
    if (!reader.read(limits, out)) return false;
  } catch (const std::bad_alloc&) {
    return false;
  }
  offset = reader.position();
  return true;
}

}  // namespace

Result<Value> decode_value_at(std::string_view bytes, std::size_t& offset,
                              const DecodeLimits& limits) {
  MISHKA_RETURN_IF_ERROR(check_start(bytes, offset));
  ValueBuilder builder(bytes, offset, limits, /*record=*/false);
  MISHKA_RETURN_IF_ERROR(run_parser(bytes, offset, builder));
  return builder.take_value();
}

Result<Value> decode_value(std::string_view bytes, const DecodeLimits& limits) {
  std::size_t offset = 0;
  Result<Value> value = decode_value_at(bytes, offset, limits);
  if (!value.ok()) return value;
  MISHKA_RETURN_IF_ERROR(check_no_trailing_bytes(bytes, offset));
  return value;
}

Result<Record> decode_record_at(std::string_view bytes, std::size_t& offset,
                                const DecodeLimits& limits) {
  MISHKA_RETURN_IF_ERROR(check_start(bytes, offset));
  Record fast;
  if (decode_record_fast(bytes, offset, limits, fast)) return fast;
  ValueBuilder builder(bytes, offset, limits, /*record=*/true);
  MISHKA_RETURN_IF_ERROR(run_parser(bytes, offset, builder));
  return builder.take_record();
}

bool skip_value_at(std::string_view bytes, std::size_t& offset) {
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  const std::size_t len = bytes.size();
  std::size_t pos = offset;
  // Values still to skip: containers add their elements (arrays) or keys and values (maps).
  // Each needs at least one byte, which bounds the count by the input.
  std::uint64_t pending = 1;
  while (pending > 0) {
    if (pos >= len || pending > len - pos) return false;
    --pending;
    const unsigned char b = p[pos];
    const std::size_t header = kHeaderSizes[b];
    if (header > len - pos) return false;
    std::uint64_t length = 0;  // the big-endian field after the type byte, if any
    for (std::size_t i = 1; i < header; ++i) length = (length << 8) | p[pos + i];
    pos += header;
    std::uint64_t payload = 0;
    if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3 || (b >= 0xca && b <= 0xd3)) {
      // fixints, nil, booleans, floats, ints: all in the header
    } else if (b >= 0xa0 && b <= 0xbf) {
      payload = b & 0x1f;
    } else if (b >= 0x90 && b <= 0x9f) {
      pending += b & 0x0f;
    } else if (b >= 0x80 && b <= 0x8f) {
      pending += 2 * std::uint64_t{b & 0x0fu};
    } else if (b == 0xdc || b == 0xdd) {
      pending += length;
    } else if (b == 0xde || b == 0xdf) {
      pending += 2 * length;
    } else if ((b >= 0xc4 && b <= 0xc6) || (b >= 0xd9 && b <= 0xdb)) {
      payload = length;
    } else {
      return false;  // 0xc1 and the ext types
    }
    if (payload > len - pos) return false;
    pos += static_cast<std::size_t>(payload);
  }
  offset = pos;
  return true;
}

Result<Record> decode_record(std::string_view bytes, const DecodeLimits& limits) {
  std::size_t offset = 0;
  Result<Record> record = decode_record_at(bytes, offset, limits);
  if (!record.ok()) return record;
  MISHKA_RETURN_IF_ERROR(check_no_trailing_bytes(bytes, offset));
  return record;
}

}  // namespace mishka
