// The TOML file as Values (config_file.h). toml++ is built with exceptions here: its parse
// error is caught in this file and never leaves it.
#include "mishkad/config_file.h"

#include <toml++/toml.h>

#include <optional>
#include <string_view>
#include <utility>

#include "common/files.h"

namespace mishka::daemon {
namespace {

int line_of(const toml::source_region& region) {
  return static_cast<int>(region.begin.line);
}

class Converter {
 public:
  explicit Converter(const ConfigFile& file) : file_(file) {}

  // The node as a Value, or invalid_argument naming `key` (the dotted path) and the line.
  Result<Value> convert(const toml::node& node, const std::string& key) const {
    switch (node.type()) {
      case toml::node_type::table:
        return convert_table(*node.as_table(), key);
      case toml::node_type::array:
        return convert_array(*node.as_array(), key);
      case toml::node_type::string:
        return Value(node.as_string()->get());
      case toml::node_type::integer:
        return Value(node.as_integer()->get());
      case toml::node_type::floating_point:
        return Value(node.as_floating_point()->get());
      case toml::node_type::boolean:
        return Value(node.as_boolean()->get());
      case toml::node_type::date:
      case toml::node_type::time:
      case toml::node_type::date_time:
      case toml::node_type::none:
        break;
    }
    return invalid_argument(file_.where(line_of(node.source())) + ": key '" + key +
                            "': dates and times are not accepted by any key");
  }

 private:
  Result<Value> convert_table(const toml::table& table, const std::string& key) const {
    Map map;
    for (const auto& [name, child] : table) {
      const std::string child_key =
          std::string(key.empty() ? "" : key + ".") + std::string(name.str());
      Result<Value> value = convert(child, child_key);
      if (!value.ok()) return value.status();
      map.set(Value(std::string(name.str())), std::move(*value));
    }
    return Value(std::move(map));
  }

  Result<Value> convert_array(const toml::array& array, const std::string& key) const {
    List list;
    for (std::size_t i = 0; i < array.size(); ++i) {
      Result<Value> value = convert(array[i], key + "[" + std::to_string(i) + "]");
      if (!value.ok()) return value.status();
      list.push_back(std::move(*value));
    }
    return Value(std::move(list));
  }

  const ConfigFile& file_;
};

}  // namespace

std::string ConfigFile::where(int line) const {
  return line > 0 ? path + ":" + std::to_string(line) : path;
}

Result<ConfigFile> read_config_file(const std::string& path) {
  Result<std::optional<std::string>> text = read_file_if_exists(path);
  if (!text.ok()) return text.status().with_context("config file");
  if (!text->has_value()) return not_found("config file " + path + " does not exist");

  ConfigFile file;
  file.path = path;
  toml::table root;
  try {
    root = toml::parse(**text, path);
  } catch (const toml::parse_error& error) {
    const toml::source_position begin = error.source().begin;
    return invalid_argument(path + ":" + std::to_string(begin.line) + ":" +
                            std::to_string(begin.column) +
                            ": not valid TOML: " + std::string(error.description()));
  }

  const Converter converter(file);
  for (const auto& [name, node] : root) {
    const std::string key(name.str());
    Result<Value> value = converter.convert(node, key);
    if (!value.ok()) return value.status();
    ConfigEntry entry{.value = std::move(*value), .line = line_of(name.source()), .item_lines = {}};
    if (const toml::array* array = node.as_array()) {
      for (const toml::node& item : *array) entry.item_lines.push_back(line_of(item.source()));
    }
    file.entries.emplace(key, std::move(entry));
  }
  return file;
}

}  // namespace mishka::daemon
