#include "telemetry/json_lines_exporter.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string_view>

#include "telemetry/value_json.h"

namespace mishka::telemetry {
namespace {

// Keeps members in the order they are added: "time" first reads best in a log, and metadata
// (a sorted std::map) stays sorted.
using Json = nlohmann::ordered_json;

std::string dump(const Json& json) {
  return json.dump(-1, ' ', false, Json::error_handler_t::replace);
}

// RFC 3339, UTC, milliseconds: "2026-11-26T10:15:30.123Z".
std::string rfc3339_millis(std::int64_t ns) {
  // Floor division, so that times before the epoch still get a millisecond part in [0, 999].
  std::int64_t seconds = ns / 1'000'000'000;
  std::int64_t rest = ns % 1'000'000'000;
  if (rest < 0) {
    rest += 1'000'000'000;
    --seconds;
  }
  const std::time_t t = static_cast<std::time_t>(seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[48];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(rest / 1'000'000));
  return buf;
}

template <typename NameToValue>
Json object_of(const NameToValue& values) {
  Json out = Json::object();
  for (const auto& [name, value] : values) out[name] = value_to_json(value);
  return out;
}

}  // namespace

std::string json_of_value(const Value& value) {
  return dump(value_to_json(value));
}

std::string json_line(const EventName& event, const Measurements& measurements,
                      const Metadata& metadata, std::int64_t system_time_ns) {
  Json line = Json::object();
  line["time"] = rfc3339_millis(system_time_ns);
  line["event"] = event;
  line["measurements"] = object_of(measurements);
  line["metadata"] = object_of(metadata);
  return dump(line);
}

class JsonLinesExporter::File {
 public:
  File(std::string path, int fd, JsonLinesOptions options)
      : path_(std::move(path)),
        fd_(fd),
        log_(std::move(options.log)),
        clock_(options.clock ? std::move(options.clock) : system_clock()) {}
  ~File() { ::close(fd_); }
  File(const File&) = delete;
  File& operator=(const File&) = delete;

  Status write(const EventName& event, const Measurements& measurements, const Metadata& metadata) {
    std::string line = json_line(event, measurements, metadata, clock_->system_time_ns());
    line += '\n';
    Status written = append(line);
    if (!written.ok()) failed_.fetch_add(1, std::memory_order_relaxed);
    return written;
  }

  // For the handler, which cannot return an error: log the first failure of a run of them, and
  // the recovery, rather than one line per lost event.
  void write_and_log(const EventName& event, const Measurements& measurements,
                     const Metadata& metadata) {
    Status written = write(event, measurements, metadata);
    const bool was_failing = failing_.exchange(!written.ok());
    if (!written.ok() && !was_failing) {
      log_to(log_, LogLevel::error,
             "telemetry JSON lines: " + written.to_string() + " (further failures not logged)");
    } else if (written.ok() && was_failing) {
      log_to(log_, LogLevel::info, "telemetry JSON lines: writing to " + path_ + " again");
    }
  }

  const std::string& path() const { return path_; }
  std::int64_t failed() const { return failed_.load(std::memory_order_relaxed); }

 private:
  Status append(std::string_view line) {
    std::lock_guard lock(mu_);
    while (!line.empty()) {
      const ssize_t n = ::write(fd_, line.data(), line.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        return io_error("cannot append to " + path_ + ": " + std::strerror(errno));
      }
      line.remove_prefix(static_cast<std::size_t>(n));
    }
    return Status::Ok();
  }

  const std::string path_;
  const int fd_;
  const LogSink log_;
  const std::shared_ptr<const Clock> clock_;
  std::mutex mu_;  // one line at a time, so lines never interleave
  std::atomic<std::int64_t> failed_{0};
  std::atomic<bool> failing_{false};
};

Result<std::unique_ptr<JsonLinesExporter>> JsonLinesExporter::open(const std::string& path,
                                                                   JsonLinesOptions options) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, options.file_mode);
  if (fd < 0) {
    return io_error("cannot open telemetry log " + path + ": " + std::strerror(errno));
  }
  auto file = std::make_shared<File>(path, fd, std::move(options));
  return std::unique_ptr<JsonLinesExporter>(new JsonLinesExporter(std::move(file)));
}

JsonLinesExporter::~JsonLinesExporter() = default;

Status JsonLinesExporter::write(const EventName& event, const Measurements& measurements,
                                const Metadata& metadata) {
  return file_->write(event, measurements, metadata);
}

Handler JsonLinesExporter::handler() const {
  return [file = file_](const EventName& event, const Measurements& measurements,
                        const Metadata& metadata) {
    file->write_and_log(event, measurements, metadata);
  };
}

std::int64_t JsonLinesExporter::failed_writes() const {
  return file_->failed();
}

const std::string& JsonLinesExporter::path() const {
  return file_->path();
}

}  // namespace mishka::telemetry
