#include "property_support.h"

#include <algorithm>
#include <cstdlib>
#include <limits>
#include <sstream>

namespace mishka::property {
namespace {

std::uint64_t env_number(const char* name, std::uint64_t fallback) {
  const char* text = std::getenv(name);
  if (text == nullptr || *text == '\0') return fallback;
  char* end = nullptr;
  const unsigned long long parsed = std::strtoull(text, &end, 10);
  if (end == nullptr || *end != '\0') return fallback;
  return parsed;
}

}  // namespace

std::size_t scale() {
  const std::uint64_t s = env_number("MISHKA_PROPERTY_SCALE", 1);
  return s == 0 ? 1 : static_cast<std::size_t>(s);
}

std::uint64_t first_seed() {
  return env_number("MISHKA_PROPERTY_SEED", 20261126);
}

std::string seed_trace(std::uint64_t seed) {
  return "seed " + std::to_string(seed) +
         " (rerun with MISHKA_PROPERTY_SEED=" + std::to_string(seed) + ")";
}

const std::vector<Value>& key_domain() {
  static const std::vector<Value> domain = {
      Value(),
      Value(false),
      Value(true),
      Value(0),
      Value(1),
      Value(2),
      Value(-1),
      Value(std::numeric_limits<std::int64_t>::min()),
      Value(std::numeric_limits<std::int64_t>::max()),
      Value(-0.0),
      Value(0.0),
      Value(1.0),
      Value(-2.5),
      Value(std::numeric_limits<double>::quiet_NaN()),
      Value(std::numeric_limits<double>::infinity()),
      Value(""),
      Value("a"),
      Value("b"),
      Value("ab"),
      Value(std::string(40, 'k')),
      Value::bytes(""),
      Value::bytes("a"),
      Value::bytes(std::string("\0\xff", 2)),
      Value(List{}),
      Value(List{Value(1)}),
      Value(List{Value(1), Value("a")}),
      Value(List{Value(List{Value()})}),
      Value(Map{}),
      Value(Map{{Value("k"), Value(1)}}),
      Value(Map{{Value("k"), Value(2)}, {Value(1), Value::bytes("v")}}),
  };
  return domain;
}

const std::vector<Value>& attribute_domain() {
  static const std::vector<Value> domain = {
      Value(),
      Value(true),
      Value(0),
      Value(7),
      Value(100000),
      Value(-0.0),
      Value(0.0),
      Value("x"),
      Value("y"),
      Value(std::string(300, 'p')),
      Value::bytes("x"),
      Value(List{Value(0)}),
      Value(Map{{Value("n"), Value(0.5)}}),
  };
  return domain;
}

TableSpec model_spec(std::string name, TableType type) {
  TableSpec spec;
  spec.name = std::move(name);
  spec.attributes = {"key", "a", "b", "c"};
  spec.type = type;
  spec.indexes = {"a", "b"};
  return spec;
}

Record random_record(Rng& rng, const TableSpec& spec) {
  Record record;
  record.reserve(spec.attributes.size());
  record.push_back(rng.pick(key_domain()));
  for (std::size_t i = 1; i < spec.attributes.size(); ++i) {
    // Mostly a few values per attribute, so that collisions (and bag duplicates) are common.
    const std::vector<Value>& domain = attribute_domain();
    record.push_back(rng.chance(700) ? domain[rng.below(4)] : rng.pick(domain));
  }
  return record;
}

std::string describe(const std::vector<Record>& records) {
  std::ostringstream out;
  out << records.size() << " record(s):";
  for (const Record& record : records) {
    out << "\n  [";
    for (std::size_t i = 0; i < record.size(); ++i) {
      if (i > 0) out << ", ";
      out << record[i].debug_string();
    }
    out << "]";
  }
  return out.str();
}

std::vector<Record> deref(const std::vector<RecordRef>& refs) {
  std::vector<Record> records;
  records.reserve(refs.size());
  for (const RecordRef& ref : refs) {
    records.push_back(ref ? *ref : Record{Value("<null RecordRef>")});
  }
  return records;
}

std::vector<Record> sorted(std::vector<Record> records) {
  std::sort(records.begin(), records.end());
  return records;
}

bool holds(const Value& lhs, CompareOp op, const Value& rhs) {
  const std::strong_ordering order = lhs <=> rhs;
  switch (op) {
    case CompareOp::eq:
      return order == 0;
    case CompareOp::ne:
      return order != 0;
    case CompareOp::lt:
      return order < 0;
    case CompareOp::le:
      return order <= 0;
    case CompareOp::gt:
      return order > 0;
    case CompareOp::ge:
      return order >= 0;
  }
  return false;
}

std::string_view op_name(CompareOp op) {
  switch (op) {
    case CompareOp::eq:
      return "==";
    case CompareOp::ne:
      return "!=";
    case CompareOp::lt:
      return "<";
    case CompareOp::le:
      return "<=";
    case CompareOp::gt:
      return ">";
    case CompareOp::ge:
      return ">=";
  }
  return "?";
}

}  // namespace mishka::property
