// What a RepoHost keeps per node (include/mishka/repo.h): the running node, the pub/sub it
// broadcasts through, and the relay that hands the node's callbacks to whichever repo runs on
// it now. The node outlives repos (the no-op restart of CONTRACT.md section 3), so its
// callbacks cannot point at a repo directly.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "engine/etcd_member.h"
#include "engine/local_engine.h"
#include "engine/presence.h"
#include "mishka/pubsub.h"
#include "mishka/repo.h"
#include "store/local_node.h"

namespace mishka::repo {

// The callbacks of a node, forwarded to the repo attached now (or dropped when none is).
// Thread-safe: the node calls from its threads while repos attach and detach.
class NodeRelay {
 public:
  struct Listeners {
    std::function<void(const engine::NodeEvent&)> node_event;
    std::function<void(const engine::ClusterMismatch&)> mismatch;
    std::function<void(const std::string&)> removed;
    std::function<void(const engine::MemberEvent&)> member_event;
  };
  // Attaches a repo and tells it, at once, what the node said before that a repo must know
  // (a removal, cluster mismatches, a member that gave up). False, and nothing attached, when
  // a repo is attached already.
  bool attach(Listeners listeners);
  bool attached() const;
  // After detach() returns, no listener of the detached repo is running or will run.
  void detach();

  void node_event(const engine::NodeEvent& event);
  void mismatch(const engine::ClusterMismatch& mismatch);
  void removed(const std::string& detail);
  void member_event(const engine::MemberEvent& event);

 private:
  // Held while a listener runs, so that detach() waits for it. Listeners must not stop the
  // repo (docs/repo.md, "Threads").
  mutable std::mutex mu_;
  Listeners listeners_;
  bool attached_ = false;
  // The node says these once; a repo that attaches later hears them from here.
  std::vector<engine::ClusterMismatch> mismatches_;
  std::optional<std::string> removed_;
  std::optional<engine::MemberEvent> gave_up_;
};

struct HostedNode {
  std::string dir;  // absolute
  std::string node_name;
  std::shared_ptr<pubsub::PubSub> own_pubsub;  // when the first repo made its own
  pubsub::PubSub* pubsub = nullptr;
  std::shared_ptr<NodeRelay> relay = std::make_shared<NodeRelay>();
  std::unique_ptr<store::LocalNode> node;
  // Tables the replica held when the node opened (from its snapshot file): "already_loaded".
  std::vector<std::string> loaded_at_open;
  // Stops the node, then drops the pub/sub it broadcast through.
  ~HostedNode();
};

}  // namespace mishka::repo

namespace mishka {

class RepoHost::Impl {
 public:
  std::shared_ptr<repo::HostedNode> find(const std::string& dir) const;
  void keep(std::shared_ptr<repo::HostedNode> node);
  // Removes the node of `dir` (it stops when its last holder lets go).
  void drop(const std::string& dir);
  std::vector<std::string> directories() const;
  void stop_all();

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<repo::HostedNode>> nodes_;
};

}  // namespace mishka
