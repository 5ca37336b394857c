// The admin HTTP (docs/admin.md) over a real repo: every endpoint, the refusals of bad input
// (each followed by a check that the data written before is intact), the body limit, the
// routing errors, the server without a repo, a taken port, and /metrics through promtool.
//
// One seed repo (one etcd member) serves the whole suite: starting etcd is what costs time.
#include "admin/admin_server.h"

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "mishka/store.h"
#include "mishka/telemetry.h"
#include "repo/repo_support.h"
#include "support/watchdog.h"

namespace mishka::test {
namespace {

using admin::AdminOptions;
using admin::AdminServer;
using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;
using ::testing::HasSubstr;

constexpr std::size_t kMaxBody = 4096;

// The suite's node and its admin server. The server starts before the repo, so /metrics counts
// the repo's boot events.
struct Node {
  RepoSlot slot = make_slot(0);
  Lines log;
  telemetry::Telemetry telemetry;
  std::mutex mu;
  std::shared_ptr<MnesiaRepo> repo;  // guarded by mu
  std::unique_ptr<AdminServer> server;
  std::string setup_error;

  std::shared_ptr<MnesiaRepo> current() {
    std::lock_guard<std::mutex> lock(mu);
    return repo;
  }
};

class AdminServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    Watchdog watchdog(seconds(60));
    node_ = std::make_unique<Node>();
    AdminOptions options;
    options.port = 0;
    options.max_body_bytes = kMaxBody;
    options.threads = 2;
    options.log = node_->log.sink();
    auto server = AdminServer::start(
        options, [node = node_.get()] { return node->current(); }, node_->telemetry);
    if (!server.ok()) {
      node_->setup_error = "admin server: " + server.status().to_string();
      return;
    }
    node_->server = std::move(server).value();
    RepoOptions repo_options = node_->slot.options({}, node_->log.sink());
    repo_options.telemetry = &node_->telemetry;
    auto repo = MnesiaRepo::start(std::move(repo_options));
    if (!repo.ok()) {
      node_->setup_error = "repo: " + repo.status().to_string() + "\n" + node_->log.dump();
      return;
    }
    std::lock_guard<std::mutex> lock(node_->mu);
    node_->repo = std::shared_ptr<MnesiaRepo>(std::move(repo).value());
  }

  static void TearDownTestSuite() {
    if (node_ == nullptr) return;
    if (node_->server) node_->server->stop();
    if (node_->repo) node_->repo->stop();  // stops its etcd member
    node_.reset();
  }

  void SetUp() override { ASSERT_TRUE(node_->setup_error.empty()) << node_->setup_error; }

  static httplib::Client client() {
    httplib::Client c("127.0.0.1", node_->server->port());
    c.set_url_encode(false);  // the tests write paths exactly as sent
    c.set_connection_timeout(seconds(5));
    c.set_read_timeout(seconds(30));
    return c;
  }

  static MnesiaRepo& repo() { return *node_->repo; }

  static std::unique_ptr<Node> node_;
  Watchdog watchdog_{seconds(60)};
};

std::unique_ptr<Node> AdminServerTest::node_;

json body_of(const httplib::Result& res) {
  return json::parse(res->body, nullptr, false);
}

// A full `installer` record body (the key left out), with values of many kinds.
json valid_installer_body(const std::string& app) {
  return json{{"app", app},
              {"version", "0.1.0"},
              {"type", "extension"},
              {"path", "/opt/x"},
              {"tag", nullptr},
              {"asset", {{"base64", "AAE="}}},
              {"checksum", "abc"},
              {"depends", {"a", "b"}},
              {"prepend_paths", json::array()},
              {"inserted_at", 1700000000},
              {"updated_at", 1.5}};
}

// A full `installer` record body whose `depends` is the JSON text `depends` (spliced as text:
// a deep nlohmann DOM would overflow the stack when destroyed).
std::string installer_body_with_depends(const std::string& depends) {
  json body = valid_installer_body("deep");
  body.erase("depends");
  return R"({"depends":)" + depends + "," + body.dump().substr(1);
}

// Puts a record and checks the reply.
void put_installer(httplib::Client& c, const std::string& key, const std::string& app) {
  auto res = c.Put("/tables/installer/records/" + key, valid_installer_body(app).dump(),
                   "application/json");
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  ASSERT_EQ(res->status, 200) << res->body;
}

// The `app` attribute of the installer record `key`, read through the HTTP.
std::string app_of(httplib::Client& c, const std::string& key) {
  auto res = c.Get("/tables/installer/records/" + key);
  if (!res || res->status != 200) return "<missing>";
  return body_of(res).value("app", "<no app>");
}

// `depth` arrays around 1: [[[1]]] for 3.
std::string nested_arrays(std::size_t depth) {
  return std::string(depth, '[') + "1" + std::string(depth, ']');
}

// One exchange on a new connection, bytes as given (no Content-Length unless `request` has
// one): all the server sends until it closes the connection, or "" when it cannot connect. At
// most 15 s.
std::string raw_exchange(std::uint16_t port, const std::string& request) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return "";
  timeval timeout{.tv_sec = 15, .tv_usec = 0};
  (void)::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  ::inet_pton(AF_INET, "127.0.0.1", &address.sin_addr);
  std::string reply;
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0 &&
      ::send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
          static_cast<ssize_t>(request.size())) {
    char buf[4096];
    for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) reply.append(buf, n);
  }
  ::close(fd);
  return reply;
}

// The status code of a raw HTTP reply ("HTTP/1.1 404 Not Found..."), 0 when there is none.
int raw_status(const std::string& reply) {
  if (reply.rfind("HTTP/1.1 ", 0) != 0 || reply.size() < 12) return 0;
  return std::atoi(reply.substr(9, 3).c_str());
}

json raw_body(const std::string& reply) {
  const std::size_t end = reply.find("\r\n\r\n");
  return end == std::string::npos ? json() : json::parse(reply.substr(end + 4), nullptr, false);
}

TEST_F(AdminServerTest, StateIsTheRepoStateAsJson) {
  httplib::Client c = client();
  auto res = c.Get("/state");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->get_header_value("Content-Type"), "application/json");
  json state = body_of(res);
  EXPECT_EQ(state["status"], "synchronized");
  EXPECT_EQ(state["node"], node_->slot.name);
  EXPECT_EQ(state["role"], "voter");
  EXPECT_THAT(state["tables"].dump(), HasSubstr("\"installer\""));
  ASSERT_TRUE(state["members"].is_array());
  EXPECT_EQ(state["members"][0]["node"], node_->slot.name);
}

TEST_F(AdminServerTest, SchemasListTheLocalTables) {
  httplib::Client c = client();
  auto res = c.Get("/schemas");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  json schemas = body_of(res);
  ASSERT_TRUE(schemas.is_array()) << res->body;
  bool installer = false;
  for (const json& s : schemas) {
    if (s["name"] == "installer") {
      installer = true;
      EXPECT_EQ(s["storage_type"], "disc_copies");
      EXPECT_EQ(s["local_content"], false);
    }
  }
  EXPECT_TRUE(installer) << res->body;
}

TEST_F(AdminServerTest, HealthzAndReadyzOfASynchronizedNode) {
  httplib::Client c = client();
  auto health = c.Get("/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200) << health->body;
  json report = body_of(health);
  EXPECT_EQ(report["healthy"], true);
  EXPECT_EQ(report["missing"], json::array());
  EXPECT_EQ(report["node"], node_->slot.name);
  EXPECT_EQ(report["member_healthy"], true);

  auto ready = c.Get("/readyz");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 200);
  EXPECT_EQ(body_of(ready), (json{{"status", "synchronized"}}));
}

TEST_F(AdminServerTest, RecordPutGetDeleteRoundTrip) {
  httplib::Client c = client();
  auto put = c.Put("/tables/installer/records/rt1", valid_installer_body("mishka").dump(),
                   "application/json");
  ASSERT_TRUE(put);
  ASSERT_EQ(put->status, 200) << put->body;
  json expected = valid_installer_body("mishka");
  expected["id"] = "rt1";
  json reply = body_of(put);
  EXPECT_EQ(reply["table"], "installer");
  EXPECT_EQ(reply["key"], "rt1");
  EXPECT_EQ(reply["record"], expected);
  // In attribute order, the key first (nlohmann::json sorts keys: look at the text).
  EXPECT_THAT(put->body, HasSubstr(R"("record":{"id":"rt1","app":"mishka","version")"));

  auto get = c.Get("/tables/installer/records/rt1");
  ASSERT_TRUE(get);
  EXPECT_EQ(get->status, 200);
  EXPECT_EQ(body_of(get), expected);
  // What the store holds: bytes stayed bytes, the double stayed a double.
  auto stored = repo().store()->dirty_read("installer", Value("rt1"));
  ASSERT_TRUE(stored.ok());
  ASSERT_EQ(stored->size(), 1u);
  EXPECT_EQ((*stored->front())[6], Value::bytes(std::string("\x00\x01", 2)));
  EXPECT_EQ((*stored->front())[11], Value(1.5));

  // The key attribute may be given when it equals the URL's key.
  json with_key = valid_installer_body("mishka2");
  with_key["id"] = "rt1";
  auto replace = c.Put("/tables/installer/records/rt1", with_key.dump(), "application/json");
  ASSERT_TRUE(replace);
  EXPECT_EQ(replace->status, 200) << replace->body;
  EXPECT_EQ(app_of(c, "rt1"), "mishka2");

  auto del = c.Delete("/tables/installer/records/rt1");
  ASSERT_TRUE(del);
  EXPECT_EQ(del->status, 200) << del->body;
  EXPECT_EQ(body_of(del), (json{{"table", "installer"}, {"key", "rt1"}, {"deleted", true}}));
  auto gone = c.Get("/tables/installer/records/rt1");
  ASSERT_TRUE(gone);
  EXPECT_EQ(gone->status, 404);
  EXPECT_EQ(body_of(gone)["error"], "not_found");
  auto again = c.Delete("/tables/installer/records/rt1");
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 404);
  EXPECT_THAT(body_of(again)["message"].get<std::string>(), HasSubstr("no record with key"));
}

TEST_F(AdminServerTest, UnknownTableIs404) {
  httplib::Client c = client();
  for (const std::string method : {"GET", "PUT", "DELETE"}) {
    httplib::Result res = method == "GET" ? c.Get("/tables/nope/records/k")
                          : method == "PUT"
                              ? c.Put("/tables/nope/records/k", "{}", "application/json")
                              : c.Delete("/tables/nope/records/k");
    ASSERT_TRUE(res) << method;
    EXPECT_EQ(res->status, 404) << method;
    EXPECT_EQ(body_of(res)["error"], "not_found") << method;
    EXPECT_THAT(body_of(res)["message"].get<std::string>(), HasSubstr("'nope'")) << method;
  }
}

TEST_F(AdminServerTest, BadBodiesAre400AndLeaveTheRecordIntact) {
  httplib::Client c = client();
  put_installer(c, "keep", "original");
  struct Case {
    std::string body;
    std::string message;
  };
  json wrong_key = valid_installer_body("x");
  wrong_key["id"] = "other";
  json unknown = valid_installer_body("x");
  unknown["colour"] = "red";
  json missing = valid_installer_body("x");
  missing.erase("checksum");
  const std::vector<Case> cases = {
      {"{\"app\": ", "not JSON: parse error at line 1, column 9"},
      {"[1, 2]", "not a JSON object: got an array"},
      {unknown.dump(), "table 'installer' has no attribute 'colour'"},
      {missing.dump(), "missing attribute 'checksum'"},
      {wrong_key.dump(), "it must equal the URL's key \"keep\", got \"other\""},
      {R"({"app": 18446744073709551616})", "at /app does not fit a signed 64-bit integer"},
      {R"({"app": {"base64": "%%%%"}})", "invalid base64 at /app/base64"},
  };
  for (const Case& k : cases) {
    auto res = c.Put("/tables/installer/records/keep", k.body, "application/json");
    ASSERT_TRUE(res) << k.body;
    EXPECT_EQ(res->status, 400) << k.body << " -> " << res->body;
    EXPECT_EQ(body_of(res)["error"], "invalid_argument") << res->body;
    EXPECT_THAT(body_of(res)["message"].get<std::string>(), HasSubstr(k.message));
    EXPECT_EQ(app_of(c, "keep"), "original") << "after " << k.body;
  }
}

// 64 nested arrays were once committed, and the node could not read its replica back at its
// next start; 100000 crashed the server (its recursion overflowed the stack).
TEST_F(AdminServerTest, BodiesNestingMoreThan63LevelsAre400AndNothingIsWritten) {
  httplib::Client c = client();
  json deep = valid_installer_body("deep");
  deep["depends"] = json::parse(nested_arrays(63));
  auto at_limit = c.Put("/tables/installer/records/deep63", deep.dump(), "application/json");
  ASSERT_TRUE(at_limit);
  ASSERT_EQ(at_limit->status, 200) << at_limit->body;
  auto read_back = c.Get("/tables/installer/records/deep63");
  ASSERT_TRUE(read_back);
  EXPECT_EQ(read_back->status, 200);
  EXPECT_EQ(body_of(read_back)["depends"].dump(), nested_arrays(63));

  // The body's own object does not count: 64 arrays in an attribute is one level too many.
  std::string where = "/depends";
  for (int i = 0; i < 63; ++i) where += "/0";
  const std::string too_deep = installer_body_with_depends(nested_arrays(64));
  auto refused = c.Put("/tables/installer/records/deep64", too_deep, "application/json");
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 400) << refused->body;
  EXPECT_EQ(body_of(refused)["error"], "invalid_argument");
  EXPECT_THAT(body_of(refused)["message"].get<std::string>(),
              HasSubstr("arrays and objects nest more than 63 levels deep at " + where));
  auto deep_key = c.Get("/tables/installer/records/" + std::string(64, '[') + "1" +
                        std::string(64, ']') + "?key_format=json");
  ASSERT_TRUE(deep_key);
  EXPECT_EQ(deep_key->status, 400) << deep_key->body;
  EXPECT_THAT(body_of(deep_key)["message"].get<std::string>(),
              HasSubstr("key (key_format=json): arrays and objects nest more than 63 levels"));

  // 200 KB of nesting, through a server that takes bodies of that size.
  AdminOptions options;
  options.port = 0;
  auto large = AdminServer::start(
      options, [node = node_.get()] { return node->current(); }, node_->telemetry);
  ASSERT_TRUE(large.ok()) << large.status().to_string();
  httplib::Client l("127.0.0.1", (*large)->port());
  l.set_read_timeout(seconds(30));
  auto huge = l.Put("/tables/installer/records/deep64",
                    installer_body_with_depends(nested_arrays(100000)), "application/json");
  ASSERT_TRUE(huge) << httplib::to_string(huge.error());
  EXPECT_EQ(huge->status, 400) << huge->body;
  EXPECT_THAT(body_of(huge)["message"].get<std::string>(), HasSubstr(where));
  auto alive = l.Get("/readyz");
  ASSERT_TRUE(alive);
  EXPECT_EQ(alive->status, 200);
  (*large)->stop();

  auto written = repo().store()->dirty_read("installer", Value("deep64"));
  ASSERT_TRUE(written.ok()) << written.status().to_string();
  EXPECT_TRUE(written->empty());
}

// A request with neither Content-Length nor Transfer-Encoding has an empty body (curl -X POST
// without -d sends that): it is served at once, not read until the connection ends.
TEST_F(AdminServerTest, RequestsWithoutALengthHaveAnEmptyBody) {
  const std::uint16_t port = node_->server->port();
  const std::string remove =
      raw_exchange(port,
                   "POST /members/ghost@127.0.0.1:1/remove HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                   "Connection: close\r\n\r\n");
  EXPECT_EQ(raw_status(remove), 404) << remove;
  EXPECT_EQ(raw_body(remove)["error"], "not_found") << remove;

  const std::string put =
      raw_exchange(port,
                   "PUT /tables/installer/records/bodyless HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                   "Connection: close\r\n\r\n");
  EXPECT_EQ(raw_status(put), 400) << put;
  EXPECT_THAT(raw_body(put)["message"].dump(),
              HasSubstr("record of table 'installer': the body is empty"))
      << put;
  httplib::Client c = client();
  EXPECT_EQ(app_of(c, "bodyless"), "<missing>");
}

TEST_F(AdminServerTest, OversizedBodiesAre413AndTheConnectionStaysUsable) {
  httplib::Client c = client();
  put_installer(c, "big", "original");
  const std::string big(kMaxBody + 1, ' ');
  auto res = c.Put("/tables/installer/records/big", big, "application/json");
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  EXPECT_EQ(res->status, 413);
  EXPECT_EQ(body_of(res)["error"], "payload_too_large") << res->body;
  EXPECT_EQ(app_of(c, "big"), "original");

  // Chunked, without a length: the server counts what it reads.
  auto chunked = c.Put(
      "/tables/installer/records/big",
      [&](std::size_t offset, httplib::DataSink& sink) {
        if (offset < 4 * kMaxBody) {
          const std::string chunk(1024, ' ');
          sink.write(chunk.data(), chunk.size());
        } else {
          sink.done();
        }
        return true;
      },
      "application/json");
  ASSERT_TRUE(chunked) << httplib::to_string(chunked.error());
  EXPECT_EQ(chunked->status, 413);
  EXPECT_EQ(body_of(chunked)["error"], "payload_too_large") << chunked->body;

  // A keep-alive connection: the next request after a 413 is read correctly.
  httplib::Client keep = client();
  keep.set_keep_alive(true);
  auto first = keep.Put("/tables/installer/records/big", big, "application/json");
  ASSERT_TRUE(first);
  EXPECT_EQ(first->status, 413);
  auto second = keep.Get("/tables/installer/records/big");
  ASSERT_TRUE(second);
  EXPECT_EQ(second->status, 200);
  EXPECT_EQ(body_of(second)["app"], "original");
}

TEST_F(AdminServerTest, WrongMethodIs405AndUnknownPathIs404) {
  httplib::Client c = client();
  auto post_state = c.Post("/state");
  ASSERT_TRUE(post_state);
  EXPECT_EQ(post_state->status, 405);
  EXPECT_EQ(body_of(post_state)["error"], "method_not_allowed");
  EXPECT_EQ(post_state->get_header_value("Allow"), "GET, HEAD");

  auto patch = c.Patch("/tables/installer/records/x", "{}", "application/json");
  ASSERT_TRUE(patch);
  EXPECT_EQ(patch->status, 405);
  EXPECT_EQ(patch->get_header_value("Allow"), "GET, HEAD, PUT, DELETE");

  auto get_remove = c.Get("/members/x/remove");
  ASSERT_TRUE(get_remove);
  EXPECT_EQ(get_remove->status, 405);
  EXPECT_EQ(get_remove->get_header_value("Allow"), "POST");

  for (const std::string path : {"/", "/nope", "/state/", "/tables/installer", "//state"}) {
    auto res = c.Get(path);
    ASSERT_TRUE(res) << path;
    EXPECT_EQ(res->status, 404) << path;
    EXPECT_EQ(res->get_header_value("Content-Type"), "application/json") << path;
    EXPECT_EQ(body_of(res)["error"], "not_found") << path << ": " << res->body;
  }
  // Methods httplib itself refuses (TRACE, a made-up word) get 405 too, with a JSON body.
  for (const std::string method : {"TRACE", "BREW"}) {
    httplib::Request request;
    request.method = method;
    request.path = "/state";
    auto res = c.send(request);
    ASSERT_TRUE(res) << method;
    EXPECT_EQ(res->status, 405) << method;
    EXPECT_EQ(body_of(res)["error"], "method_not_allowed") << method << ": " << res->body;
  }

  auto bad_escape = c.Get("/tables/installer/records/%zz");
  ASSERT_TRUE(bad_escape);
  EXPECT_EQ(bad_escape->status, 400);
  EXPECT_THAT(body_of(bad_escape)["message"].get<std::string>(),
              HasSubstr("invalid percent-encoding"));
}

TEST_F(AdminServerTest, KeysArePercentDecodedAndJsonKeysReachIntegerKeyedTables) {
  httplib::Client c = client();
  put_installer(c, "a%2Fb%20c", "slashed");
  auto stored = repo().store()->dirty_read("installer", Value("a/b c"));
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(stored->size(), 1u);

  TableSpec counters;
  counters.name = "counters";
  counters.attributes = {"n", "label"};
  const Status created = repo().store()->create_table(counters);
  ASSERT_TRUE(created.ok() || created.code() == StatusCode::already_exists) << created.to_string();

  auto put = c.Put("/tables/counters/records/42?key_format=json", R"({"label": "answer"})",
                   "application/json");
  ASSERT_TRUE(put);
  ASSERT_EQ(put->status, 200) << put->body;
  EXPECT_EQ(body_of(put)["key"], 42);
  EXPECT_EQ(body_of(put)["record"], (json{{"n", 42}, {"label", "answer"}}));

  auto as_string = c.Get("/tables/counters/records/42");  // the string "42": another key
  ASSERT_TRUE(as_string);
  EXPECT_EQ(as_string->status, 404);
  auto as_json = c.Get("/tables/counters/records/42?key_format=json");
  ASSERT_TRUE(as_json);
  EXPECT_EQ(as_json->status, 200);
  EXPECT_EQ(body_of(as_json), (json{{"n", 42}, {"label", "answer"}}));

  auto list_key = c.Put("/tables/counters/records/%5B1%2C2%5D?key_format=json",
                        R"({"label": "pair"})", "application/json");
  ASSERT_TRUE(list_key);
  EXPECT_EQ(list_key->status, 200) << list_key->body;
  EXPECT_EQ(body_of(list_key)["key"], (json{1, 2}));

  auto bad_format = c.Get("/tables/counters/records/42?key_format=xml");
  ASSERT_TRUE(bad_format);
  EXPECT_EQ(bad_format->status, 400);
  EXPECT_THAT(body_of(bad_format)["message"].get<std::string>(), HasSubstr("key_format"));
  auto bad_key = c.Get("/tables/counters/records/%5B1?key_format=json");
  ASSERT_TRUE(bad_key);
  EXPECT_EQ(bad_key->status, 400);
  EXPECT_THAT(body_of(bad_key)["message"].get<std::string>(),
              HasSubstr("key (key_format=json): not JSON"));
  EXPECT_EQ(app_of(c, "a%2Fb%20c"), "slashed");
}

TEST_F(AdminServerTest, BagTablesAnswerEveryRecordOfTheKey) {
  TableSpec tags;
  tags.name = "tags";
  tags.attributes = {"item", "tag"};
  tags.type = TableType::bag;
  const Status created = repo().store()->create_table(tags);
  ASSERT_TRUE(created.ok() || created.code() == StatusCode::already_exists) << created.to_string();
  ASSERT_TRUE(repo().store()->clear_table("tags").ok());
  httplib::Client c = client();
  for (const std::string tag : {"red", "blue"}) {
    auto res = c.Put("/tables/tags/records/i1", json{{"tag", tag}}.dump(), "application/json");
    ASSERT_TRUE(res);
    ASSERT_EQ(res->status, 200) << res->body;
  }
  auto get = c.Get("/tables/tags/records/i1");
  ASSERT_TRUE(get);
  EXPECT_EQ(get->status, 200);
  EXPECT_EQ(body_of(get),
            (json{{{"item", "i1"}, {"tag", "red"}}, {{"item", "i1"}, {"tag", "blue"}}}));
}

TEST_F(AdminServerTest, RemovingAMemberReportsTheRepoErrors) {
  httplib::Client c = client();
  auto unknown = c.Post("/members/ghost@127.0.0.1:1/remove");
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->status, 404) << unknown->body;
  EXPECT_EQ(body_of(unknown)["error"], "not_found");
  // A name that is not NAME@HOST:PORT is bad input, whoever the members are.
  for (const std::string name : {"", "bad", "a@", "a@127.0.0.1:99999"}) {
    auto malformed = c.Post("/members/" + name + "/remove");
    ASSERT_TRUE(malformed) << name;
    EXPECT_EQ(malformed->status, 400) << name << ": " << malformed->body;
    EXPECT_EQ(body_of(malformed)["error"], "invalid_argument") << malformed->body;
    EXPECT_THAT(body_of(malformed)["message"].get<std::string>(),
                HasSubstr("node name '" + name + "'"));
  }
  auto self = c.Post("/members/" + node_->slot.name + "/remove");
  ASSERT_TRUE(self);
  EXPECT_EQ(self->status, 400) << self->body;
  EXPECT_EQ(body_of(self)["error"], "invalid_argument");
}

// promtool's verdict on a metrics text: "" when it passes.
std::string promtool_problems(const std::string& text) {
  const std::filesystem::path file =
      std::filesystem::temp_directory_path() /
      ("mishka-admin-metrics-" + std::to_string(::getpid()) + ".txt");
  std::ofstream(file) << text;
  const std::string command = "promtool check metrics < " + file.string() + " 2>&1";
  std::string output;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return "cannot run promtool";
  char buf[512];
  while (std::fgets(buf, sizeof buf, pipe) != nullptr) output += buf;
  const int status = ::pclose(pipe);
  std::filesystem::remove(file);
  return status == 0 ? "" : "promtool failed (" + std::to_string(status) + "): " + output;
}

bool promtool_present() {
  return std::system("command -v promtool > /dev/null 2>&1") == 0;
}

TEST_F(AdminServerTest, MetricsCountTheBootAndPassPromtool) {
  httplib::Client c = client();
  ASSERT_EQ(c.Get("/healthz")->status, 200);  // the health gauges come from a check
  auto res = c.Get("/metrics");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->get_header_value("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
  const std::string& text = res->body;
  for (const std::string line : {
           "mishka_repo_running 1\n",
           "mishka_repo_status{status=\"synchronized\"} 1\n",
           "mishka_repo_status{status=\"pending\"} 0\n",
           "mishka_repo_role{role=\"voter\"} 1\n",
           "mishka_repo_members 1\n",
           "mishka_repo_members_up 1\n",
           "mishka_repo_healthy 1\n",
           "mishka_repo_member_healthy 1\n",
           "mishka_repo_etcd_restarts 0\n",
           "mishka_repo_inits_total{result=\"ok\"} 1\n",
           "mishka_repo_init_duration_seconds_count{result=\"ok\"} 1\n",
           "mishka_repo_table_events_total{table=\"installer\",status=\"created\"} 1\n",
           "mishka_repo_synchronized_total 1\n",
           "mishka_telemetry_events_total{event=\"mishka_installer.mnesia.init.start\"} 1\n",
           "mishka_admin_requests_total{route=\"healthz\",code=\"200\"}",
       }) {
    EXPECT_THAT(text, HasSubstr(line));
  }
  if (!promtool_present()) GTEST_SKIP() << "promtool is not installed";
  EXPECT_EQ(promtool_problems(text), "") << text;
}

TEST_F(AdminServerTest, ABoundPortIsRefusedWithItsAddress) {
  AdminOptions options;
  options.port = node_->server->port();
  telemetry::Telemetry telemetry;
  auto second = AdminServer::start(
      options, [] { return std::shared_ptr<MnesiaRepo>(); }, telemetry);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::io_error);
  EXPECT_THAT(second.status().message(),
              HasSubstr("127.0.0.1:" + std::to_string(node_->server->port())));
  // The first server still answers.
  EXPECT_EQ(client().Get("/readyz")->status, 200);
}

// Freezes processes (SIGSTOP) until destroyed (SIGCONT), so that they resume even when an
// assertion fails.
class Frozen {
 public:
  explicit Frozen(std::vector<pid_t> pids) : pids_(std::move(pids)) {
    for (pid_t pid : pids_) ::kill(pid, SIGSTOP);
  }
  ~Frozen() { release(); }
  void release() {
    for (pid_t pid : pids_) ::kill(pid, SIGCONT);
    pids_.clear();
  }

 private:
  std::vector<pid_t> pids_;
};

struct TimedReply {
  httplib::Result result;
  milliseconds took{0};
};

TimedReply timed_put(std::uint16_t port, const std::string& key) {
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(seconds(30));
  const auto start = std::chrono::steady_clock::now();
  httplib::Result result = c.Put("/tables/installer/records/" + key,
                                 valid_installer_body("x").dump(), "application/json");
  return {std::move(result),
          std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - start)};
}

// Last of the suite: it freezes the node's etcd member for a few seconds, then waits until the
// node writes again. Two PUTs meet the frozen member on a server of 2 threads (1 write at a
// time): one waits for the quorum, the other is refused as busy at once, and /readyz is
// answered while the first still waits.
TEST_F(AdminServerTest, AWriteWithoutQuorumAnswers503NoQuorumWithinWaitTimeout) {
  httplib::Client c = client();
  const std::vector<pid_t> etcd = processes_mentioning(node_->slot.dir.path().string());
  ASSERT_FALSE(etcd.empty()) << "no etcd process found for " << node_->slot.dir.path();
  const milliseconds wait_timeout = repo().options().wait_timeout;

  const std::uint16_t port = node_->server->port();
  Frozen frozen(etcd);
  std::future<TimedReply> first =
      std::async(std::launch::async, [port] { return timed_put(port, "frozen"); });
  std::future<TimedReply> second =
      std::async(std::launch::async, [port] { return timed_put(port, "frozen2"); });
  // The refused one comes back first.
  bool one_back = false;
  for (int i = 0; i < 200 && !one_back; ++i) {
    one_back = first.wait_for(milliseconds(50)) == std::future_status::ready ||
               second.wait_for(milliseconds(0)) == std::future_status::ready;
  }
  auto ready = c.Get("/readyz");
  const bool a_write_still_waits = first.wait_for(milliseconds(0)) != std::future_status::ready ||
                                   second.wait_for(milliseconds(0)) != std::future_status::ready;
  TimedReply a = first.get();
  TimedReply b = second.get();
  frozen.release();
  EXPECT_TRUE(one_back) << "neither write was refused at once";
  ASSERT_TRUE(ready) << httplib::to_string(ready.error());
  EXPECT_TRUE(a_write_still_waits) << "/readyz was answered only once the writes had ended";
  EXPECT_THAT(ready->body, HasSubstr("\"status\""));

  ASSERT_TRUE(a.result) << httplib::to_string(a.result.error());
  ASSERT_TRUE(b.result) << httplib::to_string(b.result.error());
  if (body_of(a.result)["error"] == "busy") std::swap(a, b);
  const httplib::Result& res = a.result;
  EXPECT_EQ(b.result->status, 503) << b.result->body;
  EXPECT_EQ(body_of(b.result)["error"], "busy") << b.result->body;
  EXPECT_THAT(body_of(b.result)["message"].get<std::string>(),
              HasSubstr("as many writes as it allows at once (1;"));
  EXPECT_EQ(res->status, 503) << res->body;
  EXPECT_EQ(body_of(res)["error"], "no_quorum") << res->body;
  EXPECT_EQ(body_of(res)["outcome"], "unknown") << res->body;
  // The reply is budgeted to leave within wait_timeout (docs/admin.md); the slack is for a
  // loaded machine, not part of the contract.
  EXPECT_LT(a.took, wait_timeout + seconds(2));
  // A failed write is logged.
  EXPECT_TRUE(node_->log.has("-> 503 {\"error\":\"no_quorum\"")) << node_->log.dump();

  EXPECT_TRUE(eventually(
      [&] {
        auto put = c.Put("/tables/installer/records/thawed", valid_installer_body("y").dump(),
                         "application/json");
        return put && put->status == 200;
      },
      seconds(20)))
      << node_->log.dump();
}

// A joiner whose seed is not running boots pending (no etcd of its own, no tables).
TEST(AdminServerPending, APendingNodeIsNotReadyAndHasNoRecords) {
  Watchdog watchdog(seconds(60));
  RepoSlot slot = make_slot(1);
  RepoSlot absent_seed = make_slot(2);
  Lines log;
  telemetry::Telemetry telemetry;
  RepoOptions repo_options = slot.options({absent_seed.name}, log.sink());
  repo_options.telemetry = &telemetry;
  repo_options.retry_min = seconds(30);  // no retry while the test runs
  repo_options.retry_max = seconds(30);
  auto started = MnesiaRepo::start(repo_options);
  ASSERT_TRUE(started.ok()) << started.status().to_string() << "\n" << log.dump();
  std::shared_ptr<MnesiaRepo> repo(std::move(started).value());
  ASSERT_EQ(repo->state().status, RepoStatus::pending);

  AdminOptions options;
  options.port = 0;
  Lines admin_log;
  options.log = admin_log.sink();
  auto server = AdminServer::start(
      options, [repo] { return repo; }, telemetry);
  ASSERT_TRUE(server.ok()) << server.status().to_string();
  httplib::Client c("127.0.0.1", (*server)->port());

  auto ready = c.Get("/readyz");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 503);
  EXPECT_EQ(json::parse(ready->body), (json{{"status", "pending"}}));
  auto health = c.Get("/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 503);
  EXPECT_EQ(json::parse(health->body)["missing"], (json{"installer", "event"}));
  auto state = c.Get("/state");
  ASSERT_TRUE(state);
  EXPECT_EQ(state->status, 200);
  EXPECT_EQ(json::parse(state->body)["status"], "pending");
  auto record = c.Get("/tables/installer/records/k");
  ASSERT_TRUE(record);
  EXPECT_EQ(record->status, 503);
  EXPECT_EQ(json::parse(record->body)["error"], "engine_unavailable");
  EXPECT_THAT(json::parse(record->body)["message"].get<std::string>(),
              HasSubstr("node " + slot.name + " is pending: no tables yet"));
  auto metrics = c.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_THAT(metrics->body, HasSubstr("mishka_repo_status{status=\"pending\"} 1\n"));
  EXPECT_THAT(metrics->body, HasSubstr("mishka_repo_healthy 0\n"));
  // A pending node's 503s are its state, not failures: probes do not fill the log.
  EXPECT_FALSE(admin_log.has("admin: ")) << admin_log.dump();

  (*server)->stop();
  repo->stop();
}

TEST(AdminServerFailures, AnExceptionIsA500WithAMessageAndALogLine) {
  Watchdog watchdog(seconds(30));
  telemetry::Telemetry telemetry;
  Lines log;
  AdminOptions options;
  options.port = 0;
  options.log = log.sink();
  auto server = AdminServer::start(
      options,
      []() -> std::shared_ptr<MnesiaRepo> { throw std::runtime_error("provider exploded"); },
      telemetry);
  ASSERT_TRUE(server.ok()) << server.status().to_string();
  httplib::Client c("127.0.0.1", (*server)->port());
  auto res = c.Get("/state");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 500);
  EXPECT_EQ(json::parse(res->body)["error"], "internal");
  EXPECT_THAT(json::parse(res->body)["message"].get<std::string>(), HasSubstr("provider exploded"));
  EXPECT_TRUE(log.has("provider exploded")) << log.dump();
  // The server goes on serving.
  EXPECT_EQ(c.Get("/nope")->status, 404);
}

// Without a repo (boot not ended, or a restart under way): no etcd needed.
TEST(AdminServerWithoutRepo, AnswersStartingReadyz503AndMetrics) {
  Watchdog watchdog(seconds(30));
  telemetry::Telemetry telemetry;
  AdminOptions options;
  options.port = 0;
  Lines log;
  options.log = log.sink();
  auto server = AdminServer::start(
      options, [] { return std::shared_ptr<MnesiaRepo>(); }, telemetry);
  ASSERT_TRUE(server.ok()) << server.status().to_string();
  httplib::Client c("127.0.0.1", (*server)->port());

  for (const std::string path : {"/state", "/schemas", "/healthz", "/tables/t/records/k"}) {
    auto res = c.Get(path);
    ASSERT_TRUE(res) << path;
    EXPECT_EQ(res->status, 503) << path;
    EXPECT_EQ(json::parse(res->body)["error"], "starting") << path;
  }
  auto put = c.Put("/tables/t/records/k", "{}", "application/json");
  ASSERT_TRUE(put);
  EXPECT_EQ(put->status, 503);
  auto ready = c.Get("/readyz");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 503);
  EXPECT_EQ(json::parse(ready->body), (json{{"status", "starting"}}));
  auto metrics = c.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_EQ(metrics->status, 200);
  EXPECT_THAT(metrics->body, HasSubstr("mishka_repo_running 0\n"));
  EXPECT_THAT(metrics->body, HasSubstr("mishka_repo_status{status=\"starting\"} 1\n"));
  EXPECT_THAT(metrics->body, HasSubstr("mishka_repo_healthy 0\n"));
  if (promtool_present()) {
    EXPECT_EQ(promtool_problems(metrics->body), "") << metrics->body;
  }
  // Routing errors do not depend on the repo.
  EXPECT_EQ(c.Get("/nope")->status, 404);
  EXPECT_EQ(c.Delete("/state")->status, 405);
  // "starting" is the node's state, not a failure: not logged, however often probed.
  EXPECT_TRUE(log.has("admin HTTP: listening")) << log.dump();
  EXPECT_FALSE(log.has("admin: ")) << log.dump();

  (*server)->stop();
  (*server)->stop();  // idempotent
  EXPECT_FALSE(c.Get("/readyz"));
}

TEST(AdminServerLifecycle, StopsRightAfterStart) {
  Watchdog watchdog(seconds(30));  // a stop that missed the accept loop would hang here
  telemetry::Telemetry telemetry;
  AdminOptions options;
  options.port = 0;
  for (int i = 0; i < 20; ++i) {
    auto server = AdminServer::start(
        options, [] { return std::shared_ptr<MnesiaRepo>(); }, telemetry);
    ASSERT_TRUE(server.ok()) << server.status().to_string();
    (*server)->stop();
  }
}

TEST(AdminServerOptions, BadOptionsAreRefusedNamingTheField) {
  telemetry::Telemetry telemetry;
  auto provider = [] { return std::shared_ptr<MnesiaRepo>(); };
  AdminOptions threads;
  threads.threads = 0;
  EXPECT_THAT(AdminServer::start(threads, provider, telemetry).status().message(),
              HasSubstr("'threads'"));
  AdminOptions body;
  body.max_body_bytes = 0;
  EXPECT_THAT(AdminServer::start(body, provider, telemetry).status().message(),
              HasSubstr("'max_body_bytes'"));
  AdminOptions host;
  host.host = "";
  EXPECT_THAT(AdminServer::start(host, provider, telemetry).status().message(),
              HasSubstr("'host'"));
  AdminOptions ok;
  ok.port = 0;
  EXPECT_EQ(AdminServer::start(ok, nullptr, telemetry).status().code(),
            StatusCode::invalid_argument);
  AdminOptions elsewhere;
  elsewhere.host = "192.0.2.1";  // TEST-NET-1: not an address of this host
  elsewhere.port = 0;
  auto not_here = AdminServer::start(elsewhere, provider, telemetry);
  EXPECT_EQ(not_here.status().code(), StatusCode::io_error);
  EXPECT_THAT(not_here.status().message(), HasSubstr("192.0.2.1:0"));
}

}  // namespace
}  // namespace mishka::test
