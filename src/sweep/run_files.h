#pragma once
// What the driver and `peft-sweep status` both need to know of a run: the names of the
// per-group part files beside a results file, and the one-line description of a trial.
#include <cstdint>
#include <string>
#include <vector>

#include "core/trial.h"

namespace peft::sweep {

/// The part file of rank group `group`: "<output>.part-g<group>.h5".
std::string part_path(const std::string& output, int group);
/// The part files beside `output` that exist, sorted (none when the folder cannot be read).
std::vector<std::string> existing_parts(const std::string& output);

/// "lora sst2 r=8 seed=1 lr=0.001" (rank for adapter methods, s= for Sparse LoRA).
std::string describe_trial(const std::string& method, const std::string& dataset, int64_t rank, double sparsity,
                           int64_t seed, double lr);
std::string describe_trial(const TrialSpec& t);

}  // namespace peft::sweep
