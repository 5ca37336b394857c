// Errors as values. Every operation of the library that can fail returns a Status or a
// Result<T>; nothing throws across the public API.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace mishka {

// The numeric values reach logs, telemetry and the wire: never renumber, only append.
enum class StatusCode : std::uint8_t {
  ok = 0,
  invalid_argument = 1,         // the caller passed something malformed; the message says what
  not_found = 2,                // a table, key, file or node that does not exist
  already_exists = 3,           // creating something that is already there
  corrupt = 4,                  // stored or received bytes failed validation (checksum, format)
  io_error = 5,                 // the operating system refused a file or socket operation
  conflict = 6,                 // an optimistic transaction lost to a concurrent writer
  timeout = 7,                  // a deadline passed before the operation completed
  no_quorum = 8,                // the cluster cannot commit: a majority of members is unreachable
  engine_unavailable = 9,       // the local etcd member is not running or not answering
  node_name_mismatch = 10,      // the directory belongs to another node name
  unsupported = 11,             // a well-formed request for something this build does not do
  internal = 12,                // a broken invariant inside mishka: a bug to report
  compacted = 13,               // the engine's history no longer holds the revision asked for
  space_exceeded = 14,          // the engine's space quota is exhausted: writes refused until freed
  permission_denied = 15,       // the engine's auth refused the caller (user, password or role)
  removed = 16,                 // an operator removed this node from its cluster
  essential_table_failed = 17,  // boot could not create or copy essential tables (named)
  tables_unavailable = 18,      // tables still loading after every waiting slice (named)
};

// The stable lower-case name of a code, e.g. "no_quorum".
std::string_view status_code_name(StatusCode code);

// A code plus a human-readable message that names what failed and where (table, key, path,
// node). Cheap to move; copying copies the message.
class [[nodiscard]] Status {
 public:
  Status() = default;  // ok
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }

  bool ok() const { return code_ == StatusCode::ok; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }

  // "code: message", or "ok".
  std::string to_string() const;

  // Returns a copy whose message is prefixed by `context` (e.g. the file being loaded).
  Status with_context(std::string_view context) const;

  friend bool operator==(const Status& a, const Status& b) {
    return a.code_ == b.code_ && a.message_ == b.message_;
  }

 private:
  StatusCode code_ = StatusCode::ok;
  std::string message_;
};

inline Status invalid_argument(std::string message) {
  return Status(StatusCode::invalid_argument, std::move(message));
}
inline Status not_found(std::string message) {
  return Status(StatusCode::not_found, std::move(message));
}
inline Status already_exists(std::string message) {
  return Status(StatusCode::already_exists, std::move(message));
}
inline Status corrupt(std::string message) {
  return Status(StatusCode::corrupt, std::move(message));
}
inline Status io_error(std::string message) {
  return Status(StatusCode::io_error, std::move(message));
}

namespace detail {
// Prints the status and aborts: reading the value of a failed Result is a bug in the caller.
[[noreturn]] void die_on_error_access(const Status& status);
}  // namespace detail

// Either a value of T or a non-ok Status. Accessing value() of an error is a bug and aborts.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}        // NOLINT(google-explicit-constructor)
  Result(Status status) : v_(std::move(status)) {  // NOLINT(google-explicit-constructor)
    if (std::get<Status>(v_).ok()) {
      v_ = Status(StatusCode::internal, "Result constructed from an ok Status without a value");
    }
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  explicit operator bool() const { return ok(); }

  // The error; an ok Status when the result holds a value.
  Status status() const { return ok() ? Status() : std::get<Status>(v_); }

  T& value() & { return *checked(); }
  const T& value() const& { return *const_cast<Result*>(this)->checked(); }
  T&& value() && { return std::move(*checked()); }

  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  T* checked() {
    T* v = std::get_if<T>(&v_);
    if (v == nullptr) detail::die_on_error_access(std::get<Status>(v_));
    return v;
  }

  std::variant<T, Status> v_;
};

}  // namespace mishka

// Returns early from the enclosing function when `expr` yields a non-ok Status.
#define MISHKA_RETURN_IF_ERROR(expr)                 \
  do {                                               \
    ::mishka::Status mishka_status_ = (expr);        \
    if (!mishka_status_.ok()) return mishka_status_; \
  } while (0)
