// mishkactl: the operator's client of a node's admin HTTP (CONTRACT.md section 11; the API is
// docs/admin.md). One request per run; the reply's JSON body is printed on stdout.
//
// Exit status: 0 the node answered 2xx; 1 it answered an error (the body still goes to stdout,
// a one-line summary to stderr) or could not be reached; 2 bad usage (nothing was sent).
#include <httplib.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace {

// Ordered: a reply is printed in the order the server wrote it (records in attribute order).
using json = nlohmann::ordered_json;

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;

constexpr char kDefaultAdmin[] = "127.0.0.1:4380";
constexpr char kAdminEnv[] = "MISHKA_ADMIN";
constexpr int kConnectTimeoutSeconds = 2;
constexpr int kDefaultTimeoutSeconds = 30;
constexpr int kMaxTimeoutSeconds = 3600;

// Each command once: its name, its positional arguments, whether --json-key applies, and what
// it does. Usage texts are generated from this list.
struct CommandSpec {
  std::string_view name;
  std::vector<std::string_view> args;
  bool json_key;
  std::string_view help;
};

const std::vector<CommandSpec>& commands() {
  static const std::vector<CommandSpec> kCommands = {
      {"state", {}, false, "the node's state (GET /state)"},
      {"schemas", {}, false, "its tables with storage type (GET /schemas)"},
      {"health", {}, false, "the health check now (GET /healthz); exit 1 when unhealthy"},
      {"members", {}, false, "the cluster's members with their roles (from GET /state)"},
      {"get", {"TABLE", "KEY"}, true, "the record(s) under KEY"},
      {"put",
       {"TABLE", "KEY", "JSON"},
       true,
       "writes JSON (an object of the record's attributes) under KEY, once committed"},
      {"delete", {"TABLE", "KEY"}, true, "deletes the record(s) under KEY"},
      {"remove-node", {"NODE"}, false, "removes NODE (NAME@HOST:PORT) from the cluster"},
  };
  return kCommands;
}

const CommandSpec* find_command(std::string_view name) {
  for (const CommandSpec& spec : commands()) {
    if (spec.name == name) return &spec;
  }
  return nullptr;
}

std::string command_line(const CommandSpec& spec) {
  std::string text(spec.name);
  for (std::string_view arg : spec.args) text += " " + std::string(arg);
  if (spec.json_key) text += " [--json-key]";
  return text;
}

std::string usage() {
  std::string text =
      "usage: mishkactl [--admin HOST:PORT] [--timeout SECONDS] COMMAND [ARGS]\n"
      "Talks to a mishkad's admin HTTP (default " +
      std::string(kDefaultAdmin) + ", or $" + kAdminEnv + "; --admin wins).\n\ncommands:\n";
  for (const CommandSpec& spec : commands()) {
    std::string line = "  " + command_line(spec);
    line.resize(std::max<std::size_t>(line.size() + 2, 36), ' ');
    text += line + std::string(spec.help) + "\n";
  }
  text +=
      "\n  --json-key        KEY is JSON text (42, \"42\", [1,2]) for tables whose keys are not "
      "strings\n"
      "  --timeout SECONDS how long to wait for the reply (default 30)\n"
      "  --                ends the flags: what follows is an argument even if it starts with -\n"
      "                    (a negative number, e.g. -5, is an argument anyway)\n"
      "  COMMAND --help    help on one command\n"
      "\nOutput: the reply's JSON on stdout. Exit status: 0 success, 1 an error reply or no\n"
      "connection (a summary on stderr), 2 bad usage.\n";
  return text;
}

std::string command_usage(const CommandSpec& spec) {
  std::string text = "usage: mishkactl [--admin HOST:PORT] " + command_line(spec) + "\n" +
                     std::string(spec.help) + "\n";
  if (spec.json_key) {
    text += "  --json-key  KEY is JSON text (sent with ?key_format=json); default: a string\n";
  }
  if (!spec.args.empty()) {
    text += "  --          ends the flags: an argument that starts with - follows it\n";
  }
  return text;
}

struct UsageError {
  std::string message;
  const CommandSpec* command = nullptr;  // its usage is shown; nullptr: the general usage
};

struct Invocation {
  std::string admin = kDefaultAdmin;
  bool admin_given = false;
  int timeout_seconds = kDefaultTimeoutSeconds;
  bool help = false;
  bool json_key = false;
  const CommandSpec* command = nullptr;
  std::vector<std::string> args;  // the command's positional arguments
};

// HOST:PORT or [IPV6]:PORT into its parts; nullopt when malformed.
std::optional<std::pair<std::string, int>> split_address(std::string_view text) {
  const std::size_t colon = text.rfind(':');
  if (colon == std::string_view::npos || colon + 1 == text.size()) return std::nullopt;
  std::string_view host = text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  const std::string_view port_text = text.substr(colon + 1);
  if (host.empty() || port_text.size() > 5 ||
      port_text.find_first_not_of("0123456789") != std::string_view::npos) {
    return std::nullopt;
  }
  const int port = std::stoi(std::string(port_text));
  if (port < 1 || port > 65535) return std::nullopt;
  return std::make_pair(std::string(host), port);
}

// Reads the flags (anywhere on the line; "--" ends them) and the positional arguments.
std::optional<UsageError> parse(const std::vector<std::string>& argv, Invocation& out) {
  std::vector<std::string> positional;
  bool flags_ended = false;
  for (std::size_t i = 0; i < argv.size(); ++i) {
    const std::string& arg = argv[i];
    // "-5" and "-1.5" are negative JSON keys, not flags: no flag starts with a digit.
    const bool negative_number = arg.size() >= 2 && arg[0] == '-' && arg[1] >= '0' && arg[1] <= '9';
    if (flags_ended || arg.size() < 2 || arg[0] != '-' || negative_number) {
      positional.push_back(arg);
      continue;
    }
    if (arg == "--") {
      flags_ended = true;
      continue;
    }
    const std::size_t equals = arg.find('=');
    const std::string name = arg.substr(0, equals);
    auto value = [&]() -> std::optional<std::string> {
      if (equals != std::string::npos) return arg.substr(equals + 1);
      if (i + 1 < argv.size()) return argv[++i];
      return std::nullopt;
    };
    if (name == "--help" || name == "-h") {
      out.help = true;
    } else if (name == "--json-key") {
      if (equals != std::string::npos) return UsageError{"--json-key takes no value"};
      out.json_key = true;
    } else if (name == "--admin") {
      const std::optional<std::string> text = value();
      if (!text || !split_address(*text)) {
        return UsageError{"--admin: expected HOST:PORT (port 1..65535), got '" + text.value_or("") +
                          "'"};
      }
      out.admin = *text;
      out.admin_given = true;
    } else if (name == "--timeout") {
      const std::optional<std::string> text = value();
      const bool digits = text && !text->empty() && text->size() <= 5 &&
                          text->find_first_not_of("0123456789") == std::string::npos;
      const int seconds = digits ? std::stoi(*text) : 0;
      if (seconds < 1 || seconds > kMaxTimeoutSeconds) {
        return UsageError{"--timeout: expected 1.." + std::to_string(kMaxTimeoutSeconds) +
                          " seconds, got '" + text.value_or("") + "'"};
      }
      out.timeout_seconds = seconds;
    } else {
      return UsageError{"unknown flag '" + name + "'"};
    }
  }
  if (!positional.empty()) {
    out.command = find_command(positional[0]);
    if (out.command == nullptr) return UsageError{"unknown command '" + positional[0] + "'"};
    out.args.assign(positional.begin() + 1, positional.end());
  }
  if (out.help) return std::nullopt;
  if (out.command == nullptr) return UsageError{"no command given"};
  if (out.args.size() != out.command->args.size()) {
    return UsageError{std::string(out.command->name) + ": expected " +
                          std::to_string(out.command->args.size()) + " argument(s), got " +
                          std::to_string(out.args.size()),
                      out.command};
  }
  if (out.json_key && !out.command->json_key) {
    return UsageError{"--json-key applies to get, put and delete only", out.command};
  }
  if (!out.admin_given) {
    const char* env = std::getenv(kAdminEnv);
    if (env != nullptr && *env != '\0') {
      if (!split_address(env)) {
        return UsageError{std::string(kAdminEnv) + ": expected HOST:PORT (port 1..65535), got '" +
                          env + "'"};
      }
      out.admin = env;
    }
  }
  return std::nullopt;
}

// Every byte but the unreserved ones of RFC 3986 as %XX, so that any key or name survives as
// one path segment ('/', '?', '%', '#', spaces, UTF-8).
std::string percent_encode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    const bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                            (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~';
    if (unreserved) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    }
  }
  return out;
}

std::string pretty(const json& value) {
  return value.dump(2, ' ', false, json::error_handler_t::replace);
}

// The request of a command: method, path and body. Checks the JSON arguments first (usage
// errors: nothing is sent).
struct Request {
  std::string method;
  std::string path;
  std::string body;
};

// Parses `text` as JSON. Any failure of the parser, a syntax error or a number out of range
// (1e400), is a usage error naming `what`, with the parser's message; none escapes as an
// exception.
std::optional<UsageError> parse_json(const std::string& text, const std::string& what,
                                     const CommandSpec* command, json& out) {
  try {
    out = json::parse(text);
  } catch (const json::exception& error) {
    return UsageError{what + " is not valid JSON: " + error.what(), command};
  }
  return std::nullopt;
}

std::optional<UsageError> build_request(const Invocation& inv, Request& out) {
  const std::string_view name = inv.command->name;
  if (name == "state" || name == "members") {
    out = {"GET", "/state", ""};
  } else if (name == "schemas") {
    out = {"GET", "/schemas", ""};
  } else if (name == "health") {
    out = {"GET", "/healthz", ""};
  } else if (name == "remove-node") {
    out = {"POST", "/members/" + percent_encode(inv.args[0]) + "/remove", ""};
  } else {
    const std::string& key = inv.args[1];
    if (inv.json_key) {
      json parsed;
      if (auto error = parse_json(key, std::string(name) + ": KEY '" + key + "' (--json-key)",
                                  inv.command, parsed)) {
        return error;
      }
    }
    out.path = "/tables/" + percent_encode(inv.args[0]) + "/records/" + percent_encode(key) +
               (inv.json_key ? "?key_format=json" : "");
    out.method = name == "get" ? "GET" : name == "put" ? "PUT" : "DELETE";
    if (name == "put") {
      json record;
      if (auto error = parse_json(inv.args[2], "put: JSON", inv.command, record)) return error;
      if (!record.is_object()) {
        return UsageError{"put: JSON must be an object of the record's attributes, got " +
                              std::string(record.type_name()),
                          inv.command};
      }
      out.body = inv.args[2];
    }
  }
  return std::nullopt;
}

int report_usage(const UsageError& error) {
  std::cerr << "mishkactl: " << error.message << "\n"
            << (error.command ? command_usage(*error.command) : usage());
  return kExitUsage;
}

int send(const Invocation& inv, const Request& request) {
  const auto address = split_address(inv.admin);  // checked in parse()
  httplib::Client client(address->first, address->second);
  client.set_connection_timeout(kConnectTimeoutSeconds, 0);
  client.set_read_timeout(inv.timeout_seconds, 0);
  client.set_write_timeout(inv.timeout_seconds, 0);
  client.set_url_encode(false);  // the path is encoded already

  httplib::Result result =
      request.method == "GET"    ? client.Get(request.path)
      : request.method == "PUT"  ? client.Put(request.path, request.body, "application/json")
      : request.method == "POST" ? client.Post(request.path, "", "application/json")
                                 : client.Delete(request.path);
  if (!result) {
    std::cerr << "mishkactl: no answer from the admin HTTP at " << inv.admin << " ("
              << request.method << " " << request.path
              << "): " << httplib::to_string(result.error()) << "\n";
    return kExitFailed;
  }
  const int status = result->status;
  const bool success = status >= 200 && status < 300;
  json body = json::parse(result->body, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded()) {
    std::cout << result->body << (result->body.empty() ? "" : "\n");
    std::cerr << "mishkactl: HTTP " << status << " with a body that is not JSON\n";
    return kExitFailed;
  }
  if (success && inv.command->name == "members") {
    if (!body.is_object() || !body.contains("members")) {
      std::cout << pretty(body) << "\n";
      std::cerr << "mishkactl: the state has no \"members\"\n";
      return kExitFailed;
    }
    body = body["members"];
  }
  std::cout << pretty(body) << "\n";
  if (success) return kExitOk;
  std::string summary = "HTTP " + std::to_string(status);
  if (body.is_object() && body.contains("error") && body["error"].is_string()) {
    summary += " " + body["error"].get<std::string>();
    if (body.contains("message") && body["message"].is_string()) {
      summary += ": " + body["message"].get<std::string>();
    }
  }
  std::cerr << "mishkactl: " << summary << "\n";
  return kExitFailed;
}

int run(int argc, char** argv) {
  const std::vector<std::string> args(argv + 1, argv + argc);
  Invocation inv;
  if (const std::optional<UsageError> error = parse(args, inv)) return report_usage(*error);
  if (inv.help) {
    std::cout << (inv.command ? command_usage(*inv.command) : usage());
    return kExitOk;
  }
  Request request;
  if (const std::optional<UsageError> error = build_request(inv, request)) {
    return report_usage(*error);
  }
  return send(inv, request);
}

}  // namespace

int main(int argc, char** argv) {
  // The JSON arguments are parsed without exceptions escaping (parse_json); this is the last
  // guard, so that nothing unforeseen (an allocation failure, a library's throw) ends in
  // std::terminate and a core dump instead of a message and a status.
  try {
    return run(argc, argv);
  } catch (const std::exception& error) {
    std::cerr << "mishkactl: unexpected error: " << error.what() << "\n";
    return kExitFailed;
  }
}
