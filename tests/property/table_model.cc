#include "table_model.h"

#include <algorithm>
#include <iterator>
#include <string>

namespace mishka::property {

void TableModel::write(const Record& record) {
  std::vector<Record>& records = data_[record.front()];
  if (!is_bag()) {
    records.assign(1, record);
  } else if (std::find(records.begin(), records.end(), record) == records.end()) {
    records.push_back(record);
  }
}

std::size_t TableModel::erase(const Value& key) {
  auto it = data_.find(key);
  if (it == data_.end()) return 0;
  const std::size_t removed = it->second.size();
  data_.erase(it);
  return removed;
}

bool TableModel::erase_object(const Record& record) {
  auto it = data_.find(record.front());
  if (it == data_.end()) return false;
  std::vector<Record>& records = it->second;
  auto found = std::find(records.begin(), records.end(), record);
  if (found == records.end()) return false;
  records.erase(found);
  if (records.empty()) data_.erase(it);
  return true;
}

bool TableModel::contains(const Record& record) const {
  auto it = data_.find(record.front());
  return it != data_.end() &&
         std::find(it->second.begin(), it->second.end(), record) != it->second.end();
}

std::vector<Record> TableModel::read(const Value& key) const {
  auto it = data_.find(key);
  return it == data_.end() ? std::vector<Record>{} : it->second;
}

std::vector<Record> TableModel::all_records() const {
  std::vector<Record> out;
  for (const auto& [key, records] : data_) out.insert(out.end(), records.begin(), records.end());
  return out;
}

std::vector<Value> TableModel::keys() const {
  std::vector<Value> out;
  out.reserve(data_.size());
  for (const auto& entry : data_) out.push_back(entry.first);
  return out;
}

std::size_t TableModel::count() const {
  std::size_t n = 0;
  for (const auto& entry : data_) n += entry.second.size();
  return n;
}

const Record& TableModel::random_stored(Rng& rng) const {
  auto it = data_.begin();
  std::advance(it, static_cast<std::ptrdiff_t>(rng.below(data_.size())));
  return rng.pick(it->second);
}

std::vector<Record> TableModel::scan_attribute(std::size_t position, const Value& value) const {
  std::vector<Record> out;
  for (const auto& [key, records] : data_) {
    for (const Record& record : records) {
      if (record[position] == value) out.push_back(record);
    }
  }
  return out;
}

std::vector<Record> TableModel::match(const Pattern& pattern) const {
  std::vector<Record> out;
  for (const auto& [key, records] : data_) {
    for (const Record& record : records) {
      bool matches = true;
      for (std::size_t i = 0; i < pattern.size() && matches; ++i) {
        matches = !pattern[i].has_value() || *pattern[i] == record[i];
      }
      if (matches) out.push_back(record);
    }
  }
  return out;
}

std::vector<Record> TableModel::select(const SelectQuery& query) const {
  std::vector<Record> out;
  for (const auto& [key, records] : data_) {
    for (const Record& record : records) {
      bool selected = true;
      for (const Condition& condition : query.where) {
        const std::size_t position = *spec_.attribute_position(condition.attribute);
        selected = selected && holds(record[position], condition.op, condition.operand);
      }
      if (!selected) continue;
      if (query.fields.empty()) {
        out.push_back(record);
        continue;
      }
      Record projected;
      for (const std::string& field : query.fields) {
        projected.push_back(record[*spec_.attribute_position(field)]);
      }
      out.push_back(std::move(projected));
    }
  }
  return out;
}

std::optional<Value> TableModel::key_after(const Value& key) const {
  auto it = data_.upper_bound(key);
  if (it == data_.end()) return std::nullopt;
  return it->first;
}

std::optional<Value> TableModel::key_before(const Value& key) const {
  auto it = data_.lower_bound(key);
  if (it == data_.begin()) return std::nullopt;
  return std::prev(it)->first;
}

}  // namespace mishka::property
