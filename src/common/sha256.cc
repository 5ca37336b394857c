#include "common/sha256.h"

#include <openssl/evp.h>

#include <cstdio>
#include <cstdlib>

namespace mishka {
namespace {

// OpenSSL fails here only when out of memory or misinstalled; there is nothing sensible to
// return to a caller that asked for a digest, so stop loudly.
[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "mishka: OpenSSL SHA-256 failed in %s\n", what);
  std::abort();
}

}  // namespace

Sha256::Sha256() : md_(EVP_MD_fetch(nullptr, "SHA256", nullptr)), ctx_(EVP_MD_CTX_new()) {
  if (md_ == nullptr || ctx_ == nullptr) die("setup");
  reset();
}

Sha256::~Sha256() {
  EVP_MD_CTX_free(ctx_);
  EVP_MD_free(md_);
}

void Sha256::reset() {
  if (EVP_DigestInit_ex2(ctx_, md_, nullptr) != 1) die("init");
}

void Sha256::update(std::string_view bytes) {
  if (EVP_DigestUpdate(ctx_, bytes.data(), bytes.size()) != 1) die("update");
}

Sha256Digest Sha256::finish() {
  Sha256Digest out{};
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(ctx_, out.data(), &len) != 1 || len != out.size()) die("final");
  reset();
  return out;
}

Sha256Digest Sha256::of(std::string_view bytes) {
  Sha256 h;
  h.update(bytes);
  return h.finish();
}

}  // namespace mishka
