// choose_cookie (cookie.h). The home cookie file is the daemon's only write before the node
// starts, and happens only once everything else in the configuration was found valid.
#include "mishkad/cookie.h"

#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string_view>

#include "engine/tls_material.h"

namespace mishka::daemon {
namespace {

// 256 bits: far beyond what an offline search from the public CA key identifier could try
// (docs/security.md, "Make it random and long").
constexpr std::size_t kRandomCookieBytes = 32;

std::string errno_text(int err) {
  return std::strerror(err);
}

Result<std::string> random_cookie() {
  unsigned char bytes[kRandomCookieBytes];
  std::size_t filled = 0;
  while (filled < sizeof(bytes)) {
    const ssize_t n = ::getrandom(bytes + filled, sizeof(bytes) - filled, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return io_error("cannot draw a random cookie (getrandom): " + errno_text(errno));
    filled += static_cast<std::size_t>(n);
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string cookie;
  for (unsigned char byte : bytes) {
    cookie += kHex[byte >> 4];
    cookie += kHex[byte & 0xf];
  }
  return cookie;
}

Status write_all(int fd, std::string_view text, const std::string& path) {
  while (!text.empty()) {
    const ssize_t n = ::write(fd, text.data(), text.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return io_error("cannot write " + path + ": " + errno_text(errno));
    text.remove_prefix(static_cast<std::size_t>(n));
  }
  return Status::Ok();
}

Status sync_directory(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return io_error("cannot open directory " + dir + ": " + errno_text(errno));
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) return io_error("cannot fsync directory " + dir + ": " + errno_text(err));
  return Status::Ok();
}

// Writes a new cookie into a temporary file beside `path` and links it to `path`. link() fails
// when `path` exists, so a daemon that lost a race to another reads the winner's cookie instead
// of replacing it (rename would replace it, leaving two daemons with different cookies).
Result<CookieChoice> create_home_cookie(const std::string& path) {
  Result<std::string> cookie = random_cookie();
  if (!cookie.ok()) return cookie.status();

  std::string temp = path + ".XXXXXX";
  const int fd = ::mkostemp(temp.data(), O_CLOEXEC);
  if (fd < 0)
    return io_error("cannot create a temporary file beside " + path + ": " + errno_text(errno));
  Status written = Status::Ok();
  if (::fchmod(fd, 0400) != 0) {
    written = io_error("cannot chmod " + temp + ": " + errno_text(errno));
  }
  if (written.ok()) written = write_all(fd, *cookie + "\n", temp);
  if (written.ok() && ::fsync(fd) != 0) {
    written = io_error("cannot fsync " + temp + ": " + errno_text(errno));
  }
  ::close(fd);
  if (!written.ok()) {
    ::unlink(temp.c_str());
    return written;
  }

  const int linked = ::link(temp.c_str(), path.c_str());
  const int link_errno = errno;
  ::unlink(temp.c_str());
  if (linked != 0 && link_errno == EEXIST) {
    Result<std::string> theirs = engine::read_cookie_file(path);
    if (!theirs.ok()) return theirs.status();
    return CookieChoice{.cookie = std::move(*theirs),
                        .source = "cookie file " + path + " ($HOME; created by another process)",
                        .created = false};
  }
  if (linked != 0) return io_error("cannot create " + path + ": " + errno_text(link_errno));
  MISHKA_RETURN_IF_ERROR(sync_directory(std::filesystem::path(path).parent_path().string()));
  return CookieChoice{.cookie = std::move(*cookie),
                      .source = "cookie file " + path + " ($HOME; created now, mode 0400)",
                      .created = true};
}

}  // namespace

Result<CookieChoice> choose_cookie(const std::optional<std::string>& cookie_file,
                                   const std::string& origin, const char* env_cookie,
                                   const char* home) {
  if (cookie_file) {
    Result<std::string> cookie = engine::read_cookie_file(*cookie_file);
    if (!cookie.ok()) return cookie.status().with_context(origin);
    return CookieChoice{.cookie = std::move(*cookie),
                        .source = "cookie file " + *cookie_file + " (" + origin + ")",
                        .created = false};
  }
  if (env_cookie != nullptr) {
    Status valid = engine::validate_cookie(env_cookie);
    if (!valid.ok()) {
      return invalid_argument(std::string("environment variable ") + kCookieEnvVariable + ": " +
                              valid.message());
    }
    return CookieChoice{.cookie = env_cookie,
                        .source = std::string("environment variable ") + kCookieEnvVariable,
                        .created = false};
  }
  if (home == nullptr || *home == '\0') {
    return invalid_argument(std::string("no cookie: give --cookie-file (or cookie_file in the "
                                        "config file) or ") +
                            kCookieEnvVariable + ", or set HOME for $HOME/" + kHomeCookieName);
  }
  // Said first: "cannot create a temporary file beside ..." or "cannot open ...: Not a
  // directory" would hide that HOME itself is wrong (a service user without a home, a typo).
  struct stat home_stat {};
  const bool missing = ::stat(home, &home_stat) != 0 && (errno == ENOENT || errno == ENOTDIR);
  const bool not_directory = !missing && home_stat.st_mode != 0 && !S_ISDIR(home_stat.st_mode);
  if (missing || not_directory) {
    return invalid_argument(std::string("HOME=") + home + ": the home directory " +
                            (missing ? "does not exist" : "is not a directory") + ", so $HOME/" +
                            kHomeCookieName + " cannot be created: give --cookie-file (or " +
                            "cookie_file in the config file) or " + kCookieEnvVariable +
                            ", or set HOME to an existing directory");
  }
  const std::string path = (std::filesystem::path(home) / kHomeCookieName).string();
  Result<std::string> existing = engine::read_cookie_file(path);
  if (existing.ok()) {
    return CookieChoice{.cookie = std::move(*existing),
                        .source = "cookie file " + path + " ($HOME)",
                        .created = false};
  }
  if (existing.status().code() != StatusCode::not_found) return existing.status();
  return create_home_cookie(path);
}

}  // namespace mishka::daemon
