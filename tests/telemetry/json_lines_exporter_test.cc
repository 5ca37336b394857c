// The JSON lines exporter: the line format, the value mapping, appending, and failures as values.
#include "telemetry/json_lines_exporter.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "fake_clock.h"
#include "support/temp_dir.h"

namespace mishka::telemetry {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using Json = nlohmann::json;

// 2026-11-26T10:15:30.123456789Z
constexpr std::int64_t kNow = 1'795'688'130'123'456'789;

std::vector<std::string> read_lines(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

JsonLinesOptions with_clock(std::shared_ptr<const Clock> clock) {
  JsonLinesOptions options;
  options.clock = std::move(clock);
  return options;
}

JsonLinesOptions with_log(LogSink log) {
  JsonLinesOptions options;
  options.log = std::move(log);
  return options;
}

class JsonLinesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = mishka::test::TempDir::Create("telemetry-json-");
    ASSERT_TRUE(dir.ok()) << dir.status().to_string();
    dir_ = std::make_unique<mishka::test::TempDir>(std::move(*dir));
    path_ = (dir_->path() / "telemetry.jsonl").string();
  }

  std::unique_ptr<mishka::test::TempDir> dir_;
  std::string path_;
  std::shared_ptr<mishka::test::FakeClock> clock_ =
      std::make_shared<mishka::test::FakeClock>(kNow, 0);
};

TEST_F(JsonLinesTest, EachEventIsOneJsonObjectPerLine) {
  auto exporter = JsonLinesExporter::open(path_, with_clock(clock_));
  ASSERT_TRUE(exporter.ok()) << exporter.status().to_string();
  Telemetry telemetry;
  ASSERT_TRUE(telemetry.attach_all("json", (*exporter)->handler()).ok());

  const EventName start = {"mishka_installer", "mnesia", "init", "start"};
  ASSERT_TRUE(
      telemetry
          .execute(start, {{"system_time", kNow}, {"monotonic_time", -12}}, {{"node", "a@h:4370"}})
          .ok());
  clock_->advance(1'000'000'000);
  ASSERT_TRUE(telemetry
                  .execute({"mishka_installer", "mnesia", "health_check"},
                           {{"table_count", 3}, {"ratio", 0.25}},
                           {{"healthy?", true}, {"missing", List{}}, {"node", Value()}})
                  .ok());

  const auto lines = read_lines(path_);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0], R"({"time":"2026-11-26T10:15:30.123Z",)"
                      R"("event":["mishka_installer","mnesia","init","start"],)"
                      R"("measurements":{"monotonic_time":-12,"system_time":1795688130123456789},)"
                      R"("metadata":{"node":"a@h:4370"}})");

  const Json second = Json::parse(lines[1]);
  EXPECT_EQ(second["time"], "2026-11-26T10:15:31.123Z");
  EXPECT_EQ(second["event"], Json({"mishka_installer", "mnesia", "health_check"}));
  EXPECT_EQ(second["measurements"]["table_count"], 3);
  EXPECT_EQ(second["measurements"]["ratio"], 0.25);
  EXPECT_EQ(second["metadata"]["healthy?"], true);
  EXPECT_EQ(second["metadata"]["missing"], Json::array());
  EXPECT_TRUE(second["metadata"]["node"].is_null());
  EXPECT_EQ((*exporter)->failed_writes(), 0);
}

TEST_F(JsonLinesTest, IntegersStayExactAcrossAllSixtyFourBits) {
  const std::int64_t max = std::numeric_limits<std::int64_t>::max();
  const std::int64_t min = std::numeric_limits<std::int64_t>::min();
  const Json parsed = Json::parse(json_line({"e"}, {{"a", max}, {"b", min}}, {}, 0));
  EXPECT_EQ(parsed["measurements"]["a"].get<std::int64_t>(), max);
  EXPECT_EQ(parsed["measurements"]["b"].get<std::int64_t>(), min);
}

TEST(JsonOfValueTest, EveryKindHasADocumentedForm) {
  EXPECT_EQ(json_of_value(Value()), "null");
  EXPECT_EQ(json_of_value(false), "false");
  EXPECT_EQ(json_of_value(-42), "-42");
  EXPECT_EQ(json_of_value(2.0), "2.0");
  EXPECT_EQ(json_of_value(0.1), "0.1");
  EXPECT_EQ(json_of_value(std::nan("")), R"("NaN")");
  EXPECT_EQ(json_of_value(HUGE_VAL), R"("Infinity")");
  EXPECT_EQ(json_of_value(-HUGE_VAL), R"("-Infinity")");
  EXPECT_EQ(json_of_value("say \"hi\"\n"), R"("say \"hi\"\n")");
  EXPECT_EQ(json_of_value(Value::bytes(std::string("\x00\xff", 2))), R"({"base64":"AP8="})");
  EXPECT_EQ(json_of_value(Value::bytes("abc")), R"({"base64":"YWJj"})");
  EXPECT_EQ(json_of_value(Value::bytes("abcd")), R"({"base64":"YWJjZA=="})");
  EXPECT_EQ(json_of_value(Value::bytes("")), R"({"base64":""})");
  EXPECT_EQ(json_of_value(List{1, "a", List{}}), R"([1,"a",[]])");
  EXPECT_EQ(json_of_value(Map{{"b", 1}, {"a", Map{}}}), R"({"a":{},"b":1})");
  EXPECT_EQ(json_of_value(Map{{1, "one"}, {"two", 2}}), R"({"entries":[[1,"one"],["two",2]]})");
  // Invalid UTF-8 is replaced, so the line stays valid JSON.
  EXPECT_EQ(json_of_value(std::string("a\xff")), "\"a\xef\xbf\xbd\"");
}

TEST(JsonLineTest, TimeIsRfc3339UtcWithMilliseconds) {
  auto time_of = [](std::int64_t ns) {
    return Json::parse(json_line({"e"}, {}, {}, ns))["time"].get<std::string>();
  };
  EXPECT_EQ(time_of(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(time_of(999'999), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(time_of(1'000'000), "1970-01-01T00:00:00.001Z");
  EXPECT_EQ(time_of(-1), "1969-12-31T23:59:59.999Z");
  EXPECT_EQ(time_of(kNow), "2026-11-26T10:15:30.123Z");
}

TEST_F(JsonLinesTest, OpeningAppendsToWhatIsThere) {
  {
    std::ofstream existing(path_);
    existing << "{\"earlier\":true}\n";
  }
  auto exporter = JsonLinesExporter::open(path_, with_clock(clock_));
  ASSERT_TRUE(exporter.ok()) << exporter.status().to_string();
  ASSERT_TRUE((*exporter)->write({"a"}, {}, {}).ok());
  exporter = JsonLinesExporter::open(path_, with_clock(clock_));
  ASSERT_TRUE(exporter.ok());
  ASSERT_TRUE((*exporter)->write({"b"}, {}, {}).ok());
  const auto lines = read_lines(path_);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0], "{\"earlier\":true}");
  EXPECT_EQ(Json::parse(lines[1])["event"], Json({"a"}));
  EXPECT_EQ(Json::parse(lines[2])["event"], Json({"b"}));
  EXPECT_EQ((*exporter)->path(), path_);
}

TEST_F(JsonLinesTest, AFileThatCannotBeOpenedIsAnIoError) {
  const std::string missing = (dir_->path() / "no-such-dir" / "t.jsonl").string();
  auto exporter = JsonLinesExporter::open(missing);
  ASSERT_FALSE(exporter.ok());
  EXPECT_EQ(exporter.status().code(), StatusCode::io_error);
  EXPECT_THAT(exporter.status().message(), HasSubstr(missing));
}

// /dev/full refuses every write with ENOSPC: write() reports it, the handler counts and logs it
// once per run of failures, and never throws (it stays attached).
TEST(JsonLinesFailureTest, WriteFailuresAreValuesAndTheHandlerLogsOnce) {
  if (!std::filesystem::exists("/dev/full")) GTEST_SKIP() << "no /dev/full";
  std::vector<std::string> log;
  auto exporter = JsonLinesExporter::open(
      "/dev/full", with_log([&](LogLevel, std::string_view line) { log.emplace_back(line); }));
  ASSERT_TRUE(exporter.ok()) << exporter.status().to_string();
  Status written = (*exporter)->write({"e"}, {}, {});
  EXPECT_EQ(written.code(), StatusCode::io_error);
  EXPECT_THAT(written.message(), HasSubstr("/dev/full"));

  Telemetry telemetry;
  ASSERT_TRUE(telemetry.attach_all("json", (*exporter)->handler()).ok());
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(telemetry.execute({"e"}, {}, {}).ok());
  EXPECT_EQ((*exporter)->failed_writes(), 4);
  ASSERT_EQ(log.size(), 1u);
  EXPECT_THAT(log[0], HasSubstr("io_error"));
  EXPECT_EQ(telemetry.list_handlers().size(), 1u);
}

TEST_F(JsonLinesTest, LinesFromManyThreadsNeverInterleave) {
  auto exporter = JsonLinesExporter::open(path_);
  ASSERT_TRUE(exporter.ok());
  Telemetry telemetry;
  ASSERT_TRUE(telemetry.attach_all("json", (*exporter)->handler()).ok());
  constexpr int kThreads = 4;
  constexpr int kEvents = 300;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEvents; ++i) {
        (void)telemetry.execute({"thread", std::to_string(t)}, {{"i", i}},
                                {{"padding", std::string(512, 'x')}});
      }
    });
  }
  for (std::thread& t : threads) t.join();
  // The exporter can go before its handler: the handler keeps the file open.
  exporter = Status(StatusCode::not_found, "dropped");
  ASSERT_TRUE(telemetry.execute({"after"}, {}, {}).ok());

  const auto lines = read_lines(path_);
  ASSERT_EQ(lines.size(), static_cast<std::size_t>(kThreads * kEvents + 1));
  std::vector<int> per_thread(kThreads, 0);
  for (const std::string& line : lines) {
    const Json parsed = Json::parse(line);  // throws (and fails the test) on a torn line
    if (parsed["event"][0] == "thread")
      ++per_thread[std::stoi(parsed["event"][1].get<std::string>())];
  }
  EXPECT_THAT(per_thread, ElementsAre(kEvents, kEvents, kEvents, kEvents));
}

}  // namespace
}  // namespace mishka::telemetry
