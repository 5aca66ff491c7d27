#pragma once
// /summary: one compound row per trial with fixed-length byte strings and float64 metric
// columns, so that pandas.DataFrame(h5py.File(f)["summary"][:]) works (internal).
#include <vector>

#include "results/h5_handle.h"
#include "results/result_store.h"

namespace peft::results_detail {

/// Rewrites /summary in `file` with `rows` (in the given order). When the column layout
/// is unchanged the chunked dataset is resized and overwritten in place (no file growth);
/// otherwise it is replaced.
void write_summary(hid_t file, const std::vector<SummaryRow>& rows);

}  // namespace peft::results_detail
