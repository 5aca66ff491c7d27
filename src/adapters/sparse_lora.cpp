#include "adapters/sparse_lora.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace peft::adapters {

PruneSchedule parse_prune_schedule(const std::string& s) {
  if (s == "none") return PruneSchedule::None;
  if (s == "one_shot") return PruneSchedule::OneShot;
  if (s == "cubic") return PruneSchedule::Cubic;
  throw_input("unknown prune schedule \"{}\" (expected none, one_shot or cubic)", s);
}

PruneGranularity parse_prune_granularity(const std::string& s) {
  if (s == "unstructured") return PruneGranularity::Unstructured;
  if (s == "structured") return PruneGranularity::Structured;
  throw_input("unknown prune granularity \"{}\" (expected unstructured or structured)", s);
}

std::string prune_schedule_name(PruneSchedule s) {
  switch (s) {
    case PruneSchedule::None: return "none";
    case PruneSchedule::OneShot: return "one_shot";
    case PruneSchedule::Cubic: return "cubic";
  }
  return "?";
}

std::string prune_granularity_name(PruneGranularity g) {
  return g == PruneGranularity::Structured ? "structured" : "unstructured";
}

void SparseOptions::validate() const {
  if (!(l1_lambda >= 0.0) || !std::isfinite(l1_lambda)) throw_input("sparse l1_lambda must be >= 0, got {}", l1_lambda);
  if (!(target_sparsity >= 0.0 && target_sparsity < 1.0))
    throw_input("sparse target_sparsity must be in [0, 1), got {}", target_sparsity);
  if (!(initial_sparsity >= 0.0 && initial_sparsity <= target_sparsity))
    throw_input("sparse initial_sparsity must be in [0, target_sparsity = {}], got {}", target_sparsity, initial_sparsity);
  // B starts at zero: pruning by magnitude before the first step would pick weights by index.
  if (schedule == PruneSchedule::OneShot && prune_step < 1)
    throw_input("sparse prune_step must be >= 1 (B is zero before training), got {}", prune_step);
  if (schedule == PruneSchedule::Cubic) {
    if (start_step < 1) throw_input("sparse start_step must be >= 1 (B is zero before training), got {}", start_step);
    if (end_step <= start_step) throw_input("sparse end_step ({}) must be after start_step ({})", end_step, start_step);
    if (every < 1) throw_input("sparse every must be >= 1, got {}", every);
  }
}

double cubic_sparsity(double s_initial, double s_final, int64_t t0, int64_t t_end, int64_t t) {
  PEFT_CHECK(t_end > t0, "cubic ramp needs t_end > t0");
  const double frac = std::clamp(static_cast<double>(t - t0) / static_cast<double>(t_end - t0), 0.0, 1.0);
  const double rest = 1.0 - frac;
  return s_final + (s_initial - s_final) * rest * rest * rest;
}

std::optional<double> SparseOptions::sparsity_at(int64_t step) const {
  switch (schedule) {
    case PruneSchedule::None: return std::nullopt;
    case PruneSchedule::OneShot:
      if (step == prune_step) return target_sparsity;
      return std::nullopt;
    case PruneSchedule::Cubic:
      if (step < start_step || step > end_step) return std::nullopt;
      if ((step - start_step) % every != 0 && step != end_step) return std::nullopt;
      return cubic_sparsity(initial_sparsity, target_sparsity, start_step, end_step, step);
  }
  return std::nullopt;
}

SparseLoraLinear::SparseLoraLinear(std::shared_ptr<model::LinearBase> base, const LoraOptions& lora, const SparseOptions& sparse)
    : LoraLinear(std::move(base), lora), sparse_(sparse) {
  sparse_.validate();
  mask_A_ = lora_A_->register_buffer("weight_mask", torch::ones_like(lora_A_->weight, torch::requires_grad(false)));
  mask_B_ = lora_B_->register_buffer("weight_mask", torch::ones_like(lora_B_->weight, torch::requires_grad(false)));
}

void SparseLoraLinear::refresh_live_channels() {
  if (mask_A_._version() == mask_A_version_ && mask_B_._version() == mask_B_version_) return;
  torch::NoGradGuard g;
  const auto alive = ((mask_A_ != 0).any(1).logical_and((mask_B_ != 0).any(0))).to(torch::kCPU);  // [r]
  const auto* a = alive.data_ptr<bool>();
  live_.clear();
  for (int64_t i = 0; i < alive.numel(); ++i)
    if (a[i]) live_.push_back(i);
  live_index_ = torch::Tensor();
  mask_A_version_ = mask_A_._version();
  mask_B_version_ = mask_B_._version();
}

int64_t SparseLoraLinear::live_rank() {
  refresh_live_channels();
  return static_cast<int64_t>(live_.size());
}

torch::Tensor SparseLoraLinear::forward(const torch::Tensor& x) {
  if (merged_) return base_->forward(x);
  refresh_live_channels();
  const auto& A = lora_A_->weight;
  if (static_cast<int64_t>(live_.size()) == options_.rank) return forward_with(x, A, lora_B_->weight);
  if (!live_index_.defined() || live_index_.device() != A.device())
    live_index_ = torch::tensor(live_, torch::TensorOptions().dtype(torch::kLong)).to(A.device());
  // r' = 0 (every channel pruned) still runs: [T, 0] products, zeros out, zero gradients.
  return forward_with(x, A.index_select(0, live_index_), lora_B_->weight.index_select(1, live_index_));
}

torch::Tensor SparseLoraLinear::penalty() {
  if (sparse_.l1_lambda == 0.0 || sparse_.l1_proximal) return {};
  return (lora_A_->weight.abs().sum() + lora_B_->weight.abs().sum()) * sparse_.l1_lambda;
}

void SparseLoraLinear::after_optimizer_step(int64_t step, double lr) {
  if (sparse_.l1_lambda > 0.0 && sparse_.l1_proximal) {
    torch::NoGradGuard g;
    const double threshold = lr * sparse_.l1_lambda;
    for (auto* w : {&lora_A_->weight, &lora_B_->weight})
      w->copy_(torch::sign(*w) * torch::clamp_min(w->abs() - threshold, 0.0));
  }
  if (auto s = sparse_.sparsity_at(step)) prune_to(*s);
  apply_masks();
}

void SparseLoraLinear::prune_to(double sparsity) {
  PEFT_CHECK(sparsity >= 0.0 && sparsity < 1.0, "sparsity {} out of [0, 1)", sparsity);
  PEFT_CHECK(!merged_, "pruning a merged adapter");
  if (sparse_.granularity == PruneGranularity::Structured)
    prune_structured(sparsity);
  else
    prune_unstructured(sparsity);
  apply_masks();
}

namespace {

/// Zeroes `count` more entries of `mask` (flat), the ones with the smallest `score`; entries
/// already masked rank first, ties go to the lower index.
void mask_smallest(torch::Tensor& mask, const torch::Tensor& score, int64_t count) {
  auto flat_mask = mask.view({-1});
  auto ranked = torch::where(flat_mask > 0, score.reshape({-1}), torch::full_like(flat_mask, -1.0));
  auto order = std::get<1>(torch::sort(ranked, /*stable=*/true, /*dim=*/0, /*descending=*/false));
  flat_mask.index_fill_(0, order.narrow(0, 0, count), 0.0);
}

}  // namespace

void SparseLoraLinear::prune_unstructured(double sparsity) {
  torch::NoGradGuard g;
  for (auto [w, mask] : {std::pair{&lora_A_->weight, &mask_A_}, std::pair{&lora_B_->weight, &mask_B_}}) {
    const int64_t n = w->numel();
    const int64_t pruned = n - mask->count_nonzero().item<int64_t>();
    const int64_t count = std::max(static_cast<int64_t>(std::llround(sparsity * static_cast<double>(n))), pruned);
    mask_smallest(*mask, w->abs(), count);
  }
}

void SparseLoraLinear::prune_structured(double sparsity) {
  torch::NoGradGuard g;
  const int64_t r = options_.rank;
  auto channel_mask = (mask_A_.sum(1) > 0).to(mask_A_.dtype());  // [r]
  const int64_t pruned = r - channel_mask.count_nonzero().item<int64_t>();
  const int64_t count = std::max(static_cast<int64_t>(std::llround(sparsity * static_cast<double>(r))), pruned);
  // ‖B_:,i·A_i,:‖_F = ‖A_i,:‖₂·‖B_:,i‖₂: the size of channel i's contribution to ΔW.
  auto score = lora_A_->weight.norm(2, {1}) * lora_B_->weight.norm(2, {0});
  mask_smallest(channel_mask, score, count);
  mask_A_.mul_(channel_mask.unsqueeze(1));
  mask_B_.mul_(channel_mask.unsqueeze(0));
}

void SparseLoraLinear::apply_masks() {
  torch::NoGradGuard g;
  lora_A_->weight.mul_(mask_A_);
  lora_B_->weight.mul_(mask_B_);
}

void SparseLoraLinear::restore_masks_from_zeros() {
  torch::NoGradGuard g;
  mask_A_.copy_((lora_A_->weight != 0).to(mask_A_.dtype()));
  mask_B_.copy_((lora_B_->weight != 0).to(mask_B_.dtype()));
}

}  // namespace peft::adapters
