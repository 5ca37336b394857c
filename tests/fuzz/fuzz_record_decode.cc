// decode_record on arbitrary bytes, with the same round-trip and canonical-form checks as
// fuzz_value_decode, and decode_record_at over the bytes as a stream of records.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/codec.h"
#include "fuzz_check.h"

using mishka::fuzz::check;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);

  mishka::Result<mishka::Record> record = mishka::decode_record(bytes);
  if (!record.ok()) {
    mishka::fuzz::check_refusal(record.status());
  } else {
    const std::string encoded = mishka::encode_record(*record);
    mishka::Result<mishka::Record> again = mishka::decode_record(encoded);
    check(again.ok(), "re-encoded record does not decode: " + again.status().to_string());
    check(*again == *record, "round trip changed the record");
    check(mishka::encode_record(*again) == encoded, "encoding is not canonical");
    // A record and the list of its values decode alike.
    mishka::Result<mishka::Value> as_value = mishka::decode_value(bytes);
    check(as_value.ok() && *as_value == mishka::Value(*record),
          "decode_value disagrees with decode_record");
  }

  std::size_t offset = 0;
  while (offset < bytes.size()) {
    const std::size_t before = offset;
    mishka::Result<mishka::Record> next = mishka::decode_record_at(bytes, offset);
    if (!next.ok()) {
      mishka::fuzz::check_refusal(next.status());
      check(offset == before, "offset moved on error");
      break;
    }
    check(offset > before && offset <= bytes.size(), "offset did not advance within bounds");
  }
  return 0;
}
