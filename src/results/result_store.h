#pragma once
// The results file of a sweep (HDF5; schema in sweeps/SCHEMA.md, "Results file"):
//
//   /                    attrs peft_sweep_version, results_format, sweep_name, sweep_toml,
//                        world_size, created [, resumed, merged_from]
//   /trials/<id>         attrs: every parameter (strings), status, error, diverged_step,
//                        group, wall_seconds
//   /trials/<id>/train   datasets step, loss, lr
//   /trials/<id>/eval    datasets step, epoch, accuracy, f1, perplexity, loss
//   /trials/<id>/metrics attrs: one float64 per metric
//   /trials/<id>/sparsity  datasets name, nonzero, total (only when reported)
//   /summary             compound table, one row per trial, readable by pandas
//
// Exactly one process writes a file (HDF5's file lock refuses a second writer). Each
// write_trial() writes the trial under /staging, moves it into /trials in one link
// operation, rewrites /summary and flushes the file: when it returns, the trial is on
// disk. A process killed between two write_trial() calls loses nothing committed. HDF5
// 1.10 has no journaling, so a kill *during* the final flush of a write_trial() (a few
// milliseconds of metadata writes) can leave the file unreadable; see SCHEMA.md.
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "core/trial.h"

namespace peft {

/// One row of /summary.
struct SummaryRow {
  std::string id;
  std::string status;
  std::string method;
  std::string dataset;
  int64_t rank = 0;       // 0 for full / head
  double sparsity = 0;    // 0 unless sparse_lora
  int64_t seed = 0;
  double lr = 0;
  double wall_seconds = 0;
  std::map<std::string, double> metrics;
};

/// The root attributes.
struct StoreInfo {
  std::string version;      // peft_sweep_version of the writer that created the file
  std::string sweep_name;
  std::string sweep_toml;
  int64_t world_size = 0;
  std::string created;      // ISO 8601, UTC
};

struct MergeReport {
  std::size_t trials = 0;      // trials in the merged file
  std::size_t replaced = 0;    // failed attempts replaced by a complete one from a later part
  std::size_t duplicates = 0;  // complete in several parts: the first part's copy is kept
};

class ResultStore {
 public:
  /// A new results file; refuses an existing path (peft::InputError naming --resume).
  /// Creates missing parent folders.
  static ResultStore create(const std::string& path, const std::string& sweep_text, const std::string& sweep_name,
                            int64_t world_size, const std::string& version);
  /// An existing results file, for writing more trials; refuses files that are not
  /// peft-sweep results files ("X is not a peft-sweep results file").
  static ResultStore open_for_resume(const std::string& path);
  /// What the driver does: create, or with `resume` continue the file when it exists
  /// (recording the new sweep text and world size).
  static ResultStore open_or_create(const std::string& path, bool resume, const std::string& sweep_text,
                                    const std::string& sweep_name, int64_t world_size, const std::string& version);
  /// Read-only access (analysis, merge, tests).
  static ResultStore open_read(const std::string& path);
  /// Combines the part files of a job array into `out` (which must not exist).
  static MergeReport merge(const std::vector<std::string>& parts, const std::string& out);

  ResultStore(ResultStore&&) noexcept;
  ResultStore& operator=(ResultStore&&) noexcept;
  ~ResultStore();

  const std::string& path() const;
  StoreInfo info() const;
  std::vector<std::string> trial_ids() const;
  /// Trials whose status is "complete" (a resumed sweep skips them).
  std::set<std::string> completed_ids() const;
  bool contains(const std::string& id) const;

  /// Commits one trial (see the header comment). Replaces an earlier attempt of the same
  /// id that did not complete; a complete one is never overwritten (std::logic_error).
  void write_trial(const TrialSpec& spec, const TrialResult& result);
  /// Records that a sweep was resumed onto this file: the new sweep text, world size and
  /// time (attribute `resumed`).
  void record_resume(const std::string& sweep_text, int64_t world_size);

  TrialResult read_trial(const std::string& id) const;
  /// The trial's parameters (TrialSpec::params as written).
  std::map<std::string, std::string> read_params(const std::string& id) const;
  /// The rows of /summary, in id order.
  std::vector<SummaryRow> summary() const;

  /// Flushes and closes; later calls are errors. The destructor does the same.
  void close();

 private:
  struct Impl;
  explicit ResultStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace peft
