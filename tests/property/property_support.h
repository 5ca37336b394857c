// Shared pieces of the store property tests: seeds and scale from the environment, a portable
// random source, small value domains that make keys and attribute values collide, and
// helpers to compare records regardless of order.
//
// Reproducing a failure: every failing sequence prints its seed; rerun the test with
// MISHKA_PROPERTY_SEED=<that seed> and the failing sequence is the first one run.
#pragma once

#include <cstddef>
#include <cstdint>
#include <ostream>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "mishka/query.h"
#include "mishka/table_spec.h"
#include "mishka/value.h"

namespace mishka {

// Lets GoogleTest print values, records and table types in failure messages.
inline void PrintTo(const Value& value, std::ostream* os) {
  *os << value.debug_string();
}
inline void PrintTo(TableType type, std::ostream* os) {
  *os << table_type_name(type);
}

}  // namespace mishka

namespace mishka::property {

// MISHKA_PROPERTY_SCALE (a positive integer, default 1) multiplies the number of sequences;
// Release runs use it to go further than the Debug/ASan default.
std::size_t scale();
// MISHKA_PROPERTY_SEED (default a fixed number, so CI runs are deterministic): the seed of the
// first sequence; sequence i uses first_seed() + i.
std::uint64_t first_seed();
// The text for SCOPED_TRACE: the seed and how to rerun it.
std::string seed_trace(std::uint64_t seed);

// A random source whose results depend only on the seed, on every standard library (the
// std distributions are implementation-defined, so they are not used).
class Rng {
 public:
  explicit Rng(std::uint64_t seed) : engine_(seed) {}

  std::uint64_t next() { return engine_(); }
  // Uniform enough in [0, n); n > 0.
  std::size_t below(std::size_t n) { return static_cast<std::size_t>(engine_() % n); }
  // True with probability per_mille / 1000.
  bool chance(unsigned per_mille) { return below(1000) < per_mille; }

  template <typename T>
  const T& pick(const std::vector<T>& items) {
    return items[below(items.size())];
  }

  template <typename T>
  void shuffle(std::vector<T>& items) {
    for (std::size_t i = items.size(); i > 1; --i) std::swap(items[i - 1], items[below(i)]);
  }

 private:
  std::mt19937_64 engine_;
};

// About thirty keys of every kind, including the corners of the order: -0.0 and +0.0, a NaN,
// 1 and 1.0, "a" and bytes "a", nested lists and maps.
const std::vector<Value>& key_domain();
// A dozen attribute values, so that index entries and match patterns hit several records.
const std::vector<Value>& attribute_domain();

// A table with attributes key, a, b, c; a and b indexed, c not.
TableSpec model_spec(std::string name, TableType type);
// A random record of `spec` drawn from the domains above.
Record random_record(Rng& rng, const TableSpec& spec);

// Renders records for failure messages.
std::string describe(const std::vector<Record>& records);

// The records behind the refs, in the same order; a null ref is an error of the table and is
// reported as a record holding the string "<null RecordRef>".
std::vector<Record> deref(const std::vector<RecordRef>& refs);
std::vector<Record> sorted(std::vector<Record> records);

// Whether `lhs op rhs` holds in Value's total order.
bool holds(const Value& lhs, CompareOp op, const Value& rhs);
std::string_view op_name(CompareOp op);

}  // namespace mishka::property
