#pragma once
// Sparse LoRA: LoRA (lora.h) whose factors A and B are made sparse, in forms that combine:
//
//  * L1 penalty λ(‖A‖₁ + ‖B‖₁), either added to the loss (penalty()) or applied as a proximal
//    soft-threshold after each optimizer step, w ← sign(w)·max(|w| − lr·λ, 0) (Beck & Teboulle's
//    ISTA step; with Adam it is the usual decoupled approximation, not an exact prox of Adam).
//  * Magnitude pruning to a target sparsity s ∈ [0, 1) on a schedule: one-shot at a step, or the
//    cubic ramp of Zhu & Gupta (2017, "To prune, or not to prune"):
//        s_t = s_f + (s_i − s_f)·(1 − (t − t0)/(n·Δt))³,  t = t0, t0+Δt, …, t0+n·Δt,
//    with t0 = start_step, t0 + n·Δt = end_step and Δt = every (a last prune lands on end_step
//    even when every does not divide the ramp).
//  * Granularity: unstructured (per tensor, the round(s·n) smallest |w| of A and of B
//    separately), or structured (whole rank channels: row i of A together with column i of B,
//    round(s·r) channels, scored by ‖A_i,:‖₂·‖B_:,i‖₂ — the Frobenius norm of the rank-1 term
//    B_:,i·A_i,: that channel adds to ΔW, so the channels removed change ΔW least).
//
// Masks are buffers (`lora_A.weight_mask`, `lora_B.weight_mask`, torch.nn.utils.prune's naming),
// only ever grow, and are re-applied after every optimizer step, so pruned weights stay exactly
// zero. Already-pruned weights are ranked first, ties are broken by flat index (stable sort),
// so a prune to s zeroes exactly max(round(s·n), already pruned) weights: the achieved
// sparsity is the target to within one weight per tensor (one channel when structured).
//
// B starts at zero, so magnitude pruning at step 0 would pick weights by index, not by
// magnitude: schedules start at step >= 1, and meaningful ones after some training.
// Saved in PEFT's layout this is a plain LORA adapter whose pruned entries are zeros; the masks
// are implicit in those zeros (restore_masks_from_zeros()).
//
// Dead channels leave the computation. A rank channel i is dead when row i of A's mask or
// column i of B's mask is all zero (every pruned channel of a structured prune; rarely one of
// an unstructured one): it adds exactly nothing to the output, and its gradients are zero
// after masking anyway. The unmerged forward then runs its two thin products at the live rank
// r' only, on A[live, :] and B[:, live] (index_select, whose backward scatters the gradients
// of the live channels into A's and B's full-rank gradients, zeros elsewhere). The parameters,
// their gradients and the optimizer state keep the full rank r, so the flat optimizer and
// all-reduce buffers, trial checkpoints and PEFT's file layout are unchanged. The live set is
// recomputed (one host read) only when a mask has changed since the last forward pass, which
// the masks' version counters tell without touching the data: at a prune or a load, not per
// step.
#include <optional>

#include "adapters/lora.h"

namespace peft::adapters {

enum class PruneSchedule { None, OneShot, Cubic };
enum class PruneGranularity { Unstructured, Structured };
PruneSchedule parse_prune_schedule(const std::string& s);        // "none" | "one_shot" | "cubic"
PruneGranularity parse_prune_granularity(const std::string& s);  // "unstructured" | "structured"
std::string prune_schedule_name(PruneSchedule s);
std::string prune_granularity_name(PruneGranularity g);

struct SparseOptions {
  double l1_lambda = 0.0;
  bool l1_proximal = false;  // soft-threshold after the step instead of a loss term
  PruneSchedule schedule = PruneSchedule::None;
  PruneGranularity granularity = PruneGranularity::Unstructured;
  double target_sparsity = 0.0;   // s_f
  double initial_sparsity = 0.0;  // s_i (cubic)
  int64_t prune_step = 1;         // one-shot: prune after this optimizer step
  int64_t start_step = 1;         // cubic: t0
  int64_t end_step = 1;           // cubic: t0 + n·Δt
  int64_t every = 1;              // cubic: Δt

  /// Throws peft::InputError naming the option.
  void validate() const;
  /// The sparsity to prune to after optimizer step `step`, or nothing when no prune is due.
  std::optional<double> sparsity_at(int64_t step) const;
};

/// Zhu & Gupta's cubic ramp at step t (clamped to [t0, t_end]).
double cubic_sparsity(double s_initial, double s_final, int64_t t0, int64_t t_end, int64_t t);

class SparseLoraLinear : public LoraLinear {
 public:
  SparseLoraLinear(std::shared_ptr<model::LinearBase> base, const LoraOptions& lora, const SparseOptions& sparse);

  /// LoRA's forward at the live rank (see above): at the full rank until a channel dies.
  torch::Tensor forward(const torch::Tensor& x) override;
  /// Rank channels that still contribute (r until pruning removes one).
  int64_t live_rank();

  std::string kind() const override { return "sparse_lora"; }
  const SparseOptions& sparse_options() const { return sparse_; }
  const torch::Tensor& mask_A() const { return mask_A_; }
  const torch::Tensor& mask_B() const { return mask_B_; }

  /// λ(‖A‖₁ + ‖B‖₁) when the penalty is a loss term, else undefined.
  torch::Tensor penalty() override;
  /// Proximal L1 step (if chosen), scheduled pruning (if due), then the masks.
  void after_optimizer_step(int64_t step, double lr) override;

  /// Prunes now to `sparsity` with the configured granularity and applies the masks.
  void prune_to(double sparsity);
  /// Zeroes the masked weights (and nothing else).
  void apply_masks();
  /// Masks = where A and B are non-zero (after loading a saved sparse adapter).
  void restore_masks_from_zeros();

 private:
  void prune_unstructured(double sparsity);
  void prune_structured(double sparsity);
  /// Recomputes the live channels when a mask's version counter has moved.
  void refresh_live_channels();

  SparseOptions sparse_;
  torch::Tensor mask_A_, mask_B_;
  int64_t mask_A_version_ = -1, mask_B_version_ = -1;  // of the masks the live set was taken from
  std::vector<int64_t> live_;                           // live channel indices (host)
  torch::Tensor live_index_;                            // the same on the weights' device, made on first use
};

}  // namespace peft::adapters
