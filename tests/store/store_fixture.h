// A real etcd and one or more in-process "nodes" on it (each with its own client, replica and
// store), for the store's tests. Every test is bounded by a watchdog that aborts the process
// (and with it etcd, through its parent-death signal) if the test hangs.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "engine/etcd_client.h"
#include "mishka/store.h"
#include "replica/replica.h"
#include "store/store_open.h"
#include "support/etcd_process.h"
#include "support/watchdog.h"

namespace mishka::test {

struct Node {
  std::string name;
  std::unique_ptr<engine::EtcdClient> client;
  std::unique_ptr<replica::Replica> replica;
  std::unique_ptr<Store> store;
  ~Node();  // the store first, then the replica, then the client
};

TableSpec MakeSpec(std::string name, TableType type = TableType::set, bool local = false);

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

  // Another node on the same etcd, with its own replica and store.
  std::unique_ptr<Node> MakeNode(std::string name, StoreOptions options = {});

  // The current etcd revision (a linearizable read).
  std::int64_t EtcdRevision();
  // How many etcd keys start with `prefix`.
  std::int64_t CountKeys(const std::string& prefix);
  // The mod_revision of `key`, 0 when absent.
  std::int64_t ModRevision(const std::string& key);

  Store& store() { return *a_->store; }

  // Each test's bound; tests that need more set it before SetUp (in their constructor).
  std::chrono::milliseconds time_limit_{60000};
  StoreOptions options_;
  EtcdOptions etcd_options_;
  std::unique_ptr<Watchdog> watchdog_;
  std::unique_ptr<EtcdProcess> etcd_;
  std::unique_ptr<Node> a_;
  replica::Keyspace keys_;
};

}  // namespace mishka::test
