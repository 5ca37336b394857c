// The disk's rate of durable overwrites: the physical limit under one durable commit at a time
// (etcd fsyncs its log before it answers). A 2 KiB block is written over the same place of a
// scratch file and fdatasync'd, back to back, as etcd's log does for a small Raft entry.
//
// Threading: the caller's thread, plus the one writer thread of run_timed_load().
#pragma once

#include <chrono>
#include <filesystem>

#include "bench_support.h"
#include "mishka/status.h"

namespace mishka::bench {

inline constexpr std::size_t kFsyncBlockBytes = 2048;

// Creates a scratch file in `dir`, then times overwrite + fdatasync pairs for `duration` after
// `warmup` (one LoadResult operation each). The file is removed afterwards. io_error naming the
// file when it cannot be created; a failed write or fdatasync counts as a failed operation.
Result<LoadResult> probe_fsync(const std::filesystem::path& dir, std::chrono::milliseconds warmup,
                               std::chrono::milliseconds duration);

}  // namespace mishka::bench
