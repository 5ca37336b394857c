// Proves the generated etcd client works against a real etcd: Put, Range and a Txn that compares
// a key's mod_revision (the building block of optimistic transactions, ARCHITECTURE.md #3).

#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <iostream>
#include <memory>
#include <string>

#include "etcd/etcdserver/etcdserverpb/rpc.grpc.pb.h"
#include "support/etcd_process.h"

namespace mishka::test {
namespace {

constexpr std::chrono::seconds kRpcDeadline{5};

void SetDeadline(grpc::ClientContext& context) {
  context.set_deadline(std::chrono::system_clock::now() + kRpcDeadline);
}

std::string Describe(const grpc::Status& status) {
  return "gRPC code " + std::to_string(status.error_code()) + ": " + status.error_message();
}

class EtcdKvTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Result<std::unique_ptr<EtcdProcess>> etcd = EtcdProcess::Start();
    ASSERT_TRUE(etcd.ok()) << etcd.status().message();
    etcd_ = std::move(etcd).value();
    kv_ = etcdserverpb::KV::NewStub(etcd_->channel());
  }

  void TearDown() override {
    if (etcd_ == nullptr) return;
    if (HasFailure()) {
      std::cerr << "--- last lines of " << etcd_->log_path() << "\n" << etcd_->LogTail();
    }
    const pid_t pid = etcd_->pid();
    const ExitInfo exit = etcd_->Stop();
    etcd_.reset();
    // Reaped by Stop(): the pid no longer names our child.
    EXPECT_NE(::kill(pid, 0), 0) << "etcd " << pid << " still exists after Stop ("
                                 << exit.to_string() << ")";
  }

  etcdserverpb::PutResponse Put(const std::string& key, const std::string& value) {
    grpc::ClientContext context;
    SetDeadline(context);
    etcdserverpb::PutRequest request;
    request.set_key(key);
    request.set_value(value);
    etcdserverpb::PutResponse response;
    const grpc::Status status = kv_->Put(&context, request, &response);
    EXPECT_TRUE(status.ok()) << "Put " << key << ": " << Describe(status);
    return response;
  }

  etcdserverpb::RangeResponse Get(const std::string& key) {
    grpc::ClientContext context;
    SetDeadline(context);
    etcdserverpb::RangeRequest request;
    request.set_key(key);
    etcdserverpb::RangeResponse response;
    const grpc::Status status = kv_->Range(&context, request, &response);
    EXPECT_TRUE(status.ok()) << "Range " << key << ": " << Describe(status);
    return response;
  }

  // Txn: if `key`'s mod_revision equals `expected`, put `value`; otherwise read the key.
  etcdserverpb::TxnResponse PutIfModRevision(const std::string& key, std::int64_t expected,
                                             const std::string& value) {
    etcdserverpb::TxnRequest request;
    etcdserverpb::Compare* compare = request.add_compare();
    compare->set_key(key);
    compare->set_target(etcdserverpb::Compare::MOD);
    compare->set_result(etcdserverpb::Compare::EQUAL);
    compare->set_mod_revision(expected);
    etcdserverpb::PutRequest* put = request.add_success()->mutable_request_put();
    put->set_key(key);
    put->set_value(value);
    request.add_failure()->mutable_request_range()->set_key(key);

    grpc::ClientContext context;
    SetDeadline(context);
    etcdserverpb::TxnResponse response;
    const grpc::Status status = kv_->Txn(&context, request, &response);
    EXPECT_TRUE(status.ok()) << "Txn on " << key << ": " << Describe(status);
    return response;
  }

  std::unique_ptr<EtcdProcess> etcd_;
  std::unique_ptr<etcdserverpb::KV::Stub> kv_;
};

TEST_F(EtcdKvTest, PutThenRangeReturnsTheValue) {
  const etcdserverpb::PutResponse put = Put("mishka/test/greeting", "hello");
  ASSERT_GT(put.header().revision(), 0);

  const etcdserverpb::RangeResponse got = Get("mishka/test/greeting");
  ASSERT_EQ(got.kvs_size(), 1);
  EXPECT_EQ(got.count(), 1);
  EXPECT_EQ(got.kvs(0).key(), "mishka/test/greeting");
  EXPECT_EQ(got.kvs(0).value(), "hello");
  EXPECT_EQ(got.kvs(0).mod_revision(), put.header().revision());
}

TEST_F(EtcdKvTest, RangeOfAMissingKeyIsEmpty) {
  const etcdserverpb::RangeResponse got = Get("mishka/test/absent");
  EXPECT_EQ(got.kvs_size(), 0);
  EXPECT_EQ(got.count(), 0);
}

TEST_F(EtcdKvTest, TxnSucceedsOnCurrentModRevisionAndFailsOnAStaleOne) {
  const std::string key = "mishka/test/counter";
  const std::int64_t first = Put(key, "1").header().revision();
  ASSERT_GT(first, 0);

  const etcdserverpb::TxnResponse won = PutIfModRevision(key, first, "2");
  EXPECT_TRUE(won.succeeded());
  EXPECT_GT(won.header().revision(), first);

  // `first` is stale now: the compare fails and the failure branch reads the winner's value.
  const etcdserverpb::TxnResponse lost = PutIfModRevision(key, first, "3");
  EXPECT_FALSE(lost.succeeded());
  EXPECT_EQ(lost.header().revision(), won.header().revision()) << "a failed Txn wrote";
  ASSERT_EQ(lost.responses_size(), 1);
  ASSERT_EQ(lost.responses(0).response_range().kvs_size(), 1);
  EXPECT_EQ(lost.responses(0).response_range().kvs(0).value(), "2");
  EXPECT_EQ(lost.responses(0).response_range().kvs(0).mod_revision(), won.header().revision());

  EXPECT_EQ(Get(key).kvs(0).value(), "2");
}

}  // namespace
}  // namespace mishka::test
