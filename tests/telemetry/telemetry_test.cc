// Telemetry: attach, detach, execute, failing handlers, re-entrancy and concurrency.
#include "mishka/telemetry.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <limits>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace mishka::telemetry {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

const EventName kInitStart = {"mishka_installer", "mnesia", "init", "start"};
const EventName kTable = {"mishka_installer", "mnesia", "table"};

// Collects log lines; thread-safe, as a LogSink must be.
struct Log {
  std::mutex mu;
  std::vector<std::string> lines;

  LogSink sink() {
    return [this](LogLevel, std::string_view line) {
      std::lock_guard lock(mu);
      lines.emplace_back(line);
    };
  }
};

// A handler that appends `name` to `calls` (single-threaded tests only).
Handler record(std::vector<std::string>& calls, std::string name) {
  return [&calls, name](const EventName&, const Measurements&, const Metadata&) {
    calls.push_back(name);
  };
}

std::vector<std::string> ids(const std::vector<HandlerInfo>& handlers) {
  std::vector<std::string> out;
  for (const HandlerInfo& h : handlers) out.push_back(h.id);
  return out;
}

TEST(TelemetryTest, AttachingAnIdTwiceIsAlreadyExists) {
  Telemetry telemetry;
  std::vector<std::string> calls;
  ASSERT_TRUE(telemetry.attach("h", {kInitStart}, record(calls, "h")).ok());
  Status again = telemetry.attach("h", {kTable}, record(calls, "h2"));
  EXPECT_EQ(again.code(), StatusCode::already_exists);
  EXPECT_THAT(again.message(), HasSubstr("'h'"));
  EXPECT_EQ(telemetry.attach_all("h", record(calls, "h3")).code(), StatusCode::already_exists);
  // The first registration is untouched.
  ASSERT_TRUE(telemetry.execute(kInitStart, {}, {}).ok());
  ASSERT_TRUE(telemetry.execute(kTable, {}, {}).ok());
  EXPECT_THAT(calls, ElementsAre("h"));
}

TEST(TelemetryTest, DetachingAnUnknownIdIsNotFound) {
  Telemetry telemetry;
  EXPECT_EQ(telemetry.detach("nobody").code(), StatusCode::not_found);
  std::vector<std::string> calls;
  ASSERT_TRUE(telemetry.attach("h", {kInitStart}, record(calls, "h")).ok());
  EXPECT_TRUE(telemetry.detach("h").ok());
  EXPECT_EQ(telemetry.detach("h").code(), StatusCode::not_found);
  // The id is free again.
  EXPECT_TRUE(telemetry.attach("h", {kInitStart}, record(calls, "h")).ok());
}

TEST(TelemetryTest, AttachRefusesMalformedArguments) {
  Telemetry telemetry;
  std::vector<std::string> calls;
  EXPECT_EQ(telemetry.attach("", {kTable}, record(calls, "x")).code(),
            StatusCode::invalid_argument);
  EXPECT_EQ(telemetry.attach("h", {}, record(calls, "x")).code(), StatusCode::invalid_argument);
  EXPECT_EQ(telemetry.attach("h", {{}}, record(calls, "x")).code(), StatusCode::invalid_argument);
  EXPECT_EQ(telemetry.attach("h", {{"a", ""}}, record(calls, "x")).code(),
            StatusCode::invalid_argument);
  EXPECT_EQ(telemetry.attach("h", {kTable}, Handler()).code(), StatusCode::invalid_argument);
  EXPECT_THAT(telemetry.list_handlers(), IsEmpty());
}

TEST(TelemetryTest, HandlersRunInAttachOrderOnTheirEventsOnly) {
  Telemetry telemetry;
  std::vector<std::string> calls;
  ASSERT_TRUE(telemetry.attach("first", {kInitStart}, record(calls, "first")).ok());
  ASSERT_TRUE(telemetry.attach_all("every", record(calls, "every")).ok());
  ASSERT_TRUE(telemetry.attach("third", {kTable, kInitStart}, record(calls, "third")).ok());
  ASSERT_TRUE(telemetry.attach("table", {kTable}, record(calls, "table")).ok());

  ASSERT_TRUE(telemetry.execute(kInitStart, {}, {}).ok());
  EXPECT_THAT(calls, ElementsAre("first", "every", "third"));
  calls.clear();
  ASSERT_TRUE(telemetry.execute(kTable, {}, {}).ok());
  EXPECT_THAT(calls, ElementsAre("every", "third", "table"));
  calls.clear();
  // Names match exactly: a prefix of an attached name is another event.
  ASSERT_TRUE(telemetry.execute({"mishka_installer", "mnesia"}, {}, {}).ok());
  EXPECT_THAT(calls, ElementsAre("every"));
}

TEST(TelemetryTest, HandlersReceiveTheEventAsEmitted) {
  Telemetry telemetry;
  EventName seen_event;
  Measurements seen_measurements;
  Metadata seen_metadata;
  ASSERT_TRUE(telemetry
                  .attach("h", {kTable},
                          [&](const EventName& e, const Measurements& m, const Metadata& md) {
                            seen_event = e;
                            seen_measurements = m;
                            seen_metadata = md;
                          })
                  .ok());
  // An int64 nanosecond time stays exact (a double would round it).
  const std::int64_t big = std::numeric_limits<std::int64_t>::max() - 1;
  const Measurements measurements = {{"system_time", big}, {"ratio", 0.5}};
  const Metadata metadata = {{"table", "installer"},
                             {"status", "created"},
                             {"extra", List{1, Value::bytes("x"), Map{{"k", Value()}}}}};
  ASSERT_TRUE(telemetry.execute(kTable, measurements, metadata).ok());
  EXPECT_EQ(seen_event, kTable);
  EXPECT_EQ(seen_measurements, measurements);
  EXPECT_EQ(*seen_measurements.at("system_time").get_int(), big);
  EXPECT_EQ(seen_metadata, metadata);
}

TEST(TelemetryTest, ExecuteRefusesMalformedEventsAndNonNumericMeasurements) {
  Telemetry telemetry;
  std::vector<std::string> calls;
  ASSERT_TRUE(telemetry.attach_all("h", record(calls, "h")).ok());
  Status text = telemetry.execute(kTable, {{"count", "three"}}, {});
  EXPECT_EQ(text.code(), StatusCode::invalid_argument);
  EXPECT_THAT(text.message(), HasSubstr("'count'"));
  EXPECT_THAT(text.message(), HasSubstr("mishka_installer.mnesia.table"));
  EXPECT_EQ(telemetry.execute(kTable, {{"flag", true}}, {}).code(), StatusCode::invalid_argument);
  EXPECT_EQ(telemetry.execute({}, {}, {}).code(), StatusCode::invalid_argument);
  EXPECT_EQ(telemetry.execute({"a", ""}, {}, {}).code(), StatusCode::invalid_argument);
  EXPECT_THAT(calls, IsEmpty());
}

TEST(TelemetryTest, ADetachedHandlerIsNotCalled) {
  Telemetry telemetry;
  std::vector<std::string> calls;
  ASSERT_TRUE(telemetry.attach("a", {kTable}, record(calls, "a")).ok());
  ASSERT_TRUE(telemetry.attach_all("b", record(calls, "b")).ok());
  ASSERT_TRUE(telemetry.detach("a").ok());
  ASSERT_TRUE(telemetry.execute(kTable, {}, {}).ok());
  ASSERT_TRUE(telemetry.detach("b").ok());
  ASSERT_TRUE(telemetry.execute(kTable, {}, {}).ok());
  EXPECT_THAT(calls, ElementsAre("b"));
}

TEST(TelemetryTest, AThrowingHandlerIsDetachedAndLoggedWithoutBreakingTheCaller) {
  Log log;
  TelemetryOptions options;
  options.log = log.sink();
  Telemetry telemetry(options);
  std::vector<std::string> calls;
  ASSERT_TRUE(telemetry
                  .attach("bad", {kTable},
                          [&](const EventName&, const Measurements&, const Metadata&) {
                            calls.push_back("bad");
                            throw std::runtime_error("boom");
                          })
                  .ok());
  ASSERT_TRUE(telemetry
                  .attach_all("weird",
                              [&](const EventName&, const Measurements&, const Metadata&) {
                                calls.push_back("weird");
                                throw 42;
                              })
                  .ok());
  ASSERT_TRUE(telemetry.attach("good", {kTable}, record(calls, "good")).ok());

  EXPECT_TRUE(telemetry.execute(kTable, {}, {}).ok());
  EXPECT_TRUE(telemetry.execute(kTable, {}, {}).ok());
  EXPECT_THAT(calls, ElementsAre("bad", "weird", "good", "good"));
  EXPECT_THAT(ids(telemetry.list_handlers()), ElementsAre("good"));
  ASSERT_EQ(log.lines.size(), 2u);
  EXPECT_THAT(log.lines[0], HasSubstr("'bad'"));
  EXPECT_THAT(log.lines[0], HasSubstr("mishka_installer.mnesia.table"));
  EXPECT_THAT(log.lines[0], HasSubstr("boom"));
  EXPECT_THAT(log.lines[1], HasSubstr("'weird'"));
  EXPECT_THAT(log.lines[1], HasSubstr("non-standard exception"));
}

TEST(TelemetryTest, AThrowingHandlerWithoutALogSinkIsStillDetached) {
  Telemetry telemetry;
  ASSERT_TRUE(telemetry
                  .attach_all("bad", [](const EventName&, const Measurements&,
                                        const Metadata&) { throw std::logic_error("no"); })
                  .ok());
  EXPECT_TRUE(telemetry.execute(kTable, {}, {}).ok());
  EXPECT_THAT(telemetry.list_handlers(), IsEmpty());
}

TEST(TelemetryTest, HandlersMayAttachDetachAndExecuteFromInsideAHandler) {
  Telemetry telemetry;
  std::vector<std::string> calls;
  const EventName nested = {"nested"};
  ASSERT_TRUE(telemetry
                  .attach("once", {kTable},
                          [&](const EventName&, const Measurements&, const Metadata&) {
                            calls.push_back("once");
                            EXPECT_TRUE(telemetry.detach("once").ok());
                            EXPECT_TRUE(
                                telemetry.attach("late", {kTable}, record(calls, "late")).ok());
                            EXPECT_TRUE(telemetry.execute(nested, {}, {}).ok());
                          })
                  .ok());
  ASSERT_TRUE(telemetry.attach("nested", {nested}, record(calls, "nested")).ok());
  ASSERT_TRUE(telemetry.attach("later", {kTable}, record(calls, "later")).ok());

  ASSERT_TRUE(telemetry.execute(kTable, {}, {}).ok());
  // "late" was attached after this execute started: the next one calls it.
  EXPECT_THAT(calls, ElementsAre("once", "nested", "later"));
  calls.clear();
  ASSERT_TRUE(telemetry.execute(kTable, {}, {}).ok());
  EXPECT_THAT(calls, ElementsAre("later", "late"));
}

TEST(TelemetryTest, AHandlerDetachedByAnEarlierHandlerIsSkipped) {
  Telemetry telemetry;
  std::vector<std::string> calls;
  ASSERT_TRUE(telemetry
                  .attach("killer", {kTable},
                          [&](const EventName&, const Measurements&, const Metadata&) {
                            calls.push_back("killer");
                            EXPECT_TRUE(telemetry.detach("victim").ok());
                          })
                  .ok());
  ASSERT_TRUE(telemetry.attach("victim", {kTable}, record(calls, "victim")).ok());
  ASSERT_TRUE(telemetry.execute(kTable, {}, {}).ok());
  EXPECT_THAT(calls, ElementsAre("killer"));
}

TEST(TelemetryTest, ListHandlersFiltersByPrefixInAttachOrder) {
  Telemetry telemetry;
  std::vector<std::string> calls;
  ASSERT_TRUE(telemetry.attach("z", {kTable}, record(calls, "z")).ok());
  ASSERT_TRUE(telemetry.attach("a", {{"other", "event"}}, record(calls, "a")).ok());
  ASSERT_TRUE(telemetry.attach_all("m", record(calls, "m")).ok());
  ASSERT_TRUE(telemetry.attach("b", {kInitStart, kInitStart}, record(calls, "b")).ok());

  EXPECT_THAT(ids(telemetry.list_handlers()), ElementsAre("z", "a", "m", "b"));
  EXPECT_THAT(ids(telemetry.list_handlers({"mishka_installer", "mnesia"})),
              ElementsAre("z", "m", "b"));
  EXPECT_THAT(ids(telemetry.list_handlers({"other"})), ElementsAre("a", "m"));
  const auto all = telemetry.list_handlers();
  EXPECT_THAT(all[2].events, IsEmpty());                // attach_all
  EXPECT_THAT(all[3].events, ElementsAre(kInitStart));  // the duplicate name attached once
  // Attached once per name, so called once per event.
  ASSERT_TRUE(telemetry.execute(kInitStart, {}, {}).ok());
  EXPECT_THAT(calls, ElementsAre("m", "b"));
}

// Several threads emit while another attaches and detaches: the steady handler sees every
// event exactly once, nothing deadlocks, and (under TSan) nothing races.
TEST(TelemetryTest, ConcurrentExecuteAttachAndDetach) {
  Telemetry telemetry;
  std::atomic<std::int64_t> steady{0};
  std::atomic<std::int64_t> churned{0};
  ASSERT_TRUE(telemetry
                  .attach("steady", {kTable},
                          [&](const EventName&, const Measurements& m, const Metadata&) {
                            steady += *m.at("n").get_int();
                          })
                  .ok());
  constexpr int kThreads = 4;
  constexpr int kEvents = 5000;
  std::atomic<bool> done{false};
  std::thread churn([&] {
    int round = 0;
    while (!done.load()) {
      const std::string id = "churn" + std::to_string(round++ % 3);
      (void)telemetry.attach(
          id, {kTable}, [&](const EventName&, const Measurements&, const Metadata&) { ++churned; });
      (void)telemetry.attach_all(
          id + "-all", [&](const EventName&, const Measurements&, const Metadata&) { ++churned; });
      (void)telemetry.list_handlers();
      (void)telemetry.detach(id);
      (void)telemetry.detach(id + "-all");
    }
  });
  std::vector<std::thread> emitters;
  for (int t = 0; t < kThreads; ++t) {
    emitters.emplace_back([&] {
      for (int i = 0; i < kEvents; ++i) {
        EXPECT_TRUE(telemetry.execute(kTable, {{"n", 1}}, {{"i", i}}).ok());
      }
    });
  }
  for (std::thread& t : emitters) t.join();
  done = true;
  churn.join();
  EXPECT_EQ(steady.load(), kThreads * kEvents);
  EXPECT_THAT(ids(telemetry.list_handlers()), ElementsAre("steady"));
}

}  // namespace
}  // namespace mishka::telemetry
