// decode_value on arbitrary bytes. A refusal must be `corrupt`; a value must survive
// encode -> decode unchanged, and its encoding must be a fixed point (canonical).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/codec.h"
#include "fuzz_check.h"

using mishka::fuzz::check;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);

  mishka::Result<mishka::Value> value = mishka::decode_value(bytes);
  if (!value.ok()) {
    mishka::fuzz::check_refusal(value.status());
  } else {
    const std::string encoded = mishka::encode_value(*value);
    mishka::Result<mishka::Value> again = mishka::decode_value(encoded);
    check(again.ok(), "re-encoded value does not decode: " + again.status().to_string());
    check(*again == *value, "round trip changed " + value->debug_string());
    check((*again <=> *value) == 0, "order disagrees with equality");
    check(mishka::encode_value(*again) == encoded, "encoding is not canonical");
    (void)value->debug_string();
  }

  // The same bytes as a stream of values: each success advances, the first error stops.
  std::size_t offset = 0;
  while (offset < bytes.size()) {
    const std::size_t before = offset;
    mishka::Result<mishka::Value> next = mishka::decode_value_at(bytes, offset);
    if (!next.ok()) {
      mishka::fuzz::check_refusal(next.status());
      check(offset == before, "offset moved on error");
      break;
    }
    check(offset > before && offset <= bytes.size(), "offset did not advance within bounds");
  }
  return 0;
}
