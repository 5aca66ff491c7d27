// Grid expansion: the product of the axes, minus the combinations a method cannot tell
// apart (sparsity for anything but sparse_lora, rank for full/head, alpha for HiRA).
#include "config/known_names.h"
#include "config/sweep_spec.h"
#include "config/trial_params.h"
#include "core/error.h"

namespace peft {
namespace {

template <typename T>
std::vector<T> axis_or(const std::vector<T>& axis, bool applies, T fallback) {
  return applies && !axis.empty() ? axis : std::vector<T>{fallback};
}

}  // namespace

std::vector<TrialSpec> expand(const SweepSpec& spec) {
  const GridAxes& g = spec.grid;
  const std::vector<uint64_t>& seeds = g.seed.empty() ? spec.seeds : g.seed;
  std::vector<TrialSpec> trials;
  std::map<std::string, std::size_t> by_id;
  for (const std::string& dataset : g.dataset) {
    const auto ds = spec.datasets.find(dataset);
    PEFT_CHECK(ds != spec.datasets.end(), "dataset '{}' of the grid was not resolved", dataset);
    for (const std::string& method : g.method) {
      const auto plan = spec.methods.find(method);
      PEFT_CHECK(plan != spec.methods.end(), "method '{}' of the grid was not resolved", method);
      const MethodSettings& m = plan->second.method;
      const bool sparse = method == "sparse_lora";
      for (int64_t rank : axis_or(g.rank, method_has_rank(method), method_has_rank(method) ? m.rank : 0))
        for (double sparsity : axis_or(g.sparsity, sparse, sparse ? m.sparsity : 0.0))
          for (double alpha : axis_or(g.alpha, method_has_alpha(method), m.alpha))
            for (double lr : axis_or(g.lr, true, plan->second.train.lr))
              for (uint64_t seed : seeds) {
                TrialSpec t;
                t.model = spec.model;
                t.method = m;
                t.method.rank = rank;
                t.method.sparsity = sparsity;
                t.method.alpha = alpha;
                t.dataset = ds->second;
                t.train = plan->second.train;
                t.train.lr = lr;
                // Not a per-method setting: the sweep's, as the driver resolved it ("auto" →
                // fp32 / bf16 for the hardware) before expanding, so ids name what runs.
                t.train.precision = spec.train.precision;
                if (method == "qlora" && t.method.compute_dtype == "auto" && t.train.precision != "auto")
                  t.method.compute_dtype = t.train.precision == "bf16" ? "bfloat16" : "float32";
                t.seed = seed;
                t.dp = spec.dp;
                t.params = trial_params(t);
                t.id = trial_id(t.params);
                if (auto seen = by_id.find(t.id); seen != by_id.end()) {
                  // Same id: the same trial reached through an axis the method ignores.
                  PEFT_CHECK(trials[seen->second].params == t.params,
                             "trial id collision on {} between different parameters", t.id);
                  continue;
                }
                by_id.emplace(t.id, trials.size());
                trials.push_back(std::move(t));
              }
    }
  }
  return trials;
}

}  // namespace peft
