// In-process figures of the RAM table: reads, writes, index reads, snapshots and memory, on a
// table of 1M records of about 100-byte values. No etcd and no durability are involved; see
// bench/README.md for what the figures mean and what they must not be compared with.
#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "common/codec.h"
#include "common/sha256.h"
#include "mishka/table_spec.h"
#include "store/catalog.h"
#include "store/snapshot.h"
#include "store/table.h"

namespace mishka::store {
namespace {

constexpr std::int64_t kRecords = 1'000'000;
constexpr std::size_t kPayloadBytes = 100;

TableSpec bench_spec() {
  TableSpec spec;
  spec.name = "bench";
  spec.attributes = {"id", "name", "payload", "n"};
  spec.type = TableType::set;
  spec.indexes = {"name"};
  return spec;
}

// "user-00000042": distinct per id, so an index read finds one record.
std::string name_of(std::int64_t id) {
  const std::string digits = std::to_string(id);
  std::string name = "user-";
  if (digits.size() < 8) name.append(8 - digits.size(), '0');
  name += digits;
  return name;
}

// About 100 bytes that differ from record to record.
std::string payload_of(std::int64_t id, std::int64_t version) {
  std::string payload = "payload:";
  payload += std::to_string(id);
  payload += ':';
  payload += std::to_string(version);
  payload += ':';
  payload.resize(kPayloadBytes, static_cast<char>('a' + id % 26));
  return payload;
}

Record make_record(std::int64_t id, std::int64_t version = 0) {
  return Record{Value(id), Value(name_of(id)), Value(payload_of(id, version)), Value(id + version)};
}

void load(Table& table, std::int64_t records) {
  for (std::int64_t id = 0; id < records; ++id) {
    if (!table.write(make_record(id)).ok()) std::abort();
  }
}

// The 1M-record catalog shared by the benchmarks, built on first use.
struct Fixture {
  Catalog catalog;
  Table* table = nullptr;
};

Fixture& fixture() {
  static Fixture* shared = [] {
    auto* f = new Fixture;
    if (!f->catalog.create_table(bench_spec()).ok()) std::abort();
    f->table = f->catalog.find("bench");
    load(*f->table, kRecords);
    return f;
  }();
  return *shared;
}

// splitmix64: a cheap, well-spread sequence of random ids in [0, kRecords).
class RandomIds {
 public:
  explicit RandomIds(std::uint64_t seed) : state_(seed) {}
  std::int64_t next() {
    std::uint64_t z = (state_ += 0x9E3779B97F4A7C15u);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    return static_cast<std::int64_t>((z ^ (z >> 31)) % static_cast<std::uint64_t>(kRecords));
  }

 private:
  std::uint64_t state_;
};

void BM_Get(benchmark::State& state) {
  const Table& table = *fixture().table;
  RandomIds ids(1 + static_cast<std::uint64_t>(state.thread_index()));
  for (auto _ : state) {
    RecordRef record = table.get(Value(ids.next()));
    benchmark::DoNotOptimize(record);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Get);
// Const reads from two threads at once on the shared table.
BENCHMARK(BM_Get)->Threads(2)->UseRealTime();

void BM_Read(benchmark::State& state) {
  const Table& table = *fixture().table;
  RandomIds ids(2);
  for (auto _ : state) {
    std::vector<RecordRef> records = table.read(Value(ids.next()));
    benchmark::DoNotOptimize(records);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Read);

void BM_IndexRead(benchmark::State& state) {
  const Table& table = *fixture().table;
  RandomIds ids(3);
  std::vector<Value> names;
  for (int i = 0; i < 4096; ++i) names.emplace_back(name_of(ids.next()));
  std::size_t i = 0;
  for (auto _ : state) {
    auto records = table.index_read("name", names[i++ % names.size()]);
    benchmark::DoNotOptimize(records);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_IndexRead);

// Replaces existing records (new payload and n, same indexed name). The record is built in the
// loop, as a caller would build it.
void BM_WriteReplace(benchmark::State& state) {
  Table& table = *fixture().table;
  RandomIds ids(4);
  std::int64_t version = 1;
  for (auto _ : state) {
    if (!table.write(make_record(ids.next(), version++)).ok()) state.SkipWithError("write");
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_WriteReplace);

// Adds records with new keys to the 1M-record table; they are erased again afterwards.
void BM_WriteNewKeys(benchmark::State& state) {
  Table& table = *fixture().table;
  std::int64_t id = kRecords;
  for (auto _ : state) {
    if (!table.write(make_record(id++)).ok()) state.SkipWithError("write");
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["table_records_at_end"] = static_cast<double>(table.count());
  for (std::int64_t added = kRecords; added < id; ++added) table.erase(Value(added));
}
BENCHMARK(BM_WriteNewKeys);

void set_snapshot_counters(benchmark::State& state, std::size_t bytes) {
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * bytes));
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * kRecords);
  state.counters["snapshot_MB"] = static_cast<double>(bytes) / 1e6;
}

void BM_SnapshotEncode(benchmark::State& state) {
  const Catalog& catalog = fixture().catalog;
  std::size_t bytes = 0;
  for (auto _ : state) {
    std::string snapshot = encode_snapshot(catalog, 1);
    bytes = snapshot.size();
    benchmark::DoNotOptimize(snapshot);
  }
  set_snapshot_counters(state, bytes);
}
BENCHMARK(BM_SnapshotEncode)->Unit(benchmark::kMillisecond)->Iterations(3)->UseRealTime();

// Decodes `snapshot` into a new catalog per iteration; freeing that catalog is not timed.
void time_decode(benchmark::State& state, const std::string& snapshot) {
  for (auto _ : state) {
    std::optional<Result<DecodedSnapshot>> decoded(decode_snapshot(snapshot));
    if (!decoded->ok()) state.SkipWithError("decode_snapshot failed");
    state.PauseTiming();
    decoded.reset();
    state.ResumeTiming();
  }
  set_snapshot_counters(state, snapshot.size());
}

void BM_SnapshotDecode(benchmark::State& state) {
  time_decode(state, encode_snapshot(fixture().catalog, 1));
}
BENCHMARK(BM_SnapshotDecode)->Unit(benchmark::kMillisecond)->Iterations(3)->UseRealTime();

// The same catalog as a snapshot file written before the writer listed a set's records in the
// order of its first index (format version 1 either way): the records in hash order, so the
// loader must sort the index entries. What the first start after an upgrade pays.
std::string snapshot_in_hash_order(const Catalog& catalog) {
  std::string out = encode_snapshot(Catalog(), 1).substr(0, 28);  // magic, version, revision
  std::string body;
  encode_value(Value(static_cast<std::int64_t>(catalog.table_count())), body);
  catalog.for_each_table([&](const Table& table) {
    encode_value(table_spec_to_value(table.spec()), body);
    encode_value(Value(static_cast<std::int64_t>(table.count())), body);
    table.for_each([&](const RecordRef& record) { encode_record(*record, body); });
  });
  for (int i = 0; i < 8; ++i) out[20 + i] = static_cast<char>(body.size() >> (8 * (7 - i)));
  out += body;
  const Sha256Digest sum = Sha256::of(out);
  out.append(reinterpret_cast<const char*>(sum.data()), sum.size());
  return out;
}

void BM_SnapshotDecodeHashOrder(benchmark::State& state) {
  time_decode(state, snapshot_in_hash_order(fixture().catalog));
}
BENCHMARK(BM_SnapshotDecodeHashOrder)->Unit(benchmark::kMillisecond)->Iterations(3)->UseRealTime();

void BM_CatalogDigest(benchmark::State& state) {
  const Catalog& catalog = fixture().catalog;
  for (auto _ : state) {
    std::string digest = catalog.digest_hex();
    benchmark::DoNotOptimize(digest);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * kRecords);
}
BENCHMARK(BM_CatalogDigest)->Unit(benchmark::kMillisecond)->Iterations(3)->UseRealTime();

// Heap bytes in use (all arenas, mmapped blocks included); 0 when the C library cannot tell.
double heap_in_use() {
#if defined(__GLIBC__)
  const struct mallinfo2 info = mallinfo2();
  return static_cast<double>(info.uordblks + info.hblkhd);
#else
  return 0;
#endif
}

// Loads 1M records into a fresh table: the load rate, and what a record costs in RAM (the
// record, the hash table and the index entry). Freeing the table is not timed.
void BM_LoadAndMemory(benchmark::State& state) {
  for (auto _ : state) {
    const double before = heap_in_use();
    std::unique_ptr<Table> table = Table::create(bench_spec()).value();
    load(*table, kRecords);
    const double after = heap_in_use();
    state.counters["bytes_per_record"] = (after - before) / static_cast<double>(kRecords);
    state.PauseTiming();
    table.reset();
    state.ResumeTiming();
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * kRecords);
}
BENCHMARK(BM_LoadAndMemory)->Unit(benchmark::kMillisecond)->Iterations(1)->UseRealTime();

}  // namespace
}  // namespace mishka::store

BENCHMARK_MAIN();
