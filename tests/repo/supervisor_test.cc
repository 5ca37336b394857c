// RepoSupervisor (include/mishka/repo.h): a child repo started and restarted by its policy.
#include <gtest/gtest.h>

#include <csignal>
#include <filesystem>
#include <fstream>

#include "mishka/repo.h"
#include "mishka/telemetry.h"
#include "repo/repo_support.h"

namespace mishka::test {
namespace {

using std::chrono::milliseconds;

constexpr milliseconds kWait{10000};

TEST(RepoSupervisor, RestartingARunningChildIsTheNoOpReannounce) {
  RepoSlot slot = make_slot(0);
  telemetry::Telemetry telemetry;
  EventRecorder events(telemetry);
  RepoOptions o = slot.options();
  o.telemetry = &telemetry;
  Result<std::unique_ptr<RepoSupervisor>> sup = RepoSupervisor::start(o);
  ASSERT_TRUE(sup.ok()) << sup.status().to_string();
  std::shared_ptr<MnesiaRepo> first = (*sup)->child();
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(first->state().status, RepoStatus::synchronized);
  const std::vector<pid_t> etcd = processes_mentioning(o.mnesia_dir);
  ASSERT_FALSE(etcd.empty());

  ASSERT_TRUE((*sup)->restart_child().ok());
  std::shared_ptr<MnesiaRepo> second = (*sup)->child();
  ASSERT_NE(second, nullptr);
  EXPECT_NE(second, first);
  EXPECT_EQ(second->state().status, RepoStatus::synchronized);
  EXPECT_EQ(first->state().status, RepoStatus::stopped);
  EXPECT_EQ(processes_mentioning(o.mnesia_dir), etcd);
  EXPECT_EQ(events.events("mishka_installer.mnesia.synchronized").size(), 2u);
  EXPECT_EQ(events.events("mishka_installer.mnesia.table").size(), 2u);

  (*sup)->stop();
  EXPECT_TRUE(no_process_mentions(o.mnesia_dir, kWait));
}

// An etcd binary the test can break and mend: a symbolic link to the real one, or a script that
// fails at once.
class EtcdSwitch {
 public:
  explicit EtcdSwitch(std::filesystem::path path) : path_(std::move(path)) { mend(); }
  const std::filesystem::path& path() const { return path_; }
  void mend() {
    std::filesystem::remove(path_);
    std::filesystem::create_symlink(etcd_binary(), path_);
  }
  void brk() {
    std::filesystem::remove(path_);
    std::ofstream(path_) << "#!/bin/sh\necho 'etcd is broken on purpose' >&2\nexit 1\n";
    std::filesystem::permissions(path_, std::filesystem::perms::owner_all);
  }

 private:
  std::filesystem::path path_;
};

TEST(RepoSupervisor, AChildWhoseEtcdMemberGaveUpIsRestarted) {
  RepoSlot slot = make_slot(0);
  EtcdSwitch etcd_switch(slot.dir.path() / "etcd");
  Lines log;
  RepoOptions o = slot.options({}, log.sink());
  o.etcd_binary = etcd_switch.path().string();
  o.member_give_up_after = 1;
  SupervisorOptions policy{.restart = RestartPolicy::permanent,
                           .max_restarts = 50,
                           .period = milliseconds(60000),
                           .backoff = milliseconds(200)};
  Result<std::unique_ptr<RepoSupervisor>> sup = RepoSupervisor::start(o, policy);
  ASSERT_TRUE(sup.ok()) << sup.status().to_string();
  std::shared_ptr<MnesiaRepo> first = (*sup)->child();
  ASSERT_NE(first, nullptr);
  Record record(12, Value());
  record[0] = Value("before");
  ASSERT_TRUE(first->store()->dirty_write("installer", record).ok());

  // Break the binary and kill the member: its restart fails, its supervisor gives up, so the
  // repo fails; each restart of the repo fails too while the binary is broken.
  const std::vector<pid_t> etcd = processes_mentioning(o.mnesia_dir);
  ASSERT_EQ(etcd.size(), 1u);
  etcd_switch.brk();
  ASSERT_EQ(::kill(etcd[0], SIGKILL), 0);
  ASSERT_TRUE(eventually([&] { return first->failure().has_value(); }, kWait));
  EXPECT_EQ(first->failure()->code(), StatusCode::engine_unavailable);
  // Stopping a node whose etcd is gone waits out the deadlines of its last calls.
  ASSERT_TRUE(eventually([&] { return (*sup)->restarts() >= 1; }, milliseconds(40000)))
      << log.dump();
  EXPECT_FALSE((*sup)->given_up());

  etcd_switch.mend();
  ASSERT_TRUE(eventually(
      [&] {
        std::shared_ptr<MnesiaRepo> child = (*sup)->child();
        return child != nullptr && child != first &&
               child->state().status == RepoStatus::synchronized;
      },
      milliseconds(30000)));
  Result<std::vector<RecordRef>> read =
      (*sup)->child()->store()->dirty_read("installer", Value("before"));
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(read->size(), 1u);
  (*sup)->stop();
  EXPECT_TRUE(no_process_mentions(o.mnesia_dir, kWait));
}

// A directory that belongs to another node: every boot fails with node_name_mismatch.
RepoOptions options_of_a_foreign_directory(const RepoSlot& slot) {
  RepoOptions owner = slot.options();
  {
    Result<std::unique_ptr<MnesiaRepo>> repo = MnesiaRepo::start(owner);
    if (!repo.ok()) ADD_FAILURE() << repo.status().to_string();
  }
  RepoOptions o = owner;
  o.node = "intruder@127.0.0.1:" + std::to_string(slot.client_port);
  return o;
}

TEST(RepoSupervisor, FailedBootsAreRestartedUntilTheIntensityIsExceeded) {
  RepoSlot slot = make_slot(0);
  RepoOptions o = options_of_a_foreign_directory(slot);
  SupervisorOptions policy{.restart = RestartPolicy::permanent,
                           .max_restarts = 2,
                           .period = milliseconds(60000),
                           .backoff = milliseconds(50)};
  Result<std::unique_ptr<RepoSupervisor>> sup = RepoSupervisor::start(o, policy);
  ASSERT_TRUE(sup.ok()) << sup.status().to_string();
  EXPECT_EQ((*sup)->child(), nullptr);
  EXPECT_TRUE(eventually([&] { return (*sup)->given_up(); }, kWait));
  EXPECT_EQ((*sup)->restarts(), 2);
  ASSERT_TRUE((*sup)->last_failure().has_value());
  EXPECT_EQ((*sup)->last_failure()->code(), StatusCode::node_name_mismatch);
}

TEST(RepoSupervisor, ATemporaryChildIsNeverRestarted) {
  RepoSlot slot = make_slot(0);
  RepoOptions o = options_of_a_foreign_directory(slot);
  SupervisorOptions policy;
  policy.restart = RestartPolicy::temporary;
  policy.backoff = milliseconds(10);
  Result<std::unique_ptr<RepoSupervisor>> sup = RepoSupervisor::start(o, policy);
  ASSERT_TRUE(sup.ok()) << sup.status().to_string();
  std::this_thread::sleep_for(milliseconds(200));
  EXPECT_EQ((*sup)->restarts(), 0);
  EXPECT_FALSE((*sup)->given_up());
  EXPECT_EQ((*sup)->child(), nullptr);
}

TEST(RepoSupervisor, BadSupervisorOptionsAreRefused) {
  RepoSlot slot = make_slot(0);
  SupervisorOptions policy;
  policy.max_restarts = -1;
  Result<std::unique_ptr<RepoSupervisor>> sup = RepoSupervisor::start(slot.options(), policy);
  EXPECT_EQ(sup.status().code(), StatusCode::invalid_argument);
  EXPECT_NE(sup.status().message().find("max_restarts"), std::string::npos);
}

}  // namespace
}  // namespace mishka::test
