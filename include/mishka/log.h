// Where a component's log lines go. There is no process-wide logger (many nodes share a
// process): each component gets a LogSink from its owner, who prefixes and routes the lines.
#pragma once

#include <functional>
#include <string_view>

namespace mishka {

enum class LogLevel { debug, info, warning, error, critical };

// Called from the thread that logs; must not block for long and must not throw.
using LogSink = std::function<void(LogLevel level, std::string_view message)>;

inline void log_to(const LogSink& sink, LogLevel level, std::string_view message) {
  if (sink) sink(level, message);
}

}  // namespace mishka
