// mishkad's TOML config file read into Values (docs/operations.md lists its keys): each
// top-level key with its value and the line it was set on, so that a refusal further on can say
// where to look. Which keys exist and what they mean is daemon_config.cc's business; this file
// only turns TOML into the map form repo_options_from_value() reads.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "mishka/status.h"
#include "mishka/value.h"

namespace mishka::daemon {

// One top-level key of the file.
struct ConfigEntry {
  Value value;
  int line = 0;  // of the key (1-based)
  // For an array (e.g. [[tables]]): the line of each item, in order; 0 where unknown.
  std::vector<int> item_lines;
};

struct ConfigFile {
  std::string path;
  std::map<std::string, ConfigEntry> entries;

  // "<path>:<line>", how errors point into the file.
  std::string where(int line) const;
};

// Reads and parses `path`. TOML maps onto Value as: tables -> maps with string keys, arrays ->
// lists, strings, integers (int64), floats (double), booleans. Dates and times have no Value
// form and are refused. Errors (invalid_argument, or io_error/not_found for the file itself)
// name the path and, for syntax or type errors, the line and column. Reads only.
Result<ConfigFile> read_config_file(const std::string& path);

}  // namespace mishka::daemon
