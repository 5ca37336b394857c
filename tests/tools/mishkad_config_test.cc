// mishkad's configuration (tools/mishkad/daemon_config.h): defaults, the TOML file, flags over
// the file, the environment and the cookie, and the refusals with the key they name. No node
// is started; the only thing written is $HOME/.mishka.cookie in a temporary HOME.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "mishkad/daemon_config.h"
#include "support/file_checks.h"
#include "support/temp_dir.h"

namespace mishka::daemon {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

constexpr const char* kEnvVariables[] = {"MISHKA_ENV", "MISHKA_COOKIE", "HOME"};
constexpr char kCookie[] = "0123456789abcdef-test-cookie";

// Each test runs in a fresh directory that is both HOME and the working directory, with the
// daemon's environment variables cleared; everything is put back afterwards.
class DaemonConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = test::TempDir::Create("mishkad-config");
    ASSERT_TRUE(dir.ok()) << dir.status().to_string();
    dir_.emplace(std::move(*dir));
    for (const char* name : kEnvVariables) {
      const char* value = std::getenv(name);
      if (value != nullptr) saved_env_[name] = value;
      ::unsetenv(name);
    }
    ::setenv("HOME", home().c_str(), 1);
    saved_cwd_ = fs::current_path();
    fs::current_path(home());
  }

  void TearDown() override {
    fs::current_path(saved_cwd_);
    for (const char* name : kEnvVariables) {
      const auto it = saved_env_.find(name);
      if (it == saved_env_.end()) {
        ::unsetenv(name);
      } else {
        ::setenv(name, it->second.c_str(), 1);
      }
    }
  }

  std::string home() const { return dir_->path().string(); }
  fs::path home_cookie() const { return dir_->path() / ".mishka.cookie"; }

  // A file under the temporary directory, with `mode`.
  std::string write_file(const std::string& name, const std::string& text, unsigned mode = 0600) {
    const fs::path path = dir_->path() / name;
    test::write_bytes(path, text);
    ::chmod(path.c_str(), mode);
    return path.string();
  }

  std::string cookie_file() { return write_file("cookie", std::string(kCookie) + "\n", 0400); }

  // A successful run's configuration; the test fails if parsing fails.
  DaemonConfig parse_ok(const std::vector<std::string>& args) {
    Result<DaemonCommand> command = parse_daemon_command(args);
    EXPECT_TRUE(command.ok()) << command.status().to_string();
    if (!command.ok()) return {};
    EXPECT_EQ(command->action, DaemonAction::run);
    return command->config;
  }

  // The refusal's message; the test fails if parsing succeeds or fails otherwise.
  std::string parse_error(const std::vector<std::string>& args) {
    Result<DaemonCommand> command = parse_daemon_command(args);
    EXPECT_FALSE(command.ok()) << "accepted: " << ::testing::PrintToString(args);
    if (command.ok()) return "";
    EXPECT_EQ(command.status().code(), StatusCode::invalid_argument)
        << command.status().to_string();
    return command.status().message();
  }

  std::optional<test::TempDir> dir_;
  std::map<std::string, std::string> saved_env_;
  fs::path saved_cwd_;
};

#define EXPECT_CONTAINS(text, part)                          \
  EXPECT_NE(std::string(text).find(part), std::string::npos) \
      << "missing \"" << (part) << "\" in: " << (text)

std::vector<std::string> table_names(const std::vector<TableSpec>& specs) {
  std::vector<std::string> names;
  for (const TableSpec& spec : specs) names.push_back(spec.name);
  return names;
}

TEST_F(DaemonConfigTest, NoArgumentsGiveAStandaloneSeedOnTheDefaults) {
  const DaemonConfig config = parse_ok({});
  EXPECT_EQ(config.repo.node, "mishka@127.0.0.1:4370");
  EXPECT_TRUE(config.repo.cluster_nodes.empty());
  EXPECT_EQ(config.repo.mnesia_dir, (fs::current_path() / ".mnesia" / "dev").string());
  EXPECT_TRUE(config.repo.dynamic_membership);
  EXPECT_EQ(config.repo.wait_timeout, milliseconds(60000));
  EXPECT_EQ(config.repo.wait_retries, 5);
  EXPECT_EQ(config.repo.health_interval, milliseconds(10000));
  EXPECT_EQ(config.repo.etcd_binary, "etcd");
  EXPECT_FALSE(config.repo.peer_port.has_value());
  EXPECT_EQ(table_names(config.repo.essential), (std::vector<std::string>{"installer", "event"}));
  EXPECT_EQ(config.admin.host, "127.0.0.1");
  EXPECT_EQ(config.admin.port, 4380);
  EXPECT_TRUE(config.telemetry_log.empty());
  EXPECT_EQ(config.log_level, LogLevel::info);
  EXPECT_TRUE(config.tables.empty());
  EXPECT_FALSE(config.repo.cookie.empty());
  EXPECT_TRUE(validate_repo_options(config.repo).ok());
  // The home cookie is the only thing written: the node's directory is not created.
  EXPECT_TRUE(fs::exists(home_cookie()));
  EXPECT_FALSE(fs::exists(dir_->path() / ".mnesia"));
}

TEST_F(DaemonConfigTest, HelpAndVersionCheckNothingElse) {
  Result<DaemonCommand> help = parse_daemon_command({"--help"});
  ASSERT_TRUE(help.ok());
  EXPECT_EQ(help->action, DaemonAction::help);
  Result<DaemonCommand> version = parse_daemon_command({"--version"});
  ASSERT_TRUE(version.ok());
  EXPECT_EQ(version->action, DaemonAction::version);
  EXPECT_FALSE(fs::exists(home_cookie()));
  const std::string usage = daemon_usage();
  for (const char* flag :
       {"--node", "--peer-port", "--dir", "--cluster-nodes", "--dynamic-membership",
        "--cookie-file", "--ca-cert", "--ca-key", "--etcd", "--admin", "--telemetry-log",
        "--wait-timeout", "--wait-retries", "--health-interval", "--config"}) {
    EXPECT_CONTAINS(usage, flag);
  }
  EXPECT_CONTAINS(daemon_version(), "mishkad ");
}

TEST_F(DaemonConfigTest, MishkaEnvPicksTheDefaultDirectory) {
  ::setenv("MISHKA_ENV", "prod", 1);
  EXPECT_EQ(parse_ok({}).repo.mnesia_dir, (fs::current_path() / ".mnesia" / "prod").string());
  ::setenv("MISHKA_ENV", "../up", 1);
  EXPECT_CONTAINS(parse_error({}), "MISHKA_ENV");
}

TEST_F(DaemonConfigTest, HomeCookieIsCreatedOnceWithMode0400AndReused) {
  const DaemonConfig first = parse_ok({});
  struct stat st {};
  ASSERT_EQ(::stat(home_cookie().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0400u);
  const std::string text = test::read_bytes(home_cookie());
  EXPECT_EQ(text, first.repo.cookie + "\n");
  EXPECT_EQ(first.repo.cookie.size(), 64u);  // 32 random bytes as hex
  EXPECT_EQ(first.repo.cookie.find_first_not_of("0123456789abcdef"), std::string::npos);

  const DaemonConfig second = parse_ok({});
  EXPECT_EQ(second.repo.cookie, first.repo.cookie);
  EXPECT_EQ(test::read_bytes(home_cookie()), text);
  // No temporary file is left beside it.
  int entries = 0;
  for ([[maybe_unused]] const auto& entry : fs::directory_iterator(dir_->path())) ++entries;
  EXPECT_EQ(entries, 1);
}

TEST_F(DaemonConfigTest, HomeCookieReadableByOthersIsRefused) {
  write_file(".mishka.cookie", std::string(kCookie) + "\n", 0644);
  const std::string message = parse_error({});
  EXPECT_CONTAINS(message, home_cookie().string());
  EXPECT_CONTAINS(message, "chmod 400");
}

TEST_F(DaemonConfigTest, NoHomeAndNoCookieIsRefused) {
  ::unsetenv("HOME");
  EXPECT_CONTAINS(parse_error({}), "HOME");
}

TEST_F(DaemonConfigTest, MishkaCookieIsUsedWhenNoCookieFileIsGiven) {
  ::setenv("MISHKA_COOKIE", kCookie, 1);
  EXPECT_EQ(parse_ok({}).repo.cookie, kCookie);
  EXPECT_FALSE(fs::exists(home_cookie()));

  ::setenv("MISHKA_COOKIE", "short", 1);
  std::string message = parse_error({});
  EXPECT_CONTAINS(message, "MISHKA_COOKIE");
  EXPECT_EQ(message.find("short"), std::string::npos) << "the cookie must not be shown";
  ::setenv("MISHKA_COOKIE", "", 1);
  EXPECT_CONTAINS(parse_error({}), "MISHKA_COOKIE");
  EXPECT_FALSE(fs::exists(home_cookie()));
}

TEST_F(DaemonConfigTest, CookieFileWinsOverMishkaCookie) {
  ::setenv("MISHKA_COOKIE", "another-cookie-from-env", 1);
  const std::string path = cookie_file();
  EXPECT_EQ(parse_ok({"--cookie-file", path}).repo.cookie, kCookie);

  const std::string missing = (dir_->path() / "missing").string();
  Result<DaemonCommand> command = parse_daemon_command({"--cookie-file", missing});
  ASSERT_FALSE(command.ok());
  EXPECT_CONTAINS(command.status().message(), "--cookie-file");
  EXPECT_CONTAINS(command.status().message(), missing);
  EXPECT_FALSE(fs::exists(home_cookie()));
}

TEST_F(DaemonConfigTest, FlagsInBothForms) {
  const std::string cookie = cookie_file();
  const DaemonConfig spaced = parse_ok({"--node",
                                        "b@127.0.0.2:5370",
                                        "--peer-port",
                                        "5380",
                                        "--dir",
                                        "/srv/b",
                                        "--cluster-nodes",
                                        "a@127.0.0.1:4370,c@127.0.0.3",
                                        "--dynamic-membership",
                                        "false",
                                        "--cookie-file",
                                        cookie,
                                        "--etcd",
                                        "/opt/etcd",
                                        "--admin",
                                        "0.0.0.0:9000",
                                        "--telemetry-log",
                                        "/tmp/t.jsonl",
                                        "--wait-timeout",
                                        "1500",
                                        "--wait-retries",
                                        "0",
                                        "--health-interval",
                                        "0"});
  std::vector<std::string> joined;
  for (const char* pair :
       {"--node=b@127.0.0.2:5370", "--peer-port=5380", "--dir=/srv/b",
        "--cluster-nodes=a@127.0.0.1:4370,c@127.0.0.3", "--dynamic-membership=false",
        "--etcd=/opt/etcd", "--admin=0.0.0.0:9000", "--telemetry-log=/tmp/t.jsonl",
        "--wait-timeout=1500", "--wait-retries=0", "--health-interval=0"}) {
    joined.emplace_back(pair);
  }
  joined.push_back("--cookie-file=" + cookie);
  const DaemonConfig equal = parse_ok(joined);
  for (const DaemonConfig* config : {&spaced, &equal}) {
    EXPECT_EQ(config->repo.node, "b@127.0.0.2:5370");
    EXPECT_EQ(config->repo.peer_port, std::optional<std::uint16_t>(5380));
    EXPECT_EQ(config->repo.mnesia_dir, "/srv/b");
    EXPECT_EQ(config->repo.cluster_nodes,
              (std::vector<std::string>{"a@127.0.0.1:4370", "c@127.0.0.3"}));
    EXPECT_FALSE(config->repo.dynamic_membership);
    EXPECT_EQ(config->repo.cookie, kCookie);
    EXPECT_EQ(config->repo.etcd_binary, "/opt/etcd");
    EXPECT_EQ(config->admin.to_string(), "0.0.0.0:9000");
    EXPECT_EQ(config->telemetry_log, "/tmp/t.jsonl");
    EXPECT_EQ(config->repo.wait_timeout, milliseconds(1500));
    EXPECT_EQ(config->repo.wait_retries, 0);
    EXPECT_EQ(config->repo.health_interval, milliseconds(0));
  }
  EXPECT_TRUE(
      parse_ok({"--cluster-nodes", "auto", "--cookie-file", cookie}).repo.cluster_nodes.empty());
  EXPECT_EQ(parse_ok({"--admin", "[::1]:4381", "--cookie-file", cookie}).admin.host, "::1");
}

TEST_F(DaemonConfigTest, EveryFileKey) {
  const std::string cookie = cookie_file();
  const std::string path = write_file("mishkad.toml", R"(# every key
mnesia_dir = "/srv/node"
cluster_nodes = ["a@127.0.0.1:4370", "c@127.0.0.3:4370"]
dynamic_membership = false
wait_timeout = 2000
wait_retries = 3
health_interval = 500
node = "b@127.0.0.2:5370"
peer_port = 5371
etcd_binary = "/opt/etcd/etcd"
metrics_port = 5372
target_voters = 5
join_timeout = 7000
member_ready_timeout = 8000
retry_min = 200
retry_max = 4000
probe_interval = 300
presence_ttl_seconds = 9
call_timeout = 1200
membership_interval = 900
member_give_up_after = 4
cookie_file = ")" + cookie + R"("
admin = "127.0.0.5:4390"
telemetry_log = "/var/log/mishka/telemetry.jsonl"
log_level = "warning"

[[essential]]
name = "plugins"
attributes = ["id", "name", "version"]
indexes = ["name"]

[[tables]]
name = "sessions"
attributes = ["id", "user", "expires"]
type = "bag"
storage = "ram_copies"
indexes = ["user"]

[[tables]]
name = "counters"
attributes = ["node", "count"]
local_content = true
type = "ordered_set"
)");
  const DaemonConfig config = parse_ok({"--config", path});
  const RepoOptions& repo = config.repo;
  EXPECT_EQ(config.config_path, path);
  EXPECT_EQ(repo.mnesia_dir, "/srv/node");
  EXPECT_EQ(repo.cluster_nodes, (std::vector<std::string>{"a@127.0.0.1:4370", "c@127.0.0.3:4370"}));
  EXPECT_FALSE(repo.dynamic_membership);
  EXPECT_EQ(repo.wait_timeout, milliseconds(2000));
  EXPECT_EQ(repo.wait_retries, 3);
  EXPECT_EQ(repo.health_interval, milliseconds(500));
  EXPECT_EQ(repo.node, "b@127.0.0.2:5370");
  EXPECT_EQ(repo.peer_port, std::optional<std::uint16_t>(5371));
  EXPECT_EQ(repo.etcd_binary, "/opt/etcd/etcd");
  EXPECT_EQ(repo.metrics_port, std::optional<std::uint16_t>(5372));
  EXPECT_EQ(repo.target_voters, 5);
  EXPECT_EQ(repo.join_timeout, milliseconds(7000));
  EXPECT_EQ(repo.member_ready_timeout, milliseconds(8000));
  EXPECT_EQ(repo.retry_min, milliseconds(200));
  EXPECT_EQ(repo.retry_max, milliseconds(4000));
  EXPECT_EQ(repo.probe_interval, milliseconds(300));
  EXPECT_EQ(repo.presence_ttl_seconds, 9);
  EXPECT_EQ(repo.call_timeout, milliseconds(1200));
  EXPECT_EQ(repo.membership_interval, milliseconds(900));
  EXPECT_EQ(repo.member_give_up_after, 4);
  EXPECT_EQ(repo.cookie, kCookie);
  EXPECT_EQ(config.admin.to_string(), "127.0.0.5:4390");
  EXPECT_EQ(config.telemetry_log, "/var/log/mishka/telemetry.jsonl");
  EXPECT_EQ(config.log_level, LogLevel::warning);

  // Table specs: fields left out take their defaults (set, disc_copies, not local, no index).
  ASSERT_EQ(repo.essential.size(), 1u);
  TableSpec plugins{.name = "plugins",
                    .attributes = {"id", "name", "version"},
                    .type = TableType::set,
                    .storage = StorageType::disc_copies,
                    .local_content = false,
                    .indexes = {"name"}};
  EXPECT_EQ(repo.essential[0], plugins);
  ASSERT_EQ(config.tables.size(), 2u);
  EXPECT_EQ(config.tables[0], (TableSpec{.name = "sessions",
                                         .attributes = {"id", "user", "expires"},
                                         .type = TableType::bag,
                                         .storage = StorageType::ram_copies,
                                         .local_content = false,
                                         .indexes = {"user"}}));
  EXPECT_EQ(config.tables[1], (TableSpec{.name = "counters",
                                         .attributes = {"node", "count"},
                                         .type = TableType::ordered_set,
                                         .storage = StorageType::disc_copies,
                                         .local_content = true,
                                         .indexes = {}}));
}

TEST_F(DaemonConfigTest, FlagsOverrideTheFile) {
  const std::string cookie = cookie_file();
  const std::string other_cookie = write_file("other-cookie", "the-other-cookie-text\n", 0400);
  const std::string path = write_file("mishkad.toml",
                                      "node = \"a@127.0.0.1:4370\"\n"
                                      "wait_timeout = 2000\n"
                                      "wait_retries = 3\n"
                                      "admin = \"127.0.0.1:5000\"\n"
                                      "cookie_file = \"" +
                                          cookie +
                                          "\"\n"
                                          "cluster_nodes = [\"c@127.0.0.3:4370\"]\n");
  const DaemonConfig config =
      parse_ok({"--wait-timeout", "10", "--config", path, "--admin=127.0.0.1:6000", "--cookie-file",
                other_cookie, "--cluster-nodes", "auto"});
  EXPECT_EQ(config.repo.node, "a@127.0.0.1:4370");        // the file's
  EXPECT_EQ(config.repo.wait_retries, 3);                 // the file's
  EXPECT_EQ(config.repo.wait_timeout, milliseconds(10));  // the flag's
  EXPECT_EQ(config.admin.port, 6000);
  EXPECT_EQ(config.repo.cookie, "the-other-cookie-text");
  EXPECT_TRUE(config.repo.cluster_nodes.empty());
}

TEST_F(DaemonConfigTest, AFlagGivenTwiceIsRefused) {
  const std::string cookie = cookie_file();
  const std::string path = write_file("mishkad.toml", "wait_retries = 3\n");
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"--cookie-file", cookie, "--wait-retries", "1", "--wait-retries=2"},
           {"--wait-retries=1", "--cookie-file", cookie, "--wait-retries=1"},
           {"--config", path, "--cookie-file", cookie, "--config=" + path}}) {
    SCOPED_TRACE(::testing::PrintToString(args));
    const std::string message = parse_error(args);
    EXPECT_CONTAINS(message, args.back().substr(0, args.back().find('=')));
    EXPECT_CONTAINS(message, "more than once");
  }
  // --help before the repetition still answers.
  Result<DaemonCommand> help_first = parse_daemon_command({"--help", "--dir", "a", "--dir", "b"});
  ASSERT_TRUE(help_first.ok()) << help_first.status().to_string();
  EXPECT_EQ(help_first->action, DaemonAction::help);
}

TEST_F(DaemonConfigTest, ABadCookieFileIsNamedOnce) {
  const std::string short_cookie = write_file("c2", "short\n", 0400);
  const std::string message = parse_error({"--cookie-file", short_cookie});
  EXPECT_CONTAINS(message, "--cookie-file '" + short_cookie + "'");
  EXPECT_CONTAINS(message, "cookie is 5 bytes");
  EXPECT_EQ(message.find(": :"), std::string::npos) << "an empty context in: " << message;
}

TEST_F(DaemonConfigTest, AMissingHomeDirectoryIsSaid) {
  const std::string missing = (dir_->path() / "nonexistent-home").string();
  ::setenv("HOME", missing.c_str(), 1);
  std::string message = parse_error({});
  EXPECT_CONTAINS(message, "HOME=" + missing);
  EXPECT_CONTAINS(message, "does not exist");
  EXPECT_CONTAINS(message, "--cookie-file");
  EXPECT_FALSE(fs::exists(missing));

  const std::string file = write_file("not-a-directory", "x");
  ::setenv("HOME", file.c_str(), 1);
  message = parse_error({});
  EXPECT_CONTAINS(message, "HOME=" + file);
  EXPECT_CONTAINS(message, "is not a directory");
}

TEST_F(DaemonConfigTest, APeerPortBeyondTheRangeNamesTheNodeAndTheFlag) {
  const std::string message = parse_error({"--node", "r@127.0.0.1:65535"});
  EXPECT_CONTAINS(message, "--node 'r@127.0.0.1:65535'");
  EXPECT_CONTAINS(message, "PORT+1");
  EXPECT_CONTAINS(message, "out of range");
  EXPECT_CONTAINS(message, "--peer-port");
  // From the file, the line of the node is named.
  const std::string path = write_file("m.toml", "\nnode = \"r@127.0.0.1:65535\"\n");
  EXPECT_CONTAINS(parse_error({"--config", path}), path + ":2");
  // The metrics port (client port + 2 with TLS) likewise names the node.
  const std::string metrics = parse_error({"--node", "a@127.0.0.1:65534", "--peer-port", "65533"});
  EXPECT_CONTAINS(metrics, "--node 'a@127.0.0.1:65534'");
  EXPECT_CONTAINS(metrics, "PORT+2");
  EXPECT_FALSE(fs::exists(home_cookie()));
}

TEST_F(DaemonConfigTest, BadFlagsAreRefusedNamingTheFlagAndValue) {
  const std::string cookie = cookie_file();
  struct Case {
    std::vector<std::string> args;
    std::vector<std::string> expected;  // parts of the message
  };
  const std::vector<Case> cases = {
      {{"--bogus", "1"}, {"unknown flag", "--bogus"}},
      {{"-v"}, {"unexpected argument", "-v"}},
      {{"standalone"}, {"unexpected argument", "standalone"}},
      {{"--node"}, {"--node", "missing value"}},
      {{"--node", "--dir", "/x"}, {"--node", "missing value"}},
      {{"--help=yes"}, {"--help", "no value"}},
      {{"--config="}, {"--config"}},
      {{"--peer-port", "0"}, {"--peer-port '0'", "1..65535"}},
      {{"--peer-port", "70000"}, {"--peer-port '70000'"}},
      {{"--peer-port", "4370"}, {"--peer-port '4370'", "option 'peer_port'"}},
      {{"--wait-timeout", "-1"}, {"--wait-timeout '-1'", "milliseconds"}},
      {{"--wait-timeout", "1s"}, {"--wait-timeout '1s'"}},
      {{"--health-interval", ""}, {"--health-interval ''"}},
      {{"--wait-retries", "many"}, {"--wait-retries 'many'"}},
      {{"--dynamic-membership", "yes"}, {"--dynamic-membership 'yes'", "true or false"}},
      {{"--cluster-nodes", "a@127.0.0.1:4370,,b@127.0.0.1:4371"}, {"--cluster-nodes"}},
      {{"--cluster-nodes", "not a node"},
       {"--cluster-nodes 'not a node'", "option 'cluster_nodes'"}},
      {{"--cluster-nodes", "mishka@127.0.0.1:4370"}, {"option 'cluster_nodes'", "itself"}},
      {{"--node", "nonsense"}, {"--node 'nonsense'", "option 'node'"}},
      {{"--dir", ""}, {"--dir ''"}},
      {{"--etcd="}, {"--etcd ''"}},
      {{"--admin", "4380"}, {"--admin '4380'", "HOST:PORT"}},
      {{"--admin", "127.0.0.1:99999"}, {"--admin '127.0.0.1:99999'", "port"}},
      {{"--admin", "::1:4380"}, {"--admin '::1:4380'", "brackets"}},
      {{"--ca-cert", "/x/ca.pem"}, {"--ca-cert '/x/ca.pem'", "ca_key_path", "both or neither"}},
      {{"--ca-key", "/x/ca.key"}, {"--ca-key '/x/ca.key'", "ca_cert_path", "both or neither"}},
      // With TLS on, etcd's metrics listener takes client port + 2: checked before any cookie.
      {{"--node", "a@127.0.0.1:65534", "--peer-port", "65533"}, {"metrics_port"}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(::testing::PrintToString(c.args));
    const std::string message = parse_error(c.args);
    for (const std::string& part : c.expected) EXPECT_CONTAINS(message, part);
  }
  // Nothing was written by any of them (the cookie file above is the test's).
  EXPECT_FALSE(fs::exists(home_cookie()));
  EXPECT_FALSE(fs::exists(dir_->path() / ".mnesia"));
}

TEST_F(DaemonConfigTest, BadFileKeysAreRefusedNamingTheKeyAndLine) {
  struct Case {
    std::string toml;
    std::vector<std::string> expected;
  };
  const std::vector<Case> cases = {
      {"node = \"a@127.0.0.1:4370\"\nwait_timout = 5\n", {":2:", "'wait_timout'", "unknown"}},
      {"\n\nwait_timeout = \"soon\"\n", {":3:", "option 'wait_timeout'"}},
      {"wait_retries = -1\n", {":1:", "option 'wait_retries'"}},
      {"peer_port = 70000\n", {":1:", "option 'peer_port'"}},
      {"dynamic_membership = \"yes\"\n", {":1:", "option 'dynamic_membership'"}},
      {"cluster_nodes = \"everyone\"\n", {":1:", "option 'cluster_nodes'"}},
      {"cookie = \"0123456789abcdef\"\n", {":1:", "'cookie'", "cookie_file"}},
      {"admin = 4380\n", {":1:", "'admin'"}},
      {"admin = \"localhost\"\n", {":1:", "'admin'", "HOST:PORT"}},
      {"telemetry_log = \"\"\n", {":1:", "'telemetry_log'"}},
      {"cookie_file = 3\n", {":1:", "'cookie_file'"}},
      {"log_level = \"verbose\"\n", {":1:", "'log_level'", "verbose"}},
      {"wait_timeout = 5\nwait_timeout = 6\n", {":2:", "TOML"}},
      {"node = \n", {":1:", "TOML"}},
      {"started = 2024-01-01\n", {":1:", "'started'", "dates"}},
      {"tables = 3\n", {":1:", "'tables'", "list of tables"}},
      {"[[tables]]\nname = \"a\"\nattributes = [\"id\"]\n\n[[tables]]\nname = \"b\"\n",
       {":5:", "'tables', item 1", "attributes"}},
      {"[[tables]]\nname = \"t\"\nattributes = [\"id\"]\ncolour = \"red\"\n",
       {":1:", "unknown field", "colour"}},
      {"[[tables]]\nname = \"t\"\nattributes = [\"id\"]\nstorage = \"disc_only_copies\"\n",
       {":1:", "disc_only_copies"}},
      {"[[tables]]\nname = \"installer\"\nattributes = [\"id\"]\n", {"'installer'", "essential"}},
      {"[[tables]]\nname = \"t\"\nattributes = [\"id\"]\n[[tables]]\nname = \"t\"\nattributes = "
       "[\"k\"]\n",
       {"'t' twice"}},
      {"[[essential]]\nname = \"e\"\n", {":1:", "'essential', item 0"}},
      {"ca_cert_path = \"/x/ca.pem\"\n", {":1:", "ca_key_path", "both or neither"}},
      {"log = \"x\"\n", {":1:", "'log'", "in code"}},
  };
  int i = 0;
  for (const Case& c : cases) {
    SCOPED_TRACE(c.toml);
    const std::string path = write_file("bad" + std::to_string(i++) + ".toml", c.toml);
    const std::string message = parse_error({"--config", path});
    EXPECT_CONTAINS(message, path);
    for (const std::string& part : c.expected) EXPECT_CONTAINS(message, part);
  }
  EXPECT_FALSE(fs::exists(home_cookie()));

  Result<DaemonCommand> missing = parse_daemon_command({"--config", home() + "/none.toml"});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::not_found);
  EXPECT_CONTAINS(missing.status().message(), "none.toml");
}

// The sample config file shipped in packaging/ (every key commented out, at its default) must
// parse, and so must the same file with each example uncommented: it cannot drift from the
// parser unnoticed.
std::string uncomment_examples(const std::string& text) {
  static const std::regex kSetting(R"(^# ([a-z_]+) = .*)");
  static const std::regex kSection(R"(^# (\[\[[a-z_]+\]\])$)");
  std::istringstream in(text);
  std::string line;
  std::string out;
  std::set<std::string> keys;  // of the current table: an alternative example comes second
  std::smatch match;
  while (std::getline(in, line)) {
    if (std::regex_match(line, match, kSection)) {
      keys.clear();
      out += match[1].str() + "\n";
    } else if (std::regex_match(line, match, kSetting) && keys.insert(match[1].str()).second &&
               match[1].str().rfind("ca_", 0) != 0) {  // an operator CA excludes the cookie
      out += line.substr(2) + "\n";
    } else {
      out += line + "\n";
    }
  }
  return out;
}

TEST_F(DaemonConfigTest, SampleConfigParsesAsShippedAndUncommented) {
  const std::string sample = test::read_bytes(MISHKAD_SAMPLE_CONFIG);
  ASSERT_FALSE(sample.empty()) << MISHKAD_SAMPLE_CONFIG;
  const std::string cookie = cookie_file();
  const DaemonConfig shipped =
      parse_ok({"--config", MISHKAD_SAMPLE_CONFIG, "--cookie-file", cookie});
  EXPECT_EQ(shipped.repo.node, "mishka@127.0.0.1:4370");
  EXPECT_TRUE(shipped.tables.empty());

  const std::string uncommented = uncomment_examples(sample);
  const std::string path = write_file("uncommented.toml", uncommented);
  const DaemonConfig config = parse_ok({"--config", path, "--cookie-file", cookie});
  EXPECT_EQ(config.repo.mnesia_dir, "/var/lib/mishka/node");
  EXPECT_EQ(config.repo.metrics_port, std::optional<std::uint16_t>(4372));
  EXPECT_EQ(config.telemetry_log, "/var/log/mishka/telemetry.jsonl");
  EXPECT_EQ(table_names(config.repo.essential), std::vector<std::string>{"installer"});
  EXPECT_EQ(config.repo.essential[0], default_essential_tables()[0]);
  EXPECT_EQ(table_names(config.tables), std::vector<std::string>{"sessions"});
  // Every example was taken: as many keys set as the sample shows, the CA pair aside.
  int examples = 0;
  std::istringstream lines(uncommented);
  for (std::string line; std::getline(lines, line);) {
    if (std::regex_match(line, std::regex(R"(^[a-z_]+ = .*)"))) ++examples;
  }
  EXPECT_GE(examples, 30) << uncommented;
}

TEST_F(DaemonConfigTest, OperatorCaReplacesTheCookie) {
  ::setenv("MISHKA_COOKIE", kCookie, 1);
  const DaemonConfig config =
      parse_ok({"--ca-cert", "/etc/mishka/ca.pem", "--ca-key=/etc/mishka/ca.key"});
  EXPECT_EQ(config.repo.ca_cert_path, "/etc/mishka/ca.pem");
  EXPECT_EQ(config.repo.ca_key_path, "/etc/mishka/ca.key");
  EXPECT_TRUE(config.repo.cookie.empty());
  EXPECT_FALSE(fs::exists(home_cookie()));

  const std::string message = parse_error(
      {"--ca-cert", "/x/ca.pem", "--ca-key", "/x/ca.key", "--cookie-file", cookie_file()});
  EXPECT_CONTAINS(message, "--cookie-file");
  EXPECT_CONTAINS(message, "operator's CA");
}

}  // namespace
}  // namespace mishka::daemon
