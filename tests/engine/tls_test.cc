// Security from the cookie (tls_material.h): the derived CA is the same for the same cookie and
// different otherwise, certificates verify with OpenSSL, an operator's CA is checked, the node's
// files are reused or reissued with private modes, and a real etcd member under mutual TLS
// serves only clients of its cookie, while probe_peer_tls tells each kind of peer apart.

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/sha256.h"
#include "engine/child_process.h"
#include "engine/etcd_client.h"
#include "engine/etcd_member.h"
#include "engine/tls_material.h"
#include "support/process_checks.h"
#include "support/temp_dir.h"
#include "support/watchdog.h"

namespace mishka::engine {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr char kCookie[] = "test-cookie-alpha-0001";
constexpr char kOtherCookie[] = "test-cookie-bravo-0002";

struct X509Free {
  void operator()(X509* p) const { X509_free(p); }
};
struct KeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
using X509Ptr = std::unique_ptr<X509, X509Free>;
using KeyPtr = std::unique_ptr<EVP_PKEY, KeyFree>;

X509Ptr ParseCert(const std::string& pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  X509Ptr cert(PEM_read_bio_X509(bio, nullptr, nullptr, nullptr));
  BIO_free(bio);
  return cert;
}

// "" when `cert_pem` verifies against `ca_pem` alone, else OpenSSL's reason.
std::string VerifyWith(const std::string& ca_pem, const std::string& cert_pem) {
  X509Ptr ca = ParseCert(ca_pem);
  X509Ptr cert = ParseCert(cert_pem);
  if (!ca || !cert) return "does not parse";
  X509_STORE* store = X509_STORE_new();
  X509_STORE_CTX* ctx = X509_STORE_CTX_new();
  X509_STORE_add_cert(store, ca.get());
  X509_STORE_CTX_init(ctx, store, cert.get(), nullptr);
  const bool ok = X509_verify_cert(ctx) == 1;
  std::string why = ok ? "" : X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx));
  X509_STORE_CTX_free(ctx);
  X509_STORE_free(store);
  return why;
}

std::string CommonName(X509* cert) {
  char buffer[256] = {};
  X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, buffer, sizeof(buffer));
  return buffer;
}

unsigned Mode(const std::filesystem::path& path) {
  struct stat st = {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

void WriteText(const std::filesystem::path& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

// An operator's CA as an operator would make it: an EC P-256 key and a self-signed SHA-256
// certificate, valid from `from_days` to `to_days` from now; written to <dir>/op-ca.pem and
// <dir>/op-ca.key.
void MakeOperatorCa(const std::filesystem::path& dir, long from_days, long to_days) {
  KeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", const_cast<char*>("P-256")));
  ASSERT_TRUE(key);
  X509Ptr cert(X509_new());
  X509_set_version(cert.get(), X509_VERSION_3);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 4242);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>("operator test CA"), -1, -1, 0);
  X509_set_issuer_name(cert.get(), name);
  X509_time_adj_ex(X509_getm_notBefore(cert.get()), static_cast<int>(from_days), 0, nullptr);
  X509_time_adj_ex(X509_getm_notAfter(cert.get()), static_cast<int>(to_days), 0, nullptr);
  X509_set_pubkey(cert.get(), key.get());
  const std::vector<std::pair<int, const char*>> extensions = {
      {NID_basic_constraints, "critical,CA:TRUE"},
      {NID_key_usage, "critical,keyCertSign,cRLSign"},
      {NID_subject_key_identifier, "hash"}};
  for (const auto& [nid, value] : extensions) {
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, cert.get(), cert.get(), nullptr, nullptr, 0);
    X509_EXTENSION* ext = X509V3_EXT_nconf_nid(nullptr, &ctx, nid, value);
    ASSERT_NE(ext, nullptr) << value;
    X509_add_ext(cert.get(), ext, -1);
    X509_EXTENSION_free(ext);
  }
  ASSERT_GT(X509_sign(cert.get(), key.get(), EVP_sha256()), 0);
  BIO* out = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(out, cert.get());
  std::string text(BIO_ctrl_pending(out), '\0');
  BIO_read(out, text.data(), static_cast<int>(text.size()));
  WriteText(dir / "op-ca.pem", text);
  BIO_reset(out);
  PEM_write_bio_PrivateKey(out, key.get(), nullptr, nullptr, 0, nullptr, nullptr);
  text.assign(BIO_ctrl_pending(out), '\0');
  BIO_read(out, text.data(), static_cast<int>(text.size()));
  WriteText(dir / "op-ca.key", text);
  BIO_free(out);
}

CaMaterial Derive(const char* cookie) {
  Result<CaMaterial> ca = derive_cluster_ca(cookie);
  EXPECT_TRUE(ca.ok()) << ca.status().to_string();
  return ca.ok() ? *ca : CaMaterial{};
}

TlsFiles Issue(const CaMaterial& ca, const std::string& name, const std::string& host) {
  Result<TlsFiles> files = issue_node_certificate(ca, name, host);
  EXPECT_TRUE(files.ok()) << files.status().to_string();
  return files.ok() ? *files : TlsFiles{};
}

class TlsMaterialTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Result<test::TempDir> made = test::TempDir::Create("mishka-tls-");
    ASSERT_TRUE(made.ok()) << made.status().to_string();
    tmp_.emplace(std::move(made).value());
  }
  std::filesystem::path path(const std::string& name) const { return tmp_->path() / name; }

  std::optional<test::TempDir> tmp_;
};

TEST_F(TlsMaterialTest, DerivedCaIsDeterministicPerCookie) {
  const CaMaterial first = Derive(kCookie);
  const CaMaterial again = Derive(kCookie);
  const CaMaterial other = Derive(kOtherCookie);
  ASSERT_FALSE(first.cert_pem.empty());
  EXPECT_EQ(first.cert_pem, again.cert_pem);
  EXPECT_EQ(first.key_pem, again.key_pem);
  EXPECT_NE(first.cert_pem, other.cert_pem);
  EXPECT_NE(first.key_pem, other.key_pem);

  X509Ptr cert = ParseCert(first.cert_pem);
  ASSERT_TRUE(cert);
  EXPECT_EQ(X509_check_ca(cert.get()), 1);
  EXPECT_EQ(X509_self_signed(cert.get(), 1), 1);
  EXPECT_EQ(X509_get_version(cert.get()), X509_VERSION_3);
  EXPECT_EQ(CommonName(cert.get()).rfind("mishka cluster CA ", 0), 0u) << CommonName(cert.get());
  EXPECT_EQ(CommonName(cert.get()).size(), std::string("mishka cluster CA ").size() + 16);
  EXPECT_NE(CommonName(cert.get()), CommonName(ParseCert(other.cert_pem).get()));
  EXPECT_EQ(EVP_PKEY_get_base_id(X509_get0_pubkey(cert.get())), EVP_PKEY_ED25519);
  ASN1_TIME* start = ASN1_TIME_new();
  ASN1_TIME* end = ASN1_TIME_new();
  ASN1_TIME_set_string_X509(start, "20200101000000Z");
  ASN1_TIME_set_string_X509(end, "99991231235959Z");
  EXPECT_EQ(ASN1_TIME_compare(X509_get0_notBefore(cert.get()), start), 0);
  EXPECT_EQ(ASN1_TIME_compare(X509_get0_notAfter(cert.get()), end), 0);
  ASN1_TIME_free(start);
  ASN1_TIME_free(end);
  const int bc = X509_get_ext_by_NID(cert.get(), NID_basic_constraints, -1);
  ASSERT_GE(bc, 0);
  EXPECT_EQ(X509_EXTENSION_get_critical(X509_get_ext(cert.get(), bc)), 1);
  EXPECT_EQ(X509_get_key_usage(cert.get()), KU_KEY_CERT_SIGN | KU_CRL_SIGN);
  EXPECT_NE(X509_get0_subject_key_id(cert.get()), nullptr);
}

// The derivation is a format: nodes of different versions of mishka must derive the same CA
// from the same cookie. A change here needs a new derivation version (docs/security.md).
TEST_F(TlsMaterialTest, DerivationIsPinned) {
  const CaMaterial ca = Derive(kCookie);
  X509Ptr cert = ParseCert(ca.cert_pem);
  ASSERT_TRUE(cert);
  EXPECT_EQ(CommonName(cert.get()), "mishka cluster CA 7c5d3e4340ab443f");
  const Sha256Digest digest = Sha256::of(ca.cert_pem);
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex;
  for (const std::uint8_t b : digest) hex += {kDigits[b >> 4], kDigits[b & 0xf]};
  EXPECT_EQ(hex, "f3ee857d15dcf9ed2c1fa601cfaff4bab5579c1e3193ccced588b027753997a3");
}

TEST_F(TlsMaterialTest, RefusesBadCookies) {
  struct Case {
    std::string cookie;
    std::string says;
  };
  const std::vector<Case> cases = {
      {"", "empty"},
      {"short", "at least 8"},
      {std::string(4097, 'x'), "at most 4096"},
      {std::string("abcd\0efgh", 9), "byte 4 is a control character (0x00)"},
      {"abcdefgh\n", "byte 8 is a control character (0x0a)"},
      {"abc\x7f"
       "defgh",
       "0x7f"},
  };
  for (const Case& c : cases) {
    Result<CaMaterial> ca = derive_cluster_ca(c.cookie);
    ASSERT_FALSE(ca.ok()) << c.says;
    EXPECT_EQ(ca.status().code(), StatusCode::invalid_argument);
    EXPECT_NE(ca.status().message().find(c.says), std::string::npos) << ca.status().message();
  }
  EXPECT_TRUE(derive_cluster_ca(std::string(4096, 'x')).ok());
  EXPECT_TRUE(derive_cluster_ca("8 bytes!").ok());
}

TEST_F(TlsMaterialTest, ReadsCookieFilesOfTheOwnerOnly) {
  const std::filesystem::path file = path("cookie");
  WriteText(file, std::string(kCookie) + "\n");
  ::chmod(file.c_str(), 0400);
  Result<std::string> cookie = read_cookie_file(file.string());
  ASSERT_TRUE(cookie.ok()) << cookie.status().to_string();
  EXPECT_EQ(*cookie, kCookie);

  WriteText(path("crlf"), std::string(kCookie) + "\r\n");
  ::chmod(path("crlf").c_str(), 0600);
  EXPECT_EQ(read_cookie_file(path("crlf").string()).value(), kCookie);

  WriteText(path("two-lines"), std::string(kCookie) + "\n\n");
  ::chmod(path("two-lines").c_str(), 0600);
  Result<std::string> two = read_cookie_file(path("two-lines").string());
  ASSERT_FALSE(two.ok());
  EXPECT_NE(two.status().message().find(path("two-lines").string()), std::string::npos);
  EXPECT_NE(two.status().message().find("control character"), std::string::npos);

  ::chmod(file.c_str(), 0644);
  Result<std::string> open = read_cookie_file(file.string());
  ASSERT_FALSE(open.ok());
  EXPECT_EQ(open.status().code(), StatusCode::invalid_argument);
  EXPECT_NE(open.status().message().find(file.string()), std::string::npos);
  EXPECT_NE(open.status().message().find("0644"), std::string::npos) << open.status().message();

  Result<std::string> missing = read_cookie_file(path("nope").string());
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::not_found);
  EXPECT_NE(missing.status().message().find(path("nope").string()), std::string::npos);
}

TEST_F(TlsMaterialTest, IssuedCertificatesVerifyAgainstTheirCaOnly) {
  const CaMaterial ca = Derive(kCookie);
  const TlsFiles files = Issue(ca, "alpha@127.0.0.1:4370", "127.0.0.1");
  EXPECT_EQ(files.ca_pem, ca.cert_pem);
  EXPECT_EQ(VerifyWith(ca.cert_pem, files.cert_pem), "");
  EXPECT_NE(VerifyWith(Derive(kOtherCookie).cert_pem, files.cert_pem), "");

  X509Ptr cert = ParseCert(files.cert_pem);
  ASSERT_TRUE(cert);
  EXPECT_EQ(CommonName(cert.get()), "alpha@127.0.0.1:4370");
  EXPECT_EQ(X509_check_ca(cert.get()), 0);
  EXPECT_EQ(X509_check_ip_asc(cert.get(), "127.0.0.1", 0), 1);
  EXPECT_EQ(X509_get_extended_key_usage(cert.get()), XKU_SSL_SERVER | XKU_SSL_CLIENT);
  EXPECT_EQ(X509_cmp_current_time(X509_get0_notBefore(cert.get())), -1);
  const std::time_t nine_years = std::time(nullptr) + 9L * 365 * 24 * 3600;
  EXPECT_EQ(X509_cmp_time(X509_get0_notAfter(cert.get()), const_cast<std::time_t*>(&nine_years)),
            1);
  // A fresh key and serial each time.
  const TlsFiles again = Issue(ca, "alpha@127.0.0.1:4370", "127.0.0.1");
  EXPECT_NE(again.key_pem, files.key_pem);
  EXPECT_NE(ASN1_INTEGER_cmp(X509_get0_serialNumber(cert.get()),
                             X509_get0_serialNumber(ParseCert(again.cert_pem).get())),
            0);

  // Another loopback address: connections from it leave from 127.0.0.1, which is named too.
  X509Ptr alias = ParseCert(Issue(ca, "beta", "127.0.0.2").cert_pem);
  EXPECT_EQ(X509_check_ip_asc(alias.get(), "127.0.0.2", 0), 1);
  EXPECT_EQ(X509_check_ip_asc(alias.get(), "127.0.0.1", 0), 1);
  X509Ptr v6 = ParseCert(Issue(ca, "gamma", "::1").cert_pem);
  EXPECT_EQ(X509_check_ip_asc(v6.get(), "::1", 0), 1);
  EXPECT_EQ(X509_check_ip_asc(v6.get(), "127.0.0.1", 0), 0);
}

TEST_F(TlsMaterialTest, IssueRefusesBadInput) {
  const CaMaterial ca = Derive(kCookie);
  EXPECT_EQ(issue_node_certificate(ca, "", "127.0.0.1").status().code(),
            StatusCode::invalid_argument);
  Result<TlsFiles> long_name = issue_node_certificate(ca, std::string(65, 'n'), "127.0.0.1");
  ASSERT_FALSE(long_name.ok());
  EXPECT_NE(long_name.status().message().find("65 bytes"), std::string::npos);
  Result<TlsFiles> host = issue_node_certificate(ca, "alpha", "localhost");
  ASSERT_FALSE(host.ok());
  EXPECT_NE(host.status().message().find("'localhost' is not an IPv4 or IPv6"), std::string::npos);
  const CaMaterial mixed{.cert_pem = ca.cert_pem, .key_pem = Derive(kOtherCookie).key_pem};
  Result<TlsFiles> mismatch = issue_node_certificate(mixed, "alpha", "127.0.0.1");
  ASSERT_FALSE(mismatch.ok());
  EXPECT_NE(mismatch.status().message().find("does not belong"), std::string::npos);
}

TEST_F(TlsMaterialTest, OperatorCaIsCheckedAndUsable) {
  MakeOperatorCa(tmp_->path(), -1, 30);
  const std::string cert = path("op-ca.pem").string();
  const std::string key = path("op-ca.key").string();
  Result<CaMaterial> ca = load_operator_ca(cert, key);
  ASSERT_TRUE(ca.ok()) << ca.status().to_string();
  const TlsFiles files = Issue(*ca, "alpha", "127.0.0.1");
  EXPECT_EQ(VerifyWith(ca->cert_pem, files.cert_pem), "");
  // The node certificate does not outlive its CA.
  X509Ptr ca_cert = ParseCert(ca->cert_pem);
  EXPECT_EQ(ASN1_TIME_compare(X509_get0_notAfter(ParseCert(files.cert_pem).get()),
                              X509_get0_notAfter(ca_cert.get())),
            0);

  auto error_of = [](const std::string& c, const std::string& k) {
    Result<CaMaterial> loaded = load_operator_ca(c, k);
    EXPECT_FALSE(loaded.ok());
    return loaded.ok() ? Status::Ok() : loaded.status();
  };
  // A node certificate is no CA.
  WriteText(path("leaf.pem"), files.cert_pem);
  WriteText(path("leaf.key"), files.key_pem);
  Status not_ca = error_of(path("leaf.pem").string(), path("leaf.key").string());
  EXPECT_EQ(not_ca.code(), StatusCode::invalid_argument);
  EXPECT_NE(not_ca.message().find(path("leaf.pem").string()), std::string::npos);
  EXPECT_NE(not_ca.message().find("is not a CA certificate"), std::string::npos)
      << not_ca.message();

  Status mismatch = error_of(cert, path("leaf.key").string());
  EXPECT_EQ(mismatch.code(), StatusCode::invalid_argument);
  EXPECT_NE(mismatch.message().find(path("leaf.key").string() + " is not the key of " + cert),
            std::string::npos)
      << mismatch.message();

  Status missing = error_of(cert, path("absent.key").string());
  EXPECT_EQ(missing.code(), StatusCode::not_found);
  EXPECT_NE(missing.message().find(path("absent.key").string()), std::string::npos);

  WriteText(path("garbage.pem"), "not a certificate\n");
  Status garbage = error_of(path("garbage.pem").string(), key);
  EXPECT_EQ(garbage.code(), StatusCode::invalid_argument);
  EXPECT_NE(garbage.message().find(path("garbage.pem").string()), std::string::npos);

  std::filesystem::create_directory(path("old"));
  MakeOperatorCa(path("old"), -30, -1);
  Status expired = error_of(path("old/op-ca.pem").string(), path("old/op-ca.key").string());
  EXPECT_NE(expired.message().find("has expired"), std::string::npos) << expired.message();
}

TEST_F(TlsMaterialTest, EnsureNodeTlsReusesValidFilesAndReissuesOtherwise) {
  const std::string dir = path("node/tls").string();
  const CaMaterial ca = Derive(kCookie);
  Result<NodeTls> first = ensure_node_tls(dir, ca, "alpha", "127.0.0.1");
  ASSERT_TRUE(first.ok()) << first.status().to_string();
  EXPECT_TRUE(first->issued);
  EXPECT_EQ(first->paths.key_file, dir + "/node.key");
  EXPECT_EQ(Mode(dir), 0700u);
  EXPECT_EQ(Mode(first->paths.key_file), 0600u);
  EXPECT_EQ(Mode(first->paths.cert_file), 0644u);
  EXPECT_EQ(Mode(first->paths.ca_file), 0644u);

  Result<NodeTls> again = ensure_node_tls(dir, ca, "alpha", "127.0.0.1");
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->issued) << again->why_issued;
  EXPECT_EQ(again->files.cert_pem, first->files.cert_pem);
  EXPECT_EQ(again->files.key_pem, first->files.key_pem);

  auto reissued_because = [&](const CaMaterial& with, const std::string& name,
                              const std::string& host) {
    Result<NodeTls> tls = ensure_node_tls(dir, with, name, host);
    EXPECT_TRUE(tls.ok()) << tls.status().to_string();
    if (!tls.ok()) return std::string("failed");
    EXPECT_TRUE(tls->issued);
    EXPECT_EQ(VerifyWith(with.cert_pem, tls->files.cert_pem), "");
    EXPECT_EQ(Mode(tls->paths.key_file), 0600u);
    return tls->why_issued;
  };
  EXPECT_NE(reissued_because(Derive(kOtherCookie), "alpha", "127.0.0.1").find("another CA"),
            std::string::npos);
  EXPECT_NE(reissued_because(ca, "alpha", "127.0.0.1").find("another CA"), std::string::npos);
  EXPECT_NE(reissued_because(ca, "beta", "127.0.0.1").find("not CN=beta"), std::string::npos);
  EXPECT_NE(reissued_because(ca, "beta", "127.0.0.3").find("addresses"), std::string::npos);
  ::chmod((dir + "/node.key").c_str(), 0644);
  EXPECT_NE(reissued_because(ca, "beta", "127.0.0.3").find("not private"), std::string::npos);
  WriteText(dir + "/node.key", Issue(ca, "beta", "127.0.0.3").key_pem);
  EXPECT_NE(reissued_because(ca, "beta", "127.0.0.3").find("does not hold the key"),
            std::string::npos);
  std::filesystem::remove(dir + "/node.pem");
  EXPECT_EQ(reissued_because(ca, "beta", "127.0.0.3"), "no complete set of files");
}

// A real etcd member under mutual TLS, and a plain one, on loopback.
class TlsEtcdTest : public TlsMaterialTest {
 protected:
  // Starts a member in <tmp>/<name>; with `tls`, mutual TLS on both listeners. Retries on fresh
  // ports when a picked one was taken meanwhile.
  std::unique_ptr<EtcdMember> StartMember(const std::string& name,
                                          const std::optional<MemberTls>& tls) {
    for (int attempt = 1; attempt <= 3; ++attempt) {
      Result<std::vector<std::uint16_t>> ports = pick_free_loopback_ports(3);
      if (!ports.ok()) return nullptr;
      MemberConfig config;
      config.etcd_binary = test::etcd_binary();
      config.data_dir = path(name + "/etcd").string();
      config.name = name;
      config.client_port = (*ports)[0];
      config.peer_port = (*ports)[1];
      config.metrics_port = tls ? (*ports)[2] : 0;
      config.tls = tls;
      config.ready_timeout = seconds(15);
      config.stop_grace = seconds(5);
      Result<std::unique_ptr<EtcdMember>> member = EtcdMember::create(config);
      if (!member.ok()) {
        ADD_FAILURE() << member.status().to_string();
        return nullptr;
      }
      Status started = (*member)->start();
      if (started.ok()) return std::move(member).value();
      if (started.message().find("address already in use") == std::string::npos || attempt == 3) {
        ADD_FAILURE() << started.to_string();
        return nullptr;
      }
    }
    return nullptr;
  }

  static Result<std::unique_ptr<EtcdClient>> Client(const EtcdMember& member,
                                                    std::optional<TlsFiles> tls) {
    ClientOptions options;
    options.endpoints = {member.client_endpoint()};
    options.tls = std::move(tls);
    return EtcdClient::create(options);
  }

  // A member "alpha" of kCookie under mutual TLS, its certificate in <tmp>/alpha/tls; null (and
  // a failure) when it does not start.
  EtcdMember* StartSecuredMember(const CaMaterial& ca) {
    Result<NodeTls> tls = ensure_node_tls(path("alpha/tls").string(), ca, "alpha", "127.0.0.1");
    EXPECT_TRUE(tls.ok()) << tls.status().to_string();
    if (!tls.ok()) return nullptr;
    members_.push_back(StartMember("alpha", tls->paths));
    return members_.back().get();
  }

  // Members are stopped here even when a test failed half-way.
  void TearDown() override {
    for (auto& member : members_) {
      if (member) member->stop();
    }
  }

  std::vector<std::unique_ptr<EtcdMember>> members_;
};

TEST_F(TlsEtcdTest, MemberUnderMutualTlsServesOnlyClientsOfItsCookie) {
  test::Watchdog watchdog(seconds(60));
  const CaMaterial ca = Derive(kCookie);
  EtcdMember* member = StartSecuredMember(ca);
  ASSERT_NE(member, nullptr);
  EXPECT_EQ(member->client_url().rfind("https://", 0), 0u);
  EXPECT_EQ(member->peer_url().rfind("https://", 0), 0u);
  // Client-certificate authentication on both listeners.
  std::ifstream cmdline("/proc/" + std::to_string(member->pid()) + "/cmdline");
  std::string args((std::istreambuf_iterator<char>(cmdline)), std::istreambuf_iterator<char>());
  for (const char* flag : {"--client-cert-auth=true", "--peer-client-cert-auth=true",
                           "--peer-trusted-ca-file=", "--trusted-ca-file="}) {
    EXPECT_NE(args.find(flag), std::string::npos) << flag;
  }

  // A client of the same cookie, with a certificate of its own.
  Result<std::unique_ptr<EtcdClient>> good = Client(*member, Issue(ca, "client", "127.0.0.1"));
  ASSERT_TRUE(good.ok()) << good.status().to_string();
  Result<Header> put = (*good)->put("/tls/key", "value", 0, Deadline::after(seconds(10)));
  ASSERT_TRUE(put.ok()) << put.status().to_string();
  Result<RangeResult> got = (*good)->range("/tls/key", {}, Deadline::after(seconds(5)));
  ASSERT_TRUE(got.ok()) << got.status().to_string();
  ASSERT_EQ(got->kvs.size(), 1u);
  EXPECT_EQ(got->kvs[0].value, "value");

  // Another cookie (its own CA and certificate), a certificate of another CA that trusts ours,
  // and plain text: none gets an answer.
  const CaMaterial other = Derive(kOtherCookie);
  const TlsFiles stranger = Issue(other, "stranger", "127.0.0.1");
  const std::vector<std::pair<std::string, std::optional<TlsFiles>>> refused = {
      {"another cookie", stranger},
      {"a certificate of another CA",
       TlsFiles{.ca_pem = ca.cert_pem, .cert_pem = stranger.cert_pem, .key_pem = stranger.key_pem}},
      {"plain text", std::nullopt}};
  for (const auto& [what, files] : refused) {
    Result<std::unique_ptr<EtcdClient>> client = Client(*member, files);
    ASSERT_TRUE(client.ok()) << what;
    Result<RangeResult> read = (*client)->range("/tls/key", {}, Deadline::after(seconds(1)));
    ASSERT_FALSE(read.ok()) << what << " read the key";
    EXPECT_TRUE(read.status().code() == StatusCode::engine_unavailable ||
                read.status().code() == StatusCode::timeout)
        << what << ": " << read.status().to_string();
  }
}

TEST_F(TlsEtcdTest, ProbeTellsPeersApart) {
  test::Watchdog watchdog(seconds(60));
  const CaMaterial ca = Derive(kCookie);
  ASSERT_NE(StartSecuredMember(ca), nullptr);
  members_.push_back(StartMember("plain", std::nullopt));
  ASSERT_NE(members_[1], nullptr);
  const EtcdMember& secured = *members_[0];
  const EtcdMember& plain = *members_[1];
  auto port_of = [](const std::string& url) {
    return static_cast<std::uint16_t>(std::stoi(url.substr(url.rfind(':') + 1)));
  };

  const TlsFiles ours = Issue(ca, "beta", "127.0.0.1");
  const TlsFiles stranger = Issue(Derive(kOtherCookie), "stranger", "127.0.0.1");
  const TlsFiles foreign_cert{
      .ca_pem = ca.cert_pem, .cert_pem = stranger.cert_pem, .key_pem = stranger.key_pem};
  Result<std::vector<std::uint16_t>> closed = pick_free_loopback_ports(1);
  ASSERT_TRUE(closed.ok());

  struct Case {
    std::string what;
    std::uint16_t port;
    TlsFiles files;
    PeerTlsVerdict verdict;
    std::string says;
  };
  const std::vector<Case> cases = {
      {"client port", port_of(secured.client_url()), ours, PeerTlsVerdict::trusted,
       "mutual TLS works"},
      {"peer port", port_of(secured.peer_url()), ours, PeerTlsVerdict::trusted, "CN=alpha"},
      {"another cookie", port_of(secured.client_url()), stranger, PeerTlsVerdict::untrusted_peer,
       "another cookie or CA"},
      {"a certificate of another CA", port_of(secured.client_url()), foreign_cert,
       PeerTlsVerdict::rejected_by_peer, "another cookie or CA"},
      {"a plain-text client port", port_of(plain.client_url()), ours, PeerTlsVerdict::not_tls,
       "TLS"},
      {"a plain-text peer port", port_of(plain.peer_url()), ours, PeerTlsVerdict::not_tls,
       "HTTP/1.1 400"},
      {"a closed port", (*closed)[0], ours, PeerTlsVerdict::unreachable, "refused"},
  };
  for (const Case& c : cases) {
    const auto start = std::chrono::steady_clock::now();
    Result<PeerTlsCheck> check =
        probe_peer_tls("127.0.0.1", c.port, c.files, Deadline::after(seconds(5)));
    const auto took = std::chrono::steady_clock::now() - start;
    ASSERT_TRUE(check.ok()) << c.what << ": " << check.status().to_string();
    EXPECT_EQ(peer_tls_verdict_name(check->verdict), std::string(peer_tls_verdict_name(c.verdict)))
        << c.what << ": " << check->detail;
    EXPECT_NE(check->detail.find(c.says), std::string::npos) << c.what << ": " << check->detail;
    EXPECT_NE(check->detail.find("127.0.0.1:" + std::to_string(c.port)), std::string::npos)
        << check->detail;
    EXPECT_LT(took, seconds(3)) << c.what << " took its whole deadline";
  }

  // Bad arguments are errors, not verdicts.
  EXPECT_EQ(probe_peer_tls("localhost", 1, ours, Deadline::after(seconds(1))).status().code(),
            StatusCode::invalid_argument);
  EXPECT_EQ(probe_peer_tls("127.0.0.1", 1, TlsFiles{}, Deadline::after(seconds(1))).status().code(),
            StatusCode::invalid_argument);
}

}  // namespace
}  // namespace mishka::engine
