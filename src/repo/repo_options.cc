// The repo's options (CONTRACT.md sections 2 and 9): defaults, validation, the map form, and
// the Value forms of the repo's state and health report (section 8). docs/repo.md, "Options",
// is the user's guide to what is checked here.
//
// Every refusal is invalid_argument with a message "option '<key>': <what is wrong>, got
// <value>", so that an operator reading a failed start knows which line of the config to fix.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <set>
#include <string>
#include <system_error>

#include "engine/node_name.h"
#include "engine/tls_material.h"
#include "mishka/repo.h"

namespace mishka {
namespace {

// The environment variable that picks the default directory's last segment.
constexpr char kEnvVariable[] = "MISHKA_ENV";
constexpr char kDefaultEnv[] = "dev";

// Durations and the presence TTL are capped at a year: far beyond any sensible setting, and low
// enough that adding one to a steady_clock time point (nanoseconds) cannot overflow.
constexpr std::int64_t kMaxDurationMs = std::int64_t{365} * 24 * 60 * 60 * 1000;
constexpr std::int64_t kMaxTtlSeconds = kMaxDurationMs / 1000;
constexpr int kMaxVoters = 7;

// Strings in messages are quoted and escaped as Value renders them, so that an empty string,
// spaces or control characters stay visible.
std::string shown(std::string_view text) {
  return Value(text).debug_string();
}

Status option_error(std::string_view key, const std::string& what) {
  return invalid_argument("option '" + std::string(key) + "': " + what);
}

std::string ms_text(std::chrono::milliseconds ms) {
  return std::to_string(ms.count()) + " ms";
}

// ---- the default essential tables (CONTRACT.md section 9) ----

TableSpec installer_table() {
  TableSpec spec;
  spec.name = "installer";
  spec.attributes = {"id",    "app",      "version", "type",          "path",        "tag",
                     "asset", "checksum", "depends", "prepend_paths", "inserted_at", "updated_at"};
  spec.indexes = {"app"};
  return spec;
}

TableSpec event_table() {
  TableSpec spec;
  spec.name = "event";
  spec.attributes = {"id",        "name",    "event", "priority",    "status",
                     "extension", "depends", "extra", "inserted_at", "updated_at"};
  spec.indexes = {"name", "event", "extension"};
  return spec;
}

// ---- default_mnesia_dir ----

// MISHKA_ENV becomes one path segment: anything that would climb out of .mnesia or name
// another directory level is refused rather than silently used.
Status check_env_name(std::string_view env) {
  const bool plain = env != "." && env != ".." && env.find('/') == std::string_view::npos &&
                     env.find('\0') == std::string_view::npos;
  if (plain) return Status::Ok();
  return invalid_argument(
      std::string("environment variable ") + kEnvVariable +
      ": must be a plain directory name (no '/' or NUL, not '.' or '..'), got " + shown(env));
}

// ---- validation, one function per group of fields ----

Status check_no_nul(std::string_view key, const std::string& path) {
  if (path.find('\0') == std::string::npos) return Status::Ok();
  return option_error(key, "must not contain a NUL byte, got " + shown(path));
}

Status check_paths(const RepoOptions& o) {
  MISHKA_RETURN_IF_ERROR(check_no_nul("mnesia_dir", o.mnesia_dir));
  if (o.etcd_binary.empty()) {
    return option_error(
        "etcd_binary",
        "must name the etcd binary (a path or a name on PATH), got " + shown(o.etcd_binary));
  }
  MISHKA_RETURN_IF_ERROR(check_no_nul("etcd_binary", o.etcd_binary));
  MISHKA_RETURN_IF_ERROR(check_no_nul("ca_cert_path", o.ca_cert_path));
  return check_no_nul("ca_key_path", o.ca_key_path);
}

Status check_essential(const std::vector<TableSpec>& essential) {
  std::set<std::string> names;
  for (const TableSpec& spec : essential) {
    Status s = spec.validate();
    if (!s.ok()) return option_error("essential", "table '" + spec.name + "': " + s.message());
    if (!names.insert(spec.name).second) {
      return option_error("essential",
                          "table names must be distinct, got '" + spec.name + "' twice");
    }
  }
  return Status::Ok();
}

// Node names are compared in canonical form: "a@h" and "a@h:4370" are the same node.
Status check_cluster_nodes(const RepoOptions& o, const engine::NodeName& self) {
  std::set<std::string> seen;
  for (const std::string& text : o.cluster_nodes) {
    auto peer = engine::parse_node_name(text);
    if (!peer) return option_error("cluster_nodes", peer.status().message());
    const std::string canonical = peer->to_string();
    if (canonical == self.to_string()) {
      return option_error("cluster_nodes",
                          "must not list this node itself (option 'node'), got " + shown(text));
    }
    if (!seen.insert(canonical).second) {
      return option_error("cluster_nodes", "lists the same node twice, got " + shown(text));
    }
  }
  return Status::Ok();
}

bool tls_enabled(const RepoOptions& o) {
  return !o.cookie.empty() || !o.ca_cert_path.empty() || !o.ca_key_path.empty();
}

std::string port_text(std::optional<std::uint16_t> port) {
  return port ? std::to_string(*port) : "unset";
}

// The ports etcd will listen on must all differ; the unset ones are compared by the value they
// will take (client port + 1 and + 2). The metrics listener exists only with TLS.
Status check_ports(const RepoOptions& o, const engine::NodeName& self) {
  const unsigned client = self.port;
  if (o.peer_port && (*o.peer_port == 0 || *o.peer_port == client)) {
    return option_error("peer_port", "must be 1..65535 and differ from the node's client port " +
                                         std::to_string(client) + ", got " +
                                         port_text(o.peer_port));
  }
  if (!o.peer_port && client == 65535) {
    return option_error("peer_port", "must be set when the node's client port is 65535, got unset");
  }
  const unsigned peer = o.peer_port ? *o.peer_port : client + 1;
  if (o.metrics_port && *o.metrics_port == 0) {
    return option_error("metrics_port", "must be 1..65535, got 0");
  }
  if (!o.metrics_port && !tls_enabled(o)) return Status::Ok();
  if (!o.metrics_port && client + 2 > 65535) {
    return option_error("metrics_port", "must be set with TLS when the node's client port is " +
                                            std::to_string(client) + ", got unset");
  }
  const unsigned metrics = o.metrics_port ? *o.metrics_port : client + 2;
  if (metrics == client || metrics == peer) {
    return option_error("metrics_port", "must differ from the client port " +
                                            std::to_string(client) + " and the peer port " +
                                            std::to_string(peer) + ", got " +
                                            std::to_string(metrics));
  }
  return Status::Ok();
}

Status check_tls(const RepoOptions& o) {
  if (!o.cookie.empty()) {
    // validate_cookie never quotes the cookie, and neither does this message.
    Status s = engine::validate_cookie(o.cookie);
    if (!s.ok()) return option_error("cookie", s.message());
  }
  if (!o.ca_cert_path.empty() && o.ca_key_path.empty()) {
    return option_error("ca_key_path",
                        "must be given with ca_cert_path (both or neither), got \"\"");
  }
  if (o.ca_cert_path.empty() && !o.ca_key_path.empty()) {
    return option_error("ca_cert_path",
                        "must be given with ca_key_path (both or neither), got \"\"");
  }
  return Status::Ok();
}

// `min_ms` is 0 where 0 means "off" or "no wait", 1 where the duration must be positive.
Status check_duration(std::string_view key, std::chrono::milliseconds value, std::int64_t min_ms) {
  if (value.count() >= min_ms && value.count() <= kMaxDurationMs) return Status::Ok();
  return option_error(key, "must be " + std::to_string(min_ms) + ".." +
                               std::to_string(kMaxDurationMs) + " ms, got " + ms_text(value));
}

Status check_count(std::string_view key, std::int64_t value, std::int64_t min, std::int64_t max) {
  if (value >= min && value <= max) return Status::Ok();
  return option_error(key, "must be " + std::to_string(min) + ".." + std::to_string(max) +
                               ", got " + std::to_string(value));
}

Status check_boot_timing(const RepoOptions& o) {
  MISHKA_RETURN_IF_ERROR(check_duration("wait_timeout", o.wait_timeout, 0));
  MISHKA_RETURN_IF_ERROR(
      check_count("wait_retries", o.wait_retries, 0, std::numeric_limits<int>::max()));
  return check_duration("health_interval", o.health_interval, 0);
}

Status check_cluster_timing(const RepoOptions& o) {
  MISHKA_RETURN_IF_ERROR(check_count("target_voters", o.target_voters, 1, kMaxVoters));
  MISHKA_RETURN_IF_ERROR(check_duration("join_timeout", o.join_timeout, 1));
  MISHKA_RETURN_IF_ERROR(check_duration("member_ready_timeout", o.member_ready_timeout, 1));
  MISHKA_RETURN_IF_ERROR(check_duration("retry_min", o.retry_min, 1));
  MISHKA_RETURN_IF_ERROR(check_duration("retry_max", o.retry_max, 1));
  if (o.retry_max < o.retry_min) {
    return option_error("retry_max", "must be at least retry_min (" + ms_text(o.retry_min) +
                                         "), got " + ms_text(o.retry_max));
  }
  MISHKA_RETURN_IF_ERROR(check_duration("probe_interval", o.probe_interval, 1));
  MISHKA_RETURN_IF_ERROR(
      check_count("presence_ttl_seconds", o.presence_ttl_seconds, 1, kMaxTtlSeconds));
  MISHKA_RETURN_IF_ERROR(check_duration("call_timeout", o.call_timeout, 1));
  MISHKA_RETURN_IF_ERROR(check_duration("membership_interval", o.membership_interval, 0));
  return check_count("member_give_up_after", o.member_give_up_after, 0,
                     std::numeric_limits<int>::max());
}

// ---- the map form: one entry per key, each with the function that reads it ----

using Apply = Status (*)(std::string_view key, const Value& value, RepoOptions& options);

struct OptionKey {
  std::string_view key;
  Apply apply;
};

Status wrong_type(std::string_view key, std::string_view expected, const Value& value) {
  return option_error(key, "expected " + std::string(expected) + ", got " + value.debug_string());
}

template <std::string RepoOptions::*Field>
Status set_string(std::string_view key, const Value& value, RepoOptions& options) {
  const std::string* s = value.get_string();
  if (s == nullptr) return wrong_type(key, "a string", value);
  options.*Field = *s;
  return Status::Ok();
}

// The cookie is a secret: a value of the wrong type is described by its kind only.
Status set_cookie(std::string_view key, const Value& value, RepoOptions& options) {
  const std::string* s = value.get_string();
  if (s == nullptr) {
    return option_error(key, "expected a string, got a value of kind " +
                                 std::string(value_kind_name(value.kind())));
  }
  options.cookie = *s;
  return Status::Ok();
}

template <bool RepoOptions::*Field>
Status set_bool(std::string_view key, const Value& value, RepoOptions& options) {
  const bool* b = value.get_bool();
  if (b == nullptr) return wrong_type(key, "true or false", value);
  options.*Field = *b;
  return Status::Ok();
}

template <std::chrono::milliseconds RepoOptions::*Field>
Status set_duration(std::string_view key, const Value& value, RepoOptions& options) {
  const std::int64_t* ms = value.get_int();
  if (ms == nullptr || *ms < 0) {
    return wrong_type(key, "a non-negative integer of milliseconds", value);
  }
  options.*Field = std::chrono::milliseconds(*ms);
  return Status::Ok();
}

template <int RepoOptions::*Field>
Status set_int(std::string_view key, const Value& value, RepoOptions& options) {
  const std::int64_t* n = value.get_int();
  if (n == nullptr) return wrong_type(key, "an integer", value);
  if (*n < std::numeric_limits<int>::min() || *n > std::numeric_limits<int>::max()) {
    return option_error(key, "out of range for an int, got " + value.debug_string());
  }
  options.*Field = static_cast<int>(*n);
  return Status::Ok();
}

template <std::int64_t RepoOptions::*Field>
Status set_int64(std::string_view key, const Value& value, RepoOptions& options) {
  const std::int64_t* n = value.get_int();
  if (n == nullptr) return wrong_type(key, "an integer", value);
  options.*Field = *n;
  return Status::Ok();
}

// null resets the port to its default (unset), e.g. over a `base` that set it.
template <std::optional<std::uint16_t> RepoOptions::*Field>
Status set_port(std::string_view key, const Value& value, RepoOptions& options) {
  if (value.is_null()) {
    options.*Field = std::nullopt;
    return Status::Ok();
  }
  const std::int64_t* n = value.get_int();
  if (n == nullptr) return wrong_type(key, "a port number 1..65535 or null", value);
  if (*n < 0 || *n > 65535)
    return option_error(key, "out of range for a port, got " + value.debug_string());
  options.*Field = static_cast<std::uint16_t>(*n);
  return Status::Ok();
}

Status set_cluster_nodes(std::string_view key, const Value& value, RepoOptions& options) {
  const std::string* s = value.get_string();
  if (s != nullptr && *s == "auto") {
    options.cluster_nodes.clear();
    return Status::Ok();
  }
  const List* list = value.get_list();
  if (list == nullptr) return wrong_type(key, "\"auto\" or a list of node names", value);
  std::vector<std::string> nodes;
  for (const Value& item : *list) {
    const std::string* node = item.get_string();
    if (node == nullptr) return wrong_type(key, "node names as strings in the list", item);
    nodes.push_back(*node);
  }
  options.cluster_nodes = std::move(nodes);
  return Status::Ok();
}

Status set_essential(std::string_view key, const Value& value, RepoOptions& options) {
  const List* list = value.get_list();
  if (list == nullptr) return wrong_type(key, "a list of table specs", value);
  std::vector<TableSpec> specs;
  for (std::size_t i = 0; i < list->size(); ++i) {
    auto spec = table_spec_from_value((*list)[i]);
    if (!spec) {
      return option_error(key, "item " + std::to_string(i) + ": " + spec.status().message());
    }
    specs.push_back(std::move(*spec));
  }
  options.essential = std::move(specs);
  return Status::Ok();
}

// Every key of the map form, in RepoOptions order: the one list that parsing and the error for
// an unknown key are generated from.
constexpr OptionKey kOptionKeys[] = {
    {"mnesia_dir", &set_string<&RepoOptions::mnesia_dir>},
    {"essential", &set_essential},
    {"cluster_nodes", &set_cluster_nodes},
    {"dynamic_membership", &set_bool<&RepoOptions::dynamic_membership>},
    {"wait_timeout", &set_duration<&RepoOptions::wait_timeout>},
    {"wait_retries", &set_int<&RepoOptions::wait_retries>},
    {"health_interval", &set_duration<&RepoOptions::health_interval>},
    {"node", &set_string<&RepoOptions::node>},
    {"peer_port", &set_port<&RepoOptions::peer_port>},
    {"etcd_binary", &set_string<&RepoOptions::etcd_binary>},
    {"cookie", &set_cookie},
    {"ca_cert_path", &set_string<&RepoOptions::ca_cert_path>},
    {"ca_key_path", &set_string<&RepoOptions::ca_key_path>},
    {"metrics_port", &set_port<&RepoOptions::metrics_port>},
    {"target_voters", &set_int<&RepoOptions::target_voters>},
    {"join_timeout", &set_duration<&RepoOptions::join_timeout>},
    {"member_ready_timeout", &set_duration<&RepoOptions::member_ready_timeout>},
    {"retry_min", &set_duration<&RepoOptions::retry_min>},
    {"retry_max", &set_duration<&RepoOptions::retry_max>},
    {"probe_interval", &set_duration<&RepoOptions::probe_interval>},
    {"presence_ttl_seconds", &set_int64<&RepoOptions::presence_ttl_seconds>},
    {"call_timeout", &set_duration<&RepoOptions::call_timeout>},
    {"membership_interval", &set_duration<&RepoOptions::membership_interval>},
    {"member_give_up_after", &set_int<&RepoOptions::member_give_up_after>},
};

// The collaborators are objects, not data: they can only be given in code.
constexpr std::string_view kCodeOnlyKeys[] = {"telemetry", "pubsub", "host", "log"};

const OptionKey* find_option(std::string_view key) {
  for (const OptionKey& option : kOptionKeys) {
    if (option.key == key) return &option;
  }
  return nullptr;
}

Status unknown_key(std::string_view key) {
  for (std::string_view code_only : kCodeOnlyKeys) {
    if (code_only == key) return option_error(key, "can only be set in code, not in a map");
  }
  std::string known;
  for (const OptionKey& option : kOptionKeys) {
    known += (known.empty() ? "" : ", ") + std::string(option.key);
  }
  return option_error(key, "unknown option (known: " + known + ")");
}

// ---- Value forms of the state and the health report ----

Value strings_value(const std::vector<std::string>& strings) {
  List list(strings.begin(), strings.end());
  return Value(std::move(list));
}

// 16 lower-case hex digits: etcd's own rendering of cluster ids, and an int64 Value could not
// hold ids with the top bit set.
std::string cluster_id_text(std::uint64_t id) {
  char text[17];
  std::snprintf(text, sizeof(text), "%016llx", static_cast<unsigned long long>(id));
  return text;
}

Value schemas_value(const std::vector<TableSchema>& schemas) {
  List list;
  for (const TableSchema& schema : schemas) {
    list.emplace_back(Map{{"name", schema.name},
                          {"storage_type", storage_type_name(schema.storage)},
                          {"local_content", schema.local_content}});
  }
  return Value(std::move(list));
}

Value members_value(const std::vector<MemberInfo>& members) {
  List list;
  for (const MemberInfo& member : members) {
    list.emplace_back(Map{{"node", member.node}, {"role", member.role}, {"up", member.up}});
  }
  return Value(std::move(list));
}

}  // namespace

std::vector<TableSpec> default_essential_tables() {
  return {installer_table(), event_table()};
}

Result<std::string> default_mnesia_dir() {
  const char* raw = std::getenv(kEnvVariable);
  // Set but empty counts as unset, as a shell's `MISHKA_ENV= cmd` usually means "no value".
  const std::string env = raw == nullptr || *raw == '\0' ? kDefaultEnv : raw;
  MISHKA_RETURN_IF_ERROR(check_env_name(env));
  std::error_code ec;
  const std::filesystem::path cwd = std::filesystem::current_path(ec);
  if (ec) return io_error("cannot read the working directory: " + ec.message());
  return (cwd / ".mnesia" / env).string();
}

Status validate_repo_options(const RepoOptions& options) {
  // Roughly in RepoOptions order, so that the first error reported is predictable.
  MISHKA_RETURN_IF_ERROR(check_paths(options));
  MISHKA_RETURN_IF_ERROR(check_essential(options.essential));
  auto self = engine::parse_node_name(options.node);
  if (!self) return option_error("node", self.status().message());
  MISHKA_RETURN_IF_ERROR(check_cluster_nodes(options, *self));
  MISHKA_RETURN_IF_ERROR(check_boot_timing(options));
  MISHKA_RETURN_IF_ERROR(check_ports(options, *self));
  MISHKA_RETURN_IF_ERROR(check_tls(options));
  return check_cluster_timing(options);
}

Result<RepoOptions> repo_options_from_value(const Value& map, RepoOptions base) {
  const Map* entries = map.get_map();
  if (entries == nullptr) {
    return invalid_argument("repo options: expected a map of option name to value, got " +
                            map.debug_string());
  }
  for (const auto& [key, value] : entries->entries()) {
    const std::string* name = key.get_string();
    if (name == nullptr) {
      return invalid_argument("option " + key.debug_string() +
                              ": option names are strings, got a value of kind " +
                              std::string(value_kind_name(key.kind())));
    }
    const OptionKey* option = find_option(*name);
    if (option == nullptr) return unknown_key(*name);
    MISHKA_RETURN_IF_ERROR(option->apply(*name, value, base));
  }
  MISHKA_RETURN_IF_ERROR(validate_repo_options(base));
  return base;
}

std::string_view repo_status_name(RepoStatus status) {
  switch (status) {
    case RepoStatus::starting:
      return "starting";
    case RepoStatus::pending:
      return "pending";
    case RepoStatus::synchronized:
      return "synchronized";
    case RepoStatus::inconsistent:
      return "inconsistent";
    case RepoStatus::stopped:
      return "stopped";
  }
  return "unknown";
}

Value to_value(const RepoState& state) {
  return Value(Map{
      {"status", repo_status_name(state.status)},
      {"tables", strings_value(state.tables)},
      {"schemas", schemas_value(state.schemas)},
      {"essential", strings_value(state.essential)},
      {"dynamic", state.dynamic},
      {"node", state.node},
      {"cluster_id", cluster_id_text(state.cluster_id)},
      {"role", state.role},
      {"members", members_value(state.members)},
      {"leader", state.leader},
      {"inconsistency", state.inconsistency},
      {"pending_reason", state.pending_reason},
  });
}

Value to_value(const HealthReport& report) {
  return Value(Map{
      {"healthy", report.healthy},
      {"missing", strings_value(report.missing)},
      {"table_count", report.table_count},
      {"schema_count", report.schema_count},
      {"node", report.node},
      {"status", repo_status_name(report.status)},
      {"role", report.role},
      {"leader", report.leader},
      {"member_healthy", report.member_healthy},
      {"replica_lag", report.replica_lag},
      {"etcd_restarts", report.etcd_restarts},
  });
}

}  // namespace mishka
