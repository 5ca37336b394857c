// The identity file: round trip, every corruption and truncation refused with the path, unknown
// versions refused, node_name_mismatch touching nothing, and writes that survive a crash.

#include "engine/identity.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "common/sha256.h"
#include "support/temp_dir.h"

namespace mishka::engine {
namespace {

using test::TempDir;

std::string read_bytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream out;
  out << in.rdbuf();
  return out.str();
}

void write_bytes(const std::filesystem::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
}

// Every file under `dir` with its contents and modification time.
std::map<std::string, std::string> snapshot_of(const std::filesystem::path& dir) {
  std::map<std::string, std::string> files;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir)) {
    const auto mtime = std::filesystem::last_write_time(entry.path()).time_since_epoch().count();
    files[entry.path().string()] = (entry.is_regular_file() ? read_bytes(entry.path()) : "<dir>") +
                                   "@" + std::to_string(mtime);
  }
  return files;
}

Identity sample() {
  return Identity{.node_name = "alpha@127.0.0.1:4370",
                  .member_id = 0x8e9e05c52164694dULL,
                  .cluster_id = 0xcdf818194e3a8c32ULL,
                  .created_unix_ms = 1795600000123};
}

class IdentityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Result<TempDir> made = TempDir::Create("mishka-identity-");
    ASSERT_TRUE(made.ok()) << made.status().to_string();
    dir_.emplace(std::move(made).value());
  }
  std::string dir() const { return dir_->path().string(); }
  std::string file() const { return identity_path(dir()); }

  std::optional<TempDir> dir_;
};

TEST_F(IdentityTest, MissingFileIsNoIdentity) {
  Result<std::optional<Identity>> read = read_identity(dir());
  ASSERT_TRUE(read.ok()) << read.status().to_string();
  EXPECT_FALSE(read->has_value());
  Result<std::optional<Identity>> checked = check_identity(dir(), "alpha@127.0.0.1:4370");
  ASSERT_TRUE(checked.ok()) << checked.status().to_string();
  EXPECT_FALSE(checked->has_value());
}

TEST_F(IdentityTest, RoundTrip) {
  ASSERT_TRUE(write_identity(dir(), sample()).ok());
  Result<std::optional<Identity>> read = read_identity(dir());
  ASSERT_TRUE(read.ok()) << read.status().to_string();
  ASSERT_TRUE(read->has_value());
  EXPECT_EQ(**read, sample());

  // Extreme values survive too, and a second write replaces the first.
  Identity other{.node_name = std::string(kMaxNodeNameBytes, 'n'),
                 .member_id = ~0ULL,
                 .cluster_id = 0,
                 .created_unix_ms = -1};
  ASSERT_TRUE(write_identity(dir(), other).ok());
  read = read_identity(dir());
  ASSERT_TRUE(read.ok()) << read.status().to_string();
  EXPECT_EQ(**read, other);
}

TEST_F(IdentityTest, BadNodeNamesAreNotWritten) {
  Identity empty = sample();
  empty.node_name.clear();
  EXPECT_EQ(write_identity(dir(), empty).code(), StatusCode::invalid_argument);
  Identity huge = sample();
  huge.node_name.assign(kMaxNodeNameBytes + 1, 'x');
  EXPECT_EQ(write_identity(dir(), huge).code(), StatusCode::invalid_argument);
  EXPECT_FALSE(std::filesystem::exists(file()));
}

TEST_F(IdentityTest, EveryAlteredByteIsRefusedAsCorrupt) {
  ASSERT_TRUE(write_identity(dir(), sample()).ok());
  const std::string good = read_bytes(file());
  ASSERT_GT(good.size(), 48u);
  for (std::size_t i = 0; i < good.size(); ++i) {
    for (const unsigned char flip : {0x01, 0x80, 0xff}) {
      std::string bad = good;
      bad[i] = static_cast<char>(static_cast<unsigned char>(bad[i]) ^ flip);
      write_bytes(file(), bad);
      Result<std::optional<Identity>> read = read_identity(dir());
      ASSERT_FALSE(read.ok()) << "byte " << i << " ^ " << int{flip} << " was accepted";
      EXPECT_EQ(read.status().code(), StatusCode::corrupt) << read.status().to_string();
      EXPECT_NE(read.status().message().find(file()), std::string::npos)
          << read.status().to_string();
    }
  }
}

TEST_F(IdentityTest, EveryTruncationAndExtensionIsRefusedAsCorrupt) {
  ASSERT_TRUE(write_identity(dir(), sample()).ok());
  const std::string good = read_bytes(file());
  for (std::size_t length = 0; length < good.size(); ++length) {
    write_bytes(file(), good.substr(0, length));
    Result<std::optional<Identity>> read = read_identity(dir());
    ASSERT_FALSE(read.ok()) << "truncated to " << length << " bytes was accepted";
    EXPECT_EQ(read.status().code(), StatusCode::corrupt) << read.status().to_string();
    EXPECT_NE(read.status().message().find(file()), std::string::npos) << read.status().to_string();
  }
  write_bytes(file(), good + std::string(1, '\0'));
  EXPECT_EQ(read_identity(dir()).status().code(), StatusCode::corrupt);
}

TEST_F(IdentityTest, UnknownVersionIsRefused) {
  ASSERT_TRUE(write_identity(dir(), sample()).ok());
  std::string future = read_bytes(file());
  // Version 2 with a checksum that holds: what a newer mishka might write.
  future[11] = 2;
  const std::string summed = future.substr(0, future.size() - 32);
  const Sha256Digest sum = Sha256::of(summed);
  future = summed + std::string(reinterpret_cast<const char*>(sum.data()), sum.size());
  write_bytes(file(), future);

  Result<std::optional<Identity>> read = read_identity(dir());
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.status().code(), StatusCode::corrupt);
  EXPECT_NE(read.status().message().find("version 2"), std::string::npos)
      << read.status().to_string();
  EXPECT_NE(read.status().message().find(file()), std::string::npos) << read.status().to_string();
}

TEST_F(IdentityTest, NameMismatchNamesBothAndTouchesNothing) {
  ASSERT_TRUE(write_identity(dir(), sample()).ok());
  std::filesystem::create_directories(dir_->path() / "etcd" / "data");
  write_bytes(dir_->path() / "etcd" / "etcd.log", "some log\n");
  const auto before = snapshot_of(dir_->path());

  Result<std::optional<Identity>> checked = check_identity(dir(), "beta@127.0.0.1:4370");
  ASSERT_FALSE(checked.ok());
  EXPECT_EQ(checked.status().code(), StatusCode::node_name_mismatch);
  const std::string message = checked.status().message();
  EXPECT_NE(message.find("alpha@127.0.0.1:4370"), std::string::npos) << message;
  EXPECT_NE(message.find("beta@127.0.0.1:4370"), std::string::npos) << message;
  EXPECT_NE(message.find(file()), std::string::npos) << message;
  EXPECT_EQ(snapshot_of(dir_->path()), before) << "check_identity changed the directory";

  Result<std::optional<Identity>> mine = check_identity(dir(), "alpha@127.0.0.1:4370");
  ASSERT_TRUE(mine.ok()) << mine.status().to_string();
  ASSERT_TRUE(mine->has_value());
  EXPECT_EQ(**mine, sample());
  EXPECT_EQ(snapshot_of(dir_->path()), before);
}

TEST_F(IdentityTest, CheckReportsCorruptionToo) {
  write_bytes(file(), "MISHKAID garbage");
  Result<std::optional<Identity>> checked = check_identity(dir(), "alpha@127.0.0.1:4370");
  EXPECT_EQ(checked.status().code(), StatusCode::corrupt) << checked.status().to_string();
}

TEST_F(IdentityTest, LeftoverTemporaryFileFromACrashedWriteIsHarmless) {
  ASSERT_TRUE(write_identity(dir(), sample()).ok());
  const std::string good = read_bytes(file());
  // A crash after the temporary file was half written, before the rename.
  write_bytes(file() + ".tmp", good.substr(0, good.size() / 2));
  Result<std::optional<Identity>> read = read_identity(dir());
  ASSERT_TRUE(read.ok()) << read.status().to_string();
  EXPECT_EQ(**read, sample());

  // The next write goes through and leaves no temporary file behind.
  Identity next = sample();
  next.member_id = 7;
  ASSERT_TRUE(write_identity(dir(), next).ok());
  EXPECT_FALSE(std::filesystem::exists(file() + ".tmp"));
  read = read_identity(dir());
  ASSERT_TRUE(read.ok()) << read.status().to_string();
  EXPECT_EQ(**read, next);

  // A crash before anything was renamed, on a directory without an identity yet.
  ASSERT_TRUE(std::filesystem::remove(file()));
  write_bytes(file() + ".tmp", good.substr(0, 10));
  read = read_identity(dir());
  ASSERT_TRUE(read.ok()) << read.status().to_string();
  EXPECT_FALSE(read->has_value());
}

TEST_F(IdentityTest, WriteIntoAMissingDirectoryIsAnIoError) {
  const std::string missing = dir() + "/no/such/dir";
  Status written = write_identity(missing, sample());
  EXPECT_EQ(written.code(), StatusCode::io_error);
  EXPECT_NE(written.message().find(missing), std::string::npos) << written.to_string();
}

}  // namespace
}  // namespace mishka::engine
