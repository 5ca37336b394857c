// mishkactl (tools/mishkactl/main.cc) run as a process against a stand-in admin server on a
// free loopback port: the request each command sends (method, raw target, body), what it
// prints, and its exit status (0 success, 1 error reply or no connection, 2 bad usage).
#include <gtest/gtest.h>
#include <httplib.h>

#include <chrono>
#include <cstdlib>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "support/child_process.h"
#include "support/file_checks.h"
#include "support/temp_dir.h"

namespace mishka {
namespace {

using nlohmann::json;

struct SeenRequest {
  std::string method;
  std::string target;  // as sent: still percent-encoded, with the query
  std::string body;
  std::string content_type;
};

// Answers every request with the reply set by the test, and records what it got.
class StandInAdmin {
 public:
  StandInAdmin() {
    auto handler = [this](const httplib::Request& request, httplib::Response& response) {
      std::lock_guard<std::mutex> lock(mu_);
      seen_.push_back(
          {request.method, request.target, request.body, request.get_header_value("Content-Type")});
      response.status = status_;
      response.set_content(body_, content_type_);
    };
    server_.Get(".*", handler);
    server_.Put(".*", handler);
    server_.Delete(".*", handler);
    server_.Post(".*", handler);
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    // listen_after_bind() only marks the server running once its thread got there; the socket
    // is bound already, so a client connecting earlier would wait in the backlog anyway.
    for (int i = 0; i < 500 && !server_.is_running(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  ~StandInAdmin() {
    server_.stop();
    thread_.join();
  }

  void reply(int status, std::string body, std::string content_type = "application/json") {
    std::lock_guard<std::mutex> lock(mu_);
    status_ = status;
    body_ = std::move(body);
    content_type_ = std::move(content_type);
  }
  std::vector<SeenRequest> seen() {
    std::lock_guard<std::mutex> lock(mu_);
    return seen_;
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  bool bound() const { return port_ > 0; }

 private:
  httplib::Server server_;
  int port_ = -1;
  std::thread thread_;
  std::mutex mu_;
  int status_ = 200;
  std::string body_ = "{}";
  std::string content_type_ = "application/json";
  std::vector<SeenRequest> seen_;
};

struct ToolRun {
  int exit_code = -1;
  std::string out;
  std::string err;
};

class MishkactlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = test::TempDir::Create("mishkactl-test");
    ASSERT_TRUE(dir.ok()) << dir.status().to_string();
    dir_.emplace(std::move(*dir));
    ASSERT_TRUE(admin_.bound());
    if (const char* env = std::getenv("MISHKA_ADMIN")) saved_admin_env_ = env;
    ::unsetenv("MISHKA_ADMIN");
  }
  void TearDown() override {
    if (saved_admin_env_) {
      ::setenv("MISHKA_ADMIN", saved_admin_env_->c_str(), 1);
    } else {
      ::unsetenv("MISHKA_ADMIN");
    }
  }

  // Runs mishkactl with `args` (stdout and stderr kept apart: a shell redirects stderr), bounded
  // in time; the process is stopped by its pid if it overruns.
  ToolRun run(const std::vector<std::string>& args) {
    const std::string out_path = (dir_->path() / "out").string();
    const std::string err_path = (dir_->path() / "err").string();
    test::write_bytes(out_path, "");
    test::write_bytes(err_path, "");
    std::vector<std::string> sh_args = {"-c", "e=$1; shift; exec \"$@\" 2>\"$e\"", "sh", err_path,
                                        MISHKACTL};
    sh_args.insert(sh_args.end(), args.begin(), args.end());
    auto child =
        test::ChildProcess::spawn({.program = "/bin/sh", .args = sh_args, .log_path = out_path});
    EXPECT_TRUE(child.ok()) << child.status().to_string();
    if (!child.ok()) return {};
    std::optional<test::ExitInfo> exit = child->wait_for(std::chrono::seconds(10));
    EXPECT_TRUE(exit.has_value()) << "mishkactl did not end within 10 s";
    if (!exit) exit = child->stop();
    return ToolRun{exit->signaled ? -1 : exit->code, test::read_bytes(out_path),
                   test::read_bytes(err_path)};
  }

  // Runs a command against the stand-in server.
  ToolRun run_against_admin(std::vector<std::string> args) {
    args.insert(args.begin(), {"--admin", admin_.address()});
    return run(args);
  }

  std::optional<test::TempDir> dir_;
  StandInAdmin admin_;
  std::optional<std::string> saved_admin_env_;
};

#define EXPECT_CONTAINS(text, part)                          \
  EXPECT_NE(std::string(text).find(part), std::string::npos) \
      << "missing \"" << (part) << "\" in: " << (text)

TEST_F(MishkactlTest, HelpExitsZero) {
  ToolRun general = run({"--help"});
  EXPECT_EQ(general.exit_code, 0) << general.err;
  for (const char* command :
       {"state", "schemas", "health", "members", "get TABLE KEY", "put TABLE KEY JSON",
        "delete TABLE KEY", "remove-node NODE", "--admin HOST:PORT", "--json-key"}) {
    EXPECT_CONTAINS(general.out, command);
  }
  ToolRun put = run({"put", "--help"});
  EXPECT_EQ(put.exit_code, 0) << put.err;
  EXPECT_CONTAINS(put.out, "put TABLE KEY JSON");
  EXPECT_TRUE(admin_.seen().empty());
}

TEST_F(MishkactlTest, BadUsageExitsTwoAndSendsNothing) {
  struct Case {
    std::vector<std::string> args;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {{}, "no command"},
      {{"status"}, "unknown command 'status'"},
      {{"get", "installer"}, "expected 2 argument(s), got 1"},
      {{"state", "extra"}, "expected 0 argument(s), got 1"},
      {{"--verbose", "state"}, "unknown flag '--verbose'"},
      {{"--timeout", "0", "state"}, "--timeout"},
      {{"state", "--json-key"}, "--json-key applies to get, put and delete only"},
      {{"get", "installer", "{", "--json-key"}, "KEY '{' (--json-key) is not valid JSON"},
      {{"put", "installer", "a", "{\"app\": "}, "JSON is not valid JSON"},
      // Numbers beyond a double: the parser's out_of_range, a usage error like any other.
      {{"put", "installer", "k", "{\"name\":1e400}"}, "number overflow"},
      {{"get", "numbers", "1e400", "--json-key"}, "number overflow"},
      {{"put", "installer", "a", "[1, 2]"}, "must be an object"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(::testing::PrintToString(c.args));
    ToolRun r = run_against_admin(c.args);
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_CONTAINS(r.err, c.expected);
    EXPECT_CONTAINS(r.err, "usage: mishkactl");
    EXPECT_TRUE(r.out.empty()) << r.out;
  }
  ToolRun bad_admin = run({"--admin", "localhost", "state"});
  EXPECT_EQ(bad_admin.exit_code, 2);
  EXPECT_CONTAINS(bad_admin.err, "--admin");
  ::setenv("MISHKA_ADMIN", "nowhere", 1);
  ToolRun bad_env = run({"state"});
  EXPECT_EQ(bad_env.exit_code, 2);
  EXPECT_CONTAINS(bad_env.err, "MISHKA_ADMIN");
  EXPECT_TRUE(admin_.seen().empty());
}

TEST_F(MishkactlTest, StatePrintsTheReplyAsJson) {
  const json state = {
      {"status", "synchronized"}, {"node", "a@127.0.0.1:4370"}, {"members", json::array()}};
  admin_.reply(200, state.dump());
  ToolRun r = run_against_admin({"state"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(json::parse(r.out), state);
  EXPECT_CONTAINS(r.out, "\n  \"node\"");  // indented
  ASSERT_EQ(admin_.seen().size(), 1u);
  EXPECT_EQ(admin_.seen()[0].method, "GET");
  EXPECT_EQ(admin_.seen()[0].target, "/state");
}

TEST_F(MishkactlTest, MembersPrintsTheMembersOfTheState) {
  const json members =
      json::array({{{"node", "a@127.0.0.1:4370"}, {"role", "voter"}, {"up", true}},
                   {{"node", "b@127.0.0.1:4372"}, {"role", "learner"}, {"up", false}}});
  admin_.reply(200, json{{"status", "synchronized"}, {"members", members}}.dump());
  ToolRun r = run_against_admin({"members"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(json::parse(r.out), members);
  EXPECT_EQ(admin_.seen().at(0).target, "/state");
}

TEST_F(MishkactlTest, SchemasAndHealth) {
  admin_.reply(200, R"([{"name":"installer","storage":"disc_copies","local_content":false}])");
  ToolRun schemas = run_against_admin({"schemas"});
  EXPECT_EQ(schemas.exit_code, 0) << schemas.err;
  EXPECT_EQ(json::parse(schemas.out)[0]["name"], "installer");

  admin_.reply(200, R"({"healthy":true,"missing":[]})");
  ToolRun healthy = run_against_admin({"health"});
  EXPECT_EQ(healthy.exit_code, 0) << healthy.err;
  EXPECT_EQ(json::parse(healthy.out)["healthy"], true);

  // Unhealthy: 503 with the report; still printed, exit 1.
  admin_.reply(503, R"({"healthy":false,"missing":["event"]})");
  ToolRun unhealthy = run_against_admin({"health"});
  EXPECT_EQ(unhealthy.exit_code, 1);
  EXPECT_EQ(json::parse(unhealthy.out)["missing"][0], "event");
  EXPECT_CONTAINS(unhealthy.err, "HTTP 503");

  const std::vector<SeenRequest> seen = admin_.seen();
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[0].target, "/schemas");
  EXPECT_EQ(seen[1].target, "/healthz");
  EXPECT_EQ(seen[2].method, "GET");
}

TEST_F(MishkactlTest, GetEncodesTheTableAndKey) {
  admin_.reply(200, R"({"id":"a/b c%","app":"x"})");
  ToolRun r = run_against_admin({"get", "installer", "a/b c%?#é"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(json::parse(r.out)["app"], "x");
  ASSERT_EQ(admin_.seen().size(), 1u);
  EXPECT_EQ(admin_.seen()[0].method, "GET");
  EXPECT_EQ(admin_.seen()[0].target, "/tables/installer/records/a%2Fb%20c%25%3F%23%C3%A9");
}

TEST_F(MishkactlTest, JsonKeyIsSentWithKeyFormatJson) {
  admin_.reply(200, R"({"id":42})");
  ToolRun r = run_against_admin({"get", "--json-key", "numbers", "42"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  // A key that starts with '-' follows "--".
  ToolRun negative = run_against_admin({"delete", "numbers", "--json-key", "--", "-1"});
  EXPECT_EQ(negative.exit_code, 0) << negative.err;
  const std::vector<SeenRequest> seen = admin_.seen();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].target, "/tables/numbers/records/42?key_format=json");
  EXPECT_EQ(seen[1].method, "DELETE");
  EXPECT_EQ(seen[1].target, "/tables/numbers/records/-1?key_format=json");
}

TEST_F(MishkactlTest, NegativeNumbersAreArgumentsNotFlags) {
  admin_.reply(200, R"({"id":-5})");
  ToolRun key = run_against_admin({"get", "users", "-5", "--json-key"});
  EXPECT_EQ(key.exit_code, 0) << key.err;
  ToolRun fraction = run_against_admin({"delete", "--json-key", "users", "-0.5"});
  EXPECT_EQ(fraction.exit_code, 0) << fraction.err;
  // Without --json-key the key is the string "-5".
  ToolRun text = run_against_admin({"get", "users", "-5"});
  EXPECT_EQ(text.exit_code, 0) << text.err;
  const std::vector<SeenRequest> seen = admin_.seen();
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[0].target, "/tables/users/records/-5?key_format=json");
  EXPECT_EQ(seen[1].target, "/tables/users/records/-0.5?key_format=json");
  EXPECT_EQ(seen[2].target, "/tables/users/records/-5");
  // Other arguments that start with '-' are still flags; the usage says how to pass them.
  ToolRun flag = run_against_admin({"get", "users", "-x"});
  EXPECT_EQ(flag.exit_code, 2);
  EXPECT_CONTAINS(flag.err, "unknown flag '-x'");
  EXPECT_CONTAINS(flag.err, "--  ");
  ToolRun help = run({"--help"});
  EXPECT_CONTAINS(help.out, "--  ");
}

TEST_F(MishkactlTest, PutSendsTheRecordAsItsBody) {
  const std::string record = R"({"app": "demo", "version": "1.0", "big": 9007199254740993})";
  admin_.reply(200, R"({"table":"installer","key":"k1","record":{"app":"demo"}})");
  ToolRun r = run_against_admin({"put", "installer", "k1", record});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(json::parse(r.out)["key"], "k1");
  ASSERT_EQ(admin_.seen().size(), 1u);
  const SeenRequest seen = admin_.seen()[0];
  EXPECT_EQ(seen.method, "PUT");
  EXPECT_EQ(seen.target, "/tables/installer/records/k1");
  EXPECT_EQ(seen.body, record);  // as given: no number is rewritten
  EXPECT_EQ(seen.content_type, "application/json");
}

TEST_F(MishkactlTest, DeleteAndRemoveNode) {
  admin_.reply(200, R"({"table":"installer","key":"k1","deleted":true})");
  ToolRun deleted = run_against_admin({"delete", "installer", "k1"});
  EXPECT_EQ(deleted.exit_code, 0) << deleted.err;
  EXPECT_EQ(json::parse(deleted.out)["deleted"], true);

  admin_.reply(200, R"({"removed":"b@127.0.0.1:4372"})");
  ToolRun removed = run_against_admin({"remove-node", "b@127.0.0.1:4372"});
  EXPECT_EQ(removed.exit_code, 0) << removed.err;
  EXPECT_EQ(json::parse(removed.out)["removed"], "b@127.0.0.1:4372");

  const std::vector<SeenRequest> seen = admin_.seen();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].method, "DELETE");
  EXPECT_EQ(seen[0].target, "/tables/installer/records/k1");
  EXPECT_EQ(seen[1].method, "POST");
  EXPECT_EQ(seen[1].target, "/members/b%40127.0.0.1%3A4372/remove");
}

TEST_F(MishkactlTest, ErrorReplyExitsOneWithTheBodyAndASummary) {
  admin_.reply(404, R"({"error":"not_found","message":"no record 'k9' in table 'installer'"})");
  ToolRun r = run_against_admin({"get", "installer", "k9"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(json::parse(r.out)["error"], "not_found");
  EXPECT_CONTAINS(r.err, "HTTP 404 not_found: no record 'k9' in table 'installer'");

  admin_.reply(503, R"({"error":"no_quorum","message":"writes cannot reach a quorum"})");
  ToolRun put = run_against_admin({"put", "installer", "k9", "{}"});
  EXPECT_EQ(put.exit_code, 1);
  EXPECT_CONTAINS(put.err, "no_quorum");

  admin_.reply(500, "not json", "text/plain");
  ToolRun garbled = run_against_admin({"state"});
  EXPECT_EQ(garbled.exit_code, 1);
  EXPECT_CONTAINS(garbled.err, "not JSON");
}

TEST_F(MishkactlTest, UnreachableAddressExitsOne) {
  auto ports = test::pick_free_loopback_ports(1);
  ASSERT_TRUE(ports.ok()) << ports.status().to_string();
  ToolRun r = run({"--admin", "127.0.0.1:" + std::to_string(ports->at(0)), "state"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_CONTAINS(r.err, "no answer from the admin HTTP at 127.0.0.1:");
  EXPECT_TRUE(r.out.empty()) << r.out;
}

TEST_F(MishkactlTest, MishkaAdminIsUsedAndTheFlagWins) {
  admin_.reply(200, R"({"status":"synchronized"})");
  ::setenv("MISHKA_ADMIN", admin_.address().c_str(), 1);
  ToolRun from_env = run({"state"});
  EXPECT_EQ(from_env.exit_code, 0) << from_env.err;
  EXPECT_EQ(admin_.seen().size(), 1u);

  auto ports = test::pick_free_loopback_ports(1);
  ASSERT_TRUE(ports.ok());
  ::setenv("MISHKA_ADMIN", ("127.0.0.1:" + std::to_string(ports->at(0))).c_str(), 1);
  ToolRun from_flag = run({"state", "--admin=" + admin_.address()});
  EXPECT_EQ(from_flag.exit_code, 0) << from_flag.err;
  EXPECT_EQ(admin_.seen().size(), 2u);
}

}  // namespace
}  // namespace mishka
