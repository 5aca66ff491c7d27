// [datasets.<name>]: where each data set lives and how much of it to read.
#include <filesystem>
#include <set>

#include <fmt/format.h>

#include "config/known_names.h"
#include "config/parse_sections.h"

namespace peft::config_detail {
namespace {

std::vector<std::string> dataset_keys(std::string_view name) {
  std::vector<std::string> keys = {"format"};
  if (dataset_is_synthetic(name)) {
    keys.insert(keys.end(), {"synthetic_train", "synthetic_eval"});
  } else {
    keys.insert(keys.end(), {"path", "max_train", "max_eval"});
  }
  keys.push_back(dataset_is_mlm(name) ? "block_size" : "max_length");
  return keys;
}

/// What the official layout of a data set holds, for messages.
std::string_view layout(std::string_view name) {
  if (name == "sst2") return "GLUE SST-2: train.tsv, dev.tsv";
  if (name == "imdb") return "aclImdb: train/{pos,neg}, test/{pos,neg}";
  return "WikiText-2: wiki.train.tokens, wiki.valid.tokens, wiki.test.tokens";
}

std::string misplaced_hint(std::string_view name, std::string_view key) {
  static const std::set<std::string, std::less<>> any = {
      "path", "max_train", "max_eval", "synthetic_train", "synthetic_eval", "block_size", "max_length"};
  if (!any.contains(key)) return {};
  if (key == "path") return fmt::format(" ('{}' is generated, it has no path)", name);
  if (key == "block_size") return fmt::format(" (block_size is for MLM data sets; '{}' is classification)", name);
  if (key == "max_length") return fmt::format(" (max_length is for classification; '{}' uses block_size)", name);
  if (key.starts_with("synthetic_")) return fmt::format(" ('{}' is read from disk: use max_train / max_eval)", name);
  return fmt::format(" ('{}' is generated: use synthetic_train / synthetic_eval)", name);
}

}  // namespace

void read_datasets(const toml::table* datasets_table, const GridNodes& grid, SweepSpec& spec, Context& ctx) {
  TableReader all(datasets_table, "datasets", known_datasets(), ctx.errors);
  std::map<std::string, const toml::table*> tables;
  for (const std::string& name : known_datasets())
    if (const toml::table* t = all.get_table(name)) tables[name] = t;
  all.finish("dataset");

  std::set<std::string> names;
  for (const auto& [name, node] : grid.dataset) names.insert(name);
  for (const auto& [name, table] : tables) names.insert(name);
  for (const std::string& name : names) {
    DatasetSettings d;
    d.name = name;
    const auto it = tables.find(name);
    const toml::table* table = it == tables.end() ? nullptr : it->second;
    const std::string path = "datasets." + name;
    TableReader r(table, path, dataset_keys(name), ctx.errors);
    std::string format;
    r.get("format", format, {std::string(dataset_format(name))});
    r.get("max_length", d.max_length, IntRange{8, 512});
    r.get("block_size", d.block_size, IntRange{8, 512});
    r.get("max_train", d.max_train, IntRange::at_least(0));
    r.get("max_eval", d.max_eval, IntRange::at_least(0));
    r.get("synthetic_train", d.synthetic_train, IntRange::at_least(1));
    r.get("synthetic_eval", d.synthetic_eval, IntRange::at_least(1));
    const bool has_path = r.get("path", d.path);
    // A sequence longer than the model's positions would fail only after the data loaded.
    const char* length_key = dataset_is_mlm(name) ? "block_size" : "max_length";
    const int64_t length = dataset_is_mlm(name) ? d.block_size : d.max_length;
    if (ctx.max_positions > 0 && length > ctx.max_positions && grid.dataset.count(name)) {
      const toml::node* n = r.node(length_key);
      ctx.errors.at(n ? n->source() : grid.dataset.at(name)->source(), path + "." + length_key,
                    fmt::format("{}{} exceeds the model's max_position_embeddings {} ({}){}", n ? "" : "the default ",
                                length, ctx.max_positions, ctx.positions_source,
                                n ? "" : fmt::format(": set {}.{}", path, length_key)));
    }
    r.finish("key", [&](std::string_view key) { return misplaced_hint(name, key); });

    const auto in_grid = grid.dataset.find(name);
    if (in_grid == grid.dataset.end()) {
      spec.warnings.push_back(
          ctx.errors.locate(where(table), path, "not in grid.dataset, so these settings are not used"));
      continue;
    }
    if (!dataset_is_synthetic(name)) {
      if (!table) {
        ctx.errors.at(*in_grid->second, "grid.dataset",
                      fmt::format("'{}' needs a [datasets.{}] table with path = the folder in its "
                                  "official layout ({})",
                                  name, name, layout(name)));
      } else if (!has_path) {
        if (!r.node("path"))
          ctx.errors.at(where(table), path,
                        fmt::format("missing key 'path': the folder in the official layout ({})", layout(name)));
      } else if (d.path.empty()) {
        ctx.errors.at(*r.node("path"), path + ".path", "expected a folder, found \"\"");
      } else if (ctx.check_paths) {
        std::error_code ec;
        if (!std::filesystem::exists(d.path, ec))
          ctx.errors.at(*r.node("path"), path + ".path",
                        fmt::format("folder '{}' not found (expected {})", d.path, layout(name)));
        else if (!std::filesystem::is_directory(d.path, ec))
          ctx.errors.at(*r.node("path"), path + ".path", fmt::format("'{}' is not a folder", d.path));
      }
    }
    spec.datasets[name] = d;
  }
}

std::string join_names(const std::vector<std::string>& names) {
  std::string out;
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (i) out += i + 1 == names.size() ? " and " : ", ";
    out += names[i];
  }
  return out;
}

}  // namespace peft::config_detail
