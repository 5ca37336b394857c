// mishkad's configuration (CONTRACT.md section 11; docs/operations.md is the operator's guide):
// the command line, the TOML file it names with --config, the environment (MISHKA_ENV,
// MISHKA_COOKIE, HOME) and the cookie, resolved into one DaemonConfig before anything starts.
//
// Precedence: a flag wins over the file, the file over the defaults. The file's keys are the
// names of RepoOptions' fields (repo_options_from_value(): mnesia_dir, essential,
// cluster_nodes, dynamic_membership, wait_timeout, wait_retries, health_interval, node,
// peer_port, etcd_binary, ca_cert_path, ca_key_path, metrics_port, target_voters, ...; durations
// in ms) plus the daemon's own: cookie_file, admin, telemetry_log, log_level and [[tables]]
// (log_level has no flag: it is not in CONTRACT.md's list). The cookie
// itself is never accepted in the file (config files are often world-readable).
//
// Every refusal is invalid_argument whose message starts with where the value came from: the
// flag and its value ("--wait-timeout 'abc': ..."), the file and line ("/etc/m.toml:7: ..."),
// or the environment variable, and names the key.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mishka/log.h"
#include "mishka/repo.h"
#include "mishka/status.h"
#include "mishka/table_spec.h"

namespace mishka::daemon {

struct AdminAddress {
  std::string host = "127.0.0.1";
  std::uint16_t port = 4380;  // 0: any free port (the daemon logs the one it got)

  // "host:port", with brackets around an IPv6 host.
  std::string to_string() const;
};

// "debug", "info", "warning", "error", "critical"; and back (nullopt for any other name).
std::string_view log_level_name(LogLevel level);
std::optional<LogLevel> parse_log_level(std::string_view name);

// "HOST:PORT" or "[IPV6]:PORT"; PORT 0..65535. invalid_argument saying what is wrong.
Result<AdminAddress> parse_admin_address(std::string_view text);

struct DaemonConfig {
  // Everything of the node, cookie included. The collaborators (telemetry, pubsub, host, log)
  // are left unset: the daemon provides them.
  RepoOptions repo;
  AdminAddress admin;
  // The JSON lines file of telemetry events; empty: none.
  std::string telemetry_log;
  // The least level of the lines mishkad writes to stderr.
  LogLevel log_level = LogLevel::info;
  // User tables: created once the repo is synchronized, if they do not exist yet.
  std::vector<TableSpec> tables;
  // The --config file, if any.
  std::string config_path;
  // Lines for the daemon's log at start (where the cookie and the directory came from).
  std::vector<std::string> notes;
};

enum class DaemonAction { run, help, version };

struct DaemonCommand {
  DaemonAction action = DaemonAction::run;
  DaemonConfig config;  // for run only
};

// `args` are argv[1..]. Flags: those of CONTRACT.md section 11 (`--flag value` or
// `--flag=value`; each at most once: a flag given twice is refused, naming it), --config PATH,
// --help, --version; no positional arguments. With --help or --version nothing else is checked
// or read.
//
// Reads the config file and the environment; the only write is $HOME/.mishka.cookie, created
// when no cookie is given another way and everything else is valid (cookie.h). Nothing under
// the node's directory is touched. Errors: invalid_argument as described at the top; not_found
// or io_error for a config or cookie file that cannot be read.
Result<DaemonCommand> parse_daemon_command(const std::vector<std::string>& args);

// The text of `mishkad --help`.
std::string daemon_usage();

// "mishkad <version>".
std::string daemon_version();

}  // namespace mishka::daemon
