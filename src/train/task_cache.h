#pragma once
// The data of a trial: its TaskSpec (what to read and how to tokenise it), and the tasks
// tokenised once per process and shared by every trial that uses the same data.
#include <string>

#include "core/trial.h"
#include "data/dataset.h"

namespace peft::train {

/// The data settings of `spec`, with `vocab_path` the tokenizer's vocabulary ("" = synthetic).
/// The generation seed is fixed: the data does not vary with the trial seed (only the order
/// and the initialisation do), so trials stay comparable.
data::TaskSpec task_spec(const TrialSpec& spec, const std::string& vocab_path);

/// The task for `spec`, loaded and tokenised on first use, then cached for the process.
const data::Task& cached_task(const data::TaskSpec& spec);

}  // namespace peft::train
