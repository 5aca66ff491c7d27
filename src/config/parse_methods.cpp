// [method] (defaults for every method) and [methods.<name>] (per-method overrides).
#include <algorithm>
#include <cctype>
#include <set>

#include <fmt/format.h>

#include "config/known_names.h"
#include "config/parse_sections.h"
#include "config/trial_params.h"

namespace peft::config_detail {
namespace {

const std::vector<std::string> kAdapterKeys = {"rank", "dropout", "targets", "layers"};
const std::vector<std::string> kAlphaKeys = {"alpha", "rslora"};
const std::vector<std::string> kSparseKeys = {"sparsity",  "prune_schedule", "prune_start",
                                              "prune_end", "prune_every",    "structured",
                                              "l1",        "l1_proximal"};

bool contains(const std::vector<std::string>& v, std::string_view s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

/// Dot-separated non-empty runs of [A-Za-z0-9_] ("q_lin", "layer.0.attention.q_lin"). A
/// loop rather than std::regex, whose matcher recurses once per character and overflows the
/// stack on long values.
bool is_dotted_path(std::string_view s) {
  bool run = false;  // inside a non-empty run
  for (unsigned char c : s) {
    if (c == '.') {
      if (!run) return false;
      run = false;
    } else if (std::isalnum(c) || c == '_') {
      run = true;
    } else {
      return false;
    }
  }
  return run;
}

void append(std::vector<std::string>& to, const std::vector<std::string>& from) {
  to.insert(to.end(), from.begin(), from.end());
}

/// Keys of [methods.<name>]: what the method reads plus the training overrides.
std::vector<std::string> method_table_keys(std::string_view method) {
  std::vector<std::string> keys = train_override_keys();
  if (method_has_rank(method)) append(keys, kAdapterKeys);
  if (method_has_alpha(method)) append(keys, kAlphaKeys);
  if (method == "sparse_lora") append(keys, kSparseKeys);
  if (method == "hira") keys.push_back("hira_scale");
  if (method == "qlora") keys.push_back("compute_dtype");
  return keys;
}

/// Why a key that some table accepts is wrong in this one.
std::string misplaced_key_hint(std::string_view table, std::string_view method, std::string_view key) {
  if (contains(kSparseKeys, key)) return fmt::format(" (a setting of [methods.sparse_lora], not of [{}])", table);
  if (key == "hira_scale") return fmt::format(" (a setting of [methods.hira], not of [{}])", table);
  if (key == "compute_dtype") return fmt::format(" (a setting of [methods.qlora], not of [{}])", table);
  if (method == "hira" && contains(kAlphaKeys, key))
    return " (HiRA has no alpha scaling: its update is scaled by hira_scale)";
  if ((method == "full" || method == "head") && (contains(kAdapterKeys, key) || contains(kAlphaKeys, key)))
    return fmt::format(" (method '{}' has no adapter, so no {})", method, key);
  if (contains(train_keys(), key)) {
    return method.empty() ? fmt::format(" (a setting of [train], or of [methods.<name>] for one method)")
                          : fmt::format(" (a setting of [train] for the whole sweep, not per method)");
  }
  return {};
}

/// targets: DistilBERT linear layer names (q_lin …), dotted module paths ending in one
/// (matched as a suffix, as PEFT matches a list), or "all-linear" alone.
void read_targets(TableReader& r, MethodSettings& m) {
  const toml::node* n = r.node("targets");
  if (!n) return;
  const std::string key = r.full_key("targets");
  std::vector<const toml::node*> items;
  if (auto arr = n->as_array()) {
    for (const toml::node& el : *arr) items.push_back(&el);
    if (items.empty()) {
      r.errors().at(*n, key, "expected at least one target module, found an empty array");
      return;
    }
  } else {
    items.push_back(n);
  }
  std::vector<std::string> targets;
  bool ok = true;
  for (const toml::node* item : items) {
    std::string name;
    if (!r.check_string(*item, key, name, {})) {
      ok = false;
      continue;
    }
    const std::string last = name.substr(name.rfind('.') + 1);
    if (name == "all-linear") {
      if (items.size() > 1) {
        r.errors().at(*item, key, "\"all-linear\" already names every linear layer: use it alone");
        ok = false;
      }
    } else if (!is_dotted_path(name) || !contains(known_target_modules(), last)) {
      r.errors().at(*item, key,
                    fmt::format("unknown module \"{}\" (expected q_lin, k_lin, v_lin, out_lin, lin1, lin2 (DistilBERT), "
                                "query, key, value, dense (BERT), a module path ending in one of them, or \"all-linear\"){}",
                                name, did_you_mean(last, known_target_modules())));
      ok = false;
    }
    targets.push_back(std::move(name));
  }
  if (ok) m.targets = std::move(targets);
}

/// Reads the method keys the reader allows; returns whether `sparsity` was given.
bool read_method_keys(TableReader& r, MethodSettings& m) {
  r.get("rank", m.rank, IntRange::at_least(1));
  r.get("alpha", m.alpha, DoubleRange::positive());
  r.get("dropout", m.dropout, DoubleRange::unit_open());
  r.get("rslora", m.rslora);
  read_targets(r, m);
  std::vector<int64_t> layers;
  if (r.get_ints("layers", layers, IntRange::at_least(0))) {
    std::set<int64_t> seen;
    bool unique = true;
    for (int64_t l : layers) unique &= seen.insert(l).second;
    if (unique) m.layers = layers;
    else r.errors().at(*r.node("layers"), r.full_key("layers"), "expected distinct layer indices");
  }
  const bool sparsity_set = r.get("sparsity", m.sparsity, DoubleRange::unit_open());
  r.get("prune_schedule", m.prune_schedule, {"cubic", "oneshot"});
  const bool start_set = r.get("prune_start", m.prune_start, DoubleRange::unit());
  const bool end_set = r.get("prune_end", m.prune_end, DoubleRange::unit());
  // oneshot prunes to the target sparsity once, at prune_start; the end of the cubic ramp and
  // its interval would be read and then ignored, so they are refused.
  const bool oneshot = m.prune_schedule == "oneshot";
  for (const char* ramp_key : {"prune_end", "prune_every"})
    if (oneshot && r.node(ramp_key))
      r.errors().at(*r.node(ramp_key), r.full_key(ramp_key),
                    fmt::format("{} belongs to the cubic ramp; prune_schedule = \"oneshot\" prunes once, at "
                                "prune_start",
                                ramp_key));
  if (!oneshot && (start_set || end_set) && m.prune_start > m.prune_end) {
    const char* which = end_set ? "prune_end" : "prune_start";
    r.errors().at(*r.node(which), r.full_key(which),
                  fmt::format("prune_start ({}) must not come after prune_end ({}) (fractions of the "
                              "training steps)",
                              canonical_double(m.prune_start), canonical_double(m.prune_end)));
  }
  r.get("prune_every", m.prune_every, IntRange::at_least(1));
  r.get("structured", m.structured);
  r.get("l1", m.l1, DoubleRange::non_negative());
  r.get("l1_proximal", m.l1_proximal);
  r.get("hira_scale", m.hira_scale, DoubleRange::positive());
  r.get("compute_dtype", m.compute_dtype, {"auto", "float32", "bfloat16", "float16"});
  return sparsity_set;
}

}  // namespace

void read_methods(const toml::table* method_table, const toml::table* methods_table, const GridNodes& grid,
                  SweepSpec& spec, Context& ctx) {
  std::vector<std::string> common = kAdapterKeys;
  append(common, kAlphaKeys);
  TableReader defaults(method_table, "method", common, ctx.errors);
  read_method_keys(defaults, spec.method);
  defaults.finish("key", [](std::string_view key) { return misplaced_key_hint("method", "", key); });

  TableReader all(methods_table, "methods", known_methods(), ctx.errors);
  std::map<std::string, const toml::table*> tables;
  for (const std::string& name : known_methods())
    if (const toml::table* t = all.get_table(name)) tables[name] = t;
  all.finish("method");

  std::set<std::string> names;
  for (const auto& [name, node] : grid.method) names.insert(name);
  for (const auto& [name, table] : tables) names.insert(name);
  for (const std::string& name : names) {
    MethodPlan plan{spec.method, spec.train};
    plan.method.method = name;
    const auto it = tables.find(name);
    const toml::table* table = it == tables.end() ? nullptr : it->second;
    const std::string path = "methods." + name;
    TableReader r(table, path, method_table_keys(name), ctx.errors);
    const bool sparsity_set = read_method_keys(r, plan.method);
    read_train(r, plan.train, ctx);
    r.finish("key", [&](std::string_view key) { return misplaced_key_hint(path, name, key); });

    const auto in_grid = grid.method.find(name);
    if (in_grid == grid.method.end()) {
      spec.warnings.push_back(
          ctx.errors.locate(where(table), path, "not in grid.method, so these settings are not used"));
      continue;
    }
    if (name == "sparse_lora" && !sparsity_set && spec.grid.sparsity.empty())
      ctx.errors.at(*in_grid->second, "grid.method",
                    "sparse_lora needs a target sparsity: add a grid.sparsity axis or set "
                    "methods.sparse_lora.sparsity");
    spec.methods[name] = plan;
  }
}

}  // namespace peft::config_detail
