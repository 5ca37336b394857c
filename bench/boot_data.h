// The data sets of the start-to-ready figures (n1_boot of bench/compare): a one-node mishka
// cluster, or a one-member raw etcd, holding N records, left in a directory as a clean stop
// leaves it, and reopened by each run of the figure.
//
// A data set's directory holds the node's (or member's) directory, a "layout" file (its name
// and ports: a reopened node listens where it did) and, once everything is written and the
// node stopped, a "complete" marker. A directory without the marker is rebuilt from scratch.
//
// Threading: the caller's thread (the preload runs threads of its own).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include "mishka/status.h"

namespace mishka::bench {

struct BootSettings {
  std::string etcd_binary;
  bool verbose = false;  // the node's log lines at info and above (else errors only)
};

// What one reopening took: seconds from the start until the records were served, and a note
// without spaces for the RESULT line (how the replica was loaded), empty for etcd.
struct BootTiming {
  double seconds = 0;
  std::string note;
};

// True when `dir` holds a complete data set.
bool boot_set_complete(const std::filesystem::path& dir);

// Builds, unless complete, the mishka data set in `dir`: a one-node cluster (defaults, but 4
// etcd Txns in flight while preloading) with a set table "boot" of `records` records (a
// 100-byte payload each) written in transactions of 100 from 4 threads, stopped cleanly so that
// its replica wrote its snapshot file. Returns the seconds spent (0 when reused). Errors name
// the step; the incomplete directory is left without its marker.
Result<double> ensure_mishka_boot_set(const std::filesystem::path& dir, std::int64_t records,
                                      const BootSettings& settings);
// The same for raw etcd: one member holding `records` keys under "/boot/" (Txns of 100 puts).
Result<double> ensure_etcd_boot_set(const std::filesystem::path& dir, std::int64_t records,
                                    const BootSettings& settings);

// Opens the node of a complete mishka data set with default settings (its etcd member
// included) and times it until open() returned and its replica holds the `records` records; then
// stops it cleanly (not timed). The note says whether the replica came from its snapshot file.
Result<BootTiming> time_mishka_boot(const std::filesystem::path& dir, std::int64_t records,
                                    const BootSettings& settings);
// Starts the member of a complete etcd data set and times it until a serializable count of
// "/boot/" answers `records` (polled every 50 ms once the member is healthy); then stops it.
Result<BootTiming> time_etcd_boot(const std::filesystem::path& dir, std::int64_t records,
                                  const BootSettings& settings);

}  // namespace mishka::bench
