#pragma once
// One trial's HDF5 group: written from TrialSpec + TrialResult, read back into a
// TrialResult, its parameters or its /summary row (internal to src/results).
#include <map>
#include <string>

#include "core/trial.h"
#include "results/h5_handle.h"
#include "results/result_store.h"

namespace peft::results_detail {

/// Writes attributes and sub-groups of a trial into the (empty) group `g`.
void write_trial_group(hid_t g, const TrialSpec& spec, const TrialResult& result);
TrialResult read_trial_group(hid_t g, const std::string& id);
/// The parameter attributes (everything but status, error, diverged_step, group, wall_seconds).
std::map<std::string, std::string> read_trial_params(hid_t g);
std::string read_trial_status(hid_t g);
SummaryRow read_summary_row(hid_t g, const std::string& id);

}  // namespace peft::results_detail
