#include "store_fixture.h"

#include <cstdio>
#include <cstdlib>

namespace mishka::test {

using engine::Deadline;
using std::chrono::milliseconds;

Node::~Node() {
  store.reset();
  if (replica) replica->stop();
  replica.reset();
  client.reset();
}

TableSpec MakeSpec(std::string name, TableType type, bool local) {
  TableSpec s;
  s.name = std::move(name);
  s.attributes = {"id", "app", "n"};
  s.type = type;
  s.local_content = local;
  s.indexes = {"app"};
  return s;
}

void StoreTest::SetUp() {
  watchdog_ = std::make_unique<Watchdog>(time_limit_);
  auto etcd = EtcdProcess::Start(etcd_options_);
  ASSERT_TRUE(etcd.ok()) << etcd.status().to_string();
  etcd_ = std::move(*etcd);
  a_ = MakeNode("a@127.0.0.1", options_);
  ASSERT_NE(a_, nullptr);
}

void StoreTest::TearDown() {
  a_.reset();
  if (etcd_) etcd_->Stop();
  etcd_.reset();
  watchdog_.reset();
}

std::unique_ptr<Node> StoreTest::MakeNode(std::string name, StoreOptions options) {
  auto node = std::make_unique<Node>();
  node->name = name;
  auto client = engine::EtcdClient::create({.endpoints = {etcd_->client_endpoint()}, .tls = {}});
  EXPECT_TRUE(client.ok()) << client.status().to_string();
  if (!client.ok()) return nullptr;
  node->client = std::move(*client);
  replica::ReplicaOptions ro;
  ro.client = node->client.get();
  ro.keyspace = keys_;
  ro.node_name = name;
  auto replica = replica::Replica::create(std::move(ro));
  EXPECT_TRUE(replica.ok()) << replica.status().to_string();
  if (!replica.ok()) return nullptr;
  node->replica = std::move(*replica);
  Status started = node->replica->start(Deadline::after(milliseconds(10000)));
  EXPECT_TRUE(started.ok()) << started.to_string();
  if (!started.ok()) return nullptr;
  auto store = store::open_store({.client = node->client.get(),
                                  .replica = node->replica.get(),
                                  .node_name = name,
                                  .keyspace = keys_,
                                  .options = options,
                                  .log = {},
                                  .ram_lease = {}});
  EXPECT_TRUE(store.ok()) << store.status().to_string();
  if (!store.ok()) return nullptr;
  node->store = std::move(*store);
  return node;
}

std::int64_t StoreTest::EtcdRevision() {
  auto r = a_->client->range(keys_.meta_key(), {}, Deadline::after(milliseconds(5000)));
  EXPECT_TRUE(r.ok()) << r.status().to_string();
  return r.ok() ? r->header.revision : -1;
}

std::int64_t StoreTest::CountKeys(const std::string& prefix) {
  engine::RangeOptions o;
  o.range_end = engine::prefix_range_end(prefix);
  o.count_only = true;
  auto r = a_->client->range(prefix, o, Deadline::after(milliseconds(5000)));
  EXPECT_TRUE(r.ok()) << r.status().to_string();
  return r.ok() ? r->count : -1;
}

std::int64_t StoreTest::ModRevision(const std::string& key) {
  auto r = a_->client->range(key, {}, Deadline::after(milliseconds(5000)));
  EXPECT_TRUE(r.ok()) << r.status().to_string();
  return r.ok() && !r->kvs.empty() ? r->kvs.front().mod_revision : 0;
}

}  // namespace mishka::test
