// The repo's options (CONTRACT.md sections 2, 8 and 9): defaults, validation, the map form,
// default_mnesia_dir and the Value forms of state and health.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "mishka/repo.h"

namespace mishka {
namespace {

using std::chrono::milliseconds;

// Sets or unsets an environment variable for one test and restores what was there before.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = ::getenv(name)) old_ = old;
    if (value == nullptr) {
      ::unsetenv(name);
    } else {
      ::setenv(name, value, 1);
    }
  }
  ~ScopedEnv() {
    if (old_) {
      ::setenv(name_, old_->c_str(), 1);
    } else {
      ::unsetenv(name_);
    }
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
  std::optional<std::string> old_;
};

bool contains(const std::string& text, std::string_view fragment) {
  return text.find(fragment) != std::string::npos;
}

// A refusal must be invalid_argument, start with "option '<key>': " and show `fragment` (the
// offending value, usually).
void expect_refused(const Status& s, std::string_view key, std::string_view fragment) {
  const std::string prefix = "option '" + std::string(key) + "': ";
  EXPECT_EQ(s.code(), StatusCode::invalid_argument) << s.to_string();
  EXPECT_EQ(s.message().rfind(prefix, 0), 0u) << "'" << s.message() << "' lacks prefix " << prefix;
  EXPECT_TRUE(contains(s.message(), fragment))
      << "'" << s.message() << "' lacks '" << fragment << "'";
}

void expect_refused(const Result<RepoOptions>& r, std::string_view key, std::string_view fragment) {
  ASSERT_FALSE(r.ok()) << "option '" << key << "' was accepted";
  expect_refused(r.status(), key, fragment);
}

Result<RepoOptions> from_map(Map map) {
  return repo_options_from_value(Value(std::move(map)));
}

// ---- defaults ----

TEST(RepoOptionsDefaults, SectionTwoDefaults) {
  RepoOptions o;
  EXPECT_EQ(o.mnesia_dir, "");  // default_mnesia_dir() at start
  EXPECT_EQ(o.essential, default_essential_tables());
  EXPECT_TRUE(o.cluster_nodes.empty());  // auto
  EXPECT_TRUE(o.dynamic_membership);
  EXPECT_EQ(o.wait_timeout, milliseconds(60000));
  EXPECT_EQ(o.wait_retries, 5);
  EXPECT_EQ(o.health_interval, milliseconds(10000));
}

TEST(RepoOptionsDefaults, NodeDefaults) {
  RepoOptions o;
  EXPECT_EQ(o.node, "mishka@127.0.0.1:4370");
  EXPECT_FALSE(o.peer_port.has_value());
  EXPECT_FALSE(o.metrics_port.has_value());
  EXPECT_EQ(o.etcd_binary, "etcd");
  EXPECT_EQ(o.cookie, "");
  EXPECT_EQ(o.target_voters, 3);
  EXPECT_EQ(o.presence_ttl_seconds, 5);
  EXPECT_EQ(o.member_give_up_after, 0);
  EXPECT_EQ(o.telemetry, nullptr);
  EXPECT_EQ(o.pubsub, nullptr);
  EXPECT_EQ(o.host, nullptr);
}

TEST(RepoOptionsDefaults, TheDefaultsValidate) {
  Status s = validate_repo_options(RepoOptions{});
  EXPECT_TRUE(s.ok()) << s.to_string();
}

TEST(RepoOptionsDefaults, InstallerTableIsSectionNine) {
  const std::vector<TableSpec> tables = default_essential_tables();
  ASSERT_EQ(tables.size(), 2u);
  const TableSpec& t = tables[0];
  EXPECT_EQ(t.name, "installer");
  EXPECT_EQ(t.type, TableType::set);
  EXPECT_EQ(t.storage, StorageType::disc_copies);
  EXPECT_FALSE(t.local_content);
  EXPECT_EQ(t.attributes, (std::vector<std::string>{"id", "app", "version", "type", "path", "tag",
                                                    "asset", "checksum", "depends", "prepend_paths",
                                                    "inserted_at", "updated_at"}));
  EXPECT_EQ(t.indexes, std::vector<std::string>{"app"});
  EXPECT_TRUE(t.validate().ok());
}

TEST(RepoOptionsDefaults, EventTableIsSectionNine) {
  const std::vector<TableSpec> tables = default_essential_tables();
  ASSERT_EQ(tables.size(), 2u);
  const TableSpec& t = tables[1];
  EXPECT_EQ(t.name, "event");
  EXPECT_EQ(t.type, TableType::set);
  EXPECT_EQ(t.storage, StorageType::disc_copies);
  EXPECT_FALSE(t.local_content);
  EXPECT_EQ(t.attributes,
            (std::vector<std::string>{"id", "name", "event", "priority", "status", "extension",
                                      "depends", "extra", "inserted_at", "updated_at"}));
  EXPECT_EQ(t.indexes, (std::vector<std::string>{"name", "event", "extension"}));
  EXPECT_TRUE(t.validate().ok());
}

// ---- validate_repo_options: each rule, refused with the key named ----

struct Refusal {
  const char* what;
  std::function<void(RepoOptions&)> change;
  const char* key;
  std::string fragment;  // part of the message: the value given, usually
};

TableSpec small_table(std::string name) {
  TableSpec spec;
  spec.name = std::move(name);
  spec.attributes = {"id", "v"};
  return spec;
}

std::vector<Refusal> refusals() {
  using O = RepoOptions;
  return {
      {"NUL in mnesia_dir", [](O& o) { o.mnesia_dir = std::string("a\0b", 3); }, "mnesia_dir",
       "NUL"},
      {"bad essential spec", [](O& o) { o.essential.push_back(small_table("9bad")); }, "essential",
       "table '9bad': "},
      {"duplicate essential", [](O& o) { o.essential.push_back(o.essential[0]); }, "essential",
       "'installer' twice"},
      {"bad node", [](O& o) { o.node = "no-at-sign"; }, "node", "no-at-sign"},
      {"bad cluster node",
       [](O& o) {
         o.cluster_nodes = {"x@y:1", "nope"};
       },
       "cluster_nodes", "nope"},
      {"cluster node is self", [](O& o) { o.cluster_nodes = {"mishka@127.0.0.1"}; },
       "cluster_nodes", "mishka@127.0.0.1"},
      {"duplicate cluster node",
       [](O& o) {
         o.cluster_nodes = {"a@h:5000", "a@h:5000"};
       },
       "cluster_nodes", "a@h:5000"},
      {"duplicate in another spelling",
       [](O& o) {
         o.cluster_nodes = {"a@h", "a@h:4370"};
       },
       "cluster_nodes", "a@h:4370"},
      {"negative wait_timeout", [](O& o) { o.wait_timeout = milliseconds(-1); }, "wait_timeout",
       "-1 ms"},
      {"negative wait_retries", [](O& o) { o.wait_retries = -1; }, "wait_retries", "-1"},
      {"negative health_interval", [](O& o) { o.health_interval = milliseconds(-5); },
       "health_interval", "-5 ms"},
      {"huge health_interval", [](O& o) { o.health_interval = milliseconds(INT64_MAX); },
       "health_interval", std::to_string(INT64_MAX)},
      {"peer_port 0", [](O& o) { o.peer_port = 0; }, "peer_port", "got 0"},
      {"peer_port = client port", [](O& o) { o.peer_port = 4370; }, "peer_port", "got 4370"},
      {"no peer port after 65535", [](O& o) { o.node = "n@127.0.0.1:65535"; }, "peer_port",
       "unset"},
      {"metrics_port 0", [](O& o) { o.metrics_port = 0; }, "metrics_port", "got 0"},
      {"metrics_port = client port", [](O& o) { o.metrics_port = 4370; }, "metrics_port",
       "got 4370"},
      {"metrics_port = default peer port", [](O& o) { o.metrics_port = 4371; }, "metrics_port",
       "got 4371"},
      {"metrics_port = given peer port",
       [](O& o) {
         o.peer_port = 5000;
         o.metrics_port = 5000;
       },
       "metrics_port", "got 5000"},
      {"TLS metrics default = given peer port",
       [](O& o) {
         o.cookie = "a cookie of enough bytes";
         o.peer_port = 4372;
       },
       "metrics_port", "got 4372"},
      {"TLS metrics default past 65535",
       [](O& o) {
         o.cookie = "a cookie of enough bytes";
         o.node = "n@127.0.0.1:65534";
         o.peer_port = 1000;
       },
       "metrics_port", "unset"},
      {"empty etcd_binary", [](O& o) { o.etcd_binary = ""; }, "etcd_binary", "\"\""},
      {"short cookie", [](O& o) { o.cookie = "short"; }, "cookie", "bytes"},
      {"ca cert without key", [](O& o) { o.ca_cert_path = "/ca.pem"; }, "ca_key_path",
       "both or neither"},
      {"ca key without cert", [](O& o) { o.ca_key_path = "/ca.key"; }, "ca_cert_path",
       "both or neither"},
      {"NUL in ca_cert_path", [](O& o) { o.ca_cert_path = std::string("c\0", 2); }, "ca_cert_path",
       "NUL"},
      {"target_voters 0", [](O& o) { o.target_voters = 0; }, "target_voters", "got 0"},
      {"target_voters 8", [](O& o) { o.target_voters = 8; }, "target_voters", "got 8"},
      {"join_timeout 0", [](O& o) { o.join_timeout = milliseconds(0); }, "join_timeout",
       "got 0 ms"},
      {"member_ready_timeout 0", [](O& o) { o.member_ready_timeout = milliseconds(0); },
       "member_ready_timeout", "got 0 ms"},
      {"retry_min 0", [](O& o) { o.retry_min = milliseconds(0); }, "retry_min", "got 0 ms"},
      {"retry_max < retry_min", [](O& o) { o.retry_max = milliseconds(999); }, "retry_max",
       "got 999 ms"},
      {"probe_interval 0", [](O& o) { o.probe_interval = milliseconds(0); }, "probe_interval",
       "got 0 ms"},
      {"presence_ttl_seconds 0", [](O& o) { o.presence_ttl_seconds = 0; }, "presence_ttl_seconds",
       "got 0"},
      {"call_timeout 0", [](O& o) { o.call_timeout = milliseconds(0); }, "call_timeout",
       "got 0 ms"},
      {"negative membership_interval", [](O& o) { o.membership_interval = milliseconds(-1); },
       "membership_interval", "got -1 ms"},
      {"negative member_give_up_after", [](O& o) { o.member_give_up_after = -2; },
       "member_give_up_after", "got -2"},
  };
}

TEST(ValidateRepoOptions, EachRuleRefusesNamingTheKey) {
  for (const Refusal& r : refusals()) {
    SCOPED_TRACE(r.what);
    RepoOptions options;
    r.change(options);
    expect_refused(validate_repo_options(options), r.key, r.fragment);
  }
}

TEST(ValidateRepoOptions, TheCookieIsNeverQuoted) {
  RepoOptions options;
  options.cookie = "secret\n-with-a-newline";
  Status s = validate_repo_options(options);
  expect_refused(s, "cookie", "control character");
  EXPECT_FALSE(contains(s.message(), "secret"));
}

TEST(ValidateRepoOptions, AcceptsTheEdgesOfEachRange) {
  RepoOptions o;
  o.wait_timeout = milliseconds(0);
  o.wait_retries = 0;
  o.health_interval = milliseconds(0);  // the timer off
  o.membership_interval = milliseconds(0);
  o.target_voters = 7;
  o.retry_min = o.retry_max = milliseconds(1);
  o.join_timeout = o.member_ready_timeout = o.probe_interval = milliseconds(1);
  o.presence_ttl_seconds = 1;
  o.essential.clear();
  EXPECT_TRUE(validate_repo_options(o).ok()) << validate_repo_options(o).to_string();
  o.target_voters = 1;
  EXPECT_TRUE(validate_repo_options(o).ok());
}

TEST(ValidateRepoOptions, AcceptsAJoinerWithTlsAndItsOwnPorts) {
  RepoOptions o;
  o.node = "b@10.0.0.2:5000";
  o.cluster_nodes = {"a@10.0.0.1:5000", "c@10.0.0.3:5000", "a@10.0.0.2:6000"};
  o.cookie = "a cookie of enough bytes";
  o.ca_cert_path = "/etc/mishka/ca.pem";
  o.ca_key_path = "/etc/mishka/ca.key";
  o.peer_port = 5005;
  o.metrics_port = 5006;
  o.essential.push_back(small_table("extra"));
  EXPECT_TRUE(validate_repo_options(o).ok()) << validate_repo_options(o).to_string();
}

TEST(ValidateRepoOptions, WithoutTlsTheMetricsDefaultIsNotReserved) {
  RepoOptions o;
  o.peer_port = 4372;  // would be the metrics port with TLS, but there is none
  EXPECT_TRUE(validate_repo_options(o).ok()) << validate_repo_options(o).to_string();
}

// ---- repo_options_from_value ----

Value spec_list(const std::vector<TableSpec>& specs) {
  List list;
  for (const TableSpec& spec : specs) list.push_back(table_spec_to_value(spec));
  return Value(std::move(list));
}

// Every key of the map form, each with a value other than its default.
Map every_key() {
  return Map{
      {"mnesia_dir", "/var/lib/mishka"},
      {"essential", spec_list({small_table("only")})},
      {"cluster_nodes", List{"a@10.0.0.1:4370", "c@10.0.0.3"}},
      {"dynamic_membership", false},
      {"wait_timeout", 1500},
      {"wait_retries", 2},
      {"health_interval", 0},
      {"node", "b@10.0.0.2:5000"},
      {"peer_port", 5010},
      {"etcd_binary", "/opt/etcd/bin/etcd"},
      {"cookie", "a cookie of enough bytes"},
      {"ca_cert_path", "/ca.pem"},
      {"ca_key_path", "/ca.key"},
      {"metrics_port", 5011},
      {"target_voters", 5},
      {"join_timeout", 7000},
      {"member_ready_timeout", 8000},
      {"retry_min", 200},
      {"retry_max", 400},
      {"probe_interval", 300},
      {"presence_ttl_seconds", 9},
      {"call_timeout", 1500},
      {"membership_interval", 0},
      {"member_give_up_after", 4},
  };
}

TEST(RepoOptionsFromValue, ReadsEveryKey) {
  auto r = from_map(every_key());
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  const RepoOptions& o = *r;
  EXPECT_EQ(o.mnesia_dir, "/var/lib/mishka");
  EXPECT_EQ(o.essential, std::vector<TableSpec>{small_table("only")});
  EXPECT_EQ(o.cluster_nodes, (std::vector<std::string>{"a@10.0.0.1:4370", "c@10.0.0.3"}));
  EXPECT_FALSE(o.dynamic_membership);
  EXPECT_EQ(o.wait_timeout, milliseconds(1500));
  EXPECT_EQ(o.wait_retries, 2);
  EXPECT_EQ(o.health_interval, milliseconds(0));
  EXPECT_EQ(o.node, "b@10.0.0.2:5000");
  EXPECT_EQ(o.peer_port, std::optional<std::uint16_t>(5010));
  EXPECT_EQ(o.etcd_binary, "/opt/etcd/bin/etcd");
  EXPECT_EQ(o.cookie, "a cookie of enough bytes");
  EXPECT_EQ(o.ca_cert_path, "/ca.pem");
  EXPECT_EQ(o.ca_key_path, "/ca.key");
  EXPECT_EQ(o.metrics_port, std::optional<std::uint16_t>(5011));
  EXPECT_EQ(o.target_voters, 5);
  EXPECT_EQ(o.join_timeout, milliseconds(7000));
  EXPECT_EQ(o.member_ready_timeout, milliseconds(8000));
  EXPECT_EQ(o.retry_min, milliseconds(200));
  EXPECT_EQ(o.retry_max, milliseconds(400));
  EXPECT_EQ(o.probe_interval, milliseconds(300));
  EXPECT_EQ(o.presence_ttl_seconds, 9);
  EXPECT_EQ(o.call_timeout, milliseconds(1500));
  EXPECT_EQ(o.membership_interval, milliseconds(0));
  EXPECT_EQ(o.member_give_up_after, 4);
}

TEST(RepoOptionsFromValue, AnEmptyMapGivesTheBase) {
  RepoOptions base;
  base.node = "z@127.0.0.1:6000";
  base.wait_retries = 1;
  base.log = [](LogLevel, std::string_view) {};
  auto r = repo_options_from_value(Value(Map{}), base);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->node, "z@127.0.0.1:6000");
  EXPECT_EQ(r->wait_retries, 1);
  EXPECT_TRUE(static_cast<bool>(r->log));  // collaborators come through from the base
  EXPECT_EQ(r->essential, default_essential_tables());
}

TEST(RepoOptionsFromValue, AutoAndAnEmptyListMeanStandalone) {
  RepoOptions base;
  base.cluster_nodes = {"a@10.0.0.1"};
  auto r = repo_options_from_value(Value(Map{{"cluster_nodes", "auto"}}), base);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_TRUE(r->cluster_nodes.empty());
  r = repo_options_from_value(Value(Map{{"cluster_nodes", List{}}}), base);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_TRUE(r->cluster_nodes.empty());
}

TEST(RepoOptionsFromValue, NullResetsAPortToItsDefault) {
  RepoOptions base;
  base.peer_port = 5000;
  base.metrics_port = 5001;
  auto r =
      repo_options_from_value(Value(Map{{"peer_port", nullptr}, {"metrics_port", nullptr}}), base);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_FALSE(r->peer_port.has_value());
  EXPECT_FALSE(r->metrics_port.has_value());
}

TEST(RepoOptionsFromValue, RefusesAnythingButAMap) {
  auto r = repo_options_from_value(Value(List{}));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::invalid_argument);
  EXPECT_TRUE(contains(r.status().message(), "expected a map"));
}

TEST(RepoOptionsFromValue, RefusesUnknownKeysNamingThem) {
  expect_refused(from_map(Map{{"wait_timout", 5}}), "wait_timout", "unknown option");
  expect_refused(from_map(Map{{"log", "x"}}), "log", "only be set in code");
  expect_refused(from_map(Map{{"telemetry", nullptr}}), "telemetry", "only be set in code");
  auto r = from_map(Map{{7, 1}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::invalid_argument);
  EXPECT_EQ(r.status().message().rfind("option 7: ", 0), 0u) << r.status().message();
}

TEST(RepoOptionsFromValue, RefusesWrongTypesNamingTheKey) {
  const std::vector<std::tuple<const char*, Value, const char*>> cases = {
      {"wait_timeout", "abc", "expected a non-negative integer of milliseconds, got \"abc\""},
      {"wait_timeout", -1, "expected a non-negative integer of milliseconds, got -1"},
      {"health_interval", 1.5, "got 1.5"},
      {"retry_max", true, "got true"},
      {"wait_retries", "5", "expected an integer, got \"5\""},
      {"presence_ttl_seconds", nullptr, "expected an integer"},
      {"dynamic_membership", "true", "expected true or false, got \"true\""},
      {"node", 4370, "expected a string, got 4370"},
      {"mnesia_dir", List{}, "expected a string"},
      {"etcd_binary", nullptr, "expected a string"},
      {"ca_cert_path", 1, "expected a string"},
      {"ca_key_path", false, "expected a string"},
      {"peer_port", "4371", "got \"4371\""},
      {"metrics_port", 2.0, "got 2.0"},
      {"cluster_nodes", "a@h", "expected \"auto\" or a list of node names, got \"a@h\""},
      {"cluster_nodes", List{"a@h", 5}, "got 5"},
      {"essential", Map{}, "expected a list of table specs"},
      {"essential", List{"installer"}, "item 0: "},
  };
  for (const auto& [key, value, fragment] : cases) {
    SCOPED_TRACE(key);
    expect_refused(from_map(Map{{key, value}}), key, fragment);
  }
}

TEST(RepoOptionsFromValue, RefusesIntegersOutOfRange) {
  expect_refused(from_map(Map{{"wait_retries", std::int64_t{1} << 40}}), "wait_retries",
                 "1099511627776");
  expect_refused(from_map(Map{{"member_give_up_after", INT64_MIN}}), "member_give_up_after",
                 "out of range");
  expect_refused(from_map(Map{{"peer_port", 65536}}), "peer_port", "65536");
  expect_refused(from_map(Map{{"metrics_port", -1}}), "metrics_port", "-1");
}

TEST(RepoOptionsFromValue, ValidatesTheResult) {
  expect_refused(from_map(Map{{"target_voters", 9}}), "target_voters", "got 9");
  expect_refused(from_map(Map{{"node", "bad"}}), "node", "bad");
  expect_refused(from_map(Map{{"peer_port", 0}}), "peer_port", "got 0");
  Map twice{{"essential", spec_list({small_table("t"), small_table("t")})}};
  expect_refused(from_map(twice), "essential", "'t' twice");
}

TEST(RepoOptionsFromValue, AWronglyTypedCookieIsNotShown) {
  Status s = from_map(Map{{"cookie", Value::bytes("top-secret-bytes")}}).status();
  expect_refused(s, "cookie", "kind bytes");
  EXPECT_FALSE(contains(s.message(), "top-secret"));
}

// ---- default_mnesia_dir ----

std::string cwd_dir(const std::string& env) {
  return (std::filesystem::current_path() / ".mnesia" / env).string();
}

TEST(DefaultMnesiaDir, DevWhenMishkaEnvIsUnsetOrEmpty) {
  {
    ScopedEnv env("MISHKA_ENV", nullptr);
    auto dir = default_mnesia_dir();
    ASSERT_TRUE(dir.ok()) << dir.status().to_string();
    EXPECT_EQ(*dir, cwd_dir("dev"));
    EXPECT_TRUE(std::filesystem::path(*dir).is_absolute());
  }
  ScopedEnv env("MISHKA_ENV", "");
  auto dir = default_mnesia_dir();
  ASSERT_TRUE(dir.ok()) << dir.status().to_string();
  EXPECT_EQ(*dir, cwd_dir("dev"));
}

TEST(DefaultMnesiaDir, TheEnvNamesTheLastSegment) {
  ScopedEnv env("MISHKA_ENV", "test");
  auto dir = default_mnesia_dir();
  ASSERT_TRUE(dir.ok()) << dir.status().to_string();
  EXPECT_EQ(*dir, cwd_dir("test"));
}

TEST(DefaultMnesiaDir, RefusesAnEnvThatIsNotAPlainName) {
  for (const char* bad : {"a/b", "/abs", ".", "..", "../up"}) {
    SCOPED_TRACE(bad);
    ScopedEnv env("MISHKA_ENV", bad);
    auto dir = default_mnesia_dir();
    ASSERT_FALSE(dir.ok()) << *dir;
    EXPECT_EQ(dir.status().code(), StatusCode::invalid_argument);
    EXPECT_TRUE(contains(dir.status().message(), "MISHKA_ENV")) << dir.status().message();
    EXPECT_TRUE(contains(dir.status().message(), bad)) << dir.status().message();
  }
}

TEST(ScopedEnv, RestoresThePreviousValue) {
  ScopedEnv outer("MISHKA_ENV", "outer");
  { ScopedEnv inner("MISHKA_ENV", nullptr); }
  ASSERT_NE(::getenv("MISHKA_ENV"), nullptr);
  EXPECT_STREQ(::getenv("MISHKA_ENV"), "outer");
}

// ---- names and Value forms ----

TEST(RepoStatusName, EveryStatus) {
  EXPECT_EQ(repo_status_name(RepoStatus::starting), "starting");
  EXPECT_EQ(repo_status_name(RepoStatus::pending), "pending");
  EXPECT_EQ(repo_status_name(RepoStatus::synchronized), "synchronized");
  EXPECT_EQ(repo_status_name(RepoStatus::inconsistent), "inconsistent");
  EXPECT_EQ(repo_status_name(RepoStatus::stopped), "stopped");
}

TEST(RepoToValue, StateIsAMapOfItsFields) {
  RepoState s;
  s.status = RepoStatus::synchronized;
  s.tables = {"schema", "event", "installer"};
  s.schemas = {{"event", StorageType::disc_copies, false}, {"tmp", StorageType::ram_copies, true}};
  s.essential = {"installer", "event"};
  s.dynamic = true;
  s.node = "a@10.0.0.1:4370";
  s.cluster_id = 0xfedcba9876543210ULL;  // top bit set: no int64 could hold it
  s.role = "voter";
  s.members = {{"a@10.0.0.1:4370", "voter", true}, {"b@10.0.0.2:4370", "replica", false}};
  s.leader = "a@10.0.0.1:4370";
  s.inconsistency = "";
  s.pending_reason = "";
  const Value expected(Map{
      {"status", "synchronized"},
      {"tables", List{"schema", "event", "installer"}},
      {"schemas",
       List{Map{{"name", "event"}, {"storage_type", "disc_copies"}, {"local_content", false}},
            Map{{"name", "tmp"}, {"storage_type", "ram_copies"}, {"local_content", true}}}},
      {"essential", List{"installer", "event"}},
      {"dynamic", true},
      {"node", "a@10.0.0.1:4370"},
      {"cluster_id", "fedcba9876543210"},
      {"role", "voter"},
      {"members", List{Map{{"node", "a@10.0.0.1:4370"}, {"role", "voter"}, {"up", true}},
                       Map{{"node", "b@10.0.0.2:4370"}, {"role", "replica"}, {"up", false}}}},
      {"leader", "a@10.0.0.1:4370"},
      {"inconsistency", ""},
      {"pending_reason", ""},
  });
  EXPECT_EQ(to_value(s), expected);
}

TEST(RepoToValue, APendingStateHasAZeroClusterIdInSixteenDigits) {
  RepoState s;
  s.status = RepoStatus::pending;
  s.pending_reason = "no peer answered";
  const Value v = to_value(s);
  const Map& m = *v.get_map();
  EXPECT_EQ(*m.find("status"), Value("pending"));
  EXPECT_EQ(*m.find("cluster_id"), Value("0000000000000000"));
  EXPECT_EQ(*m.find("pending_reason"), Value("no peer answered"));
  EXPECT_EQ(*m.find("members"), Value(List{}));
  s.cluster_id = 0xab;
  EXPECT_EQ(*to_value(s).get_map()->find("cluster_id"), Value("00000000000000ab"));
}

TEST(RepoToValue, HealthReportIsAMapOfItsFields) {
  HealthReport h;
  h.healthy = false;
  h.missing = {"event"};
  h.table_count = 2;
  h.schema_count = 1;
  h.node = "a@10.0.0.1:4370";
  h.status = RepoStatus::inconsistent;
  h.role = "learner";
  h.leader = "";
  h.member_healthy = true;
  h.replica_lag = -1;
  h.etcd_restarts = 3;
  const Value expected(Map{
      {"healthy", false},
      {"missing", List{"event"}},
      {"table_count", 2},
      {"schema_count", 1},
      {"node", "a@10.0.0.1:4370"},
      {"status", "inconsistent"},
      {"role", "learner"},
      {"leader", ""},
      {"member_healthy", true},
      {"replica_lag", -1},
      {"etcd_restarts", 3},
  });
  EXPECT_EQ(to_value(h), expected);
}

}  // namespace
}  // namespace mishka
