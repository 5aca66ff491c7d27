#pragma once
// A trial's identity: the canonical key=value parameters that matter to its outcome and
// the stable id hashed from them. Values come from the resolved settings, not from where
// they were written, so adding an axis value (or an axis holding the default) to a sweep
// keeps the ids of the trials it already had.
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "core/trial.h"

namespace peft {

/// Canonical text of a double: shortest round-trip form (std::to_chars), e.g. "0.0003".
std::string canonical_double(double v);

/// The parameters of `t` that change its result (method.rank, dataset.name, seed, train.lr…);
/// settings a method does not use are left out (no rank for full/head, sparsity only for
/// sparse_lora), so such trials collapse to one.
std::map<std::string, std::string> trial_params(const TrialSpec& t);

/// A short human label: "sparse_lora r=8 s=0.5 sst2 seed=1 lr=0.0003" (no rank for full/head,
/// sparsity only for sparse_lora), for dry runs and progress lines.
std::string trial_label(const TrialSpec& t);

/// 64-bit FNV-1a.
uint64_t fnv1a64(std::string_view bytes);

/// 12 hex digits of FNV-1a over the sorted "key=value\n" lines.
std::string trial_id(const std::map<std::string, std::string>& params);

}  // namespace peft
