// compare_bench: ONE run of ONE group of bench/compare for one system (mishka, raw etcd or the
// disk), printing one "RESULT ..." line per figure on stdout (the interface the orchestrator
// parses: bench/side_by_side/, issue 7) and progress on stderr ('#' lines).
//
//   compare_bench <group> --system mishka|etcd|disk --run N [--seconds S] [--warmup-ms MS]
//                 [--data DIR] [--etcd PATH] [--verbose]
//
// Groups: fsync (disk), n1_commits, n1_reads, n1_boot, n3_commits, n3_join (mishka, etcd).
// Everything runs on loopback on free ports, in scratch directories removed at the end (except
// --data); every etcd is stopped by pid; a watchdog ends the process at the group's hard cap.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "bench_support.h"
#include "boot_data.h"
#include "engine/deadline.h"
#include "etcd_cluster.h"
#include "fsync_probe.h"
#include "mishka/store.h"
#include "mishka_cluster.h"
#include "workloads.h"

namespace mishka::bench {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr seconds kHardCap{300};
// The first n1_boot run also builds its data sets (1M records on each side).
constexpr seconds kHardCapBuilding{900};
constexpr milliseconds kFsyncWindow{3000};
constexpr std::int64_t kReadRecords = 100000;
constexpr std::int64_t kJoinRecords = 100000;
// Reads between two clock readings: a local read costs about as much as reading the clock.
constexpr int kReadBatch = 1000;
constexpr milliseconds kReadTimeout{5000};

struct Options {
  std::string group;
  std::string system;
  int run = -1;
  int seconds = 5;
  int warmup_ms = 500;
  std::string data;
  std::string etcd_binary = default_etcd_binary();
  bool verbose = false;

  milliseconds warmup() const { return milliseconds(warmup_ms); }
  milliseconds window() const { return milliseconds(seconds * 1000); }
};

// One figure of the RESULT line; unset fields are left out.
struct Figure {
  std::string id;
  double value = 0;
  std::string unit;  // per_s or s
  std::optional<double> p50_ms;
  std::optional<double> p99_ms;
  std::optional<int> threads;
  std::string note;  // no spaces
};

void print_result(const Options& o, const Figure& f) {
  std::string line = "RESULT figure=" + f.id + " system=" + o.system +
                     " run=" + std::to_string(o.run) +
                     " value=" + format_number(f.value, f.unit == "s" ? 3 : 1) + " unit=" + f.unit;
  if (f.p50_ms) line += " p50_ms=" + format_number(*f.p50_ms, 3);
  if (f.p99_ms) line += " p99_ms=" + format_number(*f.p99_ms, 3);
  if (f.threads) line += " threads=" + std::to_string(*f.threads);
  if (!f.note.empty()) line += " note=" + f.note;
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
}

// A rate figure from a timed load with per-operation latencies.
Figure rate_figure(std::string id, const LoadResult& load, int threads) {
  Figure f;
  f.id = std::move(id);
  f.value = load.per_second();
  f.unit = "per_s";
  f.p50_ms = load.percentile(0.50);
  f.p99_ms = load.percentile(0.99);
  f.threads = threads;
  if (load.failed > 0) f.note = "failed_" + std::to_string(load.failed);
  return f;
}

std::string describe(const LoadResult& load) {
  std::string text = std::to_string(load.completed) + " ops, " +
                     format_number(load.per_second(), 0) + "/s, p50 " +
                     format_number(load.percentile(0.5), 3) + " ms, p99 " +
                     format_number(load.percentile(0.99), 3) + " ms";
  if (load.failed > 0) {
    text += ", " + std::to_string(load.failed) + " failed (first: " + load.first_error + ")";
  }
  return text + " (load " + load_average() + ")";
}

// The defaults of MishkaCluster (group commit on, durable) with the run's etcd and verbosity.
MishkaClusterOptions mishka_options(const Options& o,
                                    int target_voters = MishkaClusterOptions{}.target_voters) {
  MishkaClusterOptions options;
  options.etcd_binary = o.etcd_binary;
  options.target_voters = target_voters;
  options.verbose = o.verbose;
  return options;
}

// Counts what went wrong over a group; a run with failures exits 1 after its RESULT lines.
struct Failures {
  std::int64_t count = 0;
  void add(std::int64_t n) { count += n; }
};

Status run_fsync(const Options& o, Watchdog& watchdog) {
  Result<ScratchDir> dir = ScratchDir::create("mishka-compare-fsync-");
  if (!dir.ok()) return dir.status();
  watchdog.remove_on_expiry(dir->path());
  progress("fsync probe: " + std::to_string(kFsyncBlockBytes) + "-byte overwrite + fdatasync in " +
           dir->path().string());
  Result<LoadResult> probed = probe_fsync(dir->path(), o.warmup(), kFsyncWindow);
  if (!probed.ok()) return probed.status();
  progress("fsync: " + describe(*probed));
  Figure f = rate_figure("disk_fsync", *probed, 1);
  f.threads.reset();
  print_result(o, f);
  return probed->failed == 0 ? Status::Ok()
                             : Status(StatusCode::io_error, "fsync: " + probed->first_error);
}

// n1_commits / n3_commits: writers 1 then 16, each committing one new 100-byte record (mishka)
// or putting one new 100-byte value (etcd) back to back.
Status run_commits(const Options& o, int nodes, Watchdog& watchdog, Failures& failures) {
  Result<ScratchDir> root = ScratchDir::create("mishka-compare-commits-");
  if (!root.ok()) return root.status();
  watchdog.remove_on_expiry(root->path());
  const std::string prefix = "n" + std::to_string(nodes) + "_commit_w";
  std::unique_ptr<MishkaCluster> mishka;
  std::unique_ptr<EtcdCluster> etcd;
  if (o.system == "mishka") {
    progress("starting a " + std::to_string(nodes) + "-node mishka cluster (group commit on)");
    Result<std::unique_ptr<MishkaCluster>> started =
        MishkaCluster::start(root->path() / "mishka", nodes, mishka_options(o));
    if (!started.ok()) return started.status().with_context("mishka cluster");
    mishka = std::move(started).value();
    MISHKA_RETURN_IF_ERROR(create_bench_table(*mishka, "bench"));
  } else {
    progress("starting a " + std::to_string(nodes) + "-member etcd cluster");
    Result<std::unique_ptr<EtcdCluster>> started =
        EtcdCluster::start(root->path() / "etcd", nodes, o.etcd_binary);
    if (!started.ok()) return started.status().with_context("etcd cluster");
    etcd = std::move(started).value();
  }
  for (int writers : {1, 16}) {
    const std::string tag = "r" + std::to_string(o.run) + "w" + std::to_string(writers);
    LoadResult load;
    if (mishka) {
      load =
          run_timed_load(writers, o.warmup(), o.window(), mishka_commit_op(*mishka, "bench", tag));
    } else {
      Result<std::vector<std::unique_ptr<engine::EtcdClient>>> clients =
          etcd_clients(*etcd, writers);
      if (!clients.ok()) return clients.status();
      load = run_timed_load(writers, o.warmup(), o.window(), etcd_put_op(*clients, tag));
    }
    progress(prefix + std::to_string(writers) + ": " + describe(load));
    failures.add(load.failed);
    print_result(o, rate_figure(prefix + std::to_string(writers), load, writers));
  }
  return Status::Ok();
}

// A fast generator per reader thread, apart from the others' (no shared cache line).
struct alignas(64) ReaderState {
  std::minstd_rand random;
  std::int64_t missing = 0;  // reads that did not find their record
};

// n1_reads: random existing keys among 100k preloaded; threads 1 then 2.
Status run_reads(const Options& o, Watchdog& watchdog, Failures& failures) {
  Result<ScratchDir> root = ScratchDir::create("mishka-compare-reads-");
  if (!root.ok()) return root.status();
  watchdog.remove_on_expiry(root->path());
  std::unique_ptr<MishkaCluster> mishka;
  std::unique_ptr<EtcdCluster> etcd;
  Result<double> loaded = 0.0;
  if (o.system == "mishka") {
    progress("starting a 1-node mishka cluster and preloading " + std::to_string(kReadRecords) +
             " records");
    Result<std::unique_ptr<MishkaCluster>> started =
        MishkaCluster::start(root->path() / "mishka", 1, mishka_options(o));
    if (!started.ok()) return started.status().with_context("mishka node");
    mishka = std::move(started).value();
    MISHKA_RETURN_IF_ERROR(create_bench_table(*mishka, "bench"));
    loaded = preload_mishka(*mishka, "bench", kReadRecords);
  } else {
    progress("starting a 1-member etcd and preloading " + std::to_string(kReadRecords) + " keys");
    Result<std::unique_ptr<EtcdCluster>> started =
        EtcdCluster::start(root->path() / "etcd", 1, o.etcd_binary);
    if (!started.ok()) return started.status().with_context("etcd member");
    etcd = std::move(started).value();
    loaded = preload_etcd(*etcd, "/read/", kReadRecords);
  }
  if (!loaded.ok()) return loaded.status().with_context("preload");
  progress("preloaded in " + format_number(*loaded, 1) + " s");

  std::vector<Value> mishka_keys;
  std::vector<std::string> etcd_keys;
  for (std::int64_t i = 0; i < kReadRecords; ++i) {
    if (mishka) {
      mishka_keys.emplace_back(mishka_preload_key(i));
    } else {
      etcd_keys.push_back(etcd_preload_key("/read/", i));
    }
  }
  for (int threads : {1, 2}) {
    std::vector<ReaderState> readers(static_cast<std::size_t>(threads));
    for (int t = 0; t < threads; ++t) {
      readers[static_cast<std::size_t>(t)].random.seed(static_cast<unsigned>(o.run * 16 + t + 1));
    }
    auto pick = [&](int t) -> std::size_t {
      return readers[static_cast<std::size_t>(t)].random() % static_cast<std::size_t>(kReadRecords);
    };
    Figure f;
    LoadResult load;
    if (mishka) {
      const Store& store = mishka->node(0).store();
      // A batch of reads per operation: timing each read would cost about as much as the read.
      load = run_timed_load(threads, o.warmup(), o.window(), [&](int t, std::int64_t) {
        ReaderState& mine = readers[static_cast<std::size_t>(t)];
        for (int i = 0; i < kReadBatch; ++i) {
          Result<std::vector<RecordRef>> found = store.dirty_read("bench", mishka_keys[pick(t)]);
          if (!found.ok() || found->size() != 1) ++mine.missing;
        }
        return Status::Ok();
      });
      f = rate_figure("n1_read_t" + std::to_string(threads), load, threads);
      f.value *= kReadBatch;
      f.p50_ms.reset();  // the batch's, not a read's
      f.p99_ms.reset();
    } else {
      Result<std::vector<std::unique_ptr<engine::EtcdClient>>> clients =
          etcd_clients(*etcd, threads);
      if (!clients.ok()) return clients.status();
      engine::RangeOptions serializable;
      serializable.serializable = true;
      load = run_timed_load(threads, o.warmup(), o.window(), [&](int t, std::int64_t) -> Status {
        Result<engine::RangeResult> got = (*clients)[static_cast<std::size_t>(t)]->range(
            etcd_keys[pick(t)], serializable, engine::Deadline::after(kReadTimeout));
        if (!got.ok()) return got.status();
        if (got->kvs.size() != 1) ++readers[static_cast<std::size_t>(t)].missing;
        return Status::Ok();
      });
      f = rate_figure("n1_read_t" + std::to_string(threads), load, threads);
    }
    std::int64_t missing = 0;
    for (const ReaderState& r : readers) missing += r.missing;
    progress("n1_read_t" + std::to_string(threads) + ": " + format_number(f.value, 0) +
             " reads/s, " + std::to_string(missing) + " not found; " +
             (mishka ? "timed in batches of " + std::to_string(kReadBatch) + ": " : "") +
             describe(load));
    failures.add(load.failed + missing);
    if (missing > 0)
      f.note += (f.note.empty() ? "" : "_") + ("not_found_" + std::to_string(missing));
    print_result(o, f);
  }
  return Status::Ok();
}

// n1_boot: the 100k and 1M data sets under --data (built when missing), each reopened once.
Status run_boot(const Options& o, const fs::path& data, Failures&) {
  BootSettings settings;
  settings.etcd_binary = o.etcd_binary;
  settings.verbose = o.verbose;
  const std::vector<std::pair<std::string, std::int64_t>> sets = {{"100k", 100000},
                                                                  {"1m", 1000000}};
  for (const auto& [label, records] : sets) {
    const fs::path dir = data / (o.system + "-" + label);
    progress("n1_boot_" + label + ": data set " + dir.string() +
             (boot_set_complete(dir) ? " (complete: reused)" : " (building)"));
    Result<double> built = o.system == "mishka" ? ensure_mishka_boot_set(dir, records, settings)
                                                : ensure_etcd_boot_set(dir, records, settings);
    if (!built.ok()) return built.status().with_context("building " + dir.string());
    if (*built > 0) progress("built " + dir.string() + " in " + format_number(*built, 1) + " s");
  }
  for (const auto& [label, records] : sets) {
    const fs::path dir = data / (o.system + "-" + label);
    progress("n1_boot_" + label + ": reopening " + dir.string() + " (load " + load_average() + ")");
    Result<BootTiming> timed = o.system == "mishka" ? time_mishka_boot(dir, records, settings)
                                                    : time_etcd_boot(dir, records, settings);
    if (!timed.ok()) return timed.status().with_context("n1_boot_" + label);
    progress("n1_boot_" + label + ": " + format_number(timed->seconds, 3) + " s" +
             (timed->note.empty() ? "" : " (" + timed->note + ")"));
    Figure f;
    f.id = "n1_boot_" + label;
    f.value = timed->seconds;
    f.unit = "s";
    f.note = timed->note;
    print_result(o, f);
  }
  return Status::Ok();
}

// n3_join: one join of a 4th node (member) into a 3-node cluster holding 100k records.
Status run_join(const Options& o, Watchdog& watchdog) {
  Result<ScratchDir> root = ScratchDir::create("mishka-compare-join-");
  if (!root.ok()) return root.status();
  watchdog.remove_on_expiry(root->path());
  Figure f;
  f.id = "n3_join_100k";
  f.unit = "s";
  if (o.system == "mishka") {
    Result<MishkaJoinCluster> mishka =
        start_mishka_join_cluster(root->path() / "mishka", mishka_options(o, 5), kJoinRecords);
    if (!mishka.ok()) return mishka.status();
    std::this_thread::sleep_until(mishka->formed + kMembershipSettle);
    progress("joining a 4th node through nodes 1 and 2 (load " + load_average() + ")");
    Result<NodeOpenTiming> joined =
        join_node_through_1_and_2(*mishka->cluster, kJoinTable, kJoinRecords);
    if (!joined.ok()) return joined.status().with_context("mishka join");
    f.value = joined->open_seconds;
    const double engine = joined->engine_joined_seconds.value_or(0);
    f.note = "engine_joined_" + format_number(engine, 3);
    progress("4th node: " + format_number(f.value, 3) + " s (engine joined at " +
             format_number(engine, 3) + " s)");
  } else {
    Result<EtcdJoinCluster> etcd =
        start_etcd_join_cluster(root->path() / "etcd", o.etcd_binary, kJoinRecords);
    if (!etcd.ok()) return etcd.status();
    std::this_thread::sleep_until(etcd->formed + kMembershipSettle);
    progress("adding a 4th member as a learner (load " + load_average() + ")");
    Result<MemberJoinTiming> joined =
        etcd->cluster->join_member(kJoinPrefix, kJoinRecords, kJoinTimeout);
    if (!joined.ok()) return joined.status().with_context("etcd join");
    // Joined once both hold: promoted to voter, and serving every key as a learner.
    f.value = std::max(joined->serving_seconds, joined->promoted_seconds);
    f.note = "serving_" + format_number(joined->serving_seconds, 3) + "_promoted_" +
             format_number(joined->promoted_seconds, 3);
    progress("4th member: serving " + format_number(joined->serving_seconds, 3) + " s, promoted " +
             format_number(joined->promoted_seconds, 3) + " s, member add accepted at " +
             format_number(joined->added_seconds, 3) + " s after " +
             std::to_string(joined->add_attempts) + " request(s)");
  }
  print_result(o, f);
  return Status::Ok();
}

[[noreturn]] void usage(const std::string& why) {
  std::fprintf(stderr,
               "compare_bench: %s\n"
               "usage: compare_bench <group> --system mishka|etcd|disk --run N [--seconds S]\n"
               "       [--warmup-ms MS] [--data DIR] [--etcd PATH] [--verbose]\n"
               "groups: fsync (--system disk), n1_commits, n1_reads, n1_boot, n3_commits,\n"
               "        n3_join (--system mishka or etcd)\n",
               why.c_str());
  std::exit(2);
}

int number(const char* text, const std::string& flag, int min) {
  char* end = nullptr;
  const long v = std::strtol(text, &end, 10);
  if (end == text || *end != '\0' || v < min || v > 1000000) {
    usage(flag + " needs a number of at least " + std::to_string(min) + ", not '" + text + "'");
  }
  return static_cast<int>(v);
}

Options parse(int argc, char** argv) {
  if (argc < 2) usage("no group given");
  Options o;
  o.group = argv[1];
  const std::vector<std::string> groups = {"fsync",   "n1_commits", "n1_reads",
                                           "n1_boot", "n3_commits", "n3_join"};
  if (std::find(groups.begin(), groups.end(), o.group) == groups.end()) {
    usage("unknown group '" + o.group + "'");
  }
  for (int i = 2; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--verbose") {
      o.verbose = true;
      continue;
    }
    if (flag != "--system" && flag != "--run" && flag != "--seconds" && flag != "--warmup-ms" &&
        flag != "--data" && flag != "--etcd") {
      usage("unknown flag '" + flag + "'");
    }
    if (i + 1 >= argc) usage(flag + " lacks its value");
    const char* value = argv[++i];
    if (flag == "--system") {
      o.system = value;
    } else if (flag == "--run") {
      o.run = number(value, flag, 0);
    } else if (flag == "--seconds") {
      o.seconds = number(value, flag, 1);
    } else if (flag == "--warmup-ms") {
      o.warmup_ms = number(value, flag, 0);
    } else if (flag == "--data") {
      o.data = value;
    } else {
      o.etcd_binary = value;
    }
  }
  if (o.system.empty()) usage("--system is required");
  if (o.run < 0) usage("--run is required");
  if (o.group == "fsync" ? o.system != "disk" : (o.system != "mishka" && o.system != "etcd")) {
    usage("--system " + o.system + " does not run group " + o.group +
          " (fsync: disk; the others: mishka or etcd)");
  }
  return o;
}

Status run_group(const Options& o, Watchdog& watchdog, Failures& failures) {
  if (o.group == "fsync") return run_fsync(o, watchdog);
  if (o.group == "n1_commits") return run_commits(o, 1, watchdog, failures);
  if (o.group == "n3_commits") return run_commits(o, 3, watchdog, failures);
  if (o.group == "n1_reads") return run_reads(o, watchdog, failures);
  if (o.group == "n3_join") return run_join(o, watchdog);
  // n1_boot: the data sets live in --data, or in a scratch directory built for this run alone.
  std::optional<ScratchDir> scratch;
  fs::path data = o.data;
  if (data.empty()) {
    Result<ScratchDir> made = ScratchDir::create("mishka-compare-boot-");
    if (!made.ok()) return made.status();
    scratch.emplace(std::move(made).value());
    watchdog.remove_on_expiry(scratch->path());
    data = scratch->path();
  }
  return run_boot(o, data, failures);
}

int run(int argc, char** argv) {
  const Options o = parse(argc, argv);
  const std::string what =
      "compare_bench " + o.group + " --system " + o.system + " --run " + std::to_string(o.run);
  // Building a data set of n1_boot takes minutes: a longer cap for the run that does it.
  bool building = false;
  if (o.group == "n1_boot") {
    for (const char* label : {"100k", "1m"}) {
      if (o.data.empty() || !boot_set_complete(fs::path(o.data) / (o.system + "-" + label))) {
        building = true;
      }
    }
  }
  const seconds cap = building ? kHardCapBuilding : kHardCap;
  progress_start(what + ", etcd " + o.etcd_binary + ", hard cap " + std::to_string(cap.count()) +
                 " s");
  const auto began = std::chrono::steady_clock::now();
  Failures failures;
  Status done;
  {
    Watchdog watchdog(cap, what);
    done = run_group(o, watchdog, failures);
  }
  progress("done in " + format_number(seconds_since(began), 1) + " s, load at end " +
           load_average());
  if (!done.ok()) {
    std::fprintf(stderr, "compare_bench: %s: %s\n", o.group.c_str(), done.to_string().c_str());
    return 1;
  }
  if (failures.count > 0) {
    std::fprintf(stderr, "compare_bench: %s: %lld operations failed (see the notes)\n",
                 o.group.c_str(), static_cast<long long>(failures.count));
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace mishka::bench

int main(int argc, char** argv) {
  return mishka::bench::run(argc, argv);
}
