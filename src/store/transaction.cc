#include <algorithm>

#include "common/codec.h"
#include "store/transaction_state.h"

namespace mishka {

using engine::Compare;
using engine::TxnOp;

namespace {

Status no_table(std::string_view name) {
  return not_found("table '" + std::string(name) + "' does not exist");
}

bool contains(const std::vector<Record>& records, const Record& r) {
  return std::find(records.begin(), records.end(), r) != records.end();
}

bool matches(const Record& r, const Pattern& pattern) {
  for (std::size_t i = 0; i < pattern.size() && i < r.size(); ++i) {
    if (pattern[i] && !(*pattern[i] == r[i])) return false;
  }
  return true;
}

void sort_by_key(std::vector<RecordRef>& records) {
  std::stable_sort(records.begin(), records.end(),
                   [](const RecordRef& a, const RecordRef& b) { return (*a)[0] < (*b)[0]; });
}

}  // namespace

// ---- Transaction: forwards to its state ----

Transaction::~Transaction() = default;

Result<std::vector<RecordRef>> Transaction::read(std::string_view table, const Value& key) {
  return state_->read(table, key);
}
Status Transaction::write(std::string_view table, const Record& record) {
  return state_->write(table, record);
}
Status Transaction::erase(std::string_view table, const Value& key) {
  return state_->erase(table, key);
}
Status Transaction::erase_object(std::string_view table, const Record& record) {
  return state_->erase_object(table, record);
}
Result<std::vector<RecordRef>> Transaction::index_read(std::string_view table,
                                                       std::string_view attribute,
                                                       const Value& value) {
  return state_->index_read(table, attribute, value);
}
Result<std::vector<RecordRef>> Transaction::match_object(std::string_view table,
                                                         const Pattern& pattern) {
  return state_->match_object(table, pattern);
}
Result<std::vector<RecordRef>> Transaction::select(std::string_view table,
                                                   const std::vector<Condition>& where) {
  return state_->select(table, where);
}
Result<std::vector<Record>> Transaction::select(std::string_view table, const SelectQuery& query) {
  return state_->select(table, query);
}
Result<std::vector<Value>> Transaction::all_keys(std::string_view table) {
  return state_->all_keys(table);
}
Result<std::size_t> Transaction::count(std::string_view table) {
  return state_->count(table);
}

// ---- State ----

Result<Transaction::State::TableState*> Transaction::State::table(
    const replica::Replica::ReadView& view, std::string_view name) {
  auto it = tables_.find(name);
  if (it != tables_.end()) {
    if (view.catalog().find(name) == nullptr) return no_table(name);
    return &it->second;
  }
  const store::Table* t = view.catalog().find(name);
  if (t == nullptr) return no_table(name);
  TableState& state = tables_[std::string(name)];
  state.spec = t->spec();
  state.schema_revision = view.revision();
  return &state;
}

void Transaction::State::note_revision(std::int64_t revision) {
  if (!first_revision_) {
    first_revision_ = revision;
  } else if (*first_revision_ != revision) {
    single_revision_ = false;
  }
}

void Transaction::State::note_key_read(TableState& t, const Value& key, std::int64_t revision,
                                       bool existed) {
  if (dirty_) return;
  std::string etcd_key = keyspace_.record_key(t.spec, node_, key);
  auto [it, inserted] = key_reads_.try_emplace(std::move(etcd_key));
  if (inserted || revision < it->second.revision) {
    it->second = KeyRead{t.spec.name, key, revision, existed};
  }
}

void Transaction::State::note_scan(TableState& t, std::int64_t revision) {
  if (dirty_) return;
  if (!t.scanned_at || revision < *t.scanned_at) t.scanned_at = revision;
}

Status Transaction::State::fail(Status status) {
  if (error_.ok()) error_ = status;
  return status;
}

std::vector<RecordRef> Transaction::State::overlay(const std::vector<RecordRef>& base,
                                                   const PendingKey& p) {
  std::vector<RecordRef> out;
  if (!p.cleared) {
    for (const RecordRef& r : base) {
      if (!contains(p.removed, *r)) out.push_back(r);
    }
  }
  for (const Record& r : p.added) {
    bool present = std::any_of(out.begin(), out.end(), [&](const RecordRef& o) { return *o == r; });
    if (!present) out.push_back(std::make_shared<const Record>(r));
  }
  return out;
}

Result<std::vector<RecordRef>> Transaction::State::read(std::string_view name, const Value& key) {
  auto view = replica_.read();
  auto t = table(view, name);
  if (!t.ok()) return t.status();
  const store::Table* tab = view.catalog().find(name);
  note_revision(view.revision());
  auto it = (*t)->pending.find(key);
  // A key the transaction replaced as a whole reads the same whatever the replica holds.
  if (it != (*t)->pending.end() && it->second.cleared) return overlay({}, it->second);
  std::vector<RecordRef> base = tab->read(key);
  note_key_read(**t, key, view.revision(), !base.empty());
  if (it == (*t)->pending.end()) return base;
  return overlay(base, it->second);
}

Status Transaction::State::write(std::string_view name, const Record& record) {
  auto view = replica_.read();
  auto t = table(view, name);
  if (!t.ok()) return fail(t.status());
  MISHKA_RETURN_IF_ERROR(fail((*t)->spec.check_record(record)));
  PendingKey& p = (*t)->pending[record[0]];
  if ((*t)->spec.type != TableType::bag) {
    p.cleared = true;
    p.added = {record};
    return Status::Ok();
  }
  std::erase(p.removed, record);
  if (!contains(p.added, record)) p.added.push_back(record);
  return Status::Ok();
}

Status Transaction::State::erase(std::string_view name, const Value& key) {
  auto view = replica_.read();
  auto t = table(view, name);
  if (!t.ok()) return fail(t.status());
  PendingKey& p = (*t)->pending[key];
  p.cleared = true;
  p.added.clear();
  p.removed.clear();
  return Status::Ok();
}

Status Transaction::State::erase_object(std::string_view name, const Record& record) {
  TableSpec spec;
  {
    auto view = replica_.read();
    auto t = table(view, name);
    if (!t.ok()) return fail(t.status());
    spec = (*t)->spec;
  }
  MISHKA_RETURN_IF_ERROR(fail(spec.check_record(record)));
  if (spec.type != TableType::bag) {
    // Only the record as it is now goes: that is a read of the key.
    auto current = read(name, record[0]);
    if (!current.ok()) return fail(current.status());
    if (current->empty() || !(*current->front() == record)) return Status::Ok();
    return erase(name, record[0]);
  }
  PendingKey& p = tables_.find(name)->second.pending[record[0]];
  std::erase(p.added, record);
  if (!p.cleared && !contains(p.removed, record)) p.removed.push_back(record);
  return Status::Ok();
}

Result<std::vector<RecordRef>> Transaction::State::overlay_scan(const store::Table& table,
                                                                TableState& t, const Query& query,
                                                                bool key_order) {
  auto base = query(table);
  if (!base.ok() || t.pending.empty()) return base;
  std::vector<RecordRef> out;
  out.reserve(base->size());
  for (RecordRef& r : *base) {
    if (t.pending.count((*r)[0]) == 0) out.push_back(std::move(r));
  }
  // The transaction's records of its pending keys, queried the same way as the replica's.
  auto staged = store::Table::create(t.spec);
  if (!staged.ok()) return staged.status();
  for (const auto& [key, p] : t.pending) {
    for (const RecordRef& r : overlay(table.read(key), p)) {
      MISHKA_RETURN_IF_ERROR((*staged)->write(r));
    }
  }
  auto extra = query(**staged);
  if (!extra.ok()) return extra.status();
  out.insert(out.end(), extra->begin(), extra->end());
  if (key_order) sort_by_key(out);
  return out;
}

Result<std::vector<RecordRef>> Transaction::State::index_read(std::string_view name,
                                                              std::string_view attribute,
                                                              const Value& value) {
  TableSpec spec;
  {
    auto view = replica_.read();
    auto t = table(view, name);
    if (!t.ok()) return t.status();
    spec = (*t)->spec;
  }
  if (attribute == spec.attributes.front()) return read(name, value);  // one key: no scan
  auto view = replica_.read();
  auto t = table(view, name);
  if (!t.ok()) return t.status();
  note_revision(view.revision());
  note_scan(**t, view.revision());
  std::string attr(attribute);
  return overlay_scan(
      *view.catalog().find(name), **t,
      [&](const store::Table& tb) { return tb.index_read(attr, value); }, true);
}

Result<std::vector<RecordRef>> Transaction::State::match_object(std::string_view name,
                                                                const Pattern& pattern) {
  auto view = replica_.read();
  auto t = table(view, name);
  if (!t.ok()) return t.status();
  const TableSpec spec = (*t)->spec;
  if (pattern.size() == spec.attributes.size() && pattern.front().has_value()) {
    // Bound to one key: a read of that key, not a scan of the table.
    Value key = *pattern.front();
    { auto release = std::move(view); }
    auto records = read(name, key);
    if (!records.ok()) return records;
    std::erase_if(*records, [&](const RecordRef& r) { return !matches(*r, pattern); });
    return records;
  }
  note_revision(view.revision());
  note_scan(**t, view.revision());
  return overlay_scan(
      *view.catalog().find(name), **t,
      [&](const store::Table& tb) { return tb.match_object(pattern); },
      spec.type == TableType::ordered_set);
}

Result<std::vector<RecordRef>> Transaction::State::select(std::string_view name,
                                                          const std::vector<Condition>& where) {
  auto view = replica_.read();
  auto t = table(view, name);
  if (!t.ok()) return t.status();
  note_revision(view.revision());
  note_scan(**t, view.revision());
  return overlay_scan(
      *view.catalog().find(name), **t, [&](const store::Table& tb) { return tb.select(where); },
      (*t)->spec.type == TableType::ordered_set);
}

Result<std::vector<Record>> Transaction::State::select(std::string_view name,
                                                       const SelectQuery& query) {
  Result<std::vector<std::size_t>> positions = std::vector<std::size_t>();
  {
    auto view = replica_.read();
    auto t = table(view, name);
    if (!t.ok()) return t.status();
    positions = store::projection_positions((*t)->spec, query.fields);
  }
  if (!positions.ok()) return positions.status();
  auto records = select(name, query.where);
  if (!records.ok()) return records.status();
  return store::project(*records, *positions);
}

Result<std::vector<Value>> Transaction::State::all_keys(std::string_view name) {
  auto view = replica_.read();
  auto t = table(view, name);
  if (!t.ok()) return t.status();
  note_revision(view.revision());
  note_scan(**t, view.revision());
  const store::Table& tab = *view.catalog().find(name);
  std::vector<Value> keys = tab.all_keys();
  if ((*t)->pending.empty()) return keys;
  std::erase_if(keys, [&](const Value& k) { return (*t)->pending.count(k) != 0; });
  for (const auto& [key, p] : (*t)->pending) {
    if (!overlay(tab.read(key), p).empty()) keys.push_back(key);
  }
  if ((*t)->spec.type == TableType::ordered_set) std::sort(keys.begin(), keys.end());
  return keys;
}

Result<std::size_t> Transaction::State::count(std::string_view name) {
  auto view = replica_.read();
  auto t = table(view, name);
  if (!t.ok()) return t.status();
  note_revision(view.revision());
  note_scan(**t, view.revision());
  const store::Table& tab = *view.catalog().find(name);
  std::size_t n = tab.count();
  for (const auto& [key, p] : (*t)->pending) {
    std::vector<RecordRef> base = tab.read(key);
    n = n - base.size() + overlay(base, p).size();
  }
  return n;
}

// ---- The commit ----

Transaction::State::Prepared Transaction::State::prepare() {
  Prepared out;
  store::CommitRequest& req = out.request;
  auto compare = [&](std::string key, Compare::Target target, Compare::Result result,
                     std::int64_t number, const std::string& blame) {
    req.compares.push_back(store::compare_op(std::move(key), target, result, number));
    out.blame.push_back(blame);
  };
  // docs/keyspace.md: a key read at R is unchanged while mod_revision < R + 1, and still
  // there while version > 0.
  auto key_compares = [&](const std::string& etcd_key, const KeyRead& r) {
    std::string blame = "table '" + r.table + "', key " + r.key.debug_string();
    compare(etcd_key, Compare::Target::mod_revision, Compare::Result::less, r.revision + 1, blame);
    if (r.existed) compare(etcd_key, Compare::Target::version, Compare::Result::greater, 0, blame);
  };
  for (const auto& [etcd_key, r] : key_reads_) key_compares(etcd_key, r);
  for (const auto& [name, t] : tables_) {
    if (!t.scanned_at) continue;
    compare(keyspace_.table_version_key(name), Compare::Target::mod_revision, Compare::Result::less,
            *t.scanned_at + 1,
            "table '" + name + "' (a scan: records were written or deleted since)");
  }

  std::optional<replica::Replica::ReadView> view;  // taken only if a bag key needs its records
  for (auto& [name, t] : tables_) {
    if (t.pending.empty()) continue;
    // Writing into a table deleted (or deleted and created again) since must fail.
    const std::string schema = keyspace_.schema_key(name);
    const std::string blame = "table '" + name + "' (deleted or created again since)";
    compare(schema, Compare::Target::mod_revision, Compare::Result::less, t.schema_revision + 1,
            blame);
    compare(schema, Compare::Target::version, Compare::Result::greater, 0, blame);
    req.table_versions.push_back(keyspace_.table_version_key(name));
    const bool bag = t.spec.type == TableType::bag;
    // ram_copies records (and bag markers) live under the cluster's ram lease; the committer
    // fills it in (store/group_commit.h). Erases need no lease.
    const std::int64_t lease = t.spec.storage == StorageType::ram_copies ? store::kRamLease : 0;
    for (const auto& [key, p] : t.pending) {
      const std::string etcd_key = keyspace_.record_key(t.spec, node_, key);
      if (!bag) {
        if (p.added.empty()) {
          req.ops.push_back(store::erase_op(etcd_key));
        } else {
          req.ops.push_back(store::put_op(etcd_key, encode_record(p.added[0]), lease));
        }
        continue;
      }
      // Bag: the marker is rewritten by every change under the key (docs/keyspace.md).
      auto put_record = [&](const Record& r) {
        req.ops.push_back(
            store::put_op(keyspace_.bag_record_key(t.spec, node_, r), encode_record(r), lease));
      };
      if (p.cleared && p.added.empty()) {
        req.ops.push_back(store::erase_op(etcd_key, engine::prefix_range_end(etcd_key)));
        continue;
      }
      if (p.cleared) {
        // Erased, then written again: etcd refuses a put inside an erased range, so the
        // replica's records go one by one, and the commit depends on them being all there are.
        if (!view) view.emplace(replica_.read());
        const store::Table* tab = view->catalog().find(name);
        std::vector<RecordRef> base = tab != nullptr ? tab->read(key) : std::vector<RecordRef>{};
        if (!dirty_) {
          key_compares(etcd_key, {name, key, view->revision(), !base.empty()});
          if (view->revision() != first_revision_.value_or(view->revision())) {
            single_revision_ = false;
          }
        }
        for (const RecordRef& r : base) {
          if (!contains(p.added, *r)) {
            req.ops.push_back(store::erase_op(keyspace_.bag_record_key(t.spec, node_, *r)));
          }
        }
      } else {
        for (const Record& r : p.removed) {
          req.ops.push_back(store::erase_op(keyspace_.bag_record_key(t.spec, node_, r)));
        }
      }
      for (const Record& r : p.added) put_record(r);
      req.ops.push_back(store::put_op(etcd_key, {}, lease));
    }
  }
  out.writes = !req.ops.empty();
  out.single_revision = single_revision_;
  return out;
}

}  // namespace mishka
