// The sweep file as a whole: TOML syntax, the top-level tables, [sweep], [model], [grid].
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "config/known_names.h"
#include "config/parse_sections.h"
#include "config/sweep_spec.h"
#include "core/error.h"
#include "core/tiny_preset.h"
#include "core/vocab_path.h"

namespace peft {
namespace config_detail {
namespace {

const std::vector<std::string> kRootTables = {"sweep", "model", "train", "grid", "method", "methods", "datasets"};
const std::vector<std::string> kSweepKeys = {"name", "output", "dp", "seeds", "schedule", "save_adapters"};
const std::vector<std::string> kModelKeys = {"checkpoint", "preset", "vocab", "pretrain", "pretrain_steps", "cache_dir"};
const std::vector<std::string> kGridKeys = {"method", "rank", "sparsity", "dataset", "seed", "lr", "alpha"};

// A plain loop, not std::regex: libstdc++'s regex matcher recurses once per character and
// overflows the stack on values of a few hundred kB.
bool safe_name(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '_' || c == '.' || c == '-';
  });
}

/// One grid axis: a scalar or a non-empty array of distinct values, each checked by `check`.
template <typename T, typename Check>
bool read_axis(TableReader& g, std::string_view key, std::vector<T>& out, Check check,
               std::map<std::string, const toml::node*>* nodes = nullptr) {
  const toml::node* n = g.node(key);
  if (!n) return false;
  const std::string full = g.full_key(key);
  std::vector<const toml::node*> items;
  if (auto arr = n->as_array()) {
    for (const toml::node& el : *arr) items.push_back(&el);
    if (items.empty()) {
      g.errors().at(*n, full, "expected at least one value, found an empty array");
      return false;
    }
  } else {
    items.push_back(n);
  }
  std::vector<T> values;
  bool ok = true;
  for (const toml::node* item : items) {
    T v{};
    if (!check(*item, full, v)) {
      ok = false;
    } else if (std::find(values.begin(), values.end(), v) != values.end()) {
      g.errors().at(*item, full, fmt::format("duplicate value {}", describe(*item)));
      ok = false;
    } else {
      values.push_back(v);
      if (nodes) {
        if constexpr (std::is_same_v<T, std::string>) (*nodes)[v] = item;
      }
    }
  }
  if (ok) out = std::move(values);
  return ok;
}

void read_sweep(const toml::table* table, SweepSpec& spec, Context& ctx) {
  TableReader r(table, "sweep", kSweepKeys, ctx.errors);
  if (const toml::node* n = r.node("name")) {
    std::string name;
    if (r.check_string(*n, "sweep.name", name, {})) {
      if (safe_name(name)) spec.name = name;
      else ctx.errors.at(*n, "sweep.name", fmt::format("expected letters, digits, '_', '-' or '.' (the name "
                                                        "is used in file names), found \"{}\"", name));
    }
  }
  if (const toml::node* n = r.node("output")) {
    std::string output;
    if (r.check_string(*n, "sweep.output", output, {})) {
      if (output.empty()) ctx.errors.at(*n, "sweep.output", "expected a file path, found \"\"");
      else spec.output = output;
    }
  }
  if (r.get("dp", spec.dp, IntRange::at_least(1))) {
    ctx.dp = spec.dp;
    ctx.dp_node = r.node("dp");
    spec.dp_pos = {ctx.dp_node->source().begin.line, ctx.dp_node->source().begin.column};
  }
  std::vector<int64_t> seeds;
  if (read_axis(r, "seeds", seeds, [&](const toml::node& n, const std::string& key, int64_t& v) {
        return r.check_int(n, key, v, IntRange::at_least(0));
      }))
    spec.seeds.assign(seeds.begin(), seeds.end());
  r.get("schedule", spec.schedule, {"dynamic", "static"});
  r.get("save_adapters", spec.save_adapters);
  r.finish();
}

/// max_position_embeddings of a checkpoint's config.json, so that sequence lengths are checked
/// before any data loads. A config.json that cannot be read is reported here too.
void read_checkpoint_positions(const toml::node& where, const std::filesystem::path& config, Context& ctx) {
  std::ifstream in(config, std::ios::binary);
  nlohmann::json j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    ctx.errors.at(where, "model.checkpoint", fmt::format("{}: not a JSON object", config.string()));
    return;
  }
  const auto it = j.find("max_position_embeddings");
  if (it == j.end()) return;  // the loader applies transformers' default
  if (!it->is_number_integer() || it->get<int64_t>() < 1) {
    ctx.errors.at(where, "model.checkpoint",
                  fmt::format("{}: max_position_embeddings must be a positive integer", config.string()));
    return;
  }
  ctx.max_positions = it->get<int64_t>();
  ctx.positions_source = fmt::format("{}", config.string());
}

void read_model(const toml::table* table, ModelSettings& m, Context& ctx) {
  if (!table) {
    ctx.errors.general("model", "missing table [model]: set checkpoint = \"<Hugging Face folder>\" or "
                                "preset = \"tiny\"");
    return;
  }
  TableReader r(table, "model", kModelKeys, ctx.errors);
  const bool has_checkpoint = r.get("checkpoint", m.checkpoint);
  const bool has_preset = r.get("preset", m.preset, {"tiny"});
  if (has_checkpoint && has_preset)
    ctx.errors.at(*r.node("preset"), "model.preset",
                  "set either model.checkpoint or model.preset, not both");
  if (!r.node("checkpoint") && !r.node("preset"))
    ctx.errors.at(where(table), "model",
                  "set checkpoint = \"<Hugging Face folder>\" or preset = \"tiny\"");
  if (r.get("pretrain", m.pretrain) && m.pretrain && r.node("checkpoint"))
    ctx.errors.at(*r.node("pretrain"), "model.pretrain",
                  "pretraining is for preset = \"tiny\" only (a checkpoint is already trained)");
  r.get("pretrain_steps", m.pretrain_steps, IntRange::at_least(1));
  if (const toml::node* n = r.node("vocab"); n && r.get("vocab", m.vocab)) {
    if (r.node("checkpoint"))
      ctx.errors.at(*n, "model.vocab", "a checkpoint brings its own vocabulary; model.vocab is for preset = \"tiny\"");
    else if (m.pretrain)
      ctx.errors.at(*n, "model.vocab",
                    "pretrain = true trains the tiny base on the synthetic corpus and its vocabulary; drop one of them");
    else if (m.vocab.empty())
      ctx.errors.at(*n, "model.vocab", "expected a vocab.txt or tokenizer.json (or a folder with one), found \"\"");
    else if (ctx.check_paths && resolve_vocab(m.vocab).empty())
      ctx.errors.at(*n, "model.vocab",
                    fmt::format("'{}' is neither a vocab.txt / tokenizer.json file nor a folder holding one", m.vocab));
  }
  if (const toml::node* n = r.node("cache_dir"); n && r.get("cache_dir", m.cache_dir) && m.cache_dir.empty())
    ctx.errors.at(*n, "model.cache_dir", "expected a folder, found \"\"");
  r.finish();

  if (has_checkpoint) {
    const toml::node& n = *r.node("checkpoint");
    namespace fs = std::filesystem;
    std::error_code ec;
    if (m.checkpoint.empty())
      ctx.errors.at(n, "model.checkpoint", "expected a folder, found \"\"");
    else if (ctx.check_paths && !fs::is_directory(m.checkpoint, ec))
      ctx.errors.at(n, "model.checkpoint",
                    fmt::format("folder '{}' not found (expected a Hugging Face checkpoint: config.json, "
                                "model.safetensors, vocab.txt)",
                                m.checkpoint));
    else if (ctx.check_paths && !fs::is_regular_file(fs::path(m.checkpoint) / "config.json", ec))
      ctx.errors.at(n, "model.checkpoint",
                    fmt::format("'{}' has no config.json (expected a Hugging Face checkpoint folder)",
                                m.checkpoint));
    else if (ctx.check_paths)
      read_checkpoint_positions(n, fs::path(m.checkpoint) / "config.json", ctx);
  } else if (m.preset == "tiny") {
    ctx.max_positions = tiny_max_positions(m);
    ctx.positions_source = m.vocab.empty() ? "model.preset = \"tiny\" with the synthetic vocabulary"
                                           : "model.preset = \"tiny\" with model.vocab";
  }
}

void read_grid(const toml::table* table, SweepSpec& spec, GridNodes& nodes, Context& ctx) {
  if (!table) {
    ctx.errors.general("grid", "missing table [grid]: it needs at least method = [...] and dataset = [...]");
    return;
  }
  TableReader g(table, "grid", kGridKeys, ctx.errors);
  GridAxes& a = spec.grid;
  auto strings = [&](const std::vector<std::string>& choices) {
    return [&g, &choices](const toml::node& n, const std::string& key, std::string& v) {
      return g.check_string(n, key, v, choices);
    };
  };
  if (!read_axis(g, "method", a.method, strings(known_methods()), &nodes.method) && !g.node("method"))
    ctx.errors.at(where(table), "grid",
                  fmt::format("missing key 'method' (one or more of {})", join_names(known_methods())));
  if (!read_axis(g, "dataset", a.dataset, strings(known_datasets()), &nodes.dataset) && !g.node("dataset"))
    ctx.errors.at(where(table), "grid",
                  fmt::format("missing key 'dataset' (one or more of {})", join_names(known_datasets())));
  read_axis(g, "rank", a.rank, [&](const toml::node& n, const std::string& key, int64_t& v) {
    return g.check_int(n, key, v, IntRange::at_least(1));
  });
  auto doubles = [&g](DoubleRange range) {
    return [&g, range](const toml::node& n, const std::string& key, double& v) {
      return g.check_double(n, key, v, range);
    };
  };
  read_axis(g, "sparsity", a.sparsity, doubles(DoubleRange::unit_open()));
  read_axis(g, "lr", a.lr, doubles(DoubleRange::positive()));
  read_axis(g, "alpha", a.alpha, doubles(DoubleRange::positive()));
  std::vector<int64_t> seeds;
  if (read_axis(g, "seed", seeds, [&](const toml::node& n, const std::string& key, int64_t& v) {
        return g.check_int(n, key, v, IntRange::at_least(0));
      }))
    a.seed.assign(seeds.begin(), seeds.end());
  g.finish();

  // Axes no trial reads are almost certainly a mistake, but harmless.
  auto any_method = [&](bool (*uses)(std::string_view)) {
    return std::any_of(a.method.begin(), a.method.end(), [&](const std::string& m) { return uses(m); });
  };
  auto warn = [&](const char* key, const char* why) {
    spec.warnings.push_back(ctx.errors.locate(g.node(key)->source(), std::string("grid.") + key, why));
  };
  if (!a.sparsity.empty() && !a.method.empty() &&
      std::find(a.method.begin(), a.method.end(), "sparse_lora") == a.method.end())
    warn("sparsity", "no sparse_lora in grid.method, so no trial uses this axis");
  if (!a.rank.empty() && !a.method.empty() && !any_method(method_has_rank))
    warn("rank", "no method in grid.method has a rank, so no trial uses this axis");
  if (!a.alpha.empty() && !a.method.empty() && !any_method(method_has_alpha))
    warn("alpha", "no method in grid.method has an alpha, so no trial uses this axis");
}

std::string root_hint(std::string_view key) {
  for (const auto* keys : {&kSweepKeys, &kModelKeys, &train_keys(), &kGridKeys}) {
    if (std::find(keys->begin(), keys->end(), key) == keys->end()) continue;
    const char* table = keys == &kSweepKeys ? "sweep" : keys == &kModelKeys ? "model"
                        : keys == &kGridKeys ? "grid" : "train";
    return fmt::format(" (a key of [{}]: put it under that table)", table);
  }
  return {};
}

}  // namespace
}  // namespace config_detail

SweepSpec parse_sweep_string(const std::string& text, const std::string& origin, bool check_paths) {
  using namespace config_detail;
  toml::table root;
  try {
    root = toml::parse(text, origin);
  } catch (const toml::parse_error& e) {
    throw InputError(fmt::format("{}:{}:{}: TOML syntax error: {}", origin, e.source().begin.line,
                                 e.source().begin.column, e.description()));
  }

  SweepSpec spec;
  spec.origin = origin;
  spec.text = text;
  ErrorList errors(origin, text);
  Context ctx{errors, check_paths};

  TableReader top(&root, "", kRootTables, errors);
  const toml::table* sweep = top.get_table("sweep");
  const toml::table* model = top.get_table("model");
  const toml::table* train = top.get_table("train");
  const toml::table* grid = top.get_table("grid");
  const toml::table* method = top.get_table("method");
  const toml::table* methods = top.get_table("methods");
  const toml::table* datasets = top.get_table("datasets");
  top.finish("table", root_hint);

  read_sweep(sweep, spec, ctx);
  if (spec.name.empty()) {
    const std::string stem = std::filesystem::path(origin).stem().string();
    spec.name = safe_name(stem) ? stem : "sweep";
  }
  if (spec.output.empty()) spec.output = fmt::format("results/{}.h5", spec.name);
  read_model(model, spec.model, ctx);

  TableReader train_reader(train, "train", train_keys(), errors);
  read_train(train_reader, spec.train, ctx);
  train_reader.finish();
  if (ctx.dp_node && !train_reader.node("batch_size") && spec.train.batch_size % spec.dp != 0)
    errors.at(ctx.dp_node->source(), "sweep.dp",
              fmt::format("the default train.batch_size {} is not a multiple of {}: set train.batch_size",
                          spec.train.batch_size, spec.dp));
  if (spec.train.save_adapter && spec.train.adapter_dir.empty())
    spec.train.adapter_dir = fmt::format("adapters/{}", spec.name);

  GridNodes grid_nodes;
  read_grid(grid, spec, grid_nodes, ctx);
  if (!spec.grid.seed.empty() && sweep && sweep->contains("seeds"))
    spec.warnings.push_back(errors.locate(grid->get("seed")->source(), "grid.seed",
                                          "overrides sweep.seeds"));
  read_methods(method, methods, grid_nodes, spec, ctx);
  read_datasets(datasets, grid_nodes, spec, ctx);
  errors.throw_if_any();
  return spec;
}

namespace {
std::string beside_output(const std::string& output, const char* suffix) {
  std::filesystem::path p(output);
  if (p.extension() == ".h5") p.replace_extension();
  return p.string() + suffix;
}
}  // namespace

std::string adapters_dir(const std::string& output) { return beside_output(output, ".adapters"); }
std::string checkpoints_dir(const std::string& output) { return beside_output(output, ".checkpoints"); }

std::string SweepSpec::locate(SourcePos where, const std::string& key, const std::string& message) const {
  const SourcePos at = where.line == 0 ? SourcePos{1, 1} : where;
  return fmt::format("{}:{}:{}: {}: {}", origin, at.line, at.column, key, message);
}

SweepSpec parse_sweep_file(const std::string& path, bool check_paths) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw_input("{}: cannot read the sweep file ({})", path, std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  return parse_sweep_string(text.str(), path, check_paths);
}

}  // namespace peft
