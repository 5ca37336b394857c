// The Prometheus registry: exact rendering, escaping, name rules, sharing, the event counter,
// and promtool's verdict on what render() produces.
#include "telemetry/prometheus.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "support/temp_dir.h"

namespace mishka::telemetry {
namespace {

using ::testing::HasSubstr;

TEST(PrometheusTest, RendersTheTextFormatExactly) {
  PrometheusRegistry registry;
  auto requests = registry.counter("mishka_requests_total", "Requests served.", {"table", "op"});
  auto members = registry.gauge("mishka_members", "Members of the cluster.");
  auto latency =
      registry.histogram("mishka_commit_seconds", "Commit latency.", {"table"}, {0.001, 0.01, 0.1});
  ASSERT_TRUE(requests.ok() && members.ok() && latency.ok());

  ASSERT_TRUE((*requests)->increment({"users", "write"}).ok());
  ASSERT_TRUE((*requests)->add({"users", "write"}, 2).ok());
  ASSERT_TRUE((*requests)->add({"events", "read"}, 0.5).ok());
  ASSERT_TRUE((*members)->set({}, 3).ok());
  ASSERT_TRUE((*members)->add({}, -1).ok());
  for (double v : {0.0005, 0.001, 0.05, 0.05, 7.0})
    ASSERT_TRUE((*latency)->observe({"users"}, v).ok());

  EXPECT_EQ(registry.render(),
            "# HELP mishka_commit_seconds Commit latency.\n"
            "# TYPE mishka_commit_seconds histogram\n"
            "mishka_commit_seconds_bucket{table=\"users\",le=\"0.001\"} 2\n"
            "mishka_commit_seconds_bucket{table=\"users\",le=\"0.01\"} 2\n"
            "mishka_commit_seconds_bucket{table=\"users\",le=\"0.1\"} 4\n"
            "mishka_commit_seconds_bucket{table=\"users\",le=\"+Inf\"} 5\n"
            "mishka_commit_seconds_sum{table=\"users\"} 7.1015\n"
            "mishka_commit_seconds_count{table=\"users\"} 5\n"
            "# HELP mishka_members Members of the cluster.\n"
            "# TYPE mishka_members gauge\n"
            "mishka_members 2\n"
            "# HELP mishka_requests_total Requests served.\n"
            "# TYPE mishka_requests_total counter\n"
            "mishka_requests_total{table=\"events\",op=\"read\"} 0.5\n"
            "mishka_requests_total{table=\"users\",op=\"write\"} 3\n");
}

TEST(PrometheusTest, EscapesLabelValuesAndHelp) {
  PrometheusRegistry registry;
  auto c = registry.counter("odd_total", "Back\\slash and\nnewline \"quoted\".", {"v"});
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE((*c)->increment({"a\\b\"c\nd é"}).ok());
  EXPECT_EQ(registry.render(),
            "# HELP odd_total Back\\\\slash and\\nnewline \"quoted\".\n"
            "# TYPE odd_total counter\n"
            "odd_total{v=\"a\\\\b\\\"c\\nd é\"} 1\n");
}

TEST(PrometheusTest, AMetricWithoutSeriesRendersItsHeaderOnly) {
  PrometheusRegistry registry;
  ASSERT_TRUE(registry.histogram("empty_seconds", "Nothing yet.", {}, {}).ok());
  EXPECT_EQ(registry.render(),
            "# HELP empty_seconds Nothing yet.\n# TYPE empty_seconds histogram\n");
}

TEST(PrometheusTest, RefusesNamesThatBreakTheRules) {
  PrometheusRegistry registry;
  auto refused = [&](Status s) { return s.code() == StatusCode::invalid_argument; };
  EXPECT_TRUE(refused(registry.counter("requests", "h").status()));         // no _total
  EXPECT_TRUE(refused(registry.gauge("open_total", "h").status()));         // _total
  EXPECT_TRUE(refused(registry.gauge("queue_count", "h").status()));        // histogram suffix
  EXPECT_TRUE(refused(registry.gauge("size_sum", "h").status()));           // histogram suffix
  EXPECT_TRUE(refused(registry.gauge("x_bucket", "h").status()));           // histogram suffix
  EXPECT_TRUE(refused(registry.gauge("camelCase", "h").status()));          // not snake_case
  EXPECT_TRUE(refused(registry.gauge("9lives", "h").status()));             // leading digit
  EXPECT_TRUE(refused(registry.gauge("a:b", "h").status()));                // colon
  EXPECT_TRUE(refused(registry.gauge("", "h").status()));                   // empty
  EXPECT_TRUE(refused(registry.gauge("no_help", "").status()));             // no help
  EXPECT_TRUE(refused(registry.gauge("bad_help", "\xff").status()));        // not UTF-8
  EXPECT_TRUE(refused(registry.gauge("g", "h", {"le"}).status()));          // reserved label
  EXPECT_TRUE(refused(registry.gauge("g", "h", {"quantile"}).status()));    // reserved label
  EXPECT_TRUE(refused(registry.gauge("g", "h", {"__name"}).status()));      // reserved label
  EXPECT_TRUE(refused(registry.gauge("g", "h", {"Node"}).status()));        // not snake_case
  EXPECT_TRUE(refused(registry.gauge("g", "h", {"a", "a"}).status()));      // twice
  EXPECT_TRUE(refused(registry.histogram("h", "h", {}, {1, 1}).status()));  // not increasing
  EXPECT_TRUE(refused(registry.histogram("h", "h", {}, {1, HUGE_VAL}).status()));  // infinite
  EXPECT_EQ(registry.render(), "");
}

TEST(PrometheusTest, RegisteringTheSameMetricAgainSharesIt) {
  PrometheusRegistry registry;
  auto a = registry.counter("hits_total", "Hits.", {"node"});
  auto b = registry.counter("hits_total", "Hits.", {"node"});
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->get(), b->get());
  EXPECT_EQ(registry.counter("hits_total", "Other help.", {"node"}).status().code(),
            StatusCode::already_exists);
  EXPECT_EQ(registry.counter("hits_total", "Hits.", {}).status().code(),
            StatusCode::already_exists);
  ASSERT_TRUE(registry.gauge("level", "Level.").ok());
  EXPECT_EQ(registry.histogram("level", "Level.", {}, {}).status().code(),
            StatusCode::already_exists);
  ASSERT_TRUE(registry.histogram("wait_seconds", "Wait.", {}, {1, 2}).ok());
  EXPECT_TRUE(registry.histogram("wait_seconds", "Wait.", {}, {1, 2}).ok());
  EXPECT_EQ(registry.histogram("wait_seconds", "Wait.", {}, {1, 3}).status().code(),
            StatusCode::already_exists);
}

TEST(PrometheusTest, RefusesBadLabelValuesAndNumbers) {
  PrometheusRegistry registry;
  auto c = registry.counter("c_total", "C.", {"a"});
  auto g = registry.gauge("g", "G.", {"a"});
  auto h = registry.histogram("h_seconds", "H.", {"a"}, PrometheusRegistry::default_buckets());
  ASSERT_TRUE(c.ok() && g.ok() && h.ok());
  EXPECT_EQ((*c)->increment({}).code(), StatusCode::invalid_argument);
  EXPECT_EQ((*c)->increment({"x", "y"}).code(), StatusCode::invalid_argument);
  EXPECT_EQ((*c)->increment({"\xc0\x80"}).code(), StatusCode::invalid_argument);  // overlong
  EXPECT_EQ((*c)->add({"x"}, -1).code(), StatusCode::invalid_argument);
  EXPECT_EQ((*c)->add({"x"}, HUGE_VAL).code(), StatusCode::invalid_argument);
  EXPECT_EQ((*g)->set({"x"}, std::nan("")).code(), StatusCode::invalid_argument);
  EXPECT_EQ((*h)->observe({"x"}, std::nan("")).code(), StatusCode::invalid_argument);
  // Nothing was recorded, so no series appear.
  EXPECT_EQ(registry.render().find("{"), std::string::npos);
  // Gauges may be infinite.
  ASSERT_TRUE((*g)->set({"x"}, -HUGE_VAL).ok());
  EXPECT_THAT(registry.render(), HasSubstr("g{a=\"x\"} -Inf\n"));
}

TEST(PrometheusEventCounterTest, CountsEveryEventByNameUntilDetached) {
  Telemetry telemetry;
  PrometheusRegistry registry;
  auto counter = PrometheusEventCounter::attach(telemetry, registry);
  ASSERT_TRUE(counter.ok()) << counter.status().to_string();
  EXPECT_EQ(PrometheusEventCounter::attach(telemetry, registry).status().code(),
            StatusCode::already_exists);

  const EventName start = {"mishka_installer", "mnesia", "init", "start"};
  const EventName table = {"mishka_installer", "mnesia", "table"};
  ASSERT_TRUE(telemetry.execute(start, {}, {}).ok());
  ASSERT_TRUE(telemetry.execute(table, {}, {}).ok());
  ASSERT_TRUE(telemetry.execute(table, {}, {}).ok());
  const std::string expected =
      "# HELP mishka_telemetry_events_total Telemetry events emitted, by event name.\n"
      "# TYPE mishka_telemetry_events_total counter\n"
      "mishka_telemetry_events_total{event=\"mishka_installer.mnesia.init.start\"} 1\n"
      "mishka_telemetry_events_total{event=\"mishka_installer.mnesia.table\"} 2\n";
  EXPECT_EQ(registry.render(), expected);

  ASSERT_TRUE((*counter)->detach().ok());
  EXPECT_EQ((*counter)->detach().code(), StatusCode::not_found);
  ASSERT_TRUE(telemetry.execute(table, {}, {}).ok());
  EXPECT_EQ(registry.render(), expected);
  EXPECT_TRUE(telemetry.list_handlers().empty());
}

TEST(PrometheusEventCounterTest, DestroyingItDetaches) {
  Telemetry telemetry;
  PrometheusRegistry registry;
  {
    auto counter = PrometheusEventCounter::attach(telemetry, registry, "counter");
    ASSERT_TRUE(counter.ok());
    EXPECT_EQ(telemetry.list_handlers().size(), 1u);
  }
  EXPECT_TRUE(telemetry.list_handlers().empty());
}

// `promtool check metrics` parses the text and lints it (names, suffixes, help); it exits
// non-zero on any problem.
TEST(PrometheusPromtoolTest, PromtoolAcceptsTheRenderedText) {
  const char* promtool = "/usr/bin/promtool";
  if (!std::filesystem::exists(promtool)) GTEST_SKIP() << "no " << promtool;

  Telemetry telemetry;
  PrometheusRegistry registry;
  auto events = PrometheusEventCounter::attach(telemetry, registry);
  ASSERT_TRUE(events.ok());
  ASSERT_TRUE(telemetry.execute({"mishka_installer", "mnesia", "init", "start"}, {}, {}).ok());
  ASSERT_TRUE(telemetry.execute({"odd \"name\"", "with\\slash"}, {}, {}).ok());
  auto c = registry.counter("mishka_commits_total", "Commits, with \"quotes\" and \\.", {"table"});
  auto g = registry.gauge("mishka_replica_revision", "Revision applied.\nSecond line.");
  auto h = registry.histogram("mishka_commit_duration_seconds", "Commit latency.", {"table"},
                              PrometheusRegistry::default_buckets());
  ASSERT_TRUE(c.ok() && g.ok() && h.ok());
  ASSERT_TRUE((*c)->increment({"users\nline é"}).ok());
  ASSERT_TRUE((*g)->set({}, 123456789).ok());
  ASSERT_TRUE((*h)->observe({"users"}, 0.02).ok());
  ASSERT_TRUE((*h)->observe({"users"}, 30).ok());
  ASSERT_TRUE((*h)->observe({"events"}, 0).ok());
  ASSERT_TRUE(registry.histogram("mishka_idle_seconds", "No series yet.", {}, {1}).ok());

  auto dir = mishka::test::TempDir::Create("telemetry-promtool-");
  ASSERT_TRUE(dir.ok());
  const std::filesystem::path file = dir->path() / "metrics.txt";
  const std::string text = registry.render();
  std::ofstream(file) << text;
  const std::string command =
      std::string(promtool) + " check metrics < '" + file.string() + "' 2>&1";
  FILE* pipe = ::popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string output;
  char buf[256];
  while (std::fgets(buf, sizeof buf, pipe) != nullptr) output += buf;
  const int status = ::pclose(pipe);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "promtool says:\n" << output << "\non:\n" << text;
}

}  // namespace
}  // namespace mishka::telemetry
