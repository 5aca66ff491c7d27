// [train] and the per-method training overrides.
#include <fmt/format.h>

#include "config/parse_sections.h"

namespace peft::config_detail {

const std::vector<std::string>& train_keys() {
  static const std::vector<std::string> keys = {
      "epochs",        "max_steps",  "batch_size", "lr",        "head_lr",
      "weight_decay",  "warmup_ratio", "max_grad_norm", "eval_every", "optimizer", "precision",
      "device",        "inference_batch", "inference_repeats", "save_adapter", "adapter_dir"};
  return keys;
}

const std::vector<std::string>& train_override_keys() {
  static const std::vector<std::string> keys = {"epochs",       "max_steps",    "batch_size",
                                                "lr",           "head_lr",      "weight_decay",
                                                "warmup_ratio", "max_grad_norm", "eval_every",
                                                "optimizer"};
  return keys;
}

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
