// cluster_bench: durable commits per second and the time for a 4th node to join, on a 3-node
// mishka cluster on loopback, each beside the same figure of a raw 3-member etcd cluster
// started by the same run (bench/README.md, "Cluster figures").
//
//   cluster_bench commits [--writers N] [--group-commit on|off] [--seconds S] [--runs R]
//   cluster_bench join [--records N] [--runs R]
//   cluster_bench all [--seconds S] [--runs R] [--records N]
//
// Every run of a figure alternates with the same run of its raw etcd counterpart; a figure is
// the median of its runs, with each run and the spread. Figure lines go to stdout, progress
// and the machine's load to stderr (lines starting with '#').
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "bench_support.h"
#include "etcd_cluster.h"
#include "mishka/store.h"
#include "mishka_cluster.h"
#include "workloads.h"

namespace mishka::bench {
namespace {

using std::chrono::milliseconds;

constexpr int kNodes = 3;
// Between two joins, as a fresh cluster would have been quiet for a moment.
constexpr milliseconds kBetweenJoins{1000};

struct Options {
  std::string command;
  std::vector<int> writers = {1, 16};
  std::vector<bool> group_commit = {true, false};
  int seconds = 5;
  int warmup_ms = 500;
  int runs = 3;
  int max_in_flight = StoreOptions{}.max_in_flight;
  std::int64_t records = 100000;
  std::string etcd_binary = default_etcd_binary();
  bool verbose = false;
};

void figure(const std::string& line) {
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
}

std::string on_off(bool on) {
  return on ? "on" : "off";
}

// One measured run of a commit figure, with the CPU it cost: cores of this process (the
// clients, and for mishka the three nodes' stores and replicas) and of the cluster's etcd
// members, averaged over the run (warm-up included).
struct RunSample {
  LoadResult load;
  double bench_cores = 0;
  double etcd_cores = 0;
  double commits_per_txn = 0;  // mishka: commits per etcd Txn (group commit's batching)
};

// Commits and etcd Txns of every node of a cluster so far.
std::pair<std::int64_t, std::int64_t> commit_counts(const MishkaCluster& cluster) {
  std::pair<std::int64_t, std::int64_t> sum{0, 0};
  for (int i = 0; i < cluster.size(); ++i) {
    const StoreStats stats = cluster.node(i).store().stats();
    sum.first += stats.commits;
    sum.second += stats.etcd_txns;
  }
  return sum;
}

RunSample measured_run(int writers, milliseconds warmup, milliseconds duration, const WriteOp& op,
                       const std::vector<int>& etcd_pids) {
  auto etcd_cpu = [&] {
    double sum = 0;
    for (int pid : etcd_pids) sum += cpu_seconds(pid);
    return sum;
  };
  const auto began = std::chrono::steady_clock::now();
  const double bench_before = cpu_seconds(0);
  const double etcd_before = etcd_cpu();
  RunSample sample;
  sample.load = run_timed_load(writers, warmup, duration, op);
  const double wall = seconds_since(began);
  sample.bench_cores = (cpu_seconds(0) - bench_before) / wall;
  sample.etcd_cores = (etcd_cpu() - etcd_before) / wall;
  return sample;
}

std::string describe(const RunSample& r) {
  std::string text = format_number(r.load.per_second(), 0) +
                     "/s p50=" + format_number(r.load.percentile(0.50), 2) +
                     "ms p99=" + format_number(r.load.percentile(0.99), 2) + "ms cpu: bench " +
                     format_number(r.bench_cores, 2) + " etcd " + format_number(r.etcd_cores, 2) +
                     " cores";
  if (r.load.failed > 0) {
    text += " failed=" + std::to_string(r.load.failed) + " (" + r.load.first_error + ")";
  }
  return text;
}

// One figure's runs: the medians of rate, p50, p99 and CPU, and each run's rate.
struct CommitFigure {
  std::vector<RunSample> runs;

  template <typename F>
  std::vector<double> each(F f) const {
    std::vector<double> out;
    for (const RunSample& r : runs) out.push_back(f(r));
    return out;
  }
  std::vector<double> rates() const {
    return each([](const RunSample& r) { return r.load.per_second(); });
  }
  std::string line() const {
    std::int64_t failed = 0;
    for (const RunSample& r : runs) failed += r.load.failed;
    std::string text =
        format_number(median(rates()), 0) + "/s p50=" +
        format_number(median(each([](const RunSample& r) { return r.load.percentile(0.5); })), 2) +
        "ms p99=" +
        format_number(median(each([](const RunSample& r) { return r.load.percentile(0.99); })), 2) +
        "ms cpu: bench " +
        format_number(median(each([](const RunSample& r) { return r.bench_cores; })), 2) +
        " etcd " + format_number(median(each([](const RunSample& r) { return r.etcd_cores; })), 2) +
        " cores";
    const std::vector<double> batching = each([](const RunSample& r) { return r.commits_per_txn; });
    if (median(batching) > 0) text += " commits/txn " + format_number(median(batching), 2);
    text += " (runs: " + format_runs(rates(), 0) + ")";
    if (failed > 0) text += " failed=" + std::to_string(failed);
    return text;
  }
};

// The median of the per-run ratios a[i] / b[i]: runs alternate, so each pair saw about the same
// load on a shared machine. "(runs: ...)" lists them.
std::string paired_ratio(const std::vector<double>& a, const std::vector<double>& b) {
  std::vector<double> ratios;
  for (std::size_t i = 0; i < a.size() && i < b.size(); ++i) {
    if (b[i] > 0) ratios.push_back(a[i] / b[i]);
  }
  if (ratios.empty()) return "?";
  return format_number(median(ratios), 2) + " (runs: " + format_runs(ratios, 2) + ")";
}

MishkaClusterOptions cluster_options(const Options& o, bool group_commit, int target_voters) {
  MishkaClusterOptions options;
  options.etcd_binary = o.etcd_binary;
  options.group_commit = group_commit;
  options.max_in_flight = o.max_in_flight;
  options.target_voters = target_voters;
  options.verbose = o.verbose;
  return options;
}

// "writers=16 group_commit=on", plus max_in_flight when it is not the default.
std::string mishka_setting(const Options& o, int writers, bool group_commit) {
  std::string text = "writers=" + std::to_string(writers) + " group_commit=" + on_off(group_commit);
  if (o.max_in_flight != StoreOptions{}.max_in_flight) {
    text += " max_in_flight=" + std::to_string(o.max_in_flight);
  }
  return text;
}

std::string mishka_label(const Options& o, int writers, bool group_commit) {
  return "commits mishka " + std::to_string(kNodes) + "nodes " +
         mishka_setting(o, writers, group_commit);
}

std::string etcd_label(int writers) {
  return "commits etcd " + std::to_string(kNodes) + "members clients=" + std::to_string(writers);
}

Status run_commits(const Options& o) {
  Result<ScratchDir> root = ScratchDir::create("mishka-cluster-bench-");
  if (!root.ok()) return root.status();
  const milliseconds warmup(o.warmup_ms);
  const milliseconds duration(o.seconds * 1000);

  std::vector<std::unique_ptr<MishkaCluster>> clusters;  // one per group commit mode
  for (bool gc : o.group_commit) {
    progress("starting a " + std::to_string(kNodes) +
             "-node mishka cluster, group_commit=" + on_off(gc));
    Result<std::unique_ptr<MishkaCluster>> cluster =
        MishkaCluster::start(root->path() / ("mishka-gc-" + on_off(gc)), kNodes,
                             cluster_options(o, gc, /*target_voters=*/3));
    if (!cluster.ok()) return cluster.status().with_context("mishka cluster");
    MISHKA_RETURN_IF_ERROR(create_bench_table(**cluster, "bench"));
    clusters.push_back(std::move(cluster).value());
  }
  progress("starting a " + std::to_string(kNodes) + "-member etcd cluster");
  Result<std::unique_ptr<EtcdCluster>> etcd =
      EtcdCluster::start(root->path() / "etcd", kNodes, o.etcd_binary);
  if (!etcd.ok()) return etcd.status().with_context("etcd cluster");

  std::map<std::pair<int, bool>, CommitFigure> mishka;
  std::map<int, CommitFigure> raw;
  for (int run = 1; run <= o.runs; ++run) {
    for (int writers : o.writers) {
      const std::string tag = "r" + std::to_string(run) + "n" + std::to_string(writers);
      for (std::size_t m = 0; m < o.group_commit.size(); ++m) {
        const bool gc = o.group_commit[m];
        const auto before = commit_counts(*clusters[m]);
        RunSample r =
            measured_run(writers, warmup, duration, mishka_commit_op(*clusters[m], "bench", tag),
                         clusters[m]->etcd_pids());
        const auto after = commit_counts(*clusters[m]);
        if (after.second > before.second) {
          r.commits_per_txn = static_cast<double>(after.first - before.first) /
                              static_cast<double>(after.second - before.second);
        }
        progress("run " + std::to_string(run) + " " + mishka_label(o, writers, gc) + ": " +
                 describe(r) + " (load " + load_average() + ")");
        mishka[{writers, gc}].runs.push_back(std::move(r));
        if (m != 0) continue;
        // Raw etcd right after the first mode, so that each mode has it as a neighbour.
        Result<std::vector<std::unique_ptr<engine::EtcdClient>>> clients =
            etcd_clients(**etcd, writers);
        if (!clients.ok()) return clients.status();
        RunSample e =
            measured_run(writers, warmup, duration, etcd_put_op(*clients, tag), (*etcd)->pids());
        progress("run " + std::to_string(run) + " " + etcd_label(writers) + ": " + describe(e) +
                 " (load " + load_average() + ")");
        raw[writers].runs.push_back(std::move(e));
      }
    }
  }
  for (int writers : o.writers) {
    figure(etcd_label(writers) + ": " + raw[writers].line());
    for (bool gc : o.group_commit) {
      const CommitFigure& f = mishka[{writers, gc}];
      figure(mishka_label(o, writers, gc) + ": " + f.line());
      figure("ratio commits " + mishka_setting(o, writers, gc) +
             " mishka/etcd: " + paired_ratio(f.rates(), raw[writers].rates()));
    }
  }
  return Status::Ok();
}

// ", 1 of 3 runs over 5 s" when a join stalled (etcd's 7 s request timeout, ETCD-NOTES.md).
std::string stalls(const std::vector<double>& seconds) {
  const auto over = std::count_if(seconds.begin(), seconds.end(), [](double v) { return v > 5; });
  if (over == 0) return "";
  return ", " + std::to_string(over) + " of " + std::to_string(seconds.size()) + " runs over 5 s";
}

Status run_join(const Options& o) {
  Result<ScratchDir> root = ScratchDir::create("mishka-join-bench-");
  if (!root.ok()) return root.status();
  Result<MishkaJoinCluster> mishka = start_mishka_join_cluster(
      root->path() / "mishka", cluster_options(o, /*group_commit=*/true, /*target_voters=*/5),
      o.records);
  if (!mishka.ok()) return mishka.status();
  Result<EtcdJoinCluster> etcd =
      start_etcd_join_cluster(root->path() / "etcd", o.etcd_binary, o.records);
  if (!etcd.ok()) return etcd.status();
  std::this_thread::sleep_until(std::max(mishka->formed, etcd->formed) + kMembershipSettle);

  std::vector<double> open_s, engine_s, serving_s, promoted_s;
  for (int run = 1; run <= o.runs; ++run) {
    progress("run " + std::to_string(run) + " load " + load_average());
    Result<NodeOpenTiming> m = join_node_through_1_and_2(*mishka->cluster, kJoinTable, o.records);
    if (!m.ok()) return m.status().with_context("mishka join, run " + std::to_string(run));
    open_s.push_back(m->open_seconds);
    engine_s.push_back(m->engine_joined_seconds.value_or(0));
    progress("run " + std::to_string(run) +
             " mishka 4th node: " + format_number(m->open_seconds, 2) + " s (engine joined at " +
             format_number(engine_s.back(), 2) + " s)");
    MISHKA_RETURN_IF_ERROR(mishka->cluster->remove_last_node());
    std::this_thread::sleep_for(kBetweenJoins);

    Result<MemberJoinTiming> e = etcd->cluster->join_member(kJoinPrefix, o.records, kJoinTimeout);
    if (!e.ok()) return e.status().with_context("etcd join, run " + std::to_string(run));
    serving_s.push_back(e->serving_seconds);
    promoted_s.push_back(e->promoted_seconds);
    progress("run " + std::to_string(run) + " etcd 4th member: serving " +
             format_number(e->serving_seconds, 2) + " s, promoted " +
             format_number(e->promoted_seconds, 2) + " s (member add accepted at " +
             format_number(e->added_seconds, 2) + " s after " + std::to_string(e->add_attempts) +
             " request(s))");
    MISHKA_RETURN_IF_ERROR(etcd->cluster->remove_last_member());
    std::this_thread::sleep_for(kBetweenJoins);
  }
  const std::string n = std::to_string(o.records);
  figure("join etcd 4th member keys=" + n + ": serving " + format_number(median(serving_s), 2) +
         " s, promoted " + format_number(median(promoted_s), 2) +
         " s (runs serving: " + format_runs(serving_s, 2) +
         "; promoted: " + format_runs(promoted_s, 2) + ")" + stalls(promoted_s));
  figure("join mishka 4th node records=" + n + ": " + format_number(median(open_s), 2) +
         " s until open returned with every record (engine joined at " +
         format_number(median(engine_s), 2) + " s) (runs: " + format_runs(open_s, 2) + ")" +
         stalls(open_s));
  figure("ratio join records=" + n +
         " mishka-open/etcd-promoted: " + paired_ratio(open_s, promoted_s));
  return Status::Ok();
}

[[noreturn]] void usage(const char* why) {
  std::fprintf(stderr,
               "cluster_bench: %s\n"
               "usage: cluster_bench commits [--writers N] [--group-commit on|off]\n"
               "       cluster_bench join [--records N]\n"
               "       cluster_bench all [--records N]\n"
               "options of every command: --seconds S (5) --warmup-ms MS (500) --runs R (3)\n"
               "       --etcd PATH ($MISHKA_ETCD, else /usr/bin/etcd) --verbose\n"
               "       --max-in-flight N (StoreOptions::max_in_flight of every node)\n",
               why);
  std::exit(2);
}

int positive(const char* text, const char* flag) {
  char* end = nullptr;
  const long v = std::strtol(text, &end, 10);
  if (end == text || *end != '\0' || v <= 0 || v > 100000000) {
    usage((std::string(flag) + " needs a positive number").c_str());
  }
  return static_cast<int>(v);
}

Options parse(int argc, char** argv) {
  if (argc < 2) usage("no command");
  Options o;
  o.command = argv[1];
  if (o.command != "commits" && o.command != "join" && o.command != "all") usage("unknown command");
  if (o.command == "commits") {  // one figure: 16 writers with group commit, unless told
    o.writers = {16};
    o.group_commit = {true};
  }
  for (int i = 2; i < argc; ++i) {
    const std::string_view flag = argv[i];
    if (flag == "--verbose") {
      o.verbose = true;
      continue;
    }
    if (i + 1 >= argc) usage("a flag lacks its value");
    const char* value = argv[++i];
    if (flag == "--writers") {
      o.writers = {positive(value, "--writers")};
    } else if (flag == "--group-commit") {
      if (std::string_view(value) != "on" && std::string_view(value) != "off") {
        usage("--group-commit takes on or off");
      }
      o.group_commit = {std::string_view(value) == "on"};
    } else if (flag == "--seconds") {
      o.seconds = positive(value, "--seconds");
    } else if (flag == "--warmup-ms") {
      o.warmup_ms = positive(value, "--warmup-ms");
    } else if (flag == "--runs") {
      o.runs = positive(value, "--runs");
    } else if (flag == "--max-in-flight") {
      o.max_in_flight = positive(value, "--max-in-flight");
    } else if (flag == "--records") {
      o.records = positive(value, "--records");
    } else if (flag == "--etcd") {
      o.etcd_binary = value;
    } else {
      usage("unknown flag");
    }
  }
  return o;
}

int run(int argc, char** argv) {
  const Options o = parse(argc, argv);
  progress_start("cluster_bench " + o.command + ", etcd " + o.etcd_binary);
  Status done;
  if (o.command == "commits" || o.command == "all") done = run_commits(o);
  if (done.ok() && (o.command == "join" || o.command == "all")) done = run_join(o);
  progress("load at end " + load_average());
  if (!done.ok()) {
    std::fprintf(stderr, "cluster_bench: %s\n", done.to_string().c_str());
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace mishka::bench

int main(int argc, char** argv) {
  return mishka::bench::run(argc, argv);
}
