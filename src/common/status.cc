#include "mishka/status.h"

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <utility>

namespace mishka {

std::string_view status_code_name(StatusCode code) {
  switch (code) {
    case StatusCode::ok:
      return "ok";
    case StatusCode::invalid_argument:
      return "invalid_argument";
    case StatusCode::not_found:
      return "not_found";
    case StatusCode::already_exists:
      return "already_exists";
    case StatusCode::corrupt:
      return "corrupt";
    case StatusCode::io_error:
      return "io_error";
    case StatusCode::conflict:
      return "conflict";
    case StatusCode::timeout:
      return "timeout";
    case StatusCode::no_quorum:
      return "no_quorum";
    case StatusCode::engine_unavailable:
      return "engine_unavailable";
    case StatusCode::node_name_mismatch:
      return "node_name_mismatch";
    case StatusCode::unsupported:
      return "unsupported";
    case StatusCode::internal:
      return "internal";
    case StatusCode::compacted:
      return "compacted";
    case StatusCode::space_exceeded:
      return "space_exceeded";
    case StatusCode::permission_denied:
      return "permission_denied";
    case StatusCode::removed:
      return "removed";
    case StatusCode::essential_table_failed:
      return "essential_table_failed";
    case StatusCode::tables_unavailable:
      return "tables_unavailable";
  }
  // A number that is not one of the codes above, e.g. read from a newer peer.
  return "unknown";
}

std::string Status::to_string() const {
  if (ok()) return "ok";
  std::string out(status_code_name(code_));
  if (!message_.empty()) {
    out += ": ";
    out += message_;
  }
  return out;
}

Status Status::with_context(std::string_view context) const {
  // An ok status stays ok: there is no failure to explain.
  if (ok() || context.empty()) return *this;
  std::string message(context);
  if (!message_.empty()) {
    message += ": ";
    message += message_;
  }
  return Status(code_, std::move(message));
}

}  // namespace mishka

namespace mishka::detail {

void die_on_error_access(const Status& status) {
  std::fprintf(stderr, "mishka: value() of a failed Result: %s\n", status.to_string().c_str());
  std::abort();
}

}  // namespace mishka::detail
