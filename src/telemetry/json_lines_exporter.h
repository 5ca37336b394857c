// Telemetry events as a JSON lines file: one JSON object per line, appended as events happen
// (docs/telemetry.md, "JSON lines"). This is the daemon's telemetry log.
//
//   {"time":"2026-11-26T10:15:30.123Z","event":["mishka_installer","mnesia","init","start"],
//    "measurements":{"monotonic_time":8812,"system_time":1795...},"metadata":{"node":"a@h:4370"}}
//
// (on one line). Values become JSON as json_of_value() says.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "mishka/log.h"
#include "mishka/status.h"
#include "mishka/telemetry.h"
#include "mishka/value.h"

namespace mishka::telemetry {

struct JsonLinesOptions {
  // Where the handler() reports write failures (write() returns them instead). May be empty.
  LogSink log;
  // The `time` of each line; null means system_clock().
  std::shared_ptr<const Clock> clock;
  // Permissions of the file when it is created (an existing file keeps its own).
  unsigned file_mode = 0644;
};

// The JSON text of a value, as value_to_json() (src/telemetry/value_json.h) writes it: the
// kinds as themselves, NaN and the infinities as strings, bytes as {"base64": ...}, maps with
// string keys as objects and any other map as {"entries": [[key, value], ...]}. Invalid UTF-8
// in a string becomes U+FFFD, so that every line stays valid JSON.
std::string json_of_value(const Value& value);

// One line of the file, without its newline. `system_time_ns` is the line's `time`, written as
// RFC 3339 in UTC with milliseconds ("2026-11-26T10:15:30.123Z").
std::string json_line(const EventName& event, const Measurements& measurements,
                      const Metadata& metadata, std::int64_t system_time_ns);

// Threading: write() and the handler may be called from any thread at once; lines never
// interleave (each goes to the file in one write(2) of O_APPEND, under a lock).
class JsonLinesExporter {
 public:
  // Opens `path` for appending, creating it if needed. io_error naming the path when it cannot.
  static Result<std::unique_ptr<JsonLinesExporter>> open(const std::string& path,
                                                         JsonLinesOptions options = {});

  ~JsonLinesExporter();
  JsonLinesExporter(const JsonLinesExporter&) = delete;
  JsonLinesExporter& operator=(const JsonLinesExporter&) = delete;

  // Appends one line for the event. Each line is handed to the kernel before this returns (no
  // buffering in the process; not fsynced: a machine crash may lose the last lines).
  // io_error naming the path when the write fails; a failed write may leave part of a line.
  Status write(const EventName& event, const Measurements& measurements, const Metadata& metadata);

  // A telemetry handler that writes each event it gets, e.g.
  //   telemetry.attach_all("json-log", exporter->handler());
  // It shares ownership of the open file, which stays open while it is attached, even after
  // this exporter is destroyed. It never throws: a failed write is counted (failed_writes())
  // and logged through JsonLinesOptions::log, once per run of failures.
  Handler handler() const;

  // Writes that failed since open, through write() or the handler.
  std::int64_t failed_writes() const;

  const std::string& path() const;

 private:
  class File;
  explicit JsonLinesExporter(std::shared_ptr<File> file) : file_(std::move(file)) {}

  std::shared_ptr<File> file_;
};

}  // namespace mishka::telemetry
