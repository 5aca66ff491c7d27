#pragma once
// A validated sweep file (sweeps/SCHEMA.md): everything the driver needs before any rank
// trains. Parsing is strict — unknown keys, wrong types, out-of-range values, unknown
// methods or datasets and missing paths are all collected and thrown together as one
// peft::InputError, one error per line, each naming file:line:column and the full key.
// Every rank parses the same text and gets the same SweepSpec (no I/O but path checks).
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/trial.h"

namespace peft {

/// The [grid] axes; an empty axis means "not swept" (the default applies).
struct GridAxes {
  std::vector<std::string> method;
  std::vector<int64_t> rank;
  std::vector<double> sparsity;
  std::vector<std::string> dataset;
  std::vector<uint64_t> seed;
  std::vector<double> lr;
  std::vector<double> alpha;
};

/// One method's settings before the grid axes apply: [train] + [method] + [methods.<name>].
struct MethodPlan {
  MethodSettings method;
  TrainSettings train;
};

/// A place in the sweep file (1-based; line 0 = not written there).
struct SourcePos {
  uint32_t line = 0;
  uint32_t column = 0;
};

struct SweepSpec {
  std::string origin;            // the file path (or a name for embedded text), used in messages
  std::string text;              // the sweep file's full text (stored in the results file)
  std::string name;
  std::string output;            // results .h5 path
  int64_t dp = 1;                // ranks per trial
  SourcePos dp_pos;              // where sweep.dp was written (line 0: the default)
  std::string schedule = "dynamic";  // dynamic | static
  std::vector<uint64_t> seeds = {1};
  bool save_adapters = false;    // every trial's adapter, PEFT layout, in adapters_dir(output)/<trial id>
  ModelSettings model;
  TrainSettings train;           // [train]
  MethodSettings method;         // [method]
  std::map<std::string, MethodPlan> methods;        // every method in grid.method, resolved
  std::map<std::string, DatasetSettings> datasets;  // every dataset in grid.dataset, resolved
  GridAxes grid;
  std::vector<std::string> warnings;  // harmless oddities (an axis no trial uses, …)

  /// "origin:line:column: key: message", the form of every sweep-file error, for checks made
  /// after parsing (sweep.dp against the world size, say). Without a position (line 0) it
  /// points at 1:1.
  std::string locate(SourcePos where, const std::string& key, const std::string& message) const;
};

/// Where [sweep] save_adapters puts the adapters and the driver the mid-trial checkpoints:
/// folders beside the results file, named after it ("results/x.h5" → "results/x.adapters",
/// "results/x.checkpoints").
std::string adapters_dir(const std::string& output);
std::string checkpoints_dir(const std::string& output);

/// Reads and validates a sweep file. `check_paths = false` skips the on-disk checks of the
/// checkpoint and data folders (for --dry-run on a machine without the data).
SweepSpec parse_sweep_file(const std::string& path, bool check_paths = true);

/// Same for text already in memory; `origin` names it in messages.
SweepSpec parse_sweep_string(const std::string& text, const std::string& origin,
                             bool check_paths = true);

/// The grid's trials, without meaningless duplicates, in a stable order
/// (dataset, method, rank, sparsity, alpha, lr, seed). Each has its params and id.
std::vector<TrialSpec> expand(const SweepSpec& spec);

/// Relative expected run time of a trial (arbitrary units; only ratios matter), for
/// largest-first scheduling: dataset size proxy × passes × method factor.
double expected_cost(const TrialSpec& trial);

/// sweeps/demo.toml as compiled into the library (the driver's default sweep).
const std::string& embedded_demo_sweep();

}  // namespace peft
