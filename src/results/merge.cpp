// Merging the part files of a job array (one writer each) into one results file.
#include <filesystem>

#include <fmt/format.h>

#include "core/error.h"
#include "results/h5_io.h"
#include "results/store_impl.h"
#include "results/trial_group.h"

namespace peft {

using namespace results_detail;

MergeReport ResultStore::merge(const std::vector<std::string>& parts, const std::string& out) {
  if (parts.empty()) throw_input("merge: no part files given");
  std::vector<ResultStore> inputs;
  for (const std::string& p : parts) inputs.push_back(open_read(p));
  const StoreInfo first = inputs.front().info();
  for (std::size_t i = 1; i < inputs.size(); ++i) {
    const std::string name = inputs[i].info().sweep_name;
    if (name != first.sweep_name)
      throw_input("merge: {} holds sweep '{}' but {} holds sweep '{}'", parts[i], name, parts[0], first.sweep_name);
  }

  ResultStore merged = create(out, first.sweep_toml, first.sweep_name, first.world_size, first.version);
  Impl& dst = *merged.impl_;
  MergeReport report;
  with_path(out, [&] {
    std::string from;
    for (const std::string& p : parts) from += (from.empty() ? "" : "\n") + p;
    h5::write_string_attr(dst.file.get(), "merged_from", from);
    h5::Group dst_trials = h5::open_group(dst.file.get(), "trials");
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      const Impl& src = *inputs[i].impl_;
      h5::Group src_trials = h5::open_group(src.file.get(), "trials");
      for (const auto& [id, row] : src.rows) {
        if (auto have = dst.rows.find(id); have != dst.rows.end()) {
          const bool have_complete = have->second.status == "complete";
          if (have_complete && row.status == "complete") ++report.duplicates;
          if (have_complete || row.status != "complete") continue;  // keep the earlier copy
          h5::remove(dst_trials.get(), id);
          ++report.replaced;
        }
        // Read and rewritten rather than H5Ocopy'd: HDF5 1.10.8 crashes copying
        // variable-length string attributes between files.
        h5::Group from = h5::open_group(src_trials.get(), id);
        TrialSpec spec;
        spec.id = id;
        spec.params = read_trial_params(from.get());
        h5::Group to = h5::create_group(dst_trials.get(), id);
        write_trial_group(to.get(), spec, read_trial_group(from.get(), id));
        dst.rows[id] = read_summary_row(to.get(), id);
      }
    }
    dst.write_summary_rows();
    dst.flush_to_disk();
  });
  report.trials = dst.rows.size();
  merged.close();
  return report;
}

}  // namespace peft
