#include "mishka/status.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>

namespace mishka {
namespace {

TEST(StatusTest, DefaultIsOk) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::ok);
  EXPECT_EQ(s.message(), "");
  EXPECT_EQ(s.to_string(), "ok");
  EXPECT_EQ(Status::Ok(), s);
}

TEST(StatusTest, CodeNamesAreStable) {
  EXPECT_EQ(status_code_name(StatusCode::ok), "ok");
  EXPECT_EQ(status_code_name(StatusCode::invalid_argument), "invalid_argument");
  EXPECT_EQ(status_code_name(StatusCode::not_found), "not_found");
  EXPECT_EQ(status_code_name(StatusCode::already_exists), "already_exists");
  EXPECT_EQ(status_code_name(StatusCode::corrupt), "corrupt");
  EXPECT_EQ(status_code_name(StatusCode::io_error), "io_error");
  EXPECT_EQ(status_code_name(StatusCode::conflict), "conflict");
  EXPECT_EQ(status_code_name(StatusCode::timeout), "timeout");
  EXPECT_EQ(status_code_name(StatusCode::no_quorum), "no_quorum");
  EXPECT_EQ(status_code_name(StatusCode::engine_unavailable), "engine_unavailable");
  EXPECT_EQ(status_code_name(StatusCode::node_name_mismatch), "node_name_mismatch");
  EXPECT_EQ(status_code_name(StatusCode::unsupported), "unsupported");
  EXPECT_EQ(status_code_name(StatusCode::internal), "internal");
  EXPECT_EQ(status_code_name(StatusCode::compacted), "compacted");
  EXPECT_EQ(status_code_name(StatusCode::space_exceeded), "space_exceeded");
  EXPECT_EQ(status_code_name(StatusCode::permission_denied), "permission_denied");
}

TEST(StatusTest, CodeNumbersNeverChange) {
  // These numbers reach logs, telemetry and the wire.
  EXPECT_EQ(static_cast<int>(StatusCode::ok), 0);
  EXPECT_EQ(static_cast<int>(StatusCode::corrupt), 4);
  EXPECT_EQ(static_cast<int>(StatusCode::no_quorum), 8);
  EXPECT_EQ(static_cast<int>(StatusCode::internal), 12);
  EXPECT_EQ(static_cast<int>(StatusCode::space_exceeded), 14);
  EXPECT_EQ(static_cast<int>(StatusCode::permission_denied), 15);
}

TEST(StatusTest, UnknownCodeHasAName) {
  EXPECT_EQ(status_code_name(static_cast<StatusCode>(200)), "unknown");
}

TEST(StatusTest, ToStringJoinsCodeAndMessage) {
  EXPECT_EQ(corrupt("bad checksum in snap.bin").to_string(), "corrupt: bad checksum in snap.bin");
  EXPECT_EQ(Status(StatusCode::timeout, "").to_string(), "timeout");
}

TEST(StatusTest, HelpersSetTheirCode) {
  EXPECT_EQ(invalid_argument("x").code(), StatusCode::invalid_argument);
  EXPECT_EQ(not_found("x").code(), StatusCode::not_found);
  EXPECT_EQ(already_exists("x").code(), StatusCode::already_exists);
  EXPECT_EQ(corrupt("x").code(), StatusCode::corrupt);
  EXPECT_EQ(io_error("x").code(), StatusCode::io_error);
  EXPECT_FALSE(io_error("x").ok());
}

TEST(StatusTest, WithContextPrefixesTheMessage) {
  Status s = corrupt("truncated at offset 12");
  Status c = s.with_context("loading /var/lib/mishka/snap");
  EXPECT_EQ(c.code(), StatusCode::corrupt);
  EXPECT_EQ(c.message(), "loading /var/lib/mishka/snap: truncated at offset 12");
  EXPECT_EQ(s.message(), "truncated at offset 12");  // the original is unchanged
  EXPECT_EQ(c.with_context("node a").message(),
            "node a: loading /var/lib/mishka/snap: truncated at offset 12");
}

TEST(StatusTest, WithContextOnEmptyMessage) {
  EXPECT_EQ(Status(StatusCode::timeout, "").with_context("etcd put").message(), "etcd put");
  EXPECT_EQ(corrupt("x").with_context("").message(), "x");
}

TEST(StatusTest, WithContextKeepsOkOk) {
  Status c = Status::Ok().with_context("loading");
  EXPECT_TRUE(c.ok());
  EXPECT_EQ(c.message(), "");
}

TEST(StatusTest, EqualityComparesCodeAndMessage) {
  EXPECT_EQ(corrupt("a"), corrupt("a"));
  EXPECT_FALSE(corrupt("a") == corrupt("b"));
  EXPECT_FALSE(corrupt("a") == io_error("a"));
}

TEST(ResultTest, HoldsAValue) {
  Result<int> r = 7;
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(static_cast<bool>(r));
  EXPECT_EQ(r.value(), 7);
  EXPECT_EQ(*r, 7);
  EXPECT_TRUE(r.status().ok());
}

TEST(ResultTest, HoldsAnError) {
  Result<int> r = not_found("table t");
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.status(), not_found("table t"));
}

TEST(ResultTest, OkStatusWithoutValueBecomesInternal) {
  Result<int> r = Status::Ok();
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::internal);
}

TEST(ResultTest, MovesTheValueOut) {
  Result<std::string> r = std::string(100, 'x');
  std::string s = std::move(r).value();
  EXPECT_EQ(s.size(), 100u);
  Result<std::string> r2 = std::string("abc");
  EXPECT_EQ(r2->size(), 3u);
}

Status fails_then_continues(bool fail, int& reached) {
  MISHKA_RETURN_IF_ERROR(fail ? io_error("disk") : Status::Ok());
  reached = 1;
  MISHKA_RETURN_IF_ERROR(Status::Ok());
  reached = 2;
  return Status::Ok();
}

TEST(ReturnIfErrorTest, ReturnsEarlyOnError) {
  int reached = 0;
  EXPECT_EQ(fails_then_continues(true, reached), io_error("disk"));
  EXPECT_EQ(reached, 0);
  EXPECT_TRUE(fails_then_continues(false, reached).ok());
  EXPECT_EQ(reached, 2);
}

Result<int> parse_positive(int x) {
  MISHKA_RETURN_IF_ERROR(x > 0 ? Status::Ok() : invalid_argument("not positive"));
  return x;
}

TEST(ReturnIfErrorTest, WorksInFunctionsReturningResult) {
  EXPECT_EQ(parse_positive(3).value(), 3);
  EXPECT_EQ(parse_positive(-3).status().code(), StatusCode::invalid_argument);
}

}  // namespace
}  // namespace mishka
