// Telemetry::span: start, stop and exception events, their measurements and metadata.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "fake_clock.h"
#include "mishka/telemetry.h"

namespace mishka::telemetry {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

const EventName kInit = {"mishka_installer", "mnesia", "init"};

struct Emitted {
  EventName event;
  Measurements measurements;
  Metadata metadata;
};

class SpanTest : public ::testing::Test {
 protected:
  SpanTest() {
    EXPECT_TRUE(
        telemetry_
            .attach_all("recorder",
                        [this](const EventName& e, const Measurements& m, const Metadata& md) {
                          emitted_.push_back({e, m, md});
                        })
            .ok());
  }

  std::vector<EventName> names() const {
    std::vector<EventName> out;
    for (const Emitted& e : emitted_) out.push_back(e.event);
    return out;
  }

  TelemetryOptions options() {
    TelemetryOptions o;
    o.log = [this](LogLevel, std::string_view line) { log_.emplace_back(line); };
    o.clock = clock_;
    return o;
  }

  static constexpr std::int64_t kSystemStart = 1'795'688'130'123'456'789;
  static constexpr std::int64_t kMonotonicStart = 5'000;

  std::shared_ptr<mishka::test::FakeClock> clock_ =
      std::make_shared<mishka::test::FakeClock>(kSystemStart, kMonotonicStart);
  std::vector<std::string> log_;
  Telemetry telemetry_{options()};
  std::vector<Emitted> emitted_;
};

EventName with(EventName name, std::string last) {
  name.push_back(std::move(last));
  return name;
}

TEST_F(SpanTest, StartAndStopCarryTimesInNanosecondsAndTheStopMetadata) {
  const std::string result =
      telemetry_.span(kInit, {{"node", "a@h:4370"}}, [&](Metadata& metadata) -> std::string {
        clock_->advance(250);
        metadata["result"] = "ok";
        metadata["tables"] = List{"installer", "event"};
        return "booted";
      });
  EXPECT_EQ(result, "booted");
  ASSERT_THAT(names(), ElementsAre(with(kInit, "start"), with(kInit, "stop")));

  const Emitted& start = emitted_[0];
  EXPECT_EQ(start.measurements,
            (Measurements{{"system_time", kSystemStart}, {"monotonic_time", kMonotonicStart}}));
  EXPECT_EQ(start.metadata, (Metadata{{"node", "a@h:4370"}}));

  const Emitted& stop = emitted_[1];
  EXPECT_EQ(stop.measurements,
            (Measurements{{"duration", 250}, {"monotonic_time", kMonotonicStart + 250}}));
  EXPECT_EQ(
      stop.metadata,
      (Metadata{{"node", "a@h:4370"}, {"result", "ok"}, {"tables", List{"installer", "event"}}}));
  EXPECT_THAT(log_, IsEmpty());
}

TEST_F(SpanTest, AVoidFunctionWorksToo) {
  bool ran = false;
  telemetry_.span(kInit, {}, [&](Metadata&) {
    ran = true;
    clock_->advance(7);
  });
  EXPECT_TRUE(ran);
  ASSERT_THAT(names(), ElementsAre(with(kInit, "start"), with(kInit, "stop")));
  EXPECT_EQ(*emitted_[1].measurements.at("duration").get_int(), 7);
}

TEST_F(SpanTest, AThrowingFunctionEmitsExceptionAndRethrows) {
  EXPECT_THROW(telemetry_.span(kInit, {{"node", "a@h:4370"}},
                               [&](Metadata& metadata) -> int {
                                 clock_->advance(1'000'000);
                                 metadata["step"] = 2;
                                 throw std::out_of_range("no tables");
                               }),
               std::out_of_range);
  ASSERT_THAT(names(), ElementsAre(with(kInit, "start"), with(kInit, "exception")));
  const Emitted& failed = emitted_[1];
  EXPECT_EQ(failed.measurements, (Measurements{{"duration", 1'000'000},
                                               {"monotonic_time", kMonotonicStart + 1'000'000}}));
  EXPECT_EQ(
      failed.metadata,
      (Metadata{{"node", "a@h:4370"}, {"step", 2}, {"kind", "error"}, {"reason", "no tables"}}));
}

TEST_F(SpanTest, ANonStandardExceptionIsKindThrow) {
  try {
    telemetry_.span(kInit, {}, [](Metadata&) { throw 7; });
    FAIL() << "span swallowed the exception";
  } catch (int thrown) {
    EXPECT_EQ(thrown, 7);  // rethrown unchanged
  }
  ASSERT_EQ(emitted_.size(), 2u);
  EXPECT_EQ(emitted_[1].metadata.at("kind"), Value("throw"));
  EXPECT_EQ(emitted_[1].metadata.at("reason"), Value("non-standard exception"));
}

TEST_F(SpanTest, AThrowingHandlerDoesNotTurnStopIntoException) {
  ASSERT_TRUE(telemetry_
                  .attach("bad", {with(kInit, "stop")},
                          [](const EventName&, const Measurements&, const Metadata&) {
                            throw std::runtime_error("handler bug");
                          })
                  .ok());
  EXPECT_EQ(telemetry_.span(kInit, {}, [](Metadata&) { return 3; }), 3);
  EXPECT_THAT(names(), ElementsAre(with(kInit, "start"), with(kInit, "stop")));
  ASSERT_EQ(log_.size(), 1u);
  EXPECT_THAT(log_[0], HasSubstr("handler bug"));
}

TEST_F(SpanTest, AMalformedPrefixStillRunsTheFunctionAndLogs) {
  EXPECT_EQ(telemetry_.span({"a", ""}, {}, [](Metadata&) { return 1; }), 1);
  EXPECT_THAT(emitted_, IsEmpty());
  ASSERT_EQ(log_.size(), 2u);  // start and stop
  EXPECT_THAT(log_[0], HasSubstr("invalid_argument"));
}

TEST(SpanRealClockTest, DurationIsMeasuredOnTheMonotonicClock) {
  Telemetry telemetry;
  std::vector<Measurements> stops;
  ASSERT_TRUE(telemetry
                  .attach("h", {with(kInit, "stop")},
                          [&](const EventName&, const Measurements& m, const Metadata&) {
                            stops.push_back(m);
                          })
                  .ok());
  telemetry.span(kInit, {},
                 [](Metadata&) { std::this_thread::sleep_for(std::chrono::milliseconds(5)); });
  ASSERT_EQ(stops.size(), 1u);
  const std::int64_t duration = *stops[0].at("duration").get_int();
  EXPECT_GE(duration, 5'000'000);
  EXPECT_LT(duration, 5'000'000'000);
}

}  // namespace
}  // namespace mishka::telemetry
