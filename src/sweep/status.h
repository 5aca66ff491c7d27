#pragma once
// `peft-sweep status RESULTS.h5`: how a sweep stands, while it runs and after.
//
// Sources, all read-only:
// - the results file: the sweep's own text (re-parsed and re-expanded into the full trial
//   list, ids being stable hashes) and its committed trials;
// - the per-group part files of a running (or crashed) run: trials committed since the start;
// - the event log (event_log.h): which trials run now, at which step and loss, and their ETA.
#include <iosfwd>
#include <string>

namespace peft::sweep {

/// Prints the status of the sweep whose results file is `results` to `out`. Returns 0, or
/// throws peft::InputError when `results` is not a results file.
int print_status(const std::string& results, std::ostream& out);

}  // namespace peft::sweep
