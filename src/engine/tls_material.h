// Security from the cookie (ARCHITECTURE.md decision 8; docs/security.md): the cluster CA is
// derived from the shared cookie, every node issues itself a certificate from it, and etcd runs
// with mutual TLS on its client and peer listeners. The cookie itself never leaves the node.
//
// Derivation (docs/security.md, "The derived CA"): HKDF-SHA256 (RFC 5869) of the cookie with a
// fixed salt and info gives a 32-byte Ed25519 seed (RFC 8032); every field of the self-signed CA
// certificate is a function of that key, and Ed25519 signatures are deterministic, so every
// holder of the cookie builds the byte-identical CA certificate and key.
//
// Threading: every function here is safe to call from any thread at once; none keeps state
// between calls (OpenSSL's own library initialisation aside). Keys are held in std::string
// (PEM text), which is not wiped from memory when freed.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "engine/deadline.h"
#include "engine/etcd_client.h"
#include "engine/etcd_member.h"
#include "mishka/status.h"

namespace mishka::engine {

// Bounds of a cookie, in bytes.
inline constexpr std::size_t kMinCookieBytes = 8;
inline constexpr std::size_t kMaxCookieBytes = 4096;

// How long before its end a node certificate is replaced by ensure_node_tls().
inline constexpr std::chrono::hours kNodeCertRenewBefore{24 * 30};

// A CA certificate and its private key, both PEM text (the key as unencrypted PKCS#8).
struct CaMaterial {
  std::string cert_pem;
  std::string key_pem;
};

// Ok when `cookie` may be used: kMinCookieBytes..kMaxCookieBytes bytes, none of them a control
// character (below 0x20, or 0x7f; NUL and newlines included). Otherwise invalid_argument saying
// which rule failed (never the cookie itself).
Status validate_cookie(std::string_view cookie);

// Reads a cookie file: the whole file, less one trailing "\n" or "\r\n", then validate_cookie().
// Like Erlang's ~/.erlang.cookie, the file must be a regular file that neither group nor others
// may read, write or execute (mode 0400 or 0600): otherwise invalid_argument naming the file
// and its mode. io_error (with the path) when it cannot be opened or read; not_found when it
// does not exist. Blocks on the file system.
Result<std::string> read_cookie_file(const std::string& path);

// The cluster CA of `cookie`: the same bytes for every caller with the same cookie, on any
// machine, in any version of mishka that keeps the derivation's version ("v1"). Errors:
// invalid_argument from validate_cookie(), internal if OpenSSL fails. Pure computation.
Result<CaMaterial> derive_cluster_ca(std::string_view cookie);

// An operator's CA instead of the derived one: the first certificate of `cert_path` (PEM) and
// the private key of `key_path` (PEM, unencrypted; any key type OpenSSL can sign with). Checks
// that the certificate is a self-signed CA (basicConstraints CA:TRUE, and keyCertSign if it has
// a keyUsage), that it is valid now, and that the key is its key. A CA that is not self-signed
// (an intermediate) is refused: the trust anchor must be the CA itself for every TLS stack
// involved. Errors name the file: not_found (missing), io_error (unreadable), invalid_argument
// (not PEM, encrypted, not a CA, not valid now, key does not match). Blocks on the file system.
Result<CaMaterial> load_operator_ca(const std::string& cert_path, const std::string& key_path);

// A new certificate for this node, signed by `ca`: a fresh random Ed25519 key, subject
// CN=<node_name>, subjectAltName IP:<host_ip> (plus IP:127.0.0.1 when host_ip is another
// address of 127.0.0.0/8, because connections between loopback addresses leave from
// 127.0.0.1 and etcd checks a peer's source address against its certificate), extended key
// usage serverAuth and clientAuth, a random serial, valid from a day ago for ten years (or
// until the CA's end, if sooner). Returns the CA certificate, the node certificate and its key.
// invalid_argument: `ca` does not parse or its key does not match, `node_name` is empty or
// longer than 64 bytes (the limit of a CN), `host_ip` is not an IP literal. internal if OpenSSL
// fails. Pure computation (reads the clock and OpenSSL's random generator).
Result<TlsFiles> issue_node_certificate(const CaMaterial& ca, std::string_view node_name,
                                        std::string_view host_ip);

// The files of a node's TLS directory: <dir>/ca.pem, <dir>/node.pem, <dir>/node.key. These are
// the paths etcd is given (MemberConfig::tls).
MemberTls node_tls_paths(const std::string& dir);

// Writes `files` into `dir` (node_tls_paths), each file replaced atomically
// (write_file_atomically): the key first with mode 0600, then the certificates with 0644.
// Creates `dir` if missing and sets its mode to 0700. Checks the key file's mode after writing.
// io_error naming the path on any failure; a failure may leave a new key beside an old
// certificate, which ensure_node_tls() detects and replaces. Blocks on the file system.
Result<MemberTls> write_node_tls(const std::string& dir, const TlsFiles& files);

struct NodeTls {
  TlsFiles files;          // what an EtcdClient of this node uses (ClientOptions::tls)
  MemberTls paths;         // what its etcd member uses (MemberConfig::tls)
  bool issued = false;     // true: a new certificate was issued and written; false: reused
  std::string why_issued;  // when issued: why the files in the directory were not reused
};

// The node's TLS material in `dir`, reused when <dir> holds, readable: a CA certificate equal
// to `ca`'s, a node certificate that verifies against it, names `node_name` (CN) and exactly the
// addresses issue_node_certificate() would put for `host_ip`, is valid now and for at least
// kNodeCertRenewBefore more, and whose key is in node.key with mode 0600. Anything else (no
// files, another cookie or operator CA, a renamed node, an expiring certificate, a damaged or
// exposed key) issues and writes new material, and NodeTls::why_issued says why (for the log).
// Errors: those of issue_node_certificate() and write_node_tls(). Blocks on the file system.
Result<NodeTls> ensure_node_tls(const std::string& dir, const CaMaterial& ca,
                                std::string_view node_name, std::string_view host_ip);

// How a TLS handshake with a peer's etcd listener went (probe_peer_tls).
enum class PeerTlsVerdict {
  trusted,           // mutual TLS works: the peer's certificate chains to our CA, and ours was
                     // accepted
  untrusted_peer,    // the peer's certificate is not signed by our CA (the peer holds another
                     // cookie or CA), or does not name the address, or the handshake failed
                     // otherwise (no common algorithm); the detail says which
  rejected_by_peer,  // the peer refused our certificate with a TLS alert: it holds another
                     // cookie or CA
  not_tls,           // the peer answered, but not with TLS (a plain-text etcd, another service)
  unreachable,       // no connection (refused, no route) or no answer before the deadline
};

// "trusted", "untrusted_peer", ...
const char* peer_tls_verdict_name(PeerTlsVerdict verdict);

struct PeerTlsCheck {
  PeerTlsVerdict verdict = PeerTlsVerdict::unreachable;
  // One human-readable sentence for a log line: the address, what happened and what it likely
  // means, e.g. "10.0.0.2:4370 refused our certificate (TLS alert: bad certificate): the peer
  // holds another cookie or CA".
  std::string detail;
};

// Connects to host:port (an etcd client or peer listener) and runs a TLS 1.3 handshake as a
// client with `tls` (our CA as the only trust anchor, our certificate as client certificate),
// checking that the peer's certificate names `host`. Under TLS 1.3 a server judges the client's
// certificate after the client has finished its handshake, so the probe then waits, up to half
// a second, for the server's verdict (a session ticket when it accepts, an alert when it
// refuses); a server that says neither is sent "GET /version" to make it answer. Nothing else is
// sent, and the cookie is not involved. The outcome, whatever the peer did, is a PeerTlsCheck;
// the only errors are invalid_argument (`host` is not an IP literal; `tls` does not parse, or
// its key does not match its certificate). Blocks at most until `deadline`. Any thread.
Result<PeerTlsCheck> probe_peer_tls(const std::string& host, std::uint16_t port,
                                    const TlsFiles& tls, Deadline deadline);

}  // namespace mishka::engine
