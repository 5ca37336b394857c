// mishka-snapshot run as a process on files the library wrote.
#include <gtest/gtest.h>

#include <fstream>

#include "common/files.h"
#include "engine/child_process.h"
#include "store/snapshot.h"
#include "support/temp_dir.h"

namespace mishka {
namespace {

struct ToolRun {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};

ToolRun run_tool(const std::vector<std::string>& args, const std::filesystem::path& dir) {
  const std::string log = (dir / "tool.log").string();
  std::filesystem::remove(log);
  auto child =
      engine::ChildProcess::spawn({.program = MISHKA_SNAPSHOT_TOOL, .args = args, .log_path = log});
  EXPECT_TRUE(child.ok()) << child.status().to_string();
  if (!child.ok()) return {};
  auto exit = child->wait_for(std::chrono::seconds(30));
  if (!exit) exit = child->stop();
  auto text = read_file_if_exists(log);
  return ToolRun{exit->signaled ? -1 : exit->code, text.ok() && *text ? **text : ""};
}

std::string write_sample(const std::filesystem::path& dir) {
  store::Catalog catalog;
  TableSpec spec;
  spec.name = "installer";
  spec.attributes = {"id", "app"};
  spec.indexes = {"app"};
  EXPECT_TRUE(catalog.create_table(spec).ok());
  EXPECT_TRUE(catalog.find("installer")->write({1, "a"}).ok());
  EXPECT_TRUE(catalog.find("installer")->write({2, "b"}).ok());
  const std::string path = (dir / "replica.snapshot").string();
  EXPECT_TRUE(write_file_atomically(path, store::encode_snapshot(catalog, 77)).ok());
  return path;
}

class SnapshotTool : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = test::TempDir::Create("mishka-snapshot-tool");
    ASSERT_TRUE(dir.ok());
    dir_ = std::make_unique<test::TempDir>(std::move(*dir));
  }
  std::unique_ptr<test::TempDir> dir_;
};

TEST_F(SnapshotTool, VerifiesAnIntactFile) {
  const std::string path = write_sample(dir_->path());
  ToolRun r = run_tool({"verify", path}, dir_->path());
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("ok: revision 77, 1 tables"), std::string::npos) << r.output;
}

TEST_F(SnapshotTool, InfoListsTablesAsJson) {
  const std::string path = write_sample(dir_->path());
  ToolRun r = run_tool({"info", path}, dir_->path());
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("\"revision\": 77"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("\"name\": \"installer\""), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("\"records\": 2"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("\"indexes\": [\"app\"]"), std::string::npos) << r.output;
}

TEST_F(SnapshotTool, RefusesADamagedFileWithItsPath) {
  const std::string path = write_sample(dir_->path());
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(30);
    f.put('\x55');
  }
  ToolRun r = run_tool({"verify", path}, dir_->path());
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("corrupt"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find(path), std::string::npos) << r.output;
}

TEST_F(SnapshotTool, MissingFileAndBadUsage) {
  ToolRun missing = run_tool({"verify", (dir_->path() / "nope").string()}, dir_->path());
  EXPECT_EQ(missing.exit_code, 1) << missing.output;
  EXPECT_NE(missing.output.find("no file"), std::string::npos) << missing.output;
  EXPECT_EQ(run_tool({"explode", "x"}, dir_->path()).exit_code, 2);
  EXPECT_EQ(run_tool({}, dir_->path()).exit_code, 2);
}

}  // namespace
}  // namespace mishka
