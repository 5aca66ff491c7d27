#include "config/trial_params.h"

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <filesystem>

#include <fmt/format.h>

#include "config/known_names.h"
#include "core/error.h"

namespace peft {

std::string canonical_double(double v) {
  // Python's repr(): the shortest digits that round-trip, in fixed notation when the
  // decimal exponent is in [-4, 16), else as 1.5e-05 — so ids read the same in analysis.
  if (!std::isfinite(v)) return std::isnan(v) ? "nan" : v > 0 ? "inf" : "-inf";
  if (v == 0) return std::signbit(v) ? "-0.0" : "0.0";
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific);
  PEFT_CHECK(ec == std::errc(), "to_chars failed");
  const std::string sci(buf, end);  // [-]d[.ddd]e±XX
  const std::size_t e = sci.find('e');
  const bool negative = sci[0] == '-';
  std::string digits;
  for (std::size_t i = negative ? 1 : 0; i < e; ++i)
    if (sci[i] != '.') digits += sci[i];
  const int exponent = std::stoi(sci.substr(e + 1));
  std::string out = negative ? "-" : "";
  if (exponent < -4 || exponent >= 16) {
    out += digits.substr(0, 1);
    if (digits.size() > 1) out.append(".").append(digits, 1);
    out += fmt::format("e{}{:02d}", exponent < 0 ? '-' : '+', std::abs(exponent));
  } else if (exponent < 0) {
    out.append("0.").append(static_cast<std::size_t>(-exponent - 1), '0').append(digits);
  } else {
    const std::size_t point = static_cast<std::size_t>(exponent) + 1;
    if (digits.size() <= point) out.append(digits).append(point - digits.size(), '0').append(".0");
    else out.append(digits, 0, point).append(".").append(digits, point);
  }
  return out;
}

namespace {

std::string text(int64_t v) { return fmt::format("{}", v); }
std::string text(uint64_t v) { return fmt::format("{}", v); }
std::string text(double v) { return canonical_double(v); }
std::string text(bool v) { return v ? "true" : "false"; }

template <typename T>
std::string join(const std::vector<T>& values) {
  std::string out;
  for (const T& v : values) {
    if (!out.empty()) out += ',';
    if constexpr (std::is_same_v<T, std::string>) out += v;
    else out += text(v);
  }
  return out;
}

}  // namespace

std::map<std::string, std::string> trial_params(const TrialSpec& t) {
  std::map<std::string, std::string> p;
  // Model.
  if (!t.model.checkpoint.empty()) {
    p["model.checkpoint"] = std::filesystem::path(t.model.checkpoint).lexically_normal().string();
  } else {
    p["model.preset"] = t.model.preset;
    if (!t.model.vocab.empty()) p["model.vocab"] = std::filesystem::path(t.model.vocab).lexically_normal().string();
    p["model.pretrain"] = text(t.model.pretrain);
    if (t.model.pretrain) p["model.pretrain_steps"] = text(t.model.pretrain_steps);
  }
  // Method: only what the method uses.
  const MethodSettings& m = t.method;
  p["method.name"] = m.method;
  if (method_has_rank(m.method)) {
    p["method.rank"] = text(m.rank);
    p["method.dropout"] = text(m.dropout);
    p["method.targets"] = join(m.targets);
    p["method.layers"] = m.layers.empty() ? "all" : join(m.layers);
  }
  if (method_has_alpha(m.method)) {
    p["method.alpha"] = text(m.alpha);
    p["method.rslora"] = text(m.rslora);
  }
  if (m.method == "sparse_lora") {
    p["method.sparsity"] = text(m.sparsity);
    p["method.prune_schedule"] = m.prune_schedule;
    p["method.prune_start"] = text(m.prune_start);
    p["method.prune_end"] = text(m.prune_end);
    p["method.prune_every"] = text(m.prune_every);
    p["method.structured"] = text(m.structured);
    p["method.l1"] = text(m.l1);
    p["method.l1_proximal"] = text(m.l1_proximal);
  }
  if (m.method == "hira") p["method.hira_scale"] = text(m.hira_scale);
  if (m.method == "qlora") p["method.compute_dtype"] = m.compute_dtype;
  // Dataset: its name and the settings its kind reads (not its path: moving the data
  // does not change the trial).
  const DatasetSettings& d = t.dataset;
  p["dataset.name"] = d.name;
  if (dataset_is_synthetic(d.name)) {
    p["dataset.synthetic_train"] = text(d.synthetic_train);
    p["dataset.synthetic_eval"] = text(d.synthetic_eval);
  } else {
    p["dataset.max_train"] = text(d.max_train);
    p["dataset.max_eval"] = text(d.max_eval);
  }
  if (dataset_is_mlm(d.name)) p["dataset.block_size"] = text(d.block_size);
  else p["dataset.max_length"] = text(d.max_length);
  // Training (not device, inference timing or adapter saving: they do not change the model).
  const TrainSettings& tr = t.train;
  p["train.epochs"] = text(tr.epochs);
  p["train.max_steps"] = text(tr.max_steps);
  p["train.batch_size"] = text(tr.batch_size);
  p["train.lr"] = text(tr.lr);
  p["train.head_lr"] = text(tr.head_lr);
  p["train.weight_decay"] = text(tr.weight_decay);
  p["train.warmup_ratio"] = text(tr.warmup_ratio);
  p["train.max_grad_norm"] = text(tr.max_grad_norm);
  p["train.eval_every"] = text(tr.eval_every);
  p["train.precision"] = tr.precision;
  // The paged optimizer computes the same update; it is part of the id (its memory differs)
  // only when chosen, so the ids of earlier sweeps stay what they were.
  if (tr.optimizer != "adamw") p["train.optimizer"] = tr.optimizer;
  // Accumulation computes the same step (memory and time differ); in the id only when used.
  if (tr.grad_accum != 1) p["train.grad_accum"] = text(tr.grad_accum);
  p["seed"] = text(t.seed);
  return p;
}

std::string trial_label(const TrialSpec& t) {
  std::string label = t.method.method;
  if (method_has_rank(t.method.method)) label += fmt::format(" r={}", t.method.rank);
  if (t.method.method == "sparse_lora") label += " s=" + canonical_double(t.method.sparsity);
  label += fmt::format(" {} seed={} lr={}", t.dataset.name, t.seed, canonical_double(t.train.lr));
  return label;
}

uint64_t fnv1a64(std::string_view bytes) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

std::string trial_id(const std::map<std::string, std::string>& params) {
  std::string canonical;
  for (const auto& [k, v] : params) canonical += fmt::format("{}={}\n", k, v);  // map: sorted
  return fmt::format("{:012x}", fnv1a64(canonical) >> 16);
}

}  // namespace peft
