#include "engine/tls_material.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "common/files.h"
#include "common/sha256.h"
#include "engine/member_health.h"

namespace mishka::engine {
namespace {

// The derivation's fixed inputs (docs/security.md). Changing any of them changes every derived
// CA: a new derivation gets a new version, never an edit of these.
constexpr std::string_view kHkdfSalt = "mishka cluster CA salt v1";
constexpr std::string_view kHkdfInfo = "mishka cluster CA Ed25519 key v1";
constexpr std::size_t kEd25519SeedBytes = 32;
constexpr std::size_t kSerialBytes = 16;
constexpr std::size_t kFingerprintBytes = 8;
constexpr const char* kCaNotBefore = "20200101000000Z";
constexpr const char* kCaNotAfter = "99991231235959Z";
constexpr int kNodeCertDays = 3650;
constexpr long kNodeCertBackdateSeconds = 24 * 60 * 60;  // tolerates clocks a day behind
constexpr std::size_t kMaxCommonNameBytes = 64;          // ub-common-name, RFC 5280
constexpr std::size_t kHeadBytesKept = 64;  // what a probe keeps of a peer's first bytes
// How long a probe waits after its handshake for the peer to accept or refuse our certificate
// on its own, before it asks for an answer.
constexpr std::chrono::milliseconds kAcceptanceWait{500};

template <auto Free>
struct Freer {
  template <typename T>
  void operator()(T* p) const {
    Free(p);
  }
};
using BioPtr = std::unique_ptr<BIO, Freer<BIO_free_all>>;
using X509Ptr = std::unique_ptr<X509, Freer<X509_free>>;
using KeyPtr = std::unique_ptr<EVP_PKEY, Freer<EVP_PKEY_free>>;
using NamePtr = std::unique_ptr<X509_NAME, Freer<X509_NAME_free>>;
using StorePtr = std::unique_ptr<X509_STORE, Freer<X509_STORE_free>>;
using StoreCtxPtr = std::unique_ptr<X509_STORE_CTX, Freer<X509_STORE_CTX_free>>;
using BignumPtr = std::unique_ptr<BIGNUM, Freer<BN_free>>;
using KdfPtr = std::unique_ptr<EVP_KDF, Freer<EVP_KDF_free>>;
using KdfCtxPtr = std::unique_ptr<EVP_KDF_CTX, Freer<EVP_KDF_CTX_free>>;
using SslCtxPtr = std::unique_ptr<SSL_CTX, Freer<SSL_CTX_free>>;
using SslPtr = std::unique_ptr<SSL, Freer<SSL_free>>;
using GeneralNamesPtr = std::unique_ptr<GENERAL_NAMES, Freer<GENERAL_NAMES_free>>;

// Everything OpenSSL queued on this thread, oldest first; empties the queue.
std::string openssl_errors() {
  std::string out;
  char buffer[256];
  while (const unsigned long e = ERR_get_error()) {
    ERR_error_string_n(e, buffer, sizeof(buffer));
    if (!out.empty()) out += "; ";
    out += buffer;
  }
  return out.empty() ? "no detail from OpenSSL" : out;
}

Status openssl_failure(const std::string& what) {
  return Status(StatusCode::internal, what + ": " + openssl_errors());
}

// A PEM password callback that refuses: OpenSSL's default would prompt on the terminal.
int no_password(char*, int, int, void*) {
  return -1;
}

std::string hex(const unsigned char* bytes, std::size_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (std::size_t i = 0; i < n; ++i) {
    out += kDigits[bytes[i] >> 4];
    out += kDigits[bytes[i] & 0xf];
  }
  return out;
}

BioPtr memory_bio(std::string_view text) {
  return BioPtr(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
}

std::string drain(BIO* bio) {
  std::string out(BIO_ctrl_pending(bio), '\0');
  if (!out.empty()) {
    const int n = BIO_read(bio, out.data(), static_cast<int>(out.size()));
    out.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
  }
  return out;
}

// A PEM object read with `Read` (PEM_read_bio_X509, PEM_read_bio_PrivateKey); `what` names the
// source in messages (a file, "the CA certificate", ...), `kind` what was expected.
template <typename Ptr, auto Read>
Result<Ptr> parse_pem(std::string_view pem, const std::string& what, const char* kind) {
  BioPtr bio = memory_bio(pem);
  Ptr out(bio ? Read(bio.get(), nullptr, no_password, nullptr) : nullptr);
  if (!out) return invalid_argument(what + ": no " + kind + " (" + openssl_errors() + ")");
  return out;
}

Result<X509Ptr> parse_cert(std::string_view pem, const std::string& what) {
  return parse_pem<X509Ptr, PEM_read_bio_X509>(pem, what, "PEM certificate");
}

Result<KeyPtr> parse_key(std::string_view pem, const std::string& what) {
  return parse_pem<KeyPtr, PEM_read_bio_PrivateKey>(pem, what, "unencrypted PEM private key");
}

Result<std::string> cert_to_pem(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509(bio.get(), cert) != 1) {
    return openssl_failure("encoding a certificate");
  }
  return drain(bio.get());
}

// Unencrypted PKCS#8, the same bytes for the same key.
Result<std::string> key_to_pem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio ||
      PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return openssl_failure("encoding a private key");
  }
  return drain(bio.get());
}

// "CN=...,O=..." for messages.
std::string name_text(const X509_NAME* name) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253) < 0) return "?";
  return drain(bio.get());
}

Status add_name_entry(X509_NAME* name, const char* field, std::string_view value) {
  if (X509_NAME_add_entry_by_txt(name, field, MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(value.data()),
                                 static_cast<int>(value.size()), -1, 0) != 1) {
    return invalid_argument(std::string("certificate name field ") + field + " '" +
                            std::string(value) + "': " + openssl_errors());
  }
  return Status::Ok();
}

// An extension in OpenSSL's configuration syntax ("critical,CA:TRUE"); `issuer` is the signing
// certificate (for authorityKeyIdentifier), `cert` itself when self-signed.
Status add_extension(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_nconf_nid(nullptr, &ctx, nid, value);
  if (ext == nullptr) {
    return openssl_failure(std::string("certificate extension ") + OBJ_nid2sn(nid) + "=" + value);
  }
  const int added = X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
  if (added != 1) return openssl_failure(std::string("adding extension ") + OBJ_nid2sn(nid));
  return Status::Ok();
}

// A positive serial of kSerialBytes bytes: the top bit cleared (DER integers are signed) and
// the next one set, so that it is never zero and always encodes to the same length.
Status set_serial(X509* cert, std::array<unsigned char, kSerialBytes> bytes) {
  bytes[0] = static_cast<unsigned char>((bytes[0] & 0x7f) | 0x40);
  BignumPtr bn(BN_bin2bn(bytes.data(), static_cast<int>(bytes.size()), nullptr));
  if (!bn || BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(cert)) == nullptr) {
    return openssl_failure("setting a serial number");
  }
  return Status::Ok();
}

// Signs with the key's own default digest (SHA-256 for RSA and EC keys; none for Ed25519 and
// Ed448, which hash internally).
Status sign(X509* cert, EVP_PKEY* key) {
  char digest_name[80] = {};
  if (EVP_PKEY_get_default_digest_name(key, digest_name, sizeof(digest_name)) <= 0) {
    return openssl_failure("choosing a digest for the CA key");
  }
  const EVP_MD* md = nullptr;
  if (std::strcmp(digest_name, "UNDEF") != 0) {
    md = EVP_get_digestbyname(digest_name);
    if (md == nullptr) return openssl_failure(std::string("unknown digest ") + digest_name);
  }
  if (X509_sign(cert, key, md) <= 0) return openssl_failure("signing a certificate");
  return Status::Ok();
}

Result<KeyPtr> key_from_cookie(std::string_view cookie) {
  KdfPtr kdf(EVP_KDF_fetch(nullptr, OSSL_KDF_NAME_HKDF, nullptr));
  KdfCtxPtr kctx(kdf ? EVP_KDF_CTX_new(kdf.get()) : nullptr);
  if (!kctx) return openssl_failure("HKDF unavailable");
  const OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, const_cast<char*>("SHA256"), 0),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, const_cast<char*>(cookie.data()),
                                        cookie.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, const_cast<char*>(kHkdfSalt.data()),
                                        kHkdfSalt.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, const_cast<char*>(kHkdfInfo.data()),
                                        kHkdfInfo.size()),
      OSSL_PARAM_construct_end(),
  };
  std::array<unsigned char, kEd25519SeedBytes> seed{};
  if (EVP_KDF_derive(kctx.get(), seed.data(), seed.size(), params) != 1) {
    return openssl_failure("HKDF of the cookie");
  }
  KeyPtr key(
      EVP_PKEY_new_raw_private_key_ex(nullptr, "ED25519", nullptr, seed.data(), seed.size()));
  OPENSSL_cleanse(seed.data(), seed.size());
  if (!key) return openssl_failure("Ed25519 key from the derived seed");
  return key;
}

Status check_ip_literal(std::string_view host, const char* what) {
  unsigned char buffer[sizeof(in6_addr)];
  const std::string text(host);
  if (::inet_pton(AF_INET, text.c_str(), buffer) != 1 &&
      ::inet_pton(AF_INET6, text.c_str(), buffer) != 1) {
    return invalid_argument(std::string(what) + " '" + text +
                            "' is not an IPv4 or IPv6 address literal");
  }
  return Status::Ok();
}

// The addresses a node certificate names for `host_ip` (see issue_node_certificate()).
std::vector<std::string> node_addresses(std::string_view host_ip) {
  std::vector<std::string> out = {std::string(host_ip)};
  in_addr v4;
  if (::inet_pton(AF_INET, out[0].c_str(), &v4) == 1) {
    const std::uint32_t address = ntohl(v4.s_addr);
    if ((address >> 24) == 127 && address != INADDR_LOOPBACK) out.emplace_back("127.0.0.1");
  }
  return out;
}

// The addresses as the bytes a certificate holds, sorted, for comparing.
std::vector<std::string> address_bytes(const std::vector<std::string>& addresses) {
  std::vector<std::string> out;
  for (const std::string& a : addresses) {
    unsigned char buffer[sizeof(in6_addr)];
    if (::inet_pton(AF_INET, a.c_str(), buffer) == 1) {
      out.emplace_back(reinterpret_cast<const char*>(buffer), sizeof(in_addr));
    } else if (::inet_pton(AF_INET6, a.c_str(), buffer) == 1) {
      out.emplace_back(reinterpret_cast<const char*>(buffer), sizeof(in6_addr));
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> cert_ip_addresses(X509* cert) {
  std::vector<std::string> out;
  GeneralNamesPtr names(
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr)));
  for (int i = 0; names && i < sk_GENERAL_NAME_num(names.get()); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names.get(), i);
    if (name->type != GEN_IPADD) continue;
    const ASN1_OCTET_STRING* ip = name->d.iPAddress;
    out.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(ip)),
                     static_cast<std::size_t>(ASN1_STRING_length(ip)));
  }
  std::sort(out.begin(), out.end());
  return out;
}

Result<NamePtr> node_subject(std::string_view node_name) {
  NamePtr name(X509_NAME_new());
  if (!name) return openssl_failure("allocating a name");
  MISHKA_RETURN_IF_ERROR(add_name_entry(name.get(), "CN", node_name));
  return name;
}

Status check_node_name(std::string_view node_name) {
  if (node_name.empty()) return invalid_argument("node certificate: the node name is empty");
  if (node_name.size() > kMaxCommonNameBytes) {
    return invalid_argument("node certificate: node name '" + std::string(node_name) + "' is " +
                            std::to_string(node_name.size()) + " bytes; a certificate CN holds " +
                            std::to_string(kMaxCommonNameBytes));
  }
  if (node_name.find('\0') != std::string_view::npos) {
    return invalid_argument("node certificate: the node name contains a NUL byte");
  }
  return Status::Ok();
}

// The CA, parsed and checked to go with its key.
struct ParsedCa {
  X509Ptr cert;
  KeyPtr key;
};

Result<ParsedCa> parse_ca(const CaMaterial& ca) {
  Result<X509Ptr> cert = parse_cert(ca.cert_pem, "CA certificate");
  if (!cert.ok()) return cert.status();
  Result<KeyPtr> key = parse_key(ca.key_pem, "CA key");
  if (!key.ok()) return key.status();
  if (X509_check_private_key(cert->get(), key->get()) != 1) {
    ERR_clear_error();
    return invalid_argument("the CA key does not belong to the CA certificate");
  }
  return ParsedCa{std::move(cert).value(), std::move(key).value()};
}

// Empty when `cert` verifies against `ca` now; otherwise why not.
std::string verify_against(X509* ca, X509* cert) {
  StorePtr store(X509_STORE_new());
  StoreCtxPtr ctx(X509_STORE_CTX_new());
  if (!store || !ctx || X509_STORE_add_cert(store.get(), ca) != 1 ||
      X509_STORE_CTX_init(ctx.get(), store.get(), cert, nullptr) != 1) {
    return "cannot set up a verification: " + openssl_errors();
  }
  if (X509_verify_cert(ctx.get()) == 1) return {};
  ERR_clear_error();
  return X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx.get()));
}

std::string mode_text(mode_t mode) {
  char buffer[8];
  std::snprintf(buffer, sizeof(buffer), "%04o", static_cast<unsigned>(mode & 07777));
  return buffer;
}

// Reads a whole file for load_operator_ca(); `role` is "CA certificate" or "CA key".
Result<std::string> read_operator_file(const std::string& path, const char* role) {
  Result<std::optional<std::string>> text = read_file_if_exists(path);
  if (!text.ok()) return text.status().with_context(std::string("operator ") + role + ": ");
  if (!text->has_value()) {
    return not_found(std::string("operator ") + role + " file " + path + " does not exist");
  }
  return std::move(**text);
}

// Empty when <paths> hold TLS material to keep for this CA, node and host (ensure_node_tls);
// otherwise why they do not. Fills `files` when they do.
std::string reusable(const MemberTls& paths, const ParsedCa& ca, const std::string& ca_pem,
                     std::string_view node_name, std::string_view host_ip, TlsFiles* files) {
  Result<std::optional<std::string>> ca_text = read_file_if_exists(paths.ca_file);
  Result<std::optional<std::string>> cert_text = read_file_if_exists(paths.cert_file);
  Result<std::optional<std::string>> key_text = read_file_if_exists(paths.key_file);
  for (const auto* r : {&ca_text, &cert_text, &key_text}) {
    if (!r->ok()) return r->status().message();
  }
  if (!ca_text->has_value() || !cert_text->has_value() || !key_text->has_value()) {
    return "no complete set of files";
  }
  if (**ca_text != ca_pem) return paths.ca_file + " holds another CA";
  Result<X509Ptr> cert = parse_cert(**cert_text, paths.cert_file);
  if (!cert.ok()) return cert.status().message();
  if (const std::string why = verify_against(ca.cert.get(), cert->get()); !why.empty()) {
    return paths.cert_file + " does not verify against the CA (" + why + ")";
  }
  Result<NamePtr> subject = node_subject(node_name);
  if (!subject.ok()) return subject.status().message();
  if (X509_NAME_cmp(X509_get_subject_name(cert->get()), subject->get()) != 0) {
    return paths.cert_file + " names " + name_text(X509_get_subject_name(cert->get())) +
           ", not CN=" + std::string(node_name);
  }
  if (cert_ip_addresses(cert->get()) != address_bytes(node_addresses(host_ip))) {
    return paths.cert_file + " does not name exactly the addresses of " + std::string(host_ip);
  }
  std::time_t renew_at =
      std::time(nullptr) +
      std::chrono::duration_cast<std::chrono::seconds>(kNodeCertRenewBefore).count();
  if (X509_cmp_time(X509_get0_notAfter(cert->get()), &renew_at) <= 0) {
    return paths.cert_file + " expires within " +
           std::to_string(
               std::chrono::duration_cast<std::chrono::hours>(kNodeCertRenewBefore).count() / 24) +
           " days";
  }
  struct stat st;
  if (::stat(paths.key_file.c_str(), &st) != 0) {
    return "cannot stat " + paths.key_file + ": " + std::strerror(errno);
  }
  if ((st.st_mode & 0777) != 0600) {
    return paths.key_file + " is not private (mode " + mode_text(st.st_mode) +
           "); its key may have been read";
  }
  Result<KeyPtr> key = parse_key(**key_text, paths.key_file);
  if (!key.ok()) return key.status().message();
  if (X509_check_private_key(cert->get(), key->get()) != 1) {
    ERR_clear_error();
    return paths.key_file + " does not hold the key of " + paths.cert_file;
  }
  *files = TlsFiles{.ca_pem = std::move(**ca_text),
                    .cert_pem = std::move(**cert_text),
                    .key_pem = std::move(**key_text)};
  return {};
}

}  // namespace

Status validate_cookie(std::string_view cookie) {
  if (cookie.empty()) return invalid_argument("cookie is empty");
  if (cookie.size() < kMinCookieBytes) {
    return invalid_argument("cookie is " + std::to_string(cookie.size()) +
                            " bytes; it needs at least " + std::to_string(kMinCookieBytes));
  }
  if (cookie.size() > kMaxCookieBytes) {
    return invalid_argument("cookie is " + std::to_string(cookie.size()) + " bytes; at most " +
                            std::to_string(kMaxCookieBytes) + " are allowed");
  }
  for (std::size_t i = 0; i < cookie.size(); ++i) {
    const auto c = static_cast<unsigned char>(cookie[i]);
    if (c < 0x20 || c == 0x7f) {
      char code[8];
      std::snprintf(code, sizeof(code), "0x%02x", c);
      return invalid_argument("cookie byte " + std::to_string(i) + " is a control character (" +
                              code + "); a cookie is printable text");
    }
  }
  return Status::Ok();
}

Result<std::string> read_cookie_file(const std::string& path) {
  // O_NONBLOCK: a FIFO in place of the file must not hang the open (it is refused below).
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) {
    const int err = errno;
    if (err == ENOENT) return not_found("cookie file " + path + " does not exist");
    return io_error("cannot open cookie file " + path + ": " + std::strerror(err));
  }
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    return io_error("cannot stat cookie file " + path + ": " + std::strerror(errno));
  }
  if (!S_ISREG(st.st_mode)) return invalid_argument("cookie file " + path + " is not a file");
  // As Erlang does with ~/.erlang.cookie: a cookie others can read is no secret.
  if ((st.st_mode & 077) != 0) {
    return invalid_argument("cookie file " + path + " has mode " + mode_text(st.st_mode) +
                            "; it must be accessible by its owner only (chmod 400 " + path + ")");
  }
  // Room for the longest cookie and its line end; anything larger is refused unread.
  if (static_cast<std::uintmax_t>(st.st_size) > kMaxCookieBytes + 2) {
    return invalid_argument("cookie file " + path + " is " + std::to_string(st.st_size) +
                            " bytes; a cookie has at most " + std::to_string(kMaxCookieBytes));
  }
  std::string cookie;
  char buffer[kMaxCookieBytes + 3];
  while (true) {
    const ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return io_error("cannot read cookie file " + path + ": " + std::strerror(errno));
    if (n == 0) break;
    cookie.append(buffer, static_cast<std::size_t>(n));
    if (cookie.size() > kMaxCookieBytes + 2) break;  // it grew after fstat; validation refuses
  }
  if (!cookie.empty() && cookie.back() == '\n') {
    cookie.pop_back();
    if (!cookie.empty() && cookie.back() == '\r') cookie.pop_back();
  }
  MISHKA_RETURN_IF_ERROR(validate_cookie(cookie).with_context("cookie file " + path));
  return cookie;
}

Result<CaMaterial> derive_cluster_ca(std::string_view cookie) {
  MISHKA_RETURN_IF_ERROR(validate_cookie(cookie));
  Result<KeyPtr> key = key_from_cookie(cookie);
  if (!key.ok()) return key.status();

  unsigned char raw_public[kEd25519SeedBytes];
  std::size_t raw_length = sizeof(raw_public);
  if (EVP_PKEY_get_raw_public_key(key->get(), raw_public, &raw_length) != 1) {
    return openssl_failure("Ed25519 public key");
  }
  const Sha256Digest digest =
      Sha256::of(std::string_view(reinterpret_cast<const char*>(raw_public), raw_length));

  X509Ptr cert(X509_new());
  if (!cert || X509_set_version(cert.get(), X509_VERSION_3) != 1) {
    return openssl_failure("allocating the CA certificate");
  }
  std::array<unsigned char, kSerialBytes> serial{};
  std::copy_n(digest.begin(), serial.size(), serial.begin());
  MISHKA_RETURN_IF_ERROR(set_serial(cert.get(), serial));
  NamePtr name(X509_NAME_new());
  if (!name) return openssl_failure("allocating a name");
  MISHKA_RETURN_IF_ERROR(add_name_entry(name.get(), "O", "mishka"));
  MISHKA_RETURN_IF_ERROR(add_name_entry(
      name.get(), "CN", "mishka cluster CA " + hex(digest.data(), kFingerprintBytes)));
  if (X509_set_subject_name(cert.get(), name.get()) != 1 ||
      X509_set_issuer_name(cert.get(), name.get()) != 1 ||
      ASN1_TIME_set_string_X509(X509_getm_notBefore(cert.get()), kCaNotBefore) != 1 ||
      ASN1_TIME_set_string_X509(X509_getm_notAfter(cert.get()), kCaNotAfter) != 1 ||
      X509_set_pubkey(cert.get(), key->get()) != 1) {
    return openssl_failure("filling the CA certificate");
  }
  MISHKA_RETURN_IF_ERROR(
      add_extension(cert.get(), cert.get(), NID_basic_constraints, "critical,CA:TRUE,pathlen:0"));
  MISHKA_RETURN_IF_ERROR(
      add_extension(cert.get(), cert.get(), NID_key_usage, "critical,keyCertSign,cRLSign"));
  MISHKA_RETURN_IF_ERROR(add_extension(cert.get(), cert.get(), NID_subject_key_identifier, "hash"));
  MISHKA_RETURN_IF_ERROR(sign(cert.get(), key->get()));

  Result<std::string> cert_pem = cert_to_pem(cert.get());
  if (!cert_pem.ok()) return cert_pem.status();
  Result<std::string> key_pem = key_to_pem(key->get());
  if (!key_pem.ok()) return key_pem.status();
  return CaMaterial{.cert_pem = std::move(cert_pem).value(), .key_pem = std::move(key_pem).value()};
}

Result<CaMaterial> load_operator_ca(const std::string& cert_path, const std::string& key_path) {
  Result<std::string> cert_text = read_operator_file(cert_path, "CA certificate");
  if (!cert_text.ok()) return cert_text.status();
  Result<std::string> key_text = read_operator_file(key_path, "CA key");
  if (!key_text.ok()) return key_text.status();
  Result<X509Ptr> cert = parse_cert(*cert_text, "operator CA certificate " + cert_path);
  if (!cert.ok()) return cert.status();
  Result<KeyPtr> key = parse_key(*key_text, "operator CA key " + key_path);
  if (!key.ok()) return key.status();
  X509* c = cert->get();
  const std::string cert_what =
      "operator CA certificate " + cert_path + " (" + name_text(X509_get_subject_name(c)) + ")";
  if (X509_check_ca(c) != 1) {
    return invalid_argument(cert_what +
                            " is not a CA certificate: it needs basicConstraints CA:TRUE and, "
                            "if it has a keyUsage, keyCertSign");
  }
  if (X509_self_signed(c, 1) != 1) {
    ERR_clear_error();
    return invalid_argument(cert_what +
                            " is not self-signed: give the root CA itself, not an intermediate");
  }
  if (X509_cmp_current_time(X509_get0_notBefore(c)) >= 0) {
    return invalid_argument(cert_what + " is not valid yet");
  }
  if (X509_cmp_current_time(X509_get0_notAfter(c)) <= 0) {
    return invalid_argument(cert_what + " has expired");
  }
  if (X509_check_private_key(c, key->get()) != 1) {
    ERR_clear_error();
    return invalid_argument("operator CA key " + key_path + " is not the key of " + cert_path);
  }
  Result<std::string> cert_pem = cert_to_pem(c);
  if (!cert_pem.ok()) return cert_pem.status();
  Result<std::string> key_pem = key_to_pem(key->get());
  if (!key_pem.ok()) return key_pem.status();
  return CaMaterial{.cert_pem = std::move(cert_pem).value(), .key_pem = std::move(key_pem).value()};
}

Result<TlsFiles> issue_node_certificate(const CaMaterial& ca, std::string_view node_name,
                                        std::string_view host_ip) {
  MISHKA_RETURN_IF_ERROR(check_node_name(node_name));
  MISHKA_RETURN_IF_ERROR(check_ip_literal(host_ip, "node certificate: host"));
  Result<ParsedCa> parsed = parse_ca(ca);
  if (!parsed.ok()) return parsed.status();
  X509* issuer = parsed->cert.get();

  KeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
  if (!key) return openssl_failure("generating the node key");
  X509Ptr cert(X509_new());
  if (!cert || X509_set_version(cert.get(), X509_VERSION_3) != 1) {
    return openssl_failure("allocating the node certificate");
  }
  std::array<unsigned char, kSerialBytes> serial{};
  if (RAND_bytes(serial.data(), static_cast<int>(serial.size())) != 1) {
    return openssl_failure("a random serial number");
  }
  MISHKA_RETURN_IF_ERROR(set_serial(cert.get(), serial));
  Result<NamePtr> subject = node_subject(node_name);
  if (!subject.ok()) return subject.status();
  if (X509_set_subject_name(cert.get(), subject->get()) != 1 ||
      X509_set_issuer_name(cert.get(), X509_get_subject_name(issuer)) != 1 ||
      X509_gmtime_adj(X509_getm_notBefore(cert.get()), -kNodeCertBackdateSeconds) == nullptr ||
      X509_time_adj_ex(X509_getm_notAfter(cert.get()), kNodeCertDays, 0, nullptr) == nullptr ||
      X509_set_pubkey(cert.get(), key.get()) != 1) {
    return openssl_failure("filling the node certificate");
  }
  // Never past the CA's own end: the chain would be invalid from then on anyway.
  if (ASN1_TIME_compare(X509_get0_notAfter(issuer), X509_get0_notAfter(cert.get())) < 0 &&
      X509_set1_notAfter(cert.get(), X509_get0_notAfter(issuer)) != 1) {
    return openssl_failure("capping the node certificate's validity");
  }
  std::string alt_names;
  for (const std::string& address : node_addresses(host_ip)) {
    alt_names += (alt_names.empty() ? "IP:" : ",IP:") + address;
  }
  X509* c = cert.get();
  MISHKA_RETURN_IF_ERROR(add_extension(c, issuer, NID_basic_constraints, "critical,CA:FALSE"));
  MISHKA_RETURN_IF_ERROR(add_extension(c, issuer, NID_key_usage, "critical,digitalSignature"));
  MISHKA_RETURN_IF_ERROR(add_extension(c, issuer, NID_ext_key_usage, "serverAuth,clientAuth"));
  MISHKA_RETURN_IF_ERROR(add_extension(c, issuer, NID_subject_key_identifier, "hash"));
  MISHKA_RETURN_IF_ERROR(add_extension(c, issuer, NID_authority_key_identifier, "keyid"));
  MISHKA_RETURN_IF_ERROR(add_extension(c, issuer, NID_subject_alt_name, alt_names.c_str()));
  MISHKA_RETURN_IF_ERROR(sign(c, parsed->key.get()));

  Result<std::string> cert_pem = cert_to_pem(c);
  if (!cert_pem.ok()) return cert_pem.status();
  Result<std::string> key_pem = key_to_pem(key.get());
  if (!key_pem.ok()) return key_pem.status();
  return TlsFiles{.ca_pem = ca.cert_pem,
                  .cert_pem = std::move(cert_pem).value(),
                  .key_pem = std::move(key_pem).value()};
}

MemberTls node_tls_paths(const std::string& dir) {
  return MemberTls{
      .ca_file = dir + "/ca.pem", .cert_file = dir + "/node.pem", .key_file = dir + "/node.key"};
}

Result<MemberTls> write_node_tls(const std::string& dir, const TlsFiles& files) {
  std::error_code error;
  std::filesystem::create_directories(dir, error);
  if (error) return io_error("cannot create TLS directory " + dir + ": " + error.message());
  std::filesystem::permissions(dir, std::filesystem::perms::owner_all,
                               std::filesystem::perm_options::replace, error);
  if (error) return io_error("cannot set mode 0700 on " + dir + ": " + error.message());
  const MemberTls paths = node_tls_paths(dir);
  MISHKA_RETURN_IF_ERROR(write_file_atomically(paths.key_file, files.key_pem, 0600));
  // A file system that ignores modes (vfat, some network mounts) would leave the key readable.
  struct stat st;
  if (::stat(paths.key_file.c_str(), &st) != 0) {
    return io_error("cannot stat " + paths.key_file + ": " + std::strerror(errno));
  }
  if ((st.st_mode & 0777) != 0600) {
    return io_error(paths.key_file + " has mode " + mode_text(st.st_mode) +
                    " after writing it with 0600: the file system does not keep it private");
  }
  MISHKA_RETURN_IF_ERROR(write_file_atomically(paths.cert_file, files.cert_pem, 0644));
  MISHKA_RETURN_IF_ERROR(write_file_atomically(paths.ca_file, files.ca_pem, 0644));
  return paths;
}

Result<NodeTls> ensure_node_tls(const std::string& dir, const CaMaterial& ca,
                                std::string_view node_name, std::string_view host_ip) {
  MISHKA_RETURN_IF_ERROR(check_node_name(node_name));
  MISHKA_RETURN_IF_ERROR(check_ip_literal(host_ip, "node certificate: host"));
  Result<ParsedCa> parsed = parse_ca(ca);
  if (!parsed.ok()) return parsed.status();
  NodeTls out;
  out.paths = node_tls_paths(dir);
  out.why_issued = reusable(out.paths, *parsed, ca.cert_pem, node_name, host_ip, &out.files);
  ERR_clear_error();
  if (out.why_issued.empty()) return out;
  Result<TlsFiles> issued = issue_node_certificate(ca, node_name, host_ip);
  if (!issued.ok()) return issued.status();
  Result<MemberTls> written = write_node_tls(dir, *issued);
  if (!written.ok()) return written.status();
  out.files = std::move(issued).value();
  out.issued = true;
  return out;
}

const char* peer_tls_verdict_name(PeerTlsVerdict verdict) {
  switch (verdict) {
    case PeerTlsVerdict::trusted:
      return "trusted";
    case PeerTlsVerdict::untrusted_peer:
      return "untrusted_peer";
    case PeerTlsVerdict::rejected_by_peer:
      return "rejected_by_peer";
    case PeerTlsVerdict::not_tls:
      return "not_tls";
    case PeerTlsVerdict::unreachable:
      return "unreachable";
  }
  return "unknown";
}

namespace {

// One probe's conversation: a socket, and an SSL object over memory BIOs whose bytes this class
// moves to and from the socket itself. Doing the socket I/O here keeps every wait bounded by
// the deadline, sends with MSG_NOSIGNAL (a peer that hangs up must not raise SIGPIPE in the
// host process), and shows the first bytes the peer sent, which tell TLS from plain text.
class Conversation {
 public:
  enum class Step { done, settled, failed, closed, peer_eof, reset, timed_out };

  Conversation(int fd, SslPtr ssl) : fd_(fd), ssl_(std::move(ssl)) {}
  ~Conversation() { ::close(fd_); }
  Conversation(const Conversation&) = delete;
  Conversation& operator=(const Conversation&) = delete;

  SSL* ssl() const { return ssl_.get(); }
  const std::string& head() const { return head_; }
  const std::string& ssl_error() const { return ssl_error_; }
  const std::string& socket_error() const { return socket_error_; }

  // Runs `op` (a call of SSL_connect, SSL_write or SSL_read on ssl()) until it returns > 0
  // (done), `settled()` holds while it waits for input (settled), or it cannot go on.
  template <typename Op, typename Settled>
  Step run(Op op, Deadline until, Settled settled) {
    while (true) {
      ERR_clear_error();
      const int rc = op();
      const int err = rc > 0 ? SSL_ERROR_NONE : SSL_get_error(ssl_.get(), rc);
      if (err == SSL_ERROR_SSL) ssl_error_ = openssl_errors();
      // Whatever OpenSSL wrote goes out, an alert after a failure included.
      if (!flush(until)) return socket_error_.empty() ? Step::timed_out : Step::reset;
      if (rc > 0) return Step::done;
      if (err == SSL_ERROR_ZERO_RETURN) return Step::closed;
      if (err != SSL_ERROR_WANT_READ) return Step::failed;
      if (settled()) return Step::settled;
      if (eof_) return Step::peer_eof;
      if (const std::optional<Step> stop = receive(until)) return *stop;
    }
  }
  template <typename Op>
  Step run(Op op, Deadline until) {
    return run(op, until, [] { return false; });
  }

 private:
  bool wait(short events, Deadline until) {
    while (true) {
      const auto left = until.remaining();
      pollfd p = {.fd = fd_, .events = events, .revents = 0};
      const int n = ::poll(&p, 1, static_cast<int>(left.count()));
      if (n > 0 || (n < 0 && errno != EINTR)) return true;  // the next call reports errors
      if (n == 0 && left.count() == 0) return false;
    }
  }

  // Sends what OpenSSL has written. False on timeout or a socket error (socket_error_).
  bool flush(Deadline until) {
    BIO* out = SSL_get_wbio(ssl_.get());
    const std::string bytes = drain(out);
    std::size_t sent = 0;
    while (sent < bytes.size()) {
      const ssize_t n = ::send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
      if (n > 0) {
        sent += static_cast<std::size_t>(n);
      } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        if (!wait(POLLOUT, until)) return false;
      } else {
        socket_error_ = std::strerror(errno);
        return false;
      }
    }
    return true;
  }

  // Feeds the next bytes from the socket to OpenSSL; a Step when there are none to feed.
  std::optional<Step> receive(Deadline until) {
    if (!wait(POLLIN, until)) return Step::timed_out;
    char buffer[16 * 1024];
    const ssize_t n = ::recv(fd_, buffer, sizeof(buffer), 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return std::nullopt;
    if (n < 0) {
      socket_error_ = std::strerror(errno);
      return Step::reset;
    }
    if (n == 0) {
      eof_ = true;
      return Step::peer_eof;
    }
    const auto length = static_cast<std::size_t>(n);
    head_.append(buffer, std::min(length, kHeadBytesKept - std::min(kHeadBytesKept, head_.size())));
    BIO_write(SSL_get_rbio(ssl_.get()), buffer, static_cast<int>(length));
    return std::nullopt;
  }

  const int fd_;
  SslPtr ssl_;
  std::string head_;  // the first kHeadBytesKept bytes the peer sent
  std::string ssl_error_;
  std::string socket_error_;
  bool eof_ = false;
};

// What OpenSSL's callbacks learn during one probe (reached through the SSL's ex_data 0).
struct ProbeNotes {
  int alert = -1;            // the description of the last alert the peer sent, if any
  bool ticket = false;       // the peer sent a session ticket: it accepted our certificate
  std::string peer_subject;  // the peer's certificate, for messages
  std::string peer_issuer;
};

ProbeNotes* notes_of(const SSL* ssl) {
  return static_cast<ProbeNotes*>(SSL_get_ex_data(ssl, 0));
}

void note_alert(const SSL* ssl, int where, int ret) {
  if ((where & SSL_CB_READ_ALERT) != SSL_CB_READ_ALERT) return;
  const int description = ret & 0xff;
  if (description != SSL_AD_CLOSE_NOTIFY) notes_of(ssl)->alert = description;
}

// A TLS 1.3 server sends session tickets once it has accepted the client's certificate. The
// session itself is not kept (0: no reference taken).
int note_ticket(SSL* ssl, SSL_SESSION*) {
  notes_of(ssl)->ticket = true;
  return 0;
}

int note_peer_certificate(int ok, X509_STORE_CTX* store) {
  const auto* ssl = static_cast<const SSL*>(
      X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()));
  ProbeNotes* notes = ssl != nullptr ? notes_of(ssl) : nullptr;
  X509* leaf = X509_STORE_CTX_get0_cert(store);
  if (notes != nullptr && leaf != nullptr && notes->peer_subject.empty()) {
    notes->peer_subject = name_text(X509_get_subject_name(leaf));
    notes->peer_issuer = name_text(X509_get_issuer_name(leaf));
  }
  return ok;
}

// Alerts a server sends when it does not accept a client's certificate (RFC 8446, 6.2).
bool is_certificate_alert(int alert) {
  switch (alert) {
    case SSL_AD_BAD_CERTIFICATE:
    case SSL_AD_UNSUPPORTED_CERTIFICATE:
    case SSL_AD_CERTIFICATE_REVOKED:
    case SSL_AD_CERTIFICATE_EXPIRED:
    case SSL_AD_CERTIFICATE_UNKNOWN:
    case SSL_AD_UNKNOWN_CA:
    case SSL_AD_ACCESS_DENIED:
    case SSL_AD_DECRYPT_ERROR:
    case SSL_AD_CERTIFICATE_REQUIRED:
      return true;
    default:
      return false;
  }
}

// The peer's first bytes as printable text, for a message.
std::string printable(const std::string& bytes) {
  std::string out;
  for (const char ch : bytes) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '\r' || c == '\n') break;
    out += (c >= 0x20 && c < 0x7f) ? ch : '.';
  }
  return out;
}

// A TLS record starts with its content type: change_cipher_spec, alert, handshake or
// application_data (RFC 8446, 5.1).
bool looks_like_tls(const std::string& head) {
  if (head.empty()) return true;
  const auto type = static_cast<unsigned char>(head[0]);
  return type >= 20 && type <= 23;
}

Result<SslCtxPtr> client_context(const TlsFiles& tls) {
  Result<X509Ptr> ca = parse_cert(tls.ca_pem, "probe: the CA certificate");
  if (!ca.ok()) return ca.status();
  Result<X509Ptr> cert = parse_cert(tls.cert_pem, "probe: our certificate");
  if (!cert.ok()) return cert.status();
  Result<KeyPtr> key = parse_key(tls.key_pem, "probe: our key");
  if (!key.ok()) return key.status();
  SslCtxPtr ctx(SSL_CTX_new_ex(nullptr, nullptr, TLS_client_method()));
  if (!ctx || SSL_CTX_set_min_proto_version(ctx.get(), TLS1_3_VERSION) != 1 ||
      X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx.get()), ca->get()) != 1 ||
      SSL_CTX_use_certificate(ctx.get(), cert->get()) != 1 ||
      SSL_CTX_use_PrivateKey(ctx.get(), key->get()) != 1) {
    return invalid_argument("probe: cannot use the TLS material: " + openssl_errors());
  }
  if (SSL_CTX_check_private_key(ctx.get()) != 1) {
    return invalid_argument("probe: our key does not match our certificate: " + openssl_errors());
  }
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, note_peer_certificate);
  SSL_CTX_set_session_cache_mode(ctx.get(),
                                 SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
  SSL_CTX_sess_set_new_cb(ctx.get(), note_ticket);
  return ctx;
}

// A connected non-blocking socket, or why there is none (the verdict is then unreachable).
struct Connected {
  int fd = -1;
  std::string why_not;
};

Connected connect_before(const std::string& host, std::uint16_t port, Deadline deadline) {
  addrinfo hints = {};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  if (const int rc = ::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found);
      rc != 0) {
    return {.fd = -1, .why_not = ::gai_strerror(rc)};
  }
  const int fd = ::socket(found->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int err = fd < 0 ? errno : 0;
  if (fd >= 0 && ::connect(fd, found->ai_addr, found->ai_addrlen) != 0) err = errno;
  ::freeaddrinfo(found);
  if (err == EINPROGRESS) {
    pollfd p = {.fd = fd, .events = POLLOUT, .revents = 0};
    int n = 0;
    do {
      n = ::poll(&p, 1, static_cast<int>(deadline.remaining().count()));
    } while (n < 0 && errno == EINTR);
    if (n == 0) {
      ::close(fd);
      return {.fd = -1,
              .why_not = "no connection before the deadline (a firewall, or no such host?)"};
    }
    socklen_t length = sizeof(err);
    if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &length) != 0) err = errno;
  }
  if (err != 0) {
    if (fd >= 0) ::close(fd);
    return {.fd = -1, .why_not = std::strerror(err)};
  }
  return {.fd = fd, .why_not = {}};
}

constexpr const char* kOtherCookie = "the peer holds another cookie or CA";

PeerTlsCheck handshake_failure(const std::string& where, Conversation::Step step,
                               const Conversation& talk, const ProbeNotes& notes) {
  using Step = Conversation::Step;
  using V = PeerTlsVerdict;
  if (!looks_like_tls(talk.head())) {
    return {V::not_tls, where + " does not speak TLS: it answered '" + printable(talk.head()) +
                            "' (a plain-text etcd, or another service?)"};
  }
  const long verified = SSL_get_verify_result(talk.ssl());
  if (verified != X509_V_OK) {
    const std::string peer =
        notes.peer_subject.empty()
            ? "its certificate"
            : "its certificate (" + notes.peer_subject + ", issued by " + notes.peer_issuer + ")";
    if (verified == X509_V_ERR_IP_ADDRESS_MISMATCH) {
      return {V::untrusted_peer, where + ": " + peer + " does not name this address"};
    }
    return {V::untrusted_peer, where + ": " + peer + " is not signed by our CA (" +
                                   X509_verify_cert_error_string(verified) + "): " + kOtherCookie};
  }
  if (notes.alert >= 0) {
    std::string text =
        where + " refused our certificate (TLS alert: " + SSL_alert_desc_string_long(notes.alert) +
        ")";
    if (is_certificate_alert(notes.alert)) text += std::string(": ") + kOtherCookie;
    return {V::rejected_by_peer, text};
  }
  switch (step) {
    case Step::timed_out:
      return {V::unreachable, where + ": connected, but no TLS answer before the deadline"};
    case Step::reset:
      // A plain-text server that drops our hello unread closes with data pending, which the
      // kernel turns into a reset rather than an end of stream: the same answer as a close.
      if (talk.head().empty()) {
        return {V::not_tls, where + " reset the connection on our TLS handshake without a word (" +
                                talk.socket_error() +
                                "): it does not speak TLS there (a plain-text etcd?)"};
      }
      return {V::unreachable, where + ": the connection broke during the TLS handshake (" +
                                  talk.socket_error() + ")"};
    case Step::peer_eof:
    case Step::closed:
      if (talk.head().empty()) {
        return {V::not_tls, where +
                                " closed the connection on our TLS handshake without a word: it "
                                "does not speak TLS there (a plain-text etcd?)"};
      }
      break;
    case Step::failed:
    case Step::done:
    case Step::settled:
      break;
  }
  return {V::untrusted_peer, where + ": the TLS handshake failed (" + talk.ssl_error() + ")"};
}

}  // namespace

Result<PeerTlsCheck> probe_peer_tls(const std::string& host, std::uint16_t port,
                                    const TlsFiles& tls, Deadline deadline) {
  using Step = Conversation::Step;
  using V = PeerTlsVerdict;
  MISHKA_RETURN_IF_ERROR(check_ip_literal(host, "probe: host"));
  Result<SslCtxPtr> ctx = client_context(tls);
  if (!ctx.ok()) return ctx.status();
  const std::string where = host_port(host, port);

  const Connected connected = connect_before(host, port, deadline);
  if (connected.fd < 0) return PeerTlsCheck{V::unreachable, where + ": " + connected.why_not};
  SslPtr ssl(SSL_new(ctx->get()));
  BIO* in = BIO_new(BIO_s_mem());
  BIO* out = BIO_new(BIO_s_mem());
  if (!ssl || in == nullptr || out == nullptr) {
    BIO_free(in);
    BIO_free(out);
    ::close(connected.fd);
    return openssl_failure("probe: allocating a TLS connection");
  }
  BIO_set_mem_eof_return(in, -1);  // an empty input means "wait for more", not EOF
  SSL_set_bio(ssl.get(), in, out);
  ProbeNotes notes;
  SSL_set_ex_data(ssl.get(), 0, &notes);
  SSL_set_info_callback(ssl.get(), note_alert);
  // The peer's certificate must name the address we dialled, as gRPC and etcd require.
  X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl.get()), host.c_str());
  SSL_set_connect_state(ssl.get());
  Conversation talk(connected.fd, std::move(ssl));
  SSL* s = talk.ssl();

  const Step handshake = talk.run([s] { return SSL_connect(s); }, deadline);
  if (handshake != Step::done) return handshake_failure(where, handshake, talk, notes);

  // Under TLS 1.3 the server judges our certificate after our side of the handshake is over. It
  // accepts it with a session ticket (Go's TLS, hence etcd, sends one right then) or refuses it
  // with an alert. A server that says neither is asked for its version, which makes it answer
  // one way or the other; asking first would risk our request meeting a connection the server
  // has closed, whose reset can discard the alert before we read it.
  char answer[512];
  auto read_some = [s, &answer] { return SSL_read(s, answer, sizeof(answer)); };
  auto ticket = [&notes] { return notes.ticket; };
  Step after = talk.run(read_some, deadline.capped(kAcceptanceWait), ticket);
  if (after == Step::timed_out && !deadline.expired()) {
    const std::string request =
        "GET /version HTTP/1.1\r\nHost: " + where + "\r\nConnection: close\r\n\r\n";
    after = talk.run(
        [s, &request] { return SSL_write(s, request.data(), static_cast<int>(request.size())); },
        deadline);
    if (after == Step::done) after = talk.run(read_some, deadline, ticket);
  }
  if (after == Step::done || after == Step::settled) {
    return PeerTlsCheck{V::trusted, where + ": mutual TLS works (peer " + notes.peer_subject + ")"};
  }
  if (notes.alert >= 0) return handshake_failure(where, after, talk, notes);
  if (after == Step::timed_out) {
    return PeerTlsCheck{V::trusted, where + ": the TLS handshake worked (peer " +
                                        notes.peer_subject +
                                        "), but no answer came before the deadline"};
  }
  return PeerTlsCheck{V::rejected_by_peer,
                      where +
                          " closed the connection after the TLS handshake without a word "
                          "(it may not accept our certificate: " +
                          kOtherCookie + ")"};
}

}  // namespace mishka::engine
