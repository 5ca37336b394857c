// What a fuzz target does when an invariant breaks: print it and abort, so that libFuzzer
// records the input as a crash.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>

#include "mishka/status.h"

namespace mishka::fuzz {

[[noreturn]] inline void fail(const std::string& what) {
  std::fprintf(stderr, "fuzz invariant broken: %s\n", what.c_str());
  std::abort();
}

inline void check(bool condition, const std::string& what) {
  if (!condition) fail(what);
}

// Decoders refuse bad input with `corrupt`; any other code (internal above all) is a bug.
inline void check_refusal(const Status& status) {
  if (status.code() != StatusCode::corrupt) fail("unexpected error: " + status.to_string());
}

}  // namespace mishka::fuzz
