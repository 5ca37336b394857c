// MnesiaRepo (include/mishka/repo.h): boot, pending, node events, health and inconsistency.
// docs/repo.md explains the rules; CONTRACT.md sections 3 to 8 are what they implement.
#include <algorithm>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <utility>

#include "engine/etcd_client.h"
#include "engine/etcd_member.h"
#include "engine/identity.h"
#include "engine/join.h"
#include "engine/node_name.h"
#include "engine/presence.h"
#include "engine/tls_material.h"
#include "mishka/repo.h"
#include "mishka/telemetry.h"
#include "repo/repo_host.h"
#include "repo/repo_values.h"
#include "store/local_node.h"

namespace mishka {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using telemetry::EventName;
using telemetry::Metadata;

namespace {

EventName event(std::initializer_list<const char*> tail) {
  EventName name{kTelemetryApp, kTelemetryArea};
  for (const char* segment : tail) name.emplace_back(segment);
  return name;
}

Value strings(const std::vector<std::string>& items) {
  List list;
  for (const std::string& item : items) list.emplace_back(item);
  return Value(std::move(list));
}

std::string join_names(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& name : names) out += (out.empty() ? "" : ", ") + name;
  return out;
}

bool contains(const std::vector<std::string>& list, const std::string& item) {
  return std::find(list.begin(), list.end(), item) != list.end();
}

// A joiner whose node could not open for one of these reasons is not broken: its cluster is
// away or its join failed part way (the engine cleaned up). It waits as pending and retries.
bool cluster_unreachable(StatusCode code) {
  switch (code) {
    case StatusCode::invalid_argument:
    case StatusCode::node_name_mismatch:
    case StatusCode::corrupt:
    case StatusCode::io_error:
    case StatusCode::unsupported:
    case StatusCode::internal:
    case StatusCode::removed:
    case StatusCode::permission_denied:
    case StatusCode::space_exceeded:
      return false;
    default:
      return true;
  }
}

constexpr milliseconds kQueryTimeout{2000};

}  // namespace

class MnesiaRepo::Impl {
 public:
  explicit Impl(RepoOptions options) : options_(std::move(options)) {}
  ~Impl() { stop(); }

  Status start();
  void stop();

  RepoState state() const;
  RepoStatus status() const {
    std::lock_guard<std::mutex> lock(mu_);
    return status_;
  }
  std::vector<TableSchema> schemas() const;
  HealthReport health_check();
  Result<NodeUpResult> handle_nodeup(const std::string& peer);
  Result<bool> handle_nodedown(const std::string& peer);
  Store* store() const;
  std::shared_ptr<Store> shared_store() const;
  Result<ReplicaDigest> digest(milliseconds timeout);
  Status remove_node(const std::string& node, milliseconds timeout);
  std::optional<Status> failure() const;
  void on_failure(std::function<void(const Status&)> listener);

  telemetry::Telemetry& telemetry() const { return *telemetry_; }
  pubsub::PubSub& pubsub() const { return *pubsub_; }
  const RepoOptions& options() const { return options_; }

 private:
  enum class Outcome { ready, pending, inconsistent };

  Status prepare();
  Status boot(Metadata& metadata);
  // Opens (or finds in the host) the node and loads the essential tables: boot and every
  // pending retry.
  Result<Outcome> bring_up(bool at_boot);
  // The node's TLS material (from the cookie or the operator's CA), once per repo.
  Status prepare_tls();
  // ok when the directory holds no completed membership and no configured peer answers:
  // engine_unavailable naming each peer's error. A join would wait out its call deadline on
  // every unreachable peer; one status call per peer, bounded by probe_interval, is cheaper.
  Status first_join_possible() const;
  Result<std::shared_ptr<repo::HostedNode>> open_node();
  // False when another repo is attached to the node already.
  bool attach_relay(repo::HostedNode& hosted);
  Status seed_tables(store::LocalNode& node);
  Status joiner_tables(store::LocalNode& node, const std::vector<std::string>& loaded_at_open);
  Status wait_tables(store::LocalNode& node, std::vector<std::string> tables);
  void become_ready();

  // The worker: node events, probe events, the timers.
  void post(std::function<void()> task);
  // Runs a task of the worker; what it throws is logged, never lets the worker die.
  void run_guarded(const std::function<void()>& task) const;
  void worker_loop();
  void run_timers();
  NodeUpResult nodeup(const std::string& peer, bool from_monitor);
  bool nodedown(const std::string& peer);
  NodeUpResult retry_join(const std::string& peer);
  void on_peer_event(const engine::PeerEvent& event);
  void schedule_retry();

  void mark_inconsistent(const std::string& remote, const std::string& context);
  void fail(Status failure);
  void broadcast(const std::string& status, Value data);
  void emit(const EventName& name, telemetry::Measurements measurements, Metadata metadata);
  std::int64_t system_time() const { return telemetry_->clock().system_time_ns(); }
  std::vector<std::string> local_tables() const;
  bool all_essential_local(const store::LocalNode& node) const;
  bool known_member(const std::string& peer) const;
  void refresh_known_members();
  void log(LogLevel level, const std::string& message) const;

  RepoOptions options_;
  std::string dir_;
  bool dynamic_ = false;
  std::vector<std::string> essential_names_;
  std::unique_ptr<telemetry::Telemetry> own_telemetry_;
  telemetry::Telemetry* telemetry_ = nullptr;
  // The repo's own pub/sub (none given), shared with the node it opens: the node broadcasts
  // through it for as long as it runs, which may be longer than the repo.
  std::shared_ptr<pubsub::PubSub> own_pubsub_;
  pubsub::PubSub* pubsub_ = nullptr;
  std::unique_ptr<RepoHost> own_host_;
  RepoHost* host_ = nullptr;
  std::optional<engine::TlsFiles> tls_;
  std::optional<engine::MemberTls> member_tls_;
  std::uint16_t metrics_port_ = 0;
  std::unique_ptr<engine::PeerProbe> probe_;

  // The node; empty while pending. Set by boot and the worker only; read under mu_.
  std::shared_ptr<repo::HostedNode> hosted_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  RepoStatus status_ = RepoStatus::starting;
  std::string inconsistency_;
  std::string pending_reason_;
  std::set<std::string> reported_mismatches_;
  std::set<std::string> known_members_;
  std::optional<Status> failure_;
  std::function<void(const Status&)> failure_listener_;
  std::deque<std::function<void()>> tasks_;
  bool worker_running_ = false;
  bool stopping_ = false;
  bool stop_begun_ = false;  // one stop() does the work; later calls return at once
  std::optional<Clock::time_point> retry_at_;
  milliseconds retry_delay_{0};
  std::optional<Clock::time_point> health_at_;
  std::thread worker_;
};

// ---------------------------------------------------------------------------------------------
// Boot

Status MnesiaRepo::Impl::prepare() {
  MISHKA_RETURN_IF_ERROR(validate_repo_options(options_));
  std::string dir = options_.mnesia_dir;
  if (dir.empty()) {
    Result<std::string> fallback = default_mnesia_dir();
    if (!fallback.ok()) return fallback.status().with_context("option 'mnesia_dir'");
    dir = *fallback;
  }
  std::error_code error;
  std::filesystem::path absolute = std::filesystem::absolute(dir, error);
  if (error) return io_error("option 'mnesia_dir': cannot resolve " + dir + ": " + error.message());
  dir_ = absolute.lexically_normal().string();
  while (dir_.size() > 1 && dir_.back() == '/') dir_.pop_back();

  // Names in their canonical form (NAME@HOST:PORT), so that "a@h" and "a@h:4370" are one node
  // everywhere: in etcd, in presence keys and in the nodeup rules.
  options_.node = engine::parse_node_name(options_.node).value().to_string();
  for (std::string& peer : options_.cluster_nodes) {
    peer = engine::parse_node_name(peer).value().to_string();
  }
  dynamic_ = options_.dynamic_membership && !options_.cluster_nodes.empty();
  for (const TableSpec& spec : options_.essential) essential_names_.push_back(spec.name);

  if (options_.telemetry == nullptr) {
    own_telemetry_ = std::make_unique<telemetry::Telemetry>(
        telemetry::TelemetryOptions{.log = options_.log, .clock = nullptr});
    telemetry_ = own_telemetry_.get();
  } else {
    telemetry_ = options_.telemetry;
  }
  if (options_.host == nullptr) {
    own_host_ = std::make_unique<RepoHost>();
    host_ = own_host_.get();
  } else {
    host_ = options_.host;
  }
  return Status::Ok();
}

Status MnesiaRepo::Impl::start() {
  MISHKA_RETURN_IF_ERROR(prepare());
  // The node of a repo restarted in this process keeps its pub/sub (subscribers stay).
  std::shared_ptr<repo::HostedNode> existing = host_->impl().find(dir_);
  if (existing != nullptr && existing->node_name != options_.node) {
    return Status(StatusCode::node_name_mismatch,
                  "directory " + dir_ + " runs node " + existing->node_name +
                      " in this process; this repo is configured as " + options_.node);
  }
  if (existing != nullptr && existing->relay->attached()) {
    return invalid_argument("directory " + dir_ + " has a running repo in this process already");
  }
  if (options_.pubsub != nullptr) {
    Result<engine::NodeName> named = engine::parse_node_name(options_.pubsub->node_name());
    if (!named.ok() || named->to_string() != options_.node) {
      return invalid_argument("option 'pubsub': its node name is " + options_.pubsub->node_name() +
                              ", not the repo's node " + options_.node);
    }
    if (existing != nullptr && existing->pubsub != options_.pubsub) {
      // The running node broadcasts through the pub/sub it was opened with.
      return invalid_argument("option 'pubsub': node " + options_.node +
                              " runs in this process with another pub/sub; give that one (or "
                              "none)");
    }
    pubsub_ = options_.pubsub;
  } else if (existing != nullptr) {
    pubsub_ = existing->pubsub;
    own_pubsub_ = existing->own_pubsub;
  } else {
    Result<std::unique_ptr<pubsub::PubSub>> created = pubsub::PubSub::create(
        pubsub::PubSubOptions{.node_name = options_.node, .log = options_.log});
    if (!created.ok()) return created.status().with_context("creating the repo's pub/sub");
    own_pubsub_ = std::shared_ptr<pubsub::PubSub>(std::move(created).value());
    pubsub_ = own_pubsub_.get();
  }

  Metadata metadata{{"node", Value(options_.node)}};
  Status booted;
  try {
    booted = telemetry_->span(event({"init"}), std::move(metadata), [this](Metadata& md) {
      Status result = boot(md);
      md["result"] = Value(result.ok() ? "ok" : "stop");
      md["tables"] = strings(local_tables());
      return result;
    });
  } catch (const std::exception& e) {
    // The span reported it (init.exception); the caller gets an error value, not a throw.
    booted = Status(StatusCode::internal, "node " + options_.node + ": boot threw: " + e.what());
  } catch (...) {
    booted = Status(StatusCode::internal, "node " + options_.node + ": boot threw");
  }
  if (!booted.ok()) {
    // A failed boot leaves no node behind for the next attempt to trip over.
    std::shared_ptr<repo::HostedNode> failed;
    {
      std::lock_guard<std::mutex> lock(mu_);
      failed.swap(hosted_);
    }
    if (failed != nullptr) failed->relay->detach();
    failed.reset();
    host_->impl().drop(dir_);
    stop();
    return booted;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    worker_running_ = true;
  }
  worker_ = std::thread([this] { worker_loop(); });
  return Status::Ok();
}

Status MnesiaRepo::Impl::boot(Metadata& /*metadata*/) {
  if (options_.cookie.empty() && options_.ca_cert_path.empty()) {
    log(LogLevel::warning,
        "no cookie: links between etcd members are neither encrypted nor authenticated");
  } else {
    MISHKA_RETURN_IF_ERROR(prepare_tls());
  }
  // Step 1: node events that come during boot wait in the queue until boot ends. The probe
  // of configured peers serves pending joins and the inconsistency check alike.
  if (!options_.cluster_nodes.empty()) {
    Result<std::unique_ptr<engine::PeerProbe>> probe =
        engine::PeerProbe::create(engine::PeerProbeOptions{
            .peers = options_.cluster_nodes,
            .tls = tls_,
            .interval = options_.probe_interval,
            .probe_timeout = options_.probe_interval,
            .on_event =
                [this](const engine::PeerEvent& e) { post([this, e] { on_peer_event(e); }); },
            .log = options_.log});
    if (!probe.ok()) return probe.status();
    probe_ = std::move(probe).value();
  }
  if (probe_ != nullptr) probe_->start();
  Result<Outcome> outcome = bring_up(true);
  if (!outcome.ok()) return outcome.status();
  if (*outcome == Outcome::pending) schedule_retry();
  return Status::Ok();
}

Result<MnesiaRepo::Impl::Outcome> MnesiaRepo::Impl::bring_up(bool at_boot) {
  const bool joiner = !options_.cluster_nodes.empty();
  std::shared_ptr<repo::HostedNode> hosted = host_->impl().find(dir_);
  const engine::EtcdMember* member = hosted != nullptr ? hosted->node->engine().member() : nullptr;
  if (member != nullptr && !member->running()) {
    // Its etcd member gave up: that node is of no use any more; open the directory afresh.
    log(LogLevel::warning, "the node kept in this process lost its etcd member; reopening it");
    hosted.reset();
    host_->impl().drop(dir_);
  }
  const bool reused = hosted != nullptr;
  if (reused) {
    if (!attach_relay(*hosted)) {
      return invalid_argument("directory " + dir_ + " has a running repo in this process already");
    }
  } else {
    Status possible = joiner ? first_join_possible() : Status::Ok();
    Result<std::shared_ptr<repo::HostedNode>> opened =
        possible.ok() ? open_node() : Result<std::shared_ptr<repo::HostedNode>>(possible);
    if (!opened.ok()) {
      const Status& error = opened.status();
      if (joiner && error.code() == StatusCode::removed) {
        mark_inconsistent(options_.node, "removed: " + error.message());
        return Outcome::inconsistent;
      }
      if (!joiner || !cluster_unreachable(error.code())) return error;
      {
        std::lock_guard<std::mutex> lock(mu_);
        pending_reason_ = error.to_string();
        if (status_ != RepoStatus::inconsistent) status_ = RepoStatus::pending;
      }
      log(at_boot ? LogLevel::warning : LogLevel::info, "pending: could not join the cluster of " +
                                                            join_names(options_.cluster_nodes) +
                                                            ": " + error.to_string());
      return Outcome::pending;
    }
    hosted = std::move(opened).value();
    host_->impl().keep(hosted);
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    hosted_ = hosted;
    pending_reason_.clear();
  }
  store::LocalNode& node = *hosted->node;

  // Step 2, the restart no-op: the node ran on in this process with everything loaded.
  if (!(reused && all_essential_local(node))) {
    if (joiner) {
      MISHKA_RETURN_IF_ERROR(joiner_tables(node, hosted->loaded_at_open));
    } else {
      MISHKA_RETURN_IF_ERROR(seed_tables(node));
    }
  }
  become_ready();
  std::lock_guard<std::mutex> lock(mu_);
  return status_ == RepoStatus::inconsistent ? Outcome::inconsistent : Outcome::ready;
}

Status MnesiaRepo::Impl::prepare_tls() {
  if (tls_ || (options_.cookie.empty() && options_.ca_cert_path.empty())) return Status::Ok();
  const engine::NodeName name = engine::parse_node_name(options_.node).value();
  Result<engine::CaMaterial> ca =
      options_.ca_cert_path.empty()
          ? engine::derive_cluster_ca(options_.cookie)
          : engine::load_operator_ca(options_.ca_cert_path, options_.ca_key_path);
  if (!ca.ok()) return ca.status().with_context("the cluster CA");
  std::error_code error;
  std::filesystem::create_directories(dir_, error);
  if (error) return io_error("cannot create " + dir_ + ": " + error.message());
  std::filesystem::permissions(dir_, std::filesystem::perms::owner_all, error);
  if (error) return io_error("cannot set the mode of " + dir_ + ": " + error.message());
  Result<engine::NodeTls> material =
      engine::ensure_node_tls(dir_ + "/tls", *ca, options_.node, name.host);
  if (!material.ok()) return material.status();
  tls_ = material->files;
  member_tls_ = material->paths;
  metrics_port_ = options_.metrics_port.value_or(static_cast<std::uint16_t>(name.port + 2));
  return Status::Ok();
}

Status MnesiaRepo::Impl::first_join_possible() const {
  Result<std::optional<engine::Identity>> identity = engine::check_identity(dir_, options_.node);
  // A member restarts on its own directory even with no configured peer up (its cluster may
  // have other members); a bad identity is for the node's open to report.
  if (!identity.ok() || (identity->has_value() && (*identity)->cluster_id != 0)) {
    return Status::Ok();
  }
  std::string errors;
  for (const std::string& peer : options_.cluster_nodes) {
    engine::ClientOptions client_options;
    client_options.endpoints = {engine::parse_node_name(peer).value().client_endpoint()};
    client_options.tls = tls_;
    Result<std::unique_ptr<engine::EtcdClient>> client = engine::EtcdClient::create(client_options);
    Result<engine::EndpointStatus> status =
        client.ok() ? (*client)->status("", engine::Deadline::after(options_.probe_interval))
                    : Result<engine::EndpointStatus>(client.status());
    if (status.ok()) return Status::Ok();
    errors += (errors.empty() ? "" : "; ") + peer + ": " + status.status().to_string();
  }
  return Status(StatusCode::engine_unavailable, "no configured peer answers (" + errors + ")");
}

Result<std::shared_ptr<repo::HostedNode>> MnesiaRepo::Impl::open_node() {
  const engine::NodeName name = engine::parse_node_name(options_.node).value();
  auto hosted = std::make_shared<repo::HostedNode>();
  hosted->dir = dir_;
  hosted->node_name = options_.node;
  hosted->pubsub = pubsub_;
  (void)attach_relay(*hosted);  // a new node: nobody is attached yet

  store::LocalNodeConfig c;
  c.engine.node_name = options_.node;
  c.engine.mnesia_dir = dir_;
  c.engine.etcd_binary = options_.etcd_binary;
  c.engine.host = name.host;
  c.engine.client_port = name.port;
  c.engine.peer_port = options_.peer_port.value_or(static_cast<std::uint16_t>(name.port + 1));
  c.engine.peers = options_.cluster_nodes;
  c.engine.target_voters = options_.target_voters;
  c.engine.join_timeout = options_.join_timeout;
  c.engine.ready_timeout = options_.member_ready_timeout;
  c.engine.membership_interval = options_.membership_interval;
  c.engine.call_timeout = options_.call_timeout;
  c.replica_call_timeout = options_.call_timeout;
  c.engine.give_up_after = options_.member_give_up_after;
  c.engine.tls = tls_;
  c.engine.member_tls = member_tls_;
  c.engine.metrics_port = metrics_port_;
  std::shared_ptr<repo::NodeRelay> relay = hosted->relay;
  c.engine.mismatch_listener = [relay](const engine::ClusterMismatch& m) { relay->mismatch(m); };
  c.engine.removed_listener = [relay](const std::string& detail) { relay->removed(detail); };
  c.engine.member_listener = [relay](const engine::MemberEvent& e) { relay->member_event(e); };
  c.presence_ttl_seconds = options_.presence_ttl_seconds;
  // The monitor runs whenever the node does: a repo restarted later may be dynamic.
  c.on_node_event = [relay](const engine::NodeEvent& e) { relay->node_event(e); };
  c.pubsub = pubsub_;
  c.log = options_.log;

  Result<std::unique_ptr<store::LocalNode>> opened = store::LocalNode::open(std::move(c));
  if (!opened.ok()) return opened.status();
  hosted->node = std::move(opened).value();
  hosted->own_pubsub = own_pubsub_;
  if (hosted->node->replica().stats().loaded_from_snapshot_revision > 0) {
    hosted->loaded_at_open = hosted->node->replica().read().catalog().table_names();
  }
  return hosted;
}

bool MnesiaRepo::Impl::attach_relay(repo::HostedNode& hosted) {
  repo::NodeRelay::Listeners listeners;
  listeners.node_event = [this](const engine::NodeEvent& e) {
    if (!dynamic_) return;
    post([this, e] {
      if (e.kind == engine::NodeEvent::Kind::up) {
        nodeup(e.node, true);
      } else {
        nodedown(e.node);
      }
    });
  };
  listeners.mismatch = [this](const engine::ClusterMismatch& m) {
    mark_inconsistent(m.peer, m.context);
  };
  listeners.removed = [this](const std::string& detail) {
    mark_inconsistent(options_.node, "removed: " + detail);
  };
  listeners.member_event = [this](const engine::MemberEvent& e) {
    if (e.kind == engine::MemberEvent::Kind::gave_up) {
      fail(Status(StatusCode::engine_unavailable,
                  "node " + options_.node + ": its etcd member gave up after " +
                      std::to_string(e.restarts) + " restarts: " + e.detail));
    }
  };
  return hosted.relay->attach(std::move(listeners));
}

Status MnesiaRepo::Impl::seed_tables(store::LocalNode& node) {
  // The tables the node holds now are the local ones; wait until they are loaded (3.1).
  MISHKA_RETURN_IF_ERROR(wait_tables(node, node.replica().read().catalog().table_names()));
  std::vector<std::string> failed;
  for (const TableSpec& spec : options_.essential) {
    std::string status;
    std::string why;
    const store::Table* present = node.replica().read().catalog().find(spec.name);
    if (present != nullptr) {
      status = present->spec() == spec ? "already_loaded" : "error";
      if (status == "error") why = "exists with another definition";
    } else {
      Status created = node.store().create_table(spec);
      if (created.ok()) {
        status = "created";
      } else if (created.code() == StatusCode::already_exists) {
        status = "already_exists";
      } else {
        status = "error";
        why = created.to_string();
      }
    }
    if (status == "error") failed.push_back(spec.name + " (" + why + ")");
    emit(event({"table"}), {{"system_time", Value(system_time())}},
         {{"table", Value(spec.name)}, {"status", Value(status)}});
  }
  if (!failed.empty()) {
    return Status(StatusCode::essential_table_failed,
                  "node " + options_.node + ": essential tables failed: " + join_names(failed));
  }
  return wait_tables(node, essential_names_);
}

Status MnesiaRepo::Impl::joiner_tables(store::LocalNode& node,
                                       const std::vector<std::string>& loaded_at_open) {
  Status waited = wait_tables(node, essential_names_);
  std::vector<std::string> failed;
  for (const TableSpec& spec : options_.essential) {
    const store::Table* present = node.replica().read().catalog().find(spec.name);
    std::string status;
    if (present == nullptr) {
      status = "error";
      failed.push_back(spec.name + " (not in the cluster)");
    } else if (!(present->spec() == spec)) {
      status = "error";
      failed.push_back(spec.name + " (the cluster's definition differs)");
    } else {
      status = contains(loaded_at_open, spec.name) ? "already_loaded" : "copied";
    }
    emit(event({"table"}), {{"system_time", Value(system_time())}},
         {{"table", Value(spec.name)}, {"status", Value(status)}});
  }
  if (!waited.ok()) return waited;
  if (!failed.empty()) {
    return Status(StatusCode::essential_table_failed,
                  "node " + options_.node + ": essential tables failed: " + join_names(failed));
  }
  return Status::Ok();
}

Status MnesiaRepo::Impl::wait_tables(store::LocalNode& node, std::vector<std::string> tables) {
  // Nothing to wait for is not a failure, even with wait_retries = 0.
  store::TablesWait now = node.wait_for_tables(tables, milliseconds(0));
  if (now.status.ok()) return Status::Ok();
  tables = now.missing;
  for (int slice = 1; slice <= options_.wait_retries; ++slice) {
    store::TablesWait waited = node.wait_for_tables(tables, options_.wait_timeout);
    if (waited.status.ok()) return Status::Ok();
    if (waited.status.code() == StatusCode::engine_unavailable) return waited.status;
    tables = waited.missing;
    log(LogLevel::warning, "tables still loading after slice " + std::to_string(slice) + " of " +
                               std::to_string(options_.wait_retries) + " (" +
                               std::to_string(options_.wait_timeout.count()) + " ms each): " +
                               join_names(tables) + " (" + waited.status.message() + ")");
  }
  return Status(StatusCode::tables_unavailable,
                "node " + options_.node + ": tables not loaded after " +
                    std::to_string(options_.wait_retries) + " slices of " +
                    std::to_string(options_.wait_timeout.count()) + " ms: " + join_names(tables));
}

void MnesiaRepo::Impl::become_ready() {
  refresh_known_members();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (status_ == RepoStatus::inconsistent) return;
    status_ = RepoStatus::synchronized;
    retry_at_.reset();
    if (options_.health_interval.count() > 0) {
      health_at_ = Clock::now() + options_.health_interval;
    }
  }
  cv_.notify_all();
  const std::vector<std::string> tables = local_tables();
  broadcast("synchronized", repo::synchronized_data(options_.node, tables, schemas()));
  emit(event({"synchronized"}), {{"system_time", Value(system_time())}},
       {{"node", Value(options_.node)}, {"tables", strings(tables)}});
  log(LogLevel::info, "synchronized: " + join_names(tables));
}

// ---------------------------------------------------------------------------------------------
// The worker

void MnesiaRepo::Impl::post(std::function<void()> task) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    tasks_.push_back(std::move(task));
  }
  cv_.notify_all();
}

void MnesiaRepo::Impl::run_guarded(const std::function<void()>& task) const {
  try {
    task();
  } catch (const std::exception& e) {
    log(LogLevel::error, std::string("a task of the repo's thread threw: ") + e.what());
  } catch (...) {
    log(LogLevel::error, "a task of the repo's thread threw a non-standard exception");
  }
}

void MnesiaRepo::Impl::worker_loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    if (!tasks_.empty()) {
      std::function<void()> task = std::move(tasks_.front());
      tasks_.pop_front();
      lock.unlock();
      run_guarded(task);
      lock.lock();
      continue;
    }
    const Clock::time_point now = Clock::now();
    if ((retry_at_ && *retry_at_ <= now) || (health_at_ && *health_at_ <= now)) {
      lock.unlock();
      run_timers();
      lock.lock();
      continue;
    }
    std::optional<Clock::time_point> next = retry_at_;
    if (health_at_ && (!next || *health_at_ < *next)) next = health_at_;
    if (next) {
      cv_.wait_until(lock, *next);
    } else {
      cv_.wait(lock);
    }
  }
}

void MnesiaRepo::Impl::run_timers() {
  const Clock::time_point now = Clock::now();
  bool retry = false;
  bool health = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (retry_at_ && *retry_at_ <= now) {
      retry_at_.reset();
      retry = status_ == RepoStatus::pending;
    }
    if (health_at_ && *health_at_ <= now) {
      health_at_ = now + options_.health_interval;
      health = true;
    }
  }
  if (retry) retry_join(options_.cluster_nodes.front());
  if (health) health_check();
}

void MnesiaRepo::Impl::schedule_retry() {
  std::lock_guard<std::mutex> lock(mu_);
  retry_delay_ = retry_delay_.count() == 0 ? options_.retry_min
                                           : std::min(retry_delay_ * 2, options_.retry_max);
  retry_at_ = Clock::now() + retry_delay_;
  cv_.notify_all();
}

NodeUpResult MnesiaRepo::Impl::retry_join(const std::string& peer) {
  NodeUpResult result;
  Result<Outcome> outcome = bring_up(false);
  if (!outcome.ok()) {
    // A hard error (corrupt directory, failed essential tables): still pending, said loudly.
    log(LogLevel::error, "join attempt failed: " + outcome.status().to_string());
    std::shared_ptr<repo::HostedNode> failed;
    {
      std::lock_guard<std::mutex> lock(mu_);
      pending_reason_ = outcome.status().to_string();
      failed.swap(hosted_);
    }
    if (failed != nullptr) failed->relay->detach();
    failed.reset();
    host_->impl().drop(dir_);
    result.action = "pending";
  } else if (*outcome == Outcome::ready) {
    result.action = "joined";
  } else if (*outcome == Outcome::pending) {
    result.action = "pending";
  } else {
    result.action = "error";
    result.reason = "inconsistent";
  }
  emit(event({"cluster", "nodeup"}), {{"system_time", Value(system_time())}},
       {{"node", Value(options_.node)},
        {"peer", Value(peer)},
        {"action", repo::action_value(result)}});
  if (result.action == "joined") {
    std::lock_guard<std::mutex> lock(mu_);
    retry_delay_ = milliseconds(0);
  }
  if (result.action == "joined")
    broadcast("cluster_changed", repo::cluster_changed_data(options_.node, peer));
  bool still_pending = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    still_pending = status_ == RepoStatus::pending;
  }
  if (still_pending) schedule_retry();
  return result;
}

NodeUpResult MnesiaRepo::Impl::nodeup(const std::string& peer, bool from_monitor) {
  RepoStatus status;
  {
    std::lock_guard<std::mutex> lock(mu_);
    status = status_;
  }
  if (!contains(options_.cluster_nodes, peer)) {
    NodeUpResult result{.action = "ignored", .reason = ""};
    emit(event({"cluster", "nodeup"}), {{"system_time", Value(system_time())}},
         {{"node", Value(options_.node)}, {"peer", Value(peer)}, {"action", Value("ignored")}});
    return result;
  }
  if (status == RepoStatus::pending) return retry_join(peer);

  NodeUpResult result;
  std::shared_ptr<repo::HostedNode> hosted;
  {
    std::lock_guard<std::mutex> lock(mu_);
    hosted = hosted_;
  }
  if (hosted == nullptr) {
    std::lock_guard<std::mutex> lock(mu_);
    result = {.action = "error", .reason = "no node runs here (" + inconsistency_ + ")"};
  } else if (known_member(peer)) {
    result.action = "already_member";
  } else {
    engine::NodeMonitor* monitor = hosted->node->node_monitor();
    const bool present = monitor != nullptr && monitor->up().count(peer) > 0;
    if (!present && from_monitor) {
      result.action = "unreachable";
    } else if (!present) {
      // Told by the program, not seen by this node's monitor: not in this cluster.
      result.action = "unreachable";
    } else {
      // A peer new to this cluster: catch up with what it brought, then count it in.
      Status synced = hosted->node->replica().sync(
          engine::Deadline::after(std::max(options_.wait_timeout, milliseconds(1))));
      if (synced.ok()) {
        result.action = "connected";
        std::lock_guard<std::mutex> lock(mu_);
        known_members_.insert(peer);
      } else {
        result = {.action = "error", .reason = synced.to_string()};
      }
    }
  }
  emit(event({"cluster", "nodeup"}), {{"system_time", Value(system_time())}},
       {{"node", Value(options_.node)},
        {"peer", Value(peer)},
        {"action", repo::action_value(result)}});
  if (result.action == "already_member" || result.action == "connected") {
    broadcast("cluster_changed", repo::cluster_changed_data(options_.node, peer));
  }
  return result;
}

bool MnesiaRepo::Impl::nodedown(const std::string& peer) {
  const bool member = known_member(peer);
  log(LogLevel::warning, "nodedown: " + peer + (member ? " (a member of this cluster)" : "") +
                             "; it stays a member until an operator removes it");
  emit(event({"cluster", "nodedown"}), {{"system_time", Value(system_time())}},
       {{"node", Value(options_.node)}, {"peer", Value(peer)}, {"db_member?", Value(member)}});
  return member;
}

void MnesiaRepo::Impl::on_peer_event(const engine::PeerEvent& e) {
  if (e.kind != engine::NodeEvent::Kind::up) return;
  std::uint64_t own = 0;
  RepoStatus status;
  {
    std::lock_guard<std::mutex> lock(mu_);
    status = status_;
    if (hosted_ != nullptr) own = hosted_->node->engine().identity().cluster_id;
  }
  if (own == 0) {
    // A pending node that was a member before knows its cluster from its identity file.
    Result<std::optional<engine::Identity>> identity = engine::check_identity(dir_, options_.node);
    if (identity.ok() && identity->has_value()) own = (*identity)->cluster_id;
  }
  if (own != 0 && e.cluster_id != 0 && e.cluster_id != own) {
    mark_inconsistent(e.peer, "configured peer " + e.peer + " belongs to cluster " +
                                  engine::hex_member_id(e.cluster_id) + ", this node to cluster " +
                                  engine::hex_member_id(own));
    return;
  }
  if (status == RepoStatus::pending && dynamic_) nodeup(e.peer, false);
}

// ---------------------------------------------------------------------------------------------
// Inconsistency, failure, announcements

void MnesiaRepo::Impl::mark_inconsistent(const std::string& remote, const std::string& context) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!reported_mismatches_.insert(remote + "\n" + context).second) return;
    status_ = RepoStatus::inconsistent;
    inconsistency_ = context;
    retry_at_.reset();
  }
  log(LogLevel::critical, "inconsistent database: " + context + " (remote node " + remote +
                              "); nothing is merged or wiped: an operator must resolve it "
                              "(docs/repo.md, \"Inconsistency\")");
  emit(event({"inconsistent_database"}), {{"system_time", Value(system_time())}},
       {{"node", Value(remote)}, {"context", Value(context)}});
}

void MnesiaRepo::Impl::fail(Status failure) {
  std::function<void(const Status&)> listener;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (failure_) return;
    failure_ = failure;
    listener = failure_listener_;
  }
  log(LogLevel::error, "failed: " + failure.to_string());
  if (listener) post([listener, failure] { listener(failure); });
}

void MnesiaRepo::Impl::broadcast(const std::string& status, Value data) {
  Status sent = pubsub_->broadcast(kRepoTopic, repo::message(status, std::move(data)));
  if (!sent.ok()) log(LogLevel::warning, "broadcasting " + status + ": " + sent.to_string());
}

void MnesiaRepo::Impl::emit(const EventName& name, telemetry::Measurements measurements,
                            Metadata metadata) {
  Status emitted = telemetry_->execute(name, measurements, metadata);
  if (!emitted.ok()) log(LogLevel::error, "telemetry: " + emitted.to_string());
}

// ---------------------------------------------------------------------------------------------
// Queries

std::vector<std::string> MnesiaRepo::Impl::local_tables() const {
  std::shared_ptr<repo::HostedNode> hosted;
  {
    std::lock_guard<std::mutex> lock(mu_);
    hosted = hosted_;
  }
  if (hosted == nullptr) return {};
  std::vector<std::string> tables{"schema"};
  for (std::string& name : hosted->node->replica().read().catalog().table_names()) {
    tables.push_back(std::move(name));
  }
  return tables;
}

bool MnesiaRepo::Impl::all_essential_local(const store::LocalNode& node) const {
  const replica::Replica::ReadView view = node.replica().read();
  return std::all_of(essential_names_.begin(), essential_names_.end(),
                     [&](const std::string& name) { return view.catalog().find(name) != nullptr; });
}

bool MnesiaRepo::Impl::known_member(const std::string& peer) const {
  std::lock_guard<std::mutex> lock(mu_);
  return known_members_.count(peer) > 0;
}

void MnesiaRepo::Impl::refresh_known_members() {
  std::shared_ptr<repo::HostedNode> hosted;
  {
    std::lock_guard<std::mutex> lock(mu_);
    hosted = hosted_;
  }
  if (hosted == nullptr) return;
  std::set<std::string> known;
  Result<std::vector<engine::Member>> members =
      hosted->node->engine().client().member_list(engine::Deadline::after(kQueryTimeout));
  if (members.ok()) {
    for (const engine::Member& m : *members) {
      if (!m.name.empty()) known.insert(m.name);
    }
  } else {
    log(LogLevel::warning,
        "cannot list the cluster's members (nodeup and nodedown may count a member as new): " +
            members.status().to_string());
  }
  if (engine::NodeMonitor* monitor = hosted->node->node_monitor()) {
    for (const std::string& up : monitor->up()) known.insert(up);
  }
  known.erase(options_.node);
  std::lock_guard<std::mutex> lock(mu_);
  known_members_.insert(known.begin(), known.end());
}

std::vector<TableSchema> MnesiaRepo::Impl::schemas() const {
  std::shared_ptr<repo::HostedNode> hosted;
  {
    std::lock_guard<std::mutex> lock(mu_);
    hosted = hosted_;
  }
  std::vector<TableSchema> out;
  if (hosted == nullptr) return out;
  hosted->node->replica().read().catalog().for_each_table([&](const store::Table& table) {
    out.push_back(TableSchema{.name = table.spec().name,
                              .storage = table.spec().storage,
                              .local_content = table.spec().local_content});
  });
  return out;
}

RepoState MnesiaRepo::Impl::state() const {
  RepoState state;
  std::shared_ptr<repo::HostedNode> hosted;
  {
    std::lock_guard<std::mutex> lock(mu_);
    state.status = status_;
    state.inconsistency = inconsistency_;
    state.pending_reason = pending_reason_;
    hosted = hosted_;
  }
  state.essential = essential_names_;
  state.dynamic = dynamic_;
  state.node = options_.node;
  if (hosted == nullptr) return state;
  state.tables = local_tables();
  state.schemas = schemas();
  engine::LocalEngine& engine = hosted->node->engine();
  state.cluster_id = engine.identity().cluster_id;
  state.role = engine::node_role_name(engine.role());
  repo::ClusterView view = repo::read_cluster_view(*hosted->node, kQueryTimeout);
  state.members = std::move(view.members);
  state.leader = std::move(view.leader);
  return state;
}

HealthReport MnesiaRepo::Impl::health_check() {
  HealthReport report;
  std::shared_ptr<repo::HostedNode> hosted;
  {
    std::lock_guard<std::mutex> lock(mu_);
    report.status = status_;
    hosted = hosted_;
  }
  report.node = options_.node;
  if (hosted == nullptr || report.status == RepoStatus::pending) {
    report.missing = essential_names_;
    return report;
  }
  const std::vector<std::string> tables = local_tables();
  for (const std::string& name : essential_names_) {
    if (!contains(tables, name)) report.missing.push_back(name);
  }
  report.healthy = report.missing.empty();
  report.table_count = static_cast<std::int64_t>(tables.size());
  report.schema_count = report.table_count - 1;
  report.role = engine::node_role_name(hosted->node->engine().role());
  repo::MemberHealth member = repo::read_member_health(*hosted->node, kQueryTimeout);
  report.leader = std::move(member.leader);
  report.member_healthy = member.healthy;
  report.replica_lag = member.replica_lag;
  if (const engine::EtcdMember* etcd = hosted->node->engine().member(); etcd != nullptr) {
    report.etcd_restarts = etcd->restart_count();
  }

  List missing;
  for (const std::string& name : report.missing) missing.emplace_back(name);
  emit(event({"health_check"}),
       {{"table_count", Value(report.table_count)}, {"schema_count", Value(report.schema_count)}},
       {{"node", Value(options_.node)},
        {"healthy?", Value(report.healthy)},
        {"missing", Value(std::move(missing))}});
  return report;
}

Result<NodeUpResult> MnesiaRepo::Impl::handle_nodeup(const std::string& peer) {
  if (!dynamic_) {
    return Status(StatusCode::unsupported,
                  "node " + options_.node + " does not watch node events (dynamic membership " +
                      (options_.cluster_nodes.empty() ? "is off for a seed" : "was turned off") +
                      "); nodeup of " + peer + " ignored");
  }
  if (std::this_thread::get_id() == worker_.get_id()) {
    return invalid_argument("handle_nodeup called from the repo's own thread would wait on itself");
  }
  auto done = std::make_shared<std::promise<NodeUpResult>>();
  std::future<NodeUpResult> result = done->get_future();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ || !worker_running_) {
      return Status(StatusCode::engine_unavailable, "repo of " + options_.node + " is stopped");
    }
    tasks_.push_back([this, peer, done] { done->set_value(nodeup(peer, false)); });
  }
  cv_.notify_all();
  try {
    return result.get();
  } catch (const std::future_error&) {
    // stop() dropped the task before the worker reached it.
    return Status(StatusCode::engine_unavailable,
                  "repo of " + options_.node + " stopped before handling the nodeup of " + peer);
  }
}

Result<bool> MnesiaRepo::Impl::handle_nodedown(const std::string& peer) {
  if (!dynamic_) {
    return Status(
        StatusCode::unsupported,
        "node " + options_.node + " does not watch node events; nodedown of " + peer + " ignored");
  }
  if (std::this_thread::get_id() == worker_.get_id()) {
    return invalid_argument(
        "handle_nodedown called from the repo's own thread would wait on itself");
  }
  auto done = std::make_shared<std::promise<bool>>();
  std::future<bool> result = done->get_future();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ || !worker_running_) {
      return Status(StatusCode::engine_unavailable, "repo of " + options_.node + " is stopped");
    }
    tasks_.push_back([this, peer, done] { done->set_value(nodedown(peer)); });
  }
  cv_.notify_all();
  try {
    return result.get();
  } catch (const std::future_error&) {
    return Status(StatusCode::engine_unavailable,
                  "repo of " + options_.node + " stopped before handling the nodedown of " + peer);
  }
}

Store* MnesiaRepo::Impl::store() const {
  std::lock_guard<std::mutex> lock(mu_);
  return hosted_ == nullptr ? nullptr : &hosted_->node->store();
}

std::shared_ptr<Store> MnesiaRepo::Impl::shared_store() const {
  std::lock_guard<std::mutex> lock(mu_);
  if (hosted_ == nullptr) return nullptr;
  // Aliasing: shares ownership of the hosted node, points at its store.
  return std::shared_ptr<Store>(hosted_, &hosted_->node->store());
}

Result<ReplicaDigest> MnesiaRepo::Impl::digest(milliseconds timeout) {
  std::shared_ptr<repo::HostedNode> hosted;
  {
    std::lock_guard<std::mutex> lock(mu_);
    hosted = hosted_;
  }
  if (hosted == nullptr) {
    return Status(StatusCode::engine_unavailable,
                  "node " + options_.node + " has no tables yet (pending)");
  }
  MISHKA_RETURN_IF_ERROR(hosted->node->replica().sync(engine::Deadline::after(timeout)));
  const replica::Replica::ReadView view = hosted->node->replica().read();
  return ReplicaDigest{.digest_hex = view.catalog().digest_hex(), .revision = view.revision()};
}

Status MnesiaRepo::Impl::remove_node(const std::string& node, milliseconds timeout) {
  std::shared_ptr<repo::HostedNode> hosted;
  {
    std::lock_guard<std::mutex> lock(mu_);
    hosted = hosted_;
  }
  if (hosted == nullptr) {
    return Status(StatusCode::engine_unavailable,
                  "node " + options_.node + " is not in a cluster yet (pending)");
  }
  return hosted->node->engine().remove_node(node, engine::Deadline::after(timeout));
}

std::optional<Status> MnesiaRepo::Impl::failure() const {
  std::lock_guard<std::mutex> lock(mu_);
  return failure_;
}

void MnesiaRepo::Impl::on_failure(std::function<void(const Status&)> listener) {
  std::optional<Status> already;
  {
    std::lock_guard<std::mutex> lock(mu_);
    failure_listener_ = listener;
    already = failure_;
  }
  if (already && listener) post([listener, already] { listener(*already); });
}

void MnesiaRepo::Impl::stop() {
  if (worker_.joinable() && std::this_thread::get_id() == worker_.get_id()) {
    log(LogLevel::error,
        "stop() called from the repo's own thread (a listener or a handler of its events); "
        "ignored: stop it from another thread");
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_begun_) return;
    stop_begun_ = true;
    stopping_ = true;
  }
  cv_.notify_all();
  if (worker_.joinable()) worker_.join();
  if (probe_ != nullptr) probe_->stop();
  // Tasks the worker never ran: dropping them breaks the promises of callers waiting on them,
  // who then get an error instead of waiting forever.
  std::deque<std::function<void()>> dropped;
  {
    std::lock_guard<std::mutex> lock(mu_);
    dropped.swap(tasks_);
  }
  dropped.clear();
  std::shared_ptr<repo::HostedNode> hosted;
  bool failed = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    hosted = std::move(hosted_);
    failed = failure_.has_value();
    status_ = RepoStatus::stopped;
    worker_running_ = false;
  }
  if (hosted != nullptr) {
    hosted->relay->detach();
    // A failed node is not kept: the next repo must open it afresh.
    if (failed) host_->impl().drop(dir_);
  }
  hosted.reset();
  if (own_host_ != nullptr) {
    own_host_.reset();
    host_ = nullptr;
  }
}

void MnesiaRepo::Impl::log(LogLevel level, const std::string& message) const {
  log_to(options_.log, level, "repo " + options_.node + ": " + message);
}

// ---------------------------------------------------------------------------------------------
// The public class

MnesiaRepo::MnesiaRepo(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
MnesiaRepo::~MnesiaRepo() {
  stop();
}

Result<std::unique_ptr<MnesiaRepo>> MnesiaRepo::start(RepoOptions options) {
  auto impl = std::make_unique<Impl>(std::move(options));
  MISHKA_RETURN_IF_ERROR(impl->start());
  return std::unique_ptr<MnesiaRepo>(new MnesiaRepo(std::move(impl)));
}

void MnesiaRepo::stop() {
  if (impl_) impl_->stop();
}
RepoState MnesiaRepo::state() const {
  return impl_->state();
}
RepoStatus MnesiaRepo::status() const {
  return impl_->status();
}
std::vector<TableSchema> MnesiaRepo::schemas() const {
  return impl_->schemas();
}
HealthReport MnesiaRepo::health_check() {
  return impl_->health_check();
}
Result<NodeUpResult> MnesiaRepo::handle_nodeup(const std::string& peer) {
  return impl_->handle_nodeup(peer);
}
Result<bool> MnesiaRepo::handle_nodedown(const std::string& peer) {
  return impl_->handle_nodedown(peer);
}

Result<Value> MnesiaRepo::call(std::string_view request) {
  if (request == "state") return to_value(state());
  if (request == "schemas") {
    List list;
    for (const TableSchema& schema : schemas()) list.push_back(repo::schema_value(schema));
    return Value(std::move(list));
  }
  if (request == "health_check") return to_value(health_check());
  return invalid_argument("unknown request '" + std::string(request) +
                          "' (known: state, schemas, health_check)");
}

Store* MnesiaRepo::store() const {
  return impl_->store();
}
std::shared_ptr<Store> MnesiaRepo::shared_store() const {
  return impl_->shared_store();
}
Result<ReplicaDigest> MnesiaRepo::digest(milliseconds timeout) {
  return impl_->digest(timeout);
}
Status MnesiaRepo::remove_node(const std::string& node, milliseconds timeout) {
  return impl_->remove_node(node, timeout);
}
telemetry::Telemetry& MnesiaRepo::telemetry() const {
  return impl_->telemetry();
}
pubsub::PubSub& MnesiaRepo::pubsub() const {
  return impl_->pubsub();
}
const RepoOptions& MnesiaRepo::options() const {
  return impl_->options();
}
std::optional<Status> MnesiaRepo::failure() const {
  return impl_->failure();
}
void MnesiaRepo::on_failure(std::function<void(const Status&)> listener) {
  impl_->on_failure(std::move(listener));
}

}  // namespace mishka
