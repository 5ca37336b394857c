// SHA-256 over OpenSSL's EVP interface, reusable across many small inputs (the digest hashes
// every record, so the per-call setup cost matters).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string_view>

struct evp_md_st;
struct evp_md_ctx_st;

namespace mishka {

using Sha256Digest = std::array<std::uint8_t, 32>;

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  // Starts a new digest, discarding any unfinished one.
  void reset();
  void update(std::string_view bytes);
  Sha256Digest finish();

  // One-shot convenience.
  static Sha256Digest of(std::string_view bytes);

 private:
  evp_md_st* md_;
  evp_md_ctx_st* ctx_;
};

}  // namespace mishka
