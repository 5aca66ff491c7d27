// The sweep file writer behind --dump-config (see dump_config.h). Each value is written so
// that the parser reads back exactly the same value: strings TOML-escaped, doubles in
// their shortest round-trip form with a decimal point or exponent (never as an integer).
#include "config/dump_config.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "config/known_names.h"
#include "config/parse_sections.h"
#include "core/error.h"

namespace peft {
namespace {

std::string quote(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      default:
        if (c < 0x20 || c == 0x7f) out += fmt::format("\\u{:04X}", static_cast<unsigned>(c));
        else out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

std::string number(double v) {
  PEFT_CHECK(std::isfinite(v), "--dump-config: non-finite value {}", v);
  std::string s = fmt::format("{}", v);  // shortest representation that reads back exactly
  if (s.find_first_of(".eE") == std::string::npos) s += ".0";
  return s;
}
std::string number(int64_t v) { return fmt::format("{}", v); }
std::string number(uint64_t v) { return fmt::format("{}", v); }
std::string boolean(bool v) { return v ? "true" : "false"; }

template <typename T, typename F>
std::string array(const std::vector<T>& values, F item) {
  std::string out = "[";
  for (std::size_t i = 0; i < values.size(); ++i) out += (i ? ", " : "") + item(values[i]);
  return out + "]";
}
std::string array(const std::vector<std::string>& v) { return array(v, quote); }
template <typename T>
std::string array(const std::vector<T>& v) {
  return array(v, [](T x) { return number(x); });
}

/// A table header and its `key = value` lines.
class Table {
 public:
  Table(std::string& out, const std::string& name) : out_(out) { out_ += fmt::format("\n[{}]\n", name); }
  /// From here on, write only these keys (the ones the table accepts); nullptr: all.
  void only(const std::vector<std::string>* keys) { only_ = keys; }
  void set(const std::string& key, const std::string& value) {
    if (only_ && std::find(only_->begin(), only_->end(), key) == only_->end()) return;
    out_ += fmt::format("{} = {}\n", key, value);
  }

 private:
  std::string& out_;
  const std::vector<std::string>* only_ = nullptr;
};

void write_train(Table& t, const TrainSettings& s) {
  t.set("epochs", number(s.epochs));
  t.set("max_steps", number(s.max_steps));
  t.set("batch_size", number(s.batch_size));
  t.set("lr", number(s.lr));
  t.set("head_lr", number(s.head_lr));
  t.set("weight_decay", number(s.weight_decay));
  t.set("warmup_ratio", number(s.warmup_ratio));
  t.set("max_grad_norm", number(s.max_grad_norm));
  t.set("eval_every", number(s.eval_every));
  t.set("optimizer", quote(s.optimizer));
  t.set("precision", quote(s.precision));
  t.set("device", quote(s.device));
  t.set("inference_batch", number(s.inference_batch));
  t.set("inference_repeats", number(s.inference_repeats));
  t.set("grad_accum", number(s.grad_accum));
  if (s.checkpoint_minutes > 0) t.set("checkpoint_every", quote(fmt::format("{}min", s.checkpoint_minutes)));
  else t.set("checkpoint_every", number(s.checkpoint_every));
  t.set("save_adapter", boolean(s.save_adapter));
  if (!s.adapter_dir.empty()) t.set("adapter_dir", quote(s.adapter_dir));  // "" is not a valid folder
}

/// The method keys a table may hold for `method` ("" = [method], the shared defaults).
void write_method(Table& t, const std::string& method, const MethodSettings& m, const GridAxes& grid) {
  const bool common = method.empty();
  if (common || method_has_rank(method)) {
    t.set("rank", number(m.rank));
    t.set("dropout", number(m.dropout));
    t.set("targets", array(m.targets));
    t.set("layers", array(m.layers));
  }
  if (common || method_has_alpha(method)) {
    t.set("alpha", number(m.alpha));
    t.set("rslora", boolean(m.rslora));
  }
  if (method == "sparse_lora") {
    // with a grid.sparsity axis the axis sets it; the unset default (0) is no valid target
    if (grid.sparsity.empty()) t.set("sparsity", number(m.sparsity));
    t.set("prune_schedule", quote(m.prune_schedule));
    t.set("prune_start", number(m.prune_start));
    if (m.prune_schedule != "oneshot") {  // the cubic ramp's; a oneshot table may not hold them
      t.set("prune_end", number(m.prune_end));
      t.set("prune_every", number(m.prune_every));
    }
    t.set("structured", boolean(m.structured));
    t.set("l1", number(m.l1));
    t.set("l1_proximal", boolean(m.l1_proximal));
  }
  if (method == "hira") t.set("hira_scale", number(m.hira_scale));
  if (method == "qlora") t.set("compute_dtype", quote(m.compute_dtype));
}

}  // namespace

std::string dump_config(const SweepSpec& spec) {
  std::string out = fmt::format("# {} as peft-sweep resolved it (peft-sweep --dump-config): every setting, defaults included\n",
                                spec.origin);
  {
    Table t(out, "sweep");
    t.set("name", quote(spec.name));
    t.set("output", quote(spec.output));
    t.set("dp", number(spec.dp));
    t.set("schedule", quote(spec.schedule));
    t.set("save_adapters", boolean(spec.save_adapters));
    if (spec.grid.seed.empty()) t.set("seeds", array(spec.seeds));  // else grid.seed overrides it
  }
  {
    const ModelSettings& m = spec.model;
    Table t(out, "model");
    if (!m.checkpoint.empty()) t.set("checkpoint", quote(m.checkpoint));
    else t.set("preset", quote(m.preset));
    if (!m.vocab.empty()) t.set("vocab", quote(m.vocab));
    t.set("pretrain", boolean(m.pretrain));
    t.set("pretrain_steps", number(m.pretrain_steps));
    t.set("cache_dir", quote(m.cache_dir));
  }
  {
    Table t(out, "train");
    write_train(t, spec.train);
  }
  {
    Table t(out, "method");
    write_method(t, "", spec.method, spec.grid);
  }
  for (const auto& [name, plan] : spec.methods) {
    // the per-method table: its resolved method settings and the training keys a method may
    // override ([train]'s value where it does not)
    Table t(out, "methods." + name);
    write_method(t, name, plan.method, spec.grid);
    t.only(&config_detail::train_override_keys());
    write_train(t, plan.train);
  }
  for (const auto& [name, d] : spec.datasets) {
    Table t(out, "datasets." + name);
    t.set("format", quote(std::string(dataset_format(name))));
    if (dataset_is_synthetic(name)) {
      t.set("synthetic_train", number(d.synthetic_train));
      t.set("synthetic_eval", number(d.synthetic_eval));
    } else {
      t.set("path", quote(d.path));
      t.set("max_train", number(d.max_train));
      t.set("max_eval", number(d.max_eval));
    }
    if (dataset_is_mlm(name)) t.set("block_size", number(d.block_size));
    else t.set("max_length", number(d.max_length));
  }
  {
    const GridAxes& g = spec.grid;
    Table t(out, "grid");
    t.set("method", array(g.method));
    t.set("dataset", array(g.dataset));
    if (!g.rank.empty()) t.set("rank", array(g.rank));
    if (!g.sparsity.empty()) t.set("sparsity", array(g.sparsity));
    if (!g.alpha.empty()) t.set("alpha", array(g.alpha));
    if (!g.lr.empty()) t.set("lr", array(g.lr));
    if (!g.seed.empty()) t.set("seed", array(g.seed));
  }
  return out;
}

}  // namespace peft
