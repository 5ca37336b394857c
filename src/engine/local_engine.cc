#include "engine/local_engine.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <random>
#include <system_error>
#include <utility>

#include "engine/deadline.h"
#include "engine/join.h"
#include "engine/node_name.h"
#include "engine/tls_material.h"

namespace mishka::engine {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

const std::string kQuotaFlag = "--quota-backend-bytes";

// Flags EtcdMember sets from the engine's config; etcd would take the last one given.
constexpr const char* kFlagsOfTheMember[] = {"name",
                                             "data-dir",
                                             "listen-client-urls",
                                             "advertise-client-urls",
                                             "listen-peer-urls",
                                             "initial-advertise-peer-urls",
                                             "initial-cluster",
                                             "initial-cluster-state",
                                             "initial-cluster-token"};

// "--flag=value", "-flag value" (Go's flag package takes one dash or two) -> "flag".
std::string flag_name(const std::string& arg) {
  std::size_t begin = 0;
  while (begin < arg.size() && begin < 2 && arg[begin] == '-') ++begin;
  if (begin == 0) return "";
  return arg.substr(begin,
                    arg.find('=') == std::string::npos ? std::string::npos : arg.find('=') - begin);
}

Status validate(const LocalEngineConfig& c) {
  auto bad = [](const std::string& what) { return invalid_argument("local engine: " + what); };
  if (c.node_name.empty() || c.node_name.size() > kMaxNodeNameBytes) {
    return bad("node_name must have 1 to " + std::to_string(kMaxNodeNameBytes) + " bytes");
  }
  if (c.mnesia_dir.empty()) return bad("mnesia_dir is empty");
  if (c.quota_backend_bytes < kMinQuotaBytes || c.quota_backend_bytes > kMaxQuotaBytes) {
    return bad("quota_backend_bytes " + std::to_string(c.quota_backend_bytes) + " is outside [" +
               std::to_string(kMinQuotaBytes) + ", " + std::to_string(kMaxQuotaBytes) + "]");
  }
  for (const std::string& arg : c.extra_etcd_args) {
    const std::string flag = flag_name(arg);
    if (flag == "quota-backend-bytes") {
      return bad("extra_etcd_args may not set " + kQuotaFlag + " (use quota_backend_bytes)");
    }
    for (const char* owned : kFlagsOfTheMember) {
      if (flag == owned) return bad("extra_etcd_args may not set --" + flag + ": the engine does");
    }
  }
  if (c.call_timeout <= milliseconds(0)) return bad("call_timeout must be positive");
  for (const std::string& peer : c.peers) {
    Result<NodeName> parsed = parse_node_name(peer);
    if (!parsed.ok()) return bad("peers: " + parsed.status().message());
    if (peer == c.node_name) return bad("peers lists the node itself (" + peer + ")");
  }
  if (c.target_voters < 1 || c.target_voters > 7) {
    return bad("target_voters must be 1..7, not " + std::to_string(c.target_voters));
  }
  if (c.join_timeout <= milliseconds(0)) return bad("join_timeout must be positive");
  if (c.cluster_prefix.empty() || c.cluster_prefix.back() != '/') {
    return bad("cluster_prefix must end with '/'");
  }
  if (c.tls.has_value() != c.member_tls.has_value()) {
    return bad("tls and member_tls go together (the same material as PEM texts and as files)");
  }
  if (c.member_tls && c.metrics_port == 0) {
    return bad("metrics_port must be set with TLS (etcd's health probe listener)");
  }
  const MaintenanceOptions& m = c.maintenance;
  if (m.interval < milliseconds(0)) return bad("maintenance.interval is negative");
  if (m.retention_revisions < 0) return bad("maintenance.retention_revisions is negative");
  if (m.retention_time < milliseconds(0)) return bad("maintenance.retention_time is negative");
  if (m.compaction_min_step < 1) return bad("maintenance.compaction_min_step must be at least 1");
  if (!(m.defrag_ratio >= 1.0)) return bad("maintenance.defrag_ratio must be at least 1");
  if (m.defrag_min_free_bytes < 0) return bad("maintenance.defrag_min_free_bytes is negative");
  if (m.defrag_min_interval < milliseconds(0)) {
    return bad("maintenance.defrag_min_interval is negative");
  }
  if (!(m.disarm_below_fraction > 0.0 && m.disarm_below_fraction <= 1.0)) {
    return bad("maintenance.disarm_below_fraction must be in (0, 1]");
  }
  if (m.call_timeout <= milliseconds(0) || m.compaction_timeout <= milliseconds(0) ||
      m.defrag_timeout <= milliseconds(0)) {
    return bad("maintenance timeouts must be positive");
  }
  return Status::Ok();
}

std::int64_t unix_ms_now() {
  return std::chrono::duration_cast<milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

LogLevel level_of(MemberEvent::Kind kind) {
  switch (kind) {
    case MemberEvent::Kind::exited:
    case MemberEvent::Kind::restarting:
    case MemberEvent::Kind::stale_member_killed:
      return LogLevel::warning;
    case MemberEvent::Kind::gave_up:
      return LogLevel::critical;
    default:
      return LogLevel::info;
  }
}

// A fresh --initial-cluster-token for a bootstrap. etcd derives member and cluster ids from
// the peer URLs and this token, so a seed that is wiped and bootstraps again on the same
// address must use a new token, or it would get its old cluster id back and look like the
// cluster its former peers still run.
std::string fresh_cluster_token() {
  std::random_device random;
  char token[40];
  std::snprintf(token, sizeof token, "mishka-%08x%08x%08x", random(), random(), random());
  return token;
}

// The "host:port" gRPC endpoints of etcd client URLs ("https://127.0.0.1:4370").
std::vector<std::string> endpoints_of(const std::vector<Member>& members) {
  std::vector<std::string> out;
  for (const Member& m : members) {
    for (const std::string& url : m.client_urls) {
      const std::size_t scheme = url.find("://");
      std::string endpoint = scheme == std::string::npos ? url : url.substr(scheme + 3);
      if (std::find(out.begin(), out.end(), endpoint) == out.end()) out.push_back(endpoint);
    }
  }
  return out;
}

}  // namespace

const char* node_role_name(NodeRole role) {
  switch (role) {
    case NodeRole::voter:
      return "voter";
    case NodeRole::learner:
      return "learner";
    case NodeRole::replica:
      return "replica";
  }
  return "unknown";
}

LocalEngine::LocalEngine(LocalEngineConfig config) : config_(std::move(config)) {}

LocalEngine::~LocalEngine() {
  stop();
}

Result<std::unique_ptr<LocalEngine>> LocalEngine::open(LocalEngineConfig config) {
  MISHKA_RETURN_IF_ERROR(validate(config));
  std::unique_ptr<LocalEngine> engine(new LocalEngine(std::move(config)));
  Status started = engine->start();
  if (!started.ok()) {
    engine->stop();
    return started;
  }
  engine->start_threads();
  return engine;
}

void LocalEngine::log(LogLevel level, const std::string& message) const {
  log_to(config_.log, level, "engine " + config_.node_name + ": " + message);
}

Status LocalEngine::start() {
  namespace fs = std::filesystem;
  const std::string& dir = config_.mnesia_dir;
  const std::string id_path = identity_path(dir);
  const std::string data_dir = dir + "/etcd/data";

  // Only reads until the directory is known to be this node's and consistent.
  std::error_code error;
  const bool dir_exists = fs::exists(dir, error);
  if (error) return io_error("cannot examine " + dir + ": " + error.message());
  if (dir_exists && !fs::is_directory(dir, error)) {
    return io_error("mnesia_dir " + dir + " is not a directory");
  }
  std::optional<Identity> stored;
  if (dir_exists) {
    Result<std::optional<Identity>> checked = check_identity(dir, config_.node_name);
    if (!checked.ok()) return checked.status();
    stored = std::move(checked).value();
  }
  const bool has_data = fs::exists(data_dir + "/member", error);
  if (error) return io_error("cannot examine " + data_dir + ": " + error.message());
  if (!stored && has_data) {
    return corrupt("directory " + dir + " has etcd data in " + data_dir + " but no identity file " +
                   id_path + ": whose data it is cannot be told; refusing to start");
  }
  if (stored && stored->cluster_id != 0 && stored->member_id != 0 && !has_data) {
    return corrupt("identity file " + id_path + " records member " +
                   hex_member_id(stored->member_id) + " of cluster " +
                   hex_member_id(stored->cluster_id) + ", but its etcd data " + data_dir +
                   "/member is missing; refusing to bootstrap a new cluster over it");
  }

  std::vector<std::string> peer_endpoints;
  for (const std::string& peer : config_.peers) {
    peer_endpoints.push_back(parse_node_name(peer).value().client_endpoint());
  }
  const bool complete = stored && stored->cluster_id != 0;
  if (complete && stored->member_id == 0) {
    identity_ = *stored;
    return open_replica(peer_endpoints);
  }

  MemberConfig mc = member_config();

  if (!complete && !config_.peers.empty()) {
    if (!dir_exists) {
      fs::create_directories(dir, error);
      if (error) return io_error("cannot create " + dir + ": " + error.message());
      fs::permissions(dir, fs::perms::owner_all, error);
      if (error) return io_error("cannot set the mode of " + dir + ": " + error.message());
    }
    if (has_data) {
      // The identity says the join never completed, so this data belongs to a learner that
      // the cluster no longer counts on (the next join removes it from the membership).
      log(LogLevel::warning, "wiping " + data_dir + ", left by a join that did not complete");
      fs::remove_all(data_dir, error);
      if (error) return io_error("cannot remove " + data_dir + ": " + error.message());
    }
    identity_ = stored ? *stored
                       : Identity{.node_name = config_.node_name,
                                  .member_id = 0,
                                  .cluster_id = 0,
                                  .created_unix_ms = unix_ms_now()};
    MISHKA_RETURN_IF_ERROR(write_identity(dir, identity_));
    return join_cluster(peer_endpoints);
  }

  if (!complete) mc.initial_cluster_token = fresh_cluster_token();
  // Validates the member's fields before it creates <mnesia_dir>/etcd (and mnesia_dir).
  Result<std::unique_ptr<EtcdMember>> member =
      EtcdMember::create(std::move(mc), [this](const MemberEvent& e) { on_member_event(e); });
  if (!member.ok()) return member.status();
  member_ = std::move(member).value();
  if (!dir_exists) {
    fs::permissions(dir, fs::perms::owner_all, error);
    if (error) return io_error("cannot set the mode of " + dir + ": " + error.message());
  }

  if (stored) {
    identity_ = *stored;
  } else {
    // Claim the directory before etcd writes anything into it: cluster id 0 marks a first
    // start that has not completed yet.
    identity_ = Identity{.node_name = config_.node_name,
                         .member_id = 0,
                         .cluster_id = 0,
                         .created_unix_ms = unix_ms_now()};
    MISHKA_RETURN_IF_ERROR(write_identity(dir, identity_));
  }
  const bool first_start = identity_.cluster_id == 0;
  if (!first_start && !peer_endpoints.empty()) MISHKA_RETURN_IF_ERROR(check_peers(peer_endpoints));
  log(LogLevel::info,
      std::string(first_start ? "bootstrapping a one-member cluster" : "reusing its etcd data") +
          " in " + dir);

  MISHKA_RETURN_IF_ERROR(member_->start());

  Result<std::unique_ptr<EtcdClient>> own =
      EtcdClient::create(client_options({member_->client_endpoint()}));
  if (!own.ok()) return own.status();
  client_ = std::move(own).value();

  Result<EndpointStatus> status =
      client_->status(member_->client_endpoint(), Deadline::after(config_.call_timeout));
  if (!status.ok()) return status.status().with_context("reading the ids of the member in " + dir);
  const std::uint64_t member_id = status->header.member_id;
  const std::uint64_t cluster_id = status->header.cluster_id;
  if (first_start) {
    identity_.member_id = member_id;
    identity_.cluster_id = cluster_id;
    MISHKA_RETURN_IF_ERROR(write_identity(dir, identity_));
    log(LogLevel::info, "bootstrapped cluster " + hex_member_id(cluster_id) + " with member " +
                            hex_member_id(member_id) + "; recorded in " + id_path);
  } else if (cluster_id != identity_.cluster_id || member_id != identity_.member_id) {
    return corrupt("directory " + dir + ": etcd data in " + data_dir + " is member " +
                   hex_member_id(member_id) + " of cluster " + hex_member_id(cluster_id) +
                   ", but identity file " + id_path + " records member " +
                   hex_member_id(identity_.member_id) + " of cluster " +
                   hex_member_id(identity_.cluster_id));
  } else {
    log(LogLevel::info, "member " + hex_member_id(member_id) + " of cluster " +
                            hex_member_id(cluster_id) + " is serving");
  }

  Result<std::vector<Member>> members = client_->member_list(Deadline::after(config_.call_timeout));
  if (!members.ok()) return members.status().with_context("listing the cluster's members");
  return connect_client(*members);
}

ClientOptions LocalEngine::client_options(std::vector<std::string> endpoints) const {
  ClientOptions options;
  options.endpoints = std::move(endpoints);
  options.tls = config_.tls;
  return options;
}

Status LocalEngine::connect_client(const std::vector<Member>& members) {
  std::vector<std::string> endpoints;
  if (member_) endpoints.push_back(member_->client_endpoint());
  for (const std::string& endpoint : endpoints_of(members)) {
    if (std::find(endpoints.begin(), endpoints.end(), endpoint) == endpoints.end()) {
      endpoints.push_back(endpoint);
    }
  }
  if (endpoints.empty()) {
    return Status(
        StatusCode::engine_unavailable,
        "no member of cluster " + hex_member_id(identity_.cluster_id) + " advertises a client URL");
  }
  Result<std::unique_ptr<EtcdClient>> client = EtcdClient::create(client_options(endpoints));
  if (!client.ok()) return client.status();
  client_ = std::move(client).value();
  return Status::Ok();
}

Status LocalEngine::check_peers(const std::vector<std::string>& peer_endpoints) {
  for (std::size_t i = 0; i < peer_endpoints.size(); ++i) {
    Result<std::unique_ptr<EtcdClient>> client =
        EtcdClient::create(client_options({peer_endpoints[i]}));
    if (!client.ok()) continue;
    Result<EndpointStatus> status =
        (*client)->status(peer_endpoints[i], Deadline::after(config_.call_timeout));
    if (!status.ok()) {
      log(LogLevel::info, "configured peer " + config_.peers[i] +
                              " did not answer: " + status.status().to_string());
      continue;
    }
    if (identity_.cluster_id == 0) continue;
    if (status->header.cluster_id == identity_.cluster_id) {
      // A peer of this node's own cluster: was this node removed while it was away?
      Result<RangeResult> tombstone = (*client)->range(
          removed_key(config_.node_name), RangeOptions{}, Deadline::after(config_.call_timeout));
      if (tombstone.ok() && !tombstone->kvs.empty()) {
        removed_.store(true);
        return Status(StatusCode::removed,
                      "node " + config_.node_name + " was removed from cluster " +
                          hex_member_id(identity_.cluster_id) + " (" + tombstone->kvs[0].value +
                          ", as peer " + config_.peers[i] + " says); its directory " +
                          config_.mnesia_dir + " is kept untouched: wipe it to join again");
      }
      continue;
    }
    ClusterMismatch mismatch{
        .peer = config_.peers[i],
        .local_cluster = identity_.cluster_id,
        .peer_cluster = status->header.cluster_id,
        .context = "configured peer " + config_.peers[i] + " belongs to cluster " +
                   hex_member_id(status->header.cluster_id) + ", this node to cluster " +
                   hex_member_id(identity_.cluster_id)};
    log(LogLevel::critical, "cluster mismatch: " + mismatch.context +
                                "; no data is exchanged with it (two seeds bootstrapped apart, "
                                "a wiped directory, or a removed node come back)");
    if (config_.mismatch_listener) config_.mismatch_listener(mismatch);
  }
  return Status::Ok();
}

Status LocalEngine::open_replica(const std::vector<std::string>& peer_endpoints) {
  role_ = NodeRole::replica;
  if (peer_endpoints.empty()) {
    return invalid_argument("directory " + config_.mnesia_dir + " belongs to replica node " +
                            identity_.node_name + " of cluster " +
                            hex_member_id(identity_.cluster_id) +
                            ", which needs its peers configured to reach the cluster");
  }
  MISHKA_RETURN_IF_ERROR(check_peers(peer_endpoints));
  Result<std::unique_ptr<EtcdClient>> peers = EtcdClient::create(client_options(peer_endpoints));
  if (!peers.ok()) return peers.status();
  Result<RangeResult> probe = (*peers)->range(config_.cluster_prefix + "join", RangeOptions{},
                                              Deadline::after(config_.call_timeout));
  if (!probe.ok()) return probe.status().with_context("replica node: reaching the cluster");
  if (probe->header.cluster_id != identity_.cluster_id) {
    return Status(StatusCode::engine_unavailable,
                  "replica node: the reachable peers belong to cluster " +
                      hex_member_id(probe->header.cluster_id) + ", not to cluster " +
                      hex_member_id(identity_.cluster_id) + " recorded in " +
                      identity_path(config_.mnesia_dir));
  }
  Result<std::vector<Member>> members =
      (*peers)->member_list(Deadline::after(config_.call_timeout));
  if (!members.ok()) return members.status().with_context("replica node: listing the members");
  log(LogLevel::info,
      "replica of cluster " + hex_member_id(identity_.cluster_id) + " (no etcd member of its own)");
  return connect_client(*members);
}

MemberConfig LocalEngine::member_config() const {
  MemberConfig mc;
  mc.etcd_binary = config_.etcd_binary;
  mc.data_dir = config_.mnesia_dir + "/etcd";
  mc.name = config_.node_name;
  mc.host = config_.host;
  mc.client_port = config_.client_port;
  mc.peer_port = config_.peer_port;
  mc.tls = config_.member_tls;
  mc.metrics_port = config_.metrics_port;
  mc.extra_args.push_back(kQuotaFlag + "=" + std::to_string(config_.quota_backend_bytes));
  mc.extra_args.insert(mc.extra_args.end(), config_.extra_etcd_args.begin(),
                       config_.extra_etcd_args.end());
  mc.ready_timeout = config_.ready_timeout;
  mc.give_up_after = config_.give_up_after;
  mc.restart_backoff_min = config_.restart_backoff_min;
  mc.restart_backoff_max = config_.restart_backoff_max;
  mc.stop_grace = config_.stop_grace;
  return mc;
}

JoinRequest LocalEngine::join_request() {
  return JoinRequest{
      .node_name = config_.node_name,
      .peer_url = std::string(config_.member_tls ? "https://" : "http://") + config_.host + ":" +
                  std::to_string(config_.peer_port),
      .lock_key = config_.cluster_prefix + "join",
      .removed_key = removed_key(config_.node_name),
      .target_voters = config_.target_voters,
      .lock_ttl_seconds = 10,
      .log = [this](LogLevel level, std::string_view line) { log(level, std::string(line)); }};
}

Status LocalEngine::run_learner(ClusterJoin& join, Deadline deadline) {
  const JoinPlan& plan = join.plan();
  role_ = NodeRole::learner;
  MemberConfig mc = member_config();
  mc.initial_cluster = plan.initial_cluster;
  mc.join_existing = true;
  Status started = [&]() -> Status {
    Result<std::unique_ptr<EtcdMember>> member =
        EtcdMember::create(std::move(mc), [this](const MemberEvent& e) { on_member_event(e); });
    if (!member.ok()) return member.status();
    member_ = std::move(member).value();
    MISHKA_RETURN_IF_ERROR(member_->start());
    return join.promote(deadline);
  }();
  if (!started.ok()) {
    if (member_) member_->stop();
    join.abandon(Deadline::after(config_.call_timeout));
    std::error_code error;
    std::filesystem::remove_all(config_.mnesia_dir + "/etcd/data", error);
    return started.with_context("joining cluster " + hex_member_id(plan.cluster_id));
  }
  role_ = NodeRole::voter;
  identity_.member_id = plan.member_id;
  identity_.cluster_id = plan.cluster_id;
  MISHKA_RETURN_IF_ERROR(write_identity(config_.mnesia_dir, identity_));
  log(LogLevel::info, "joined cluster " + hex_member_id(plan.cluster_id) + " as voter " +
                          hex_member_id(plan.member_id));
  return Status::Ok();
}

Status LocalEngine::join_cluster(const std::vector<std::string>& peer_endpoints) {
  const Deadline deadline = Deadline::after(config_.join_timeout);
  Result<std::unique_ptr<EtcdClient>> peers = EtcdClient::create(client_options(peer_endpoints));
  if (!peers.ok()) return peers.status();
  Result<std::unique_ptr<ClusterJoin>> join = ClusterJoin::begin(**peers, join_request(), deadline);
  if (!join.ok()) return explain_unreachable_peers(join.status());
  const JoinPlan& plan = (*join)->plan();
  if (plan.as_replica) {
    role_ = NodeRole::replica;
    identity_.member_id = 0;
    identity_.cluster_id = plan.cluster_id;
    MISHKA_RETURN_IF_ERROR(write_identity(config_.mnesia_dir, identity_));
    log(LogLevel::info, "joined cluster " + hex_member_id(plan.cluster_id) +
                            " as a replica (no etcd member of its own)");
    return connect_client(plan.members);
  }
  MISHKA_RETURN_IF_ERROR(run_learner(**join, deadline));
  Result<std::vector<Member>> members =
      (*peers)->member_list(Deadline::after(config_.call_timeout));
  if (!members.ok()) return members.status().with_context("listing the cluster's members");
  return connect_client(*members);
}

Status LocalEngine::explain_unreachable_peers(const Status& failure) const {
  const bool unreachable =
      failure.code() == StatusCode::engine_unavailable || failure.code() == StatusCode::timeout;
  if (!unreachable || !config_.tls) return failure;
  // gRPC says little more than "unavailable" when a TLS handshake fails; a probe of our own
  // tells a wrong cookie (or CA) from a peer that is simply down.
  std::string verdicts;
  for (const std::string& peer : config_.peers) {
    const NodeName name = parse_node_name(peer).value();
    Result<PeerTlsCheck> check =
        probe_peer_tls(name.host, name.port, *config_.tls, Deadline::after(milliseconds(2000)));
    if (!check.ok() || check->verdict == PeerTlsVerdict::trusted) continue;
    const bool wrong_cookie = check->verdict == PeerTlsVerdict::untrusted_peer ||
                              check->verdict == PeerTlsVerdict::rejected_by_peer;
    log(wrong_cookie ? LogLevel::error : LogLevel::info,
        "peer " + peer + ": " + check->detail +
            (wrong_cookie ? " -- this node's cookie (or CA) differs from the cluster's: it "
                            "cannot join, read or write until it holds the same one"
                          : ""));
    verdicts += "; " + peer + ": " + peer_tls_verdict_name(check->verdict);
  }
  return verdicts.empty() ? failure : failure.with_context("TLS" + verdicts);
}

std::string LocalEngine::removed_key(const std::string& node_name) const {
  return config_.cluster_prefix + "removed/" + node_name;
}

void LocalEngine::start_threads() {
  if (member_ && config_.maintenance.interval > milliseconds(0)) {
    thread_ = std::thread([this] { maintenance_loop(); });
  }
  if (config_.membership_interval > milliseconds(0)) {
    membership_thread_ = std::thread([this] { membership_loop(); });
  }
}

void LocalEngine::membership_loop() {
  std::string last_failure;
  std::unique_lock<std::mutex> lock(thread_mu_);
  while (!stopping_) {
    thread_cv_.wait_for(lock, config_.membership_interval, [this] { return stopping_; });
    if (stopping_) break;
    lock.unlock();
    Result<std::string> round = check_membership_once();
    if (!round.ok() && round.status().message() != last_failure) {
      last_failure = round.status().message();
      log(LogLevel::warning, "membership check failed: " + round.status().to_string());
    } else if (round.ok()) {
      last_failure.clear();
    }
    lock.lock();
    if (removed_.load()) break;
  }
}

void LocalEngine::on_removed(const std::string& detail) {
  if (removed_.exchange(true)) return;
  log(LogLevel::critical, "REMOVED: " + detail +
                              "; its etcd member is stopped. To bring the node back, wipe " +
                              config_.mnesia_dir + " and start it again as a joiner");
  if (member_) member_->stop();
  if (config_.removed_listener) config_.removed_listener(detail);
}

Result<std::string> LocalEngine::check_membership_once() {
  std::lock_guard<std::mutex> round(membership_mu_);
  if (removed_.load() || !client_) return std::string();
  const Deadline deadline = Deadline::after(config_.call_timeout);
  Result<RangeResult> tombstone =
      client_->range(removed_key(config_.node_name), RangeOptions{}, deadline);
  if (!tombstone.ok()) return tombstone.status();
  if (!tombstone->kvs.empty()) {
    on_removed("an operator removed " + config_.node_name + " from cluster " +
               hex_member_id(identity_.cluster_id) + " (" + tombstone->kvs[0].value + ")");
    return std::string("removed");
  }
  Result<std::vector<Member>> members = client_->member_list(deadline);
  if (!members.ok()) return members.status();
  const bool listed = std::any_of(members->begin(), members->end(),
                                  [&](const Member& m) { return m.id == identity_.member_id; });
  if (member_ && role_ == NodeRole::voter && !listed) {
    on_removed("member " + hex_member_id(identity_.member_id) + " is no longer in cluster " +
               hex_member_id(identity_.cluster_id));
    return std::string("removed");
  }
  const auto voters = std::count_if(members->begin(), members->end(),
                                    [](const Member& m) { return !m.is_learner; });
  if (role_ == NodeRole::replica && voters < config_.target_voters) {
    log(LogLevel::info,
        "the cluster has " + std::to_string(voters) + " voters, below its target of " +
            std::to_string(config_.target_voters) + ": this replica joins as a voter");
    MISHKA_RETURN_IF_ERROR(become_voter());
    return std::string(role_ == NodeRole::voter ? "promoted" : "");
  }
  return std::string();
}

Status LocalEngine::become_voter() {
  const Deadline deadline = Deadline::after(config_.join_timeout);
  Result<std::unique_ptr<ClusterJoin>> join =
      ClusterJoin::begin(*client_, join_request(), deadline);
  if (!join.ok()) return join.status();
  if ((*join)->plan().as_replica) return Status::Ok();  // another replica was faster
  // <mnesia_dir>/etcd/data of a replica holds nothing; clear what a failed attempt left.
  std::error_code error;
  std::filesystem::remove_all(config_.mnesia_dir + "/etcd/data", error);
  MISHKA_RETURN_IF_ERROR(run_learner(**join, deadline));
  if (config_.maintenance.interval > milliseconds(0) && !thread_.joinable()) {
    thread_ = std::thread([this] { maintenance_loop(); });
  }
  return Status::Ok();
}

Status LocalEngine::remove_node(const std::string& node_name, Deadline deadline) {
  if (node_name == config_.node_name) {
    return invalid_argument("remove_node: a node does not remove itself (" + node_name +
                            "); ask another node of the cluster");
  }
  if (!client_) return Status(StatusCode::engine_unavailable, "remove_node: the engine is stopped");
  Result<std::vector<Member>> members = client_->member_list(deadline);
  if (!members.ok()) return members.status().with_context("remove_node: listing the members");
  const Member* target = nullptr;
  int voters = 0;
  for (const Member& m : *members) {
    if (m.name == node_name) target = &m;
    if (!m.is_learner) ++voters;
  }
  const std::string presence = config_.cluster_prefix + "nodes/" + node_name;
  Result<RangeResult> present = client_->range(presence, RangeOptions{}, deadline);
  if (!present.ok()) return present.status().with_context("remove_node: reading presence");
  if (target == nullptr && present->kvs.empty()) {
    return not_found("remove_node: no member and no running node is named " + node_name);
  }
  if (target != nullptr && !target->is_learner && voters <= 1) {
    return invalid_argument("remove_node: " + node_name + " is the cluster's last voter");
  }
  // The member goes first: stopping a voter before the cluster has stopped counting on it
  // could leave the rest without a quorum to commit its removal.
  if (target != nullptr) {
    Status removed = client_->member_remove(target->id, deadline);
    while (membership_change_deferred(removed) && !deadline.expired()) {
      std::this_thread::sleep_for(std::min(milliseconds(200), deadline.remaining()));
      removed = client_->member_remove(target->id, deadline);
    }
    if (!removed.ok() && removed.code() != StatusCode::not_found) {
      return removed.with_context("remove_node: removing member " + hex_member_id(target->id));
    }
  }
  const std::string why =
      "removed by " + config_.node_name + " at unix ms " + std::to_string(unix_ms_now());
  Result<Header> recorded = client_->put(removed_key(node_name), why, 0, deadline);
  if (!recorded.ok()) return recorded.status().with_context("remove_node: recording the removal");
  Result<std::int64_t> erased = client_->erase(presence, "", deadline);
  if (!erased.ok()) return erased.status().with_context("remove_node: erasing the presence key");
  log(LogLevel::warning, "removed node " + node_name +
                             (target ? " and its member " + hex_member_id(target->id) : "") +
                             " from the cluster");
  return Status::Ok();
}

void LocalEngine::stop() {
  {
    std::lock_guard<std::mutex> lock(thread_mu_);
    stopping_ = true;
  }
  thread_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (membership_thread_.joinable()) membership_thread_.join();
  {
    std::lock_guard<std::mutex> membership(membership_mu_);
    std::lock_guard<std::mutex> lock(run_mu_);
    client_.reset();
  }
  // The member object stays (stopped) so that its counters remain readable.
  if (member_) member_->stop();
}

void LocalEngine::on_member_event(const MemberEvent& event) {
  std::string line = std::string("etcd member ") + member_event_name(event.kind) + " (pid " +
                     std::to_string(event.pid) + ", restarts " + std::to_string(event.restarts) +
                     ")";
  if (!event.detail.empty()) line += ": " + event.detail;
  log(level_of(event.kind), line);
  if (config_.member_listener) config_.member_listener(event);
}

void LocalEngine::maintenance_loop() {
  std::unique_lock<std::mutex> lock(thread_mu_);
  while (!stopping_) {
    thread_cv_.wait_for(lock, config_.maintenance.interval, [this] { return stopping_; });
    if (stopping_) break;
    lock.unlock();
    Result<MaintenanceReport> report = run_maintenance_once();
    // A failure is logged when it starts or changes, not at every run (a member restarting
    // fails a few runs in a row).
    if (!report.ok() && report.status().message() != last_failure_) {
      last_failure_ = report.status().message();
      log(LogLevel::warning, "maintenance failed: " + report.status().to_string());
    } else if (report.ok() && !last_failure_.empty()) {
      last_failure_.clear();
      log(LogLevel::info, "maintenance works again");
    }
    lock.lock();
  }
}

void LocalEngine::report_alarm(SpaceAlarmEvent::Kind kind, std::int64_t db_size,
                               const std::string& detail) {
  SpaceAlarmEvent event{
      .kind = kind, .db_size = db_size, .quota = config_.quota_backend_bytes, .detail = detail};
  if (kind == SpaceAlarmEvent::Kind::raised) {
    log(LogLevel::error, "SPACE ALARM: etcd's space quota of " + std::to_string(event.quota) +
                             " bytes is exhausted (" + detail +
                             "; this member's database: " + std::to_string(db_size) +
                             " bytes): writes fail with space_exceeded until space is freed");
  } else {
    log(LogLevel::warning, "space alarm cleared (" + detail + "; this member's database: " +
                               std::to_string(db_size) + " bytes): writes are accepted again");
  }
  if (config_.space_alarm_listener) config_.space_alarm_listener(event);
}

std::int64_t LocalEngine::compaction_target(std::int64_t revision, bool emergency) {
  const MaintenanceOptions& m = config_.maintenance;
  const Clock::time_point now = Clock::now();
  if (m.retention_time > milliseconds(0)) {
    revision_samples_.emplace_back(now, revision);
    // Keep the newest sample that is old enough, and every newer one.
    while (revision_samples_.size() >= 2 && revision_samples_[1].first <= now - m.retention_time) {
      revision_samples_.pop_front();
    }
  }
  const std::int64_t done = compacted_revision_.load();
  if (emergency) return revision > done ? revision : 0;

  std::optional<std::int64_t> target;
  if (m.retention_revisions > 0) target = revision - m.retention_revisions;
  if (m.retention_time > milliseconds(0)) {
    const auto& oldest = revision_samples_.front();
    const std::int64_t by_time = oldest.first <= now - m.retention_time ? oldest.second : 0;
    target = target ? std::min(*target, by_time) : by_time;
  }
  if (!target || *target <= 0 || *target - done < m.compaction_min_step) return 0;
  return *target;
}

Result<MaintenanceReport> LocalEngine::run_maintenance_once() {
  std::lock_guard<std::mutex> lock(run_mu_);
  if (!client_) {
    return Status(StatusCode::engine_unavailable,
                  "engine " + config_.node_name + " is stopped: no maintenance");
  }
  if (!member_) {
    return Status(StatusCode::unsupported,
                  "engine " + config_.node_name + " is a replica: the voters run maintenance");
  }
  const MaintenanceOptions& m = config_.maintenance;
  const std::string endpoint = member_->client_endpoint();
  MaintenanceReport report;

  Result<EndpointStatus> status = client_->status(endpoint, Deadline::after(m.call_timeout));
  if (!status.ok()) return status.status();
  report.revision = status->header.revision;
  report.db_size_before = status->db_size;
  report.db_size_in_use_before = status->db_size_in_use;
  report.db_size_after = status->db_size;

  Result<std::vector<Alarm>> alarms = client_->alarms(Deadline::after(m.call_timeout));
  if (!alarms.ok()) return alarms.status();
  std::string alarmed;  // the members with NOSPACE
  bool own_alarm = false;
  for (const Alarm& alarm : *alarms) {
    if (alarm.type != AlarmType::nospace) continue;
    alarmed +=
        (alarmed.empty() ? "NOSPACE alarm of member " : ", ") + hex_member_id(alarm.member_id);
    own_alarm = own_alarm || alarm.member_id == identity_.member_id;
  }
  const bool emergency = !alarmed.empty();
  if (emergency && !space_alarm_.exchange(true)) {
    report_alarm(SpaceAlarmEvent::Kind::raised, status->db_size, alarmed);
  }

  // Compaction. Under the alarm the whole history goes: space matters more than old revisions.
  const std::int64_t target = compaction_target(report.revision, emergency);
  if (target > 0) {
    Status compacted =
        client_->compact(target, /*physical=*/true, Deadline::after(m.compaction_timeout));
    // Another member's maintenance may have compacted further already.
    if (!compacted.ok() && compacted.code() != StatusCode::compacted) return compacted;
    compacted_revision_.store(target);
    report.compacted_to = target;
    log(emergency ? LogLevel::warning : LogLevel::info,
        "compacted etcd's history to revision " + std::to_string(target) + " (current " +
            std::to_string(report.revision) + (emergency ? ", under the space alarm)" : ")"));
    status = client_->status(endpoint, Deadline::after(m.call_timeout));
    if (!status.ok()) return status.status();
  }

  // Defragmentation: rare, since it blocks this member while it rewrites its database file.
  const std::int64_t db_size = status->db_size;
  const std::int64_t in_use = status->db_size_in_use;
  const std::int64_t free_bytes = db_size - in_use;
  const Clock::time_point now = Clock::now();
  const bool due = !last_defrag_ || now - *last_defrag_ >= m.defrag_min_interval;
  const double limit = m.disarm_below_fraction * static_cast<double>(config_.quota_backend_bytes);
  // etcd's db_size_in_use lags: pages a compaction frees count as free only after a few more
  // backend commits, i.e. writes, which the alarm refuses. So under the alarm the file is
  // defragmented whenever it is above the disarm limit and something was deleted since the
  // last defragmentation of this alarm (deletes are the only writes etcd then accepts).
  const bool wanted =
      emergency ? static_cast<double>(db_size) > limit &&
                      report.revision != alarm_defrag_revision_.value_or(-1)
                : due && free_bytes >= m.defrag_min_free_bytes &&
                      static_cast<double>(db_size) >= m.defrag_ratio * static_cast<double>(in_use);
  report.db_size_after = db_size;
  log(LogLevel::debug, "maintenance: revision " + std::to_string(report.revision) + ", database " +
                           std::to_string(db_size) + " bytes, " + std::to_string(in_use) +
                           " in use" + (emergency ? ", space alarm" : ""));
  if (wanted) {
    log(LogLevel::warning, "defragmenting etcd's database (the member is blocked meanwhile): " +
                               std::to_string(db_size) + " bytes, " + std::to_string(in_use) +
                               " in use");
    const Clock::time_point began = Clock::now();
    MISHKA_RETURN_IF_ERROR(client_->defragment(endpoint, Deadline::after(m.defrag_timeout)));
    last_defrag_ = Clock::now();
    if (emergency) alarm_defrag_revision_ = report.revision;
    defragment_count_.fetch_add(1);
    report.defragmented = true;
    status = client_->status(endpoint, Deadline::after(m.call_timeout));
    if (!status.ok()) return status.status();
    report.db_size_after = status->db_size;
    log(LogLevel::warning,
        "defragmented etcd's database in " +
            std::to_string(
                std::chrono::duration_cast<milliseconds>(*last_defrag_ - began).count()) +
            " ms: " + std::to_string(db_size) + " -> " + std::to_string(report.db_size_after) +
            " bytes");
  }

  if (emergency) {
    if (own_alarm && static_cast<double>(report.db_size_after) <= limit) {
      MISHKA_RETURN_IF_ERROR(
          client_->disarm_alarm(Alarm{.member_id = identity_.member_id, .type = AlarmType::nospace},
                                Deadline::after(m.call_timeout)));
      report.alarm_disarmed = true;
      log(LogLevel::warning, "disarmed the NOSPACE alarm of member " +
                                 hex_member_id(identity_.member_id) + ": its database is " +
                                 std::to_string(report.db_size_after) + " bytes");
    } else if (own_alarm && !alarm_stuck_logged_) {
      alarm_stuck_logged_ = true;
      log(LogLevel::error, "the NOSPACE alarm stays: the database is still " +
                               std::to_string(report.db_size_after) + " bytes (limit " +
                               std::to_string(static_cast<std::int64_t>(limit)) +
                               "); delete data to free space");
    }
    Result<std::vector<Alarm>> after = client_->alarms(Deadline::after(m.call_timeout));
    if (!after.ok()) return after.status();
    const bool still = std::any_of(after->begin(), after->end(),
                                   [](const Alarm& a) { return a.type == AlarmType::nospace; });
    if (!still) {
      alarm_stuck_logged_ = false;
      alarm_defrag_revision_.reset();
    }
    if (!still && space_alarm_.exchange(false)) {
      report_alarm(
          SpaceAlarmEvent::Kind::cleared, report.db_size_after,
          report.alarm_disarmed ? "disarmed by this node's maintenance" : "disarmed elsewhere");
    }
  } else if (space_alarm_.exchange(false)) {
    report_alarm(SpaceAlarmEvent::Kind::cleared, report.db_size_after, "disarmed elsewhere");
  }
  report.space_alarm = space_alarm_.load();
  return report;
}

}  // namespace mishka::engine
