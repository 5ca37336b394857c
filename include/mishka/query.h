// Queries over a table: match patterns and select conditions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "mishka/value.h"

namespace mishka {

// One entry per attribute, in spec order; std::nullopt is a wildcard that matches anything,
// a value matches only an equal value (Value's equality: 1 does not match 1.0).
using Pattern = std::vector<std::optional<Value>>;

enum class CompareOp : std::uint8_t { eq, ne, lt, le, gt, ge };

// `attribute op operand`, compared with Value's total order (so values of different kinds
// compare by kind: every integer is less than every string).
struct Condition {
  std::string attribute;
  CompareOp op = CompareOp::eq;
  Value operand;
};

// Records for which every condition of `where` holds (an empty `where` selects everything),
// projected onto `fields` (attribute names, in the order wanted; empty means the whole record).
struct SelectQuery {
  std::vector<Condition> where;
  std::vector<std::string> fields;
};

}  // namespace mishka
