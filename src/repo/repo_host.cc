#include "repo/repo_host.h"

#include <utility>

namespace mishka::repo {

bool NodeRelay::attach(Listeners listeners) {
  std::lock_guard<std::mutex> lock(mu_);
  if (attached_) return false;
  attached_ = true;
  listeners_ = std::move(listeners);
  if (removed_ && listeners_.removed) listeners_.removed(*removed_);
  if (listeners_.mismatch) {
    for (const engine::ClusterMismatch& m : mismatches_) listeners_.mismatch(m);
  }
  if (gave_up_ && listeners_.member_event) listeners_.member_event(*gave_up_);
  return true;
}

bool NodeRelay::attached() const {
  std::lock_guard<std::mutex> lock(mu_);
  return attached_;
}

void NodeRelay::detach() {
  std::lock_guard<std::mutex> lock(mu_);
  listeners_ = Listeners{};
  attached_ = false;
}

void NodeRelay::node_event(const engine::NodeEvent& event) {
  std::lock_guard<std::mutex> lock(mu_);
  if (listeners_.node_event) listeners_.node_event(event);
}

void NodeRelay::mismatch(const engine::ClusterMismatch& mismatch) {
  std::lock_guard<std::mutex> lock(mu_);
  mismatches_.push_back(mismatch);
  if (listeners_.mismatch) listeners_.mismatch(mismatch);
}

void NodeRelay::removed(const std::string& detail) {
  std::lock_guard<std::mutex> lock(mu_);
  removed_ = detail;
  if (listeners_.removed) listeners_.removed(detail);
}

void NodeRelay::member_event(const engine::MemberEvent& event) {
  std::lock_guard<std::mutex> lock(mu_);
  if (event.kind == engine::MemberEvent::Kind::gave_up) gave_up_ = event;
  if (listeners_.member_event) listeners_.member_event(event);
}

HostedNode::~HostedNode() {
  relay->detach();
  if (node) node->stop();
  node.reset();
  own_pubsub.reset();
}

}  // namespace mishka::repo

namespace mishka {

std::shared_ptr<repo::HostedNode> RepoHost::Impl::find(const std::string& dir) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = nodes_.find(dir);
  return it == nodes_.end() ? nullptr : it->second;
}

void RepoHost::Impl::keep(std::shared_ptr<repo::HostedNode> node) {
  std::lock_guard<std::mutex> lock(mu_);
  nodes_[node->dir] = std::move(node);
}

void RepoHost::Impl::drop(const std::string& dir) {
  std::shared_ptr<repo::HostedNode> dropped;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = nodes_.find(dir);
    if (it == nodes_.end()) return;
    dropped = std::move(it->second);
    nodes_.erase(it);
  }
  // Stopped outside the lock: a node's stop waits for its etcd member.
}

std::vector<std::string> RepoHost::Impl::directories() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> dirs;
  for (const auto& [dir, node] : nodes_) dirs.push_back(dir);
  return dirs;
}

void RepoHost::Impl::stop_all() {
  std::map<std::string, std::shared_ptr<repo::HostedNode>> all;
  {
    std::lock_guard<std::mutex> lock(mu_);
    all.swap(nodes_);
  }
}

RepoHost::RepoHost() : impl_(std::make_unique<Impl>()) {}
RepoHost::~RepoHost() {
  stop_all();
}
void RepoHost::stop_all() {
  impl_->stop_all();
}
std::vector<std::string> RepoHost::directories() const {
  return impl_->directories();
}

}  // namespace mishka
