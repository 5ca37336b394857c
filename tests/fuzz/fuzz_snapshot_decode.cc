// decode_snapshot on arbitrary bytes. Random bytes almost never carry a valid SHA-256, so
// when the first byte is even the rest is taken as a snapshot body and wrapped in a valid
// header and checksum (docs/formats.md, "Snapshot"): that is what reaches the body decoder.
// Inputs starting with 'M' (odd), like real snapshot files, are decoded as they are.
// A decoded snapshot must re-encode to one that decodes to the same digest and revision.
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/sha256.h"
#include "fuzz_check.h"
#include "store/snapshot.h"

using mishka::fuzz::check;

namespace {

void put_be(std::string& out, std::uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out += static_cast<char>(v >> (8 * i));
}

std::string wrap_body(std::string_view body) {
  std::string out = "MISHKASN";
  put_be(out, mishka::store::kSnapshotFormatVersion, 4);
  put_be(out, 42, 8);  // revision
  put_be(out, body.size(), 8);
  out += body;
  const mishka::Sha256Digest sum = mishka::Sha256::of(out);
  out.append(reinterpret_cast<const char*>(sum.data()), sum.size());
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  std::string wrapped;
  if (!bytes.empty() && (data[0] & 1) == 0) {
    wrapped = wrap_body(bytes.substr(1));
    bytes = wrapped;
  }

  auto decoded = mishka::store::decode_snapshot(bytes);
  if (!decoded.ok()) {
    mishka::fuzz::check_refusal(decoded.status());
    return 0;
  }
  const std::string digest = decoded->catalog.digest_hex();
  const std::string encoded = mishka::store::encode_snapshot(decoded->catalog, decoded->revision);
  auto again = mishka::store::decode_snapshot(encoded);
  check(again.ok(), "re-encoded snapshot does not decode: " + again.status().to_string());
  check(again->revision == decoded->revision, "revision changed");
  check(again->catalog.digest_hex() == digest, "catalog digest changed");
  return 0;
}
