#pragma once
// The sweep driver behind `mpirun -np N peft-sweep SWEEP.toml`.
#include <string>
#include <vector>

namespace peft::sweep {

struct SweepOptions {
  std::string sweep_path;        // empty: the embedded demo sweep
  std::string output;            // overrides [sweep] output
  std::string schedule;          // overrides [sweep] schedule (dynamic | static)
  std::string shard;             // "i/N": this job runs every N-th trial starting at i
  bool dry_run = false;
  int ranks = 0;                 // --dry-run only: the world size to plan for (0: the real one)
  bool dump_config = false;      // print the resolved sweep as TOML (every default) and exit
  bool resume = false;
};

/// Runs the sweep on MPI_COMM_WORLD (MPI must be initialised). Returns the exit code,
/// identical on every rank for errors found before training.
int run_sweep(const SweepOptions& options);

/// Combines results files (job-array parts) into `out`.
int merge_results(const std::vector<std::string>& parts, const std::string& out);

}  // namespace peft::sweep
