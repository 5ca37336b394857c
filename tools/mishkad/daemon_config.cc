// parse_daemon_command (daemon_config.h): flags and file into one map of settings, each with
// where it came from; the daemon's own keys taken out; the rest handed to
// repo_options_from_value(), whose errors are prefixed with the origin of the key they name.
#include "mishkad/daemon_config.h"

#include <cstdlib>
#include <map>
#include <optional>
#include <set>
#include <utility>

#include "mishkad/config_file.h"
#include "mishkad/cookie.h"

#ifndef MISHKA_VERSION
#error "MISHKA_VERSION must be defined by the build (the project's version)"
#endif

namespace mishka::daemon {
namespace {

// ---- the flags: each declared once; parsing and --help are generated from this list ----

enum class FlagKind {
  text,          // a non-empty string
  node_list,     // "auto" or NODE[,NODE...]
  boolean,       // true|false
  port,          // 1..65535
  milliseconds,  // a non-negative integer
  count,         // a non-negative integer
  address,       // HOST:PORT
};

struct FlagSpec {
  std::string_view flag;
  std::string_view key;  // the config file key it overrides
  FlagKind kind;
  std::string_view arg;
  std::string_view help;
};

constexpr FlagSpec kFlags[] = {
    {"--node", "node", FlagKind::text, "NAME@HOST:PORT",
     "this node's name; PORT is its etcd client port (default mishka@127.0.0.1:4370)"},
    {"--peer-port", "peer_port", FlagKind::port, "P", "etcd's peer port (default PORT+1)"},
    {"--dir", "mnesia_dir", FlagKind::text, "PATH",
     "the node's directory (default .mnesia/$MISHKA_ENV, else .mnesia/dev)"},
    {"--cluster-nodes", "cluster_nodes", FlagKind::node_list, "auto|NODE[,NODE...]",
     "auto: a standalone seed (default); else the nodes of the cluster to join"},
    {"--dynamic-membership", "dynamic_membership", FlagKind::boolean, "true|false",
     "follow node events after boot, for a joiner (default true)"},
    {"--cookie-file", "cookie_file", FlagKind::text, "PATH",
     "the cluster's cookie (mode 0400 or 0600); else $MISHKA_COOKIE, else $HOME/.mishka.cookie "
     "(created once)"},
    {"--ca-cert", "ca_cert_path", FlagKind::text, "PATH",
     "an operator's CA certificate (PEM) instead of the cookie's CA; with --ca-key"},
    {"--ca-key", "ca_key_path", FlagKind::text, "PATH", "the key of --ca-cert (PEM)"},
    {"--etcd", "etcd_binary", FlagKind::text, "PATH", "the etcd binary (default etcd on PATH)"},
    {"--admin", "admin", FlagKind::address, "HOST:PORT",
     "the admin HTTP address (default 127.0.0.1:4380)"},
    {"--telemetry-log", "telemetry_log", FlagKind::text, "PATH",
     "append every telemetry event to PATH, one JSON object a line"},
    {"--wait-timeout", "wait_timeout", FlagKind::milliseconds, "MS",
     "one wait for tables to load (default 60000)"},
    {"--wait-retries", "wait_retries", FlagKind::count, "N",
     "waits before boot fails with tables_unavailable (default 5)"},
    {"--health-interval", "health_interval", FlagKind::milliseconds, "MS",
     "period of the health check, 0: off (default 10000)"},
};

constexpr std::string_view kConfigFlag = "--config";

// The keys the daemon takes out of the settings before the rest goes to the repo.
constexpr std::string_view kCookieFileKey = "cookie_file";
constexpr std::string_view kAdminKey = "admin";
constexpr std::string_view kTelemetryLogKey = "telemetry_log";
constexpr std::string_view kLogLevelKey = "log_level";
constexpr std::string_view kTablesKey = "tables";
constexpr std::string_view kEssentialKey = "essential";
constexpr char kDaemonKeys[] = "cookie_file, admin, telemetry_log, log_level, tables";

// A valid cookie that only stands in while the options are checked, so that the checks that
// depend on TLS being on (the metrics port) run before the real cookie is looked up, which may
// create $HOME/.mishka.cookie. It is replaced before the options are used.
constexpr char kStandInCookie[] = "stand-in-cookie-for-option-checks";

const FlagSpec* find_flag(std::string_view name) {
  for (const FlagSpec& spec : kFlags) {
    if (spec.flag == name) return &spec;
  }
  return nullptr;
}

// One value of a key, with where it was set ("--flag 'value'" or "file:line"), and for lists
// of tables where each item was set.
struct Setting {
  Value value;
  std::string origin;
  std::vector<std::string> item_origins;
};

using Settings = std::map<std::string, Setting, std::less<>>;

struct CommandLine {
  DaemonAction action = DaemonAction::run;
  std::optional<std::string> config_path;
  std::vector<std::pair<const FlagSpec*, std::string>> flags;
};

std::string quoted(std::string_view text) {
  return "'" + std::string(text) + "'";
}

Status usage_error(const std::string& message) {
  return invalid_argument(message + " (mishkad --help lists the flags)");
}

// ---- the command line ----

Result<CommandLine> split_command_line(const std::vector<std::string>& args) {
  CommandLine line;
  // A flag given twice is refused rather than resolved: nothing appends overrides to mishkad's
  // command line (the unit, scripts/cluster.sh and the tests give each flag once), and of two
  // values typed by hand, neither is more likely to be the one meant.
  std::set<std::string> seen;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg.size() < 3 || arg.compare(0, 2, "--") != 0) {
      return usage_error("unexpected argument " + quoted(arg) + ": mishkad takes flags only");
    }
    const std::size_t equals = arg.find('=');
    const std::string name = arg.substr(0, equals);
    if (name == "--help" || name == "--version") {
      if (equals != std::string::npos) return usage_error(name + " takes no value");
      line.action = name == "--help" ? DaemonAction::help : DaemonAction::version;
      return line;
    }
    const FlagSpec* spec = find_flag(name);
    if (spec == nullptr && name != kConfigFlag) {
      return usage_error("unknown flag " + quoted(name));
    }
    if (!seen.insert(name).second) {
      return usage_error(name + " is given more than once: give each flag once");
    }
    std::string value;
    if (equals != std::string::npos) {
      value = arg.substr(equals + 1);
    } else if (i + 1 < args.size() && args[i + 1].compare(0, 2, "--") != 0) {
      value = args[++i];
    } else {
      return usage_error(name + ": missing value (for a value that starts with --, write " + name +
                         "=VALUE)");
    }
    if (spec == nullptr) {
      if (value.empty()) return usage_error("--config '': expected the path of a TOML file");
      line.config_path = value;
    } else {
      line.flags.emplace_back(spec, value);
    }
  }
  return line;
}

Result<std::int64_t> parse_non_negative(std::string_view text) {
  if (text.empty() || text.size() > 18 || text.find_first_not_of("0123456789") != text.npos) {
    return invalid_argument("not a non-negative integer");
  }
  return std::stoll(std::string(text));
}

// The flag's text as the Value its key takes in the file. Errors name the flag and the value.
Result<Value> flag_value(const FlagSpec& spec, const std::string& text) {
  const std::string origin = std::string(spec.flag) + " " + quoted(text);
  auto refuse = [&](const std::string& what) {
    return invalid_argument(origin + ": expected " + what);
  };
  switch (spec.kind) {
    case FlagKind::text:
      if (text.empty()) return refuse(std::string(spec.arg) + ", not an empty string");
      return Value(text);
    case FlagKind::node_list: {
      if (text == "auto") return Value("auto");
      List nodes;
      std::size_t start = 0;
      while (true) {
        const std::size_t comma = text.find(',', start);
        const std::string node = text.substr(start, comma == text.npos ? text.npos : comma - start);
        if (node.empty()) return refuse("auto or NODE[,NODE...] without empty names");
        nodes.emplace_back(node);
        if (comma == text.npos) break;
        start = comma + 1;
      }
      return Value(std::move(nodes));
    }
    case FlagKind::boolean:
      if (text == "true") return Value(true);
      if (text == "false") return Value(false);
      return refuse("true or false");
    case FlagKind::port: {
      Result<std::int64_t> port = parse_non_negative(text);
      if (!port.ok() || *port < 1 || *port > 65535) return refuse("a port 1..65535");
      return Value(*port);
    }
    case FlagKind::milliseconds: {
      Result<std::int64_t> ms = parse_non_negative(text);
      if (!ms.ok()) return refuse("a non-negative integer of milliseconds");
      return Value(*ms);
    }
    case FlagKind::count: {
      Result<std::int64_t> n = parse_non_negative(text);
      if (!n.ok()) return refuse("a non-negative integer");
      return Value(*n);
    }
    case FlagKind::address: {
      Result<AdminAddress> address = parse_admin_address(text);
      if (!address.ok()) return invalid_argument(origin + ": " + address.status().message());
      return Value(text);
    }
  }
  return refuse("a value");
}

// ---- the settings: the file, then the flags over it ----

Status add_file_settings(const ConfigFile& file, Settings& settings) {
  for (const auto& [key, entry] : file.entries) {
    if (key == "cookie") {
      return invalid_argument(file.where(entry.line) +
                              ": key 'cookie' is not accepted in a config file (such files are "
                              "often readable by others): put the cookie in a file of mode 0400 "
                              "and name it with cookie_file");
    }
    Setting setting{.value = entry.value, .origin = file.where(entry.line), .item_origins = {}};
    for (int line : entry.item_lines) setting.item_origins.push_back(file.where(line));
    settings[key] = std::move(setting);
  }
  return Status::Ok();
}

Status add_flag_settings(const CommandLine& line, Settings& settings) {
  for (const auto& [spec, text] : line.flags) {
    Result<Value> value = flag_value(*spec, text);
    if (!value.ok()) return value.status();
    settings[std::string(spec->key)] =
        Setting{.value = std::move(*value),
                .origin = std::string(spec->flag) + " " + quoted(text),
                .item_origins = {}};
  }
  return Status::Ok();
}

// Takes `key` out of the settings (the repo must not see the daemon's keys).
std::optional<Setting> take(Settings& settings, std::string_view key) {
  auto it = settings.find(key);
  if (it == settings.end()) return std::nullopt;
  Setting setting = std::move(it->second);
  settings.erase(it);
  return setting;
}

Result<std::string> string_setting(const Setting& setting, std::string_view key,
                                   std::string_view what) {
  const std::string* text = setting.value.get_string();
  if (text == nullptr || text->empty()) {
    return invalid_argument(setting.origin + ": key '" + std::string(key) + "': expected " +
                            std::string(what) + ", got " + setting.value.debug_string());
  }
  return *text;
}

bool has_text(const Settings& settings, std::string_view key) {
  const auto it = settings.find(key);
  if (it == settings.end()) return false;
  const std::string* text = it->second.value.get_string();
  return text != nullptr && !text->empty();
}

// ---- table specs ([[essential]] and [[tables]]) ----

// Fields a table spec may leave out in the file, with the values they then take.
Value with_table_defaults(const Value& item) {
  const Map* fields = item.get_map();
  if (fields == nullptr) return item;
  Map filled = *fields;
  const std::pair<const char*, Value> defaults[] = {
      {"type", Value("set")},
      {"storage", Value("disc_copies")},
      {"local_content", Value(false)},
      {"indexes", Value(List{})},
  };
  for (const auto& [field, value] : defaults) {
    if (filled.find(Value(field)) == nullptr) filled.set(Value(field), value);
  }
  return Value(std::move(filled));
}

// The specs of a list of tables, each validated, errors naming the item and its line.
Result<std::vector<TableSpec>> table_specs(const Setting& setting, std::string_view key,
                                           List* filled_out) {
  const List* items = setting.value.get_list();
  if (items == nullptr) {
    return invalid_argument(setting.origin + ": key '" + std::string(key) +
                            "': expected a list of tables ([[" + std::string(key) +
                            "]] sections), got " + setting.value.debug_string());
  }
  std::vector<TableSpec> specs;
  for (std::size_t i = 0; i < items->size(); ++i) {
    const Value filled = with_table_defaults((*items)[i]);
    Result<TableSpec> spec = table_spec_from_value(filled);
    if (!spec.ok()) {
      const std::string& origin =
          i < setting.item_origins.size() ? setting.item_origins[i] : setting.origin;
      return invalid_argument(origin + ": key '" + std::string(key) + "', item " +
                              std::to_string(i) + ": " + spec.status().message());
    }
    specs.push_back(std::move(*spec));
    if (filled_out != nullptr) filled_out->push_back(filled);
  }
  return specs;
}

Status check_user_tables(const std::vector<TableSpec>& tables, const Setting& setting,
                         const std::vector<TableSpec>& essential) {
  std::set<std::string> names;
  for (const TableSpec& spec : essential) names.insert(spec.name);
  std::set<std::string> user;
  for (const TableSpec& spec : tables) {
    if (names.count(spec.name) != 0) {
      return invalid_argument(setting.origin + ": key 'tables': '" + spec.name +
                              "' is an essential table already");
    }
    if (!user.insert(spec.name).second) {
      return invalid_argument(setting.origin +
                              ": key 'tables': table names must be distinct, got '" + spec.name +
                              "' twice");
    }
  }
  return Status::Ok();
}

// ---- the repo's options ----

// repo_options_from_value() names the key first ("option '<key>': ..."): the message is
// prefixed with where that key was set, when it was set.
//
// etcd's peer and metrics ports default to the node's client port + 1 and + 2. When the repo
// refuses one that was not set, the value was derived from the node's name: the message is
// then prefixed with where the node was set, and says which flag or key fixes it.
Status with_origin(const Status& status, const Settings& settings) {
  const std::string& message = status.message();
  static constexpr std::string_view kPrefix = "option '";
  std::string annotated = message;
  if (message.find("unknown option") != std::string::npos) {
    annotated += "; the daemon's own keys: " + std::string(kDaemonKeys);
  }
  if (message.compare(0, kPrefix.size(), kPrefix) != 0) return Status(status.code(), annotated);
  const std::size_t end = message.find('\'', kPrefix.size());
  if (end == std::string::npos) return Status(status.code(), annotated);
  const std::string key = message.substr(kPrefix.size(), end - kPrefix.size());
  if (const auto it = settings.find(key); it != settings.end()) {
    return Status(status.code(), it->second.origin + ": " + annotated);
  }
  const auto node = settings.find("node");
  const std::string node_origin =
      node != settings.end() ? node->second.origin : std::string("the default node");
  if (key == "peer_port") {
    annotated = node_origin + ": " + annotated +
                " (etcd's peer port defaults to the node's PORT+1, which is out of range "
                "here: give --peer-port P, or peer_port in the config file)";
  } else if (key == "metrics_port") {
    annotated = node_origin + ": " + annotated +
                " (with TLS, etcd's metrics port defaults to the node's PORT+2: set "
                "metrics_port in the config file to a free port, or choose another node port)";
  }
  return Status(status.code(), annotated);
}

Result<RepoOptions> repo_options(Settings& settings, bool stand_in_cookie,
                                 std::vector<std::string>& notes) {
  RepoOptions base;
  Map map;
  for (const auto& [key, setting] : settings) {
    if (key == kEssentialKey) {
      List filled;
      Result<std::vector<TableSpec>> specs = table_specs(setting, key, &filled);
      if (!specs.ok()) return specs.status();
      map.set(Value(key), Value(std::move(filled)));
      continue;
    }
    map.set(Value(key), setting.value);
  }
  if (stand_in_cookie) map.set(Value("cookie"), Value(kStandInCookie));
  std::string dir_origin;
  if (const auto given = settings.find("mnesia_dir"); given != settings.end()) {
    dir_origin = "from " + given->second.origin;
  } else {
    Result<std::string> dir = default_mnesia_dir();
    if (!dir.ok()) return dir.status();
    base.mnesia_dir = *dir;
    const char* env = std::getenv("MISHKA_ENV");
    dir_origin = env != nullptr && *env != '\0' ? "default, MISHKA_ENV=" + std::string(env)
                                                : std::string("default, MISHKA_ENV unset");
  }
  Result<RepoOptions> options = repo_options_from_value(Value(std::move(map)), std::move(base));
  if (!options.ok()) return with_origin(options.status(), settings);
  notes.push_back("directory " + options->mnesia_dir + " (" + dir_origin + ")");
  return options;
}

Result<DaemonConfig> build_config(const CommandLine& line) {
  DaemonConfig config;
  Settings settings;
  if (line.config_path) {
    Result<ConfigFile> file = read_config_file(*line.config_path);
    if (!file.ok()) return file.status();
    MISHKA_RETURN_IF_ERROR(add_file_settings(*file, settings));
    config.config_path = *line.config_path;
  }
  MISHKA_RETURN_IF_ERROR(add_flag_settings(line, settings));

  const std::optional<Setting> cookie_file = take(settings, kCookieFileKey);
  std::optional<std::string> cookie_path;
  if (cookie_file) {
    Result<std::string> path = string_setting(*cookie_file, kCookieFileKey, "a path");
    if (!path.ok()) return path.status();
    cookie_path = *path;
  }
  if (const std::optional<Setting> admin = take(settings, kAdminKey)) {
    Result<std::string> text = string_setting(*admin, kAdminKey, "HOST:PORT");
    if (!text.ok()) return text.status();
    Result<AdminAddress> address = parse_admin_address(*text);
    if (!address.ok()) {
      return invalid_argument(admin->origin + ": key 'admin': " + address.status().message());
    }
    config.admin = *address;
  }
  if (const std::optional<Setting> log = take(settings, kTelemetryLogKey)) {
    Result<std::string> path = string_setting(*log, kTelemetryLogKey, "a path");
    if (!path.ok()) return path.status();
    config.telemetry_log = *path;
  }
  if (const std::optional<Setting> level = take(settings, kLogLevelKey)) {
    const std::string* name = level->value.get_string();
    const std::optional<LogLevel> parsed =
        name != nullptr ? parse_log_level(*name) : std::optional<LogLevel>();
    if (!parsed) {
      return invalid_argument(level->origin +
                              ": key 'log_level': expected debug, info, warning, error or "
                              "critical, got " +
                              level->value.debug_string());
    }
    config.log_level = *parsed;
  }
  const std::optional<Setting> tables = take(settings, kTablesKey);

  // With an operator's CA the cookie plays no part (RepoOptions: the CA is not derived).
  const bool has_cert = has_text(settings, "ca_cert_path");
  const bool has_key = has_text(settings, "ca_key_path");
  if (has_cert != has_key) {
    const Setting& given = settings.at(has_cert ? "ca_cert_path" : "ca_key_path");
    return invalid_argument(given.origin + ": ca_cert_path and ca_key_path (--ca-cert and " +
                            "--ca-key) go together: both or neither, got only " +
                            (has_cert ? "ca_cert_path" : "ca_key_path"));
  }
  const bool operator_ca = has_cert;
  Result<RepoOptions> repo = repo_options(settings, !operator_ca, config.notes);
  if (!repo.ok()) return repo.status();
  config.repo = std::move(*repo);

  if (tables) {
    Result<std::vector<TableSpec>> specs = table_specs(*tables, kTablesKey, nullptr);
    if (!specs.ok()) return specs.status();
    MISHKA_RETURN_IF_ERROR(check_user_tables(*specs, *tables, config.repo.essential));
    config.tables = std::move(*specs);
  }

  // Last: the cookie, whose lookup may create $HOME/.mishka.cookie.
  const char* env_cookie = std::getenv(kCookieEnvVariable);
  if (operator_ca) {
    if (cookie_file) {
      return invalid_argument(cookie_file->origin +
                              ": key 'cookie_file': not used with an operator's CA (ca_cert_path "
                              "and ca_key_path, --ca-cert and --ca-key): give one or the other");
    }
    config.repo.cookie.clear();
    config.notes.push_back("TLS from the operator's CA " + config.repo.ca_cert_path);
    if (env_cookie != nullptr) {
      config.notes.push_back(std::string(kCookieEnvVariable) +
                             " is set but not used: the operator's CA replaces the cookie");
    }
    return config;
  }
  Result<CookieChoice> cookie = choose_cookie(cookie_path, cookie_file ? cookie_file->origin : "",
                                              env_cookie, std::getenv("HOME"));
  if (!cookie.ok()) return cookie.status();
  config.repo.cookie = std::move(cookie->cookie);
  config.notes.push_back("cookie from " + cookie->source);
  return config;
}

}  // namespace

std::string_view log_level_name(LogLevel level) {
  switch (level) {
    case LogLevel::debug:
      return "debug";
    case LogLevel::info:
      return "info";
    case LogLevel::warning:
      return "warning";
    case LogLevel::error:
      return "error";
    case LogLevel::critical:
      return "critical";
  }
  return "unknown";
}

std::optional<LogLevel> parse_log_level(std::string_view name) {
  for (LogLevel level :
       {LogLevel::debug, LogLevel::info, LogLevel::warning, LogLevel::error, LogLevel::critical}) {
    if (log_level_name(level) == name) return level;
  }
  return std::nullopt;
}

std::string AdminAddress::to_string() const {
  const bool ipv6 = host.find(':') != std::string::npos;
  return (ipv6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

Result<AdminAddress> parse_admin_address(std::string_view text) {
  const std::size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) {
    return invalid_argument("expected HOST:PORT, got '" + std::string(text) + "'");
  }
  std::string_view host = text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  } else if (host.find(':') != std::string_view::npos) {
    return invalid_argument("expected HOST:PORT with an IPv6 host in brackets ([::1]:4380), got '" +
                            std::string(text) + "'");
  }
  if (host.empty() || host.find_first_of(" \t\r\n[]/") != std::string_view::npos) {
    return invalid_argument("expected HOST:PORT with a host name or address, got '" +
                            std::string(text) + "'");
  }
  Result<std::int64_t> port = parse_non_negative(text.substr(colon + 1));
  if (!port.ok() || *port > 65535) {
    return invalid_argument("expected HOST:PORT with a port 0..65535, got '" + std::string(text) +
                            "'");
  }
  return AdminAddress{.host = std::string(host), .port = static_cast<std::uint16_t>(*port)};
}

Result<DaemonCommand> parse_daemon_command(const std::vector<std::string>& args) {
  Result<CommandLine> line = split_command_line(args);
  if (!line.ok()) return line.status();
  DaemonCommand command;
  command.action = line->action;
  if (command.action != DaemonAction::run) return command;
  Result<DaemonConfig> config = build_config(*line);
  if (!config.ok()) return config.status();
  command.config = std::move(*config);
  return command;
}

std::string daemon_usage() {
  std::string text =
      "usage: mishkad [--config PATH] [FLAG VALUE | FLAG=VALUE]...\n"
      "Runs one mishka node in the foreground, with its admin HTTP. With no flags: a standalone\n"
      "seed on the defaults. SIGTERM, SIGINT, SIGHUP or SIGQUIT stops it cleanly (exit 0); during\n"
      "the first boot the stop waits for the boot step in progress, and a second SIGTERM, SIGINT\n"
      "or SIGQUIT then exits at once (exit 1).\n"
      "\n"
      "  --config PATH  a TOML file; its keys are the names in brackets below, plus the other\n"
      "                 repo options (docs/operations.md); each flag overrides its key.\n"
      "                 Each flag may be given once.\n";
  for (const FlagSpec& spec : kFlags) {
    std::string head = "  " + std::string(spec.flag) + " " + std::string(spec.arg);
    text += head + "\n      " + std::string(spec.help) + " [" + std::string(spec.key) + "]\n";
  }
  text +=
      "  --help         this text\n"
      "  --version      the version\n"
      "\n"
      "Environment: MISHKA_ENV (the default directory's last part), MISHKA_COOKIE (the cookie,\n"
      "when no cookie file is given), HOME (for $HOME/.mishka.cookie).\n"
      "Exit status: 0 stopped by a signal, 1 failed while running, 2 bad flags or config.\n";
  return text;
}

std::string daemon_version() {
  return std::string("mishkad ") + MISHKA_VERSION;
}

}  // namespace mishka::daemon
