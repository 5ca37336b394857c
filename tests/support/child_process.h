// Tests use the production child-process helper (src/engine/child_process.h) under the test
// namespace, so that fixtures say ChildProcess, ExitInfo and SpawnOptions without a prefix.
// Its PR_SET_PDEATHSIG rule holds here too: spawn from the test's main thread (or from a thread
// that outlives the child).
#pragma once

#include "engine/child_process.h"

namespace mishka::test {

using engine::ChildProcess;
using engine::ExitInfo;
using engine::pick_free_loopback_ports;
using engine::SpawnOptions;
using engine::tail_of_file;

}  // namespace mishka::test
