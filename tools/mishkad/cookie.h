// Where mishkad's cookie comes from (CONTRACT.md section 11; docs/security.md, "The cookie"):
// the cookie file given, else the MISHKA_COOKIE environment variable, else $HOME/.mishka.cookie,
// created once with a random cookie and mode 0400.
#pragma once

#include <optional>
#include <string>

#include "mishka/status.h"

namespace mishka::daemon {

// The file name under $HOME used when neither a cookie file nor MISHKA_COOKIE is given.
inline constexpr char kHomeCookieName[] = ".mishka.cookie";
inline constexpr char kCookieEnvVariable[] = "MISHKA_COOKIE";

struct CookieChoice {
  std::string cookie;
  // Where it came from, for the log (never the cookie itself), e.g. "cookie file /x
  // (--cookie-file)"
  std::string source;
  bool created = false;  // $HOME/.mishka.cookie was created by this call
};

// Inputs, in order of precedence: `cookie_file` (with `origin`, the flag or config line that
// named it, for messages), then `env_cookie` (MISHKA_COOKIE's value; nullptr when unset), then
// `home` ($HOME; nullptr when unset).
//
// A named file must exist and pass read_cookie_file() (mode 0400 or 0600, a valid cookie).
// MISHKA_COOKIE must pass validate_cookie() (set but empty is refused, not taken as unset: a
// secret that is silently replaced by another is worse than a failed start). Without either,
// $HOME/.mishka.cookie is read, or created if it does not exist: 32 random bytes from the
// kernel as 64 hex digits, mode 0400, written to a temporary file and linked into place, so
// that two daemons starting at once end with one cookie. Errors: invalid_argument (bad cookie
// or mode; HOME unset, empty, missing or not a directory), io_error naming the path.
Result<CookieChoice> choose_cookie(const std::optional<std::string>& cookie_file,
                                   const std::string& origin, const char* env_cookie,
                                   const char* home);

}  // namespace mishka::daemon
