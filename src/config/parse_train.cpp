// [train] and the per-method training overrides.
#include <cmath>
#include <string>

#include <fmt/format.h>

#include "config/parse_sections.h"

namespace peft::config_detail {

const std::vector<std::string>& train_keys() {
  static const std::vector<std::string> keys = {
      "epochs",        "max_steps",  "batch_size", "lr",        "head_lr",
      "weight_decay",  "warmup_ratio", "max_grad_norm", "eval_every", "optimizer", "precision",
      "device",        "inference_batch", "inference_repeats", "save_adapter", "adapter_dir",
      "grad_accum",    "checkpoint_every"};
  return keys;
}

const std::vector<std::string>& train_override_keys() {
  static const std::vector<std::string> keys = {"epochs",       "max_steps",    "batch_size",
                                                "lr",           "head_lr",      "weight_decay",
                                                "warmup_ratio", "max_grad_norm", "eval_every",
                                                "optimizer",    "grad_accum"};
  return keys;
}

namespace {

/// checkpoint_every = N (optimizer steps) or "M min" / "Mmin" / "M h" (wall-clock minutes / hours).
void read_checkpoint_every(TableReader& r, const toml::node& n, TrainSettings& t, const Context& ctx) {
  const std::string key = r.full_key("checkpoint_every");
  if (n.is_integer()) {
    int64_t steps = 0;
    if (r.check_int(n, key, steps, IntRange::at_least(0))) t.checkpoint_every = steps;
    return;
  }
  const auto bad = [&](const std::string& found) {
    ctx.errors.at(n, key, fmt::format("expected a number of steps (200) or a time (\"30min\", \"2h\"), found {}", found));
  };
  if (!n.is_string()) return bad("a value that is neither an integer nor a string");
  const std::string text = *n.value<std::string>();
  std::size_t used = 0;
  double value = 0;
  try {
    value = std::stod(text, &used);
  } catch (const std::exception&) {
    return bad(fmt::format("\"{}\"", text.substr(0, 40)));
  }
  std::string unit = text.substr(used);
  unit.erase(0, unit.find_first_not_of(' '));
  double minutes = 0;
  if (unit == "min" || unit == "m") minutes = value;
  else if (unit == "h") minutes = 60 * value;
  else return bad(fmt::format("\"{}\"", text.substr(0, 40)));
  if (!(minutes > 0) || !std::isfinite(minutes)) return bad(fmt::format("\"{}\" (must be positive)", text.substr(0, 40)));
  t.checkpoint_minutes = minutes;
}

}  // namespace

void read_train(TableReader& r, TrainSettings& t, const Context& ctx) {
  r.get("epochs", t.epochs, IntRange::at_least(1));
  r.get("max_steps", t.max_steps, IntRange::at_least(0));
  if (const toml::node* n = r.node("batch_size")) {
    int64_t b = 0;
    if (r.check_int(*n, r.full_key("batch_size"), b, IntRange::at_least(1))) {
      if (b < ctx.dp || b % ctx.dp != 0)
        ctx.errors.at(*n, r.full_key("batch_size"),
                      fmt::format("expected a multiple of sweep.dp = {} (the global batch is split "
                                  "evenly over the ranks of a trial), found {}",
                                  ctx.dp, b));
      else
        t.batch_size = b;
    }
  }
  r.get("grad_accum", t.grad_accum, IntRange::at_least(1));
  if (const toml::node* n = r.node("grad_accum"); n && t.grad_accum > 1 && t.batch_size % (ctx.dp * t.grad_accum) != 0)
    ctx.errors.at(*n, r.full_key("grad_accum"),
                  fmt::format("batch_size = {} does not split into {} micro-batches on each of the sweep.dp = {} ranks "
                              "(batch_size must be a multiple of dp × grad_accum = {})",
                              t.batch_size, t.grad_accum, ctx.dp, ctx.dp * t.grad_accum));
  if (const toml::node* n = r.node("checkpoint_every")) read_checkpoint_every(r, *n, t, ctx);
  r.get("lr", t.lr, DoubleRange::positive());
  r.get("head_lr", t.head_lr, DoubleRange::non_negative());
  r.get("weight_decay", t.weight_decay, DoubleRange::non_negative());
  r.get("warmup_ratio", t.warmup_ratio, DoubleRange::unit_open());
  r.get("max_grad_norm", t.max_grad_norm, DoubleRange::non_negative());
  r.get("eval_every", t.eval_every, IntRange::at_least(0));
  r.get("optimizer", t.optimizer, {"adamw", "paged_adamw"});
  r.get("precision", t.precision, {"auto", "fp32", "bf16"});
  r.get("device", t.device, {"auto", "cpu", "cuda"});
  r.get("inference_batch", t.inference_batch, IntRange::at_least(1));
  r.get("inference_repeats", t.inference_repeats, IntRange::at_least(1));
  r.get("save_adapter", t.save_adapter);
  if (const toml::node* n = r.node("adapter_dir")) {
    std::string dir;
    if (r.check_string(*n, r.full_key("adapter_dir"), dir, {})) {
      if (dir.empty()) ctx.errors.at(*n, r.full_key("adapter_dir"), "expected a folder, found \"\"");
      else t.adapter_dir = dir;
    }
  }
}

}  // namespace peft::config_detail
