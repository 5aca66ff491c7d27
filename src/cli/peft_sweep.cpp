// peft-sweep: the sweep driver (`mpirun -np N peft-sweep SWEEP.toml`), a single-trial mode
// (`peft-sweep trial …`) and the merge of job-array part files (`peft-sweep merge …`).
#include <mpi.h>
#include <unistd.h>

#include <iostream>

#include "cli/cli_common.h"
#include "cli/single_trial.h"
#include "config/dump_config.h"
#include "config/sweep_spec.h"
#include "core/blas_core.h"
#include "core/error.h"
#include "core/log.h"
#include "sweep/driver.h"
#include "sweep/status.h"

namespace {

using namespace peft::cli;

const char* kUsage =
    "peft-sweep [SWEEP.toml] [--dry-run] [--dump-config] [--output PATH] [--resume] [--schedule dynamic|static] [--shard i/N]\n"
    "       peft-sweep trial --method M --dataset D [options]   (one trial, one process; see peft-sweep trial --help)\n"
    "       peft-sweep merge OUT.h5 PART.h5...                  (combine job-array results files)\n"
    "       peft-sweep status RESULTS.h5                        (trial states, ETA, best so far; while a sweep runs and after)\n"
    "Without SWEEP.toml the embedded demo sweep (sweeps/demo.toml) runs.";

int sweep_main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  po::options_description desc("peft-sweep options");
  peft::sweep::SweepOptions o;
  desc.add_options()
      ("sweep", po::value(&o.sweep_path), "the TOML sweep file (default: the embedded demo sweep)")
      ("dry-run", po::bool_switch(&o.dry_run), "print the expanded trials and the rank group that takes each, then exit")
      ("dump-config", po::bool_switch(&o.dump_config), "print the resolved sweep as TOML, every default included, then exit")
      ("ranks", po::value(&o.ranks), "with --dry-run: plan for N ranks (default: the MPI world size), no mpirun needed")
      ("output,o", po::value(&o.output), "results file (overrides [sweep] output)")
      ("resume", po::bool_switch(&o.resume), "continue an existing results file: skip complete trials, rerun failed and missing ones")
      ("schedule", po::value(&o.schedule), "dynamic (default: idle group takes the next, largest first) or static")
      ("shard", po::value(&o.shard), "i/N: run only trials i, i+N, i+2N, … (Slurm job arrays)")
      ("version", "print the version");
  po::positional_options_description pos;
  pos.add("sweep", 1);
  po::variables_map vm;
  int world_rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
  try {
    if (!parse_args("peft-sweep", kUsage, args, desc, vm, &pos)) return 0;
  } catch (const std::exception& e) {
    if (world_rank == 0) std::cerr << "peft-sweep: error: " << e.what() << "\n";
    return 2;
  }
  if (vm.count("version")) {
    if (world_rank == 0) std::cout << version_banner() << "\n";
    return 0;
  }
  if (o.dump_config) {
    // as the driver resolves it: the file (or the embedded demo) plus --output / --schedule
    try {
      peft::SweepSpec spec = o.sweep_path.empty()
                                 ? peft::parse_sweep_string(peft::embedded_demo_sweep(), "sweeps/demo.toml (embedded)", false)
                                 : peft::parse_sweep_file(o.sweep_path, false);
      if (!o.output.empty()) spec.output = o.output;
      if (!o.schedule.empty()) {
        if (o.schedule != "dynamic" && o.schedule != "static") peft::throw_input("--schedule must be dynamic or static (found \"{}\")", o.schedule);
        spec.schedule = o.schedule;
      }
      if (world_rank == 0) std::cout << peft::dump_config(spec);
    } catch (const std::invalid_argument& e) {
      if (world_rank == 0) std::cerr << "peft-sweep: error: " << e.what() << "\n";
      return 2;
    }
    return 0;
  }
  return peft::sweep::run_sweep(o);
}

}  // namespace

int main(int argc, char** argv) {
  peft::restart_for_fitting_openblas_core(argv);  // before MPI and the first gemm (core/blas_core.h)
  if (argc > 1 && std::string(argv[1]) == "trial") {
    peft::init_logging(0, "info");
    std::vector<std::string> args(argv + 2, argv + argc);
    return run_guarded("peft-sweep trial", [&] { return run_single_trial(args); });
  }
  if (argc > 1 && std::string(argv[1]) == "merge") {
    peft::init_logging(0, "info");
    std::vector<std::string> args(argv + 2, argv + argc);
    return run_guarded("peft-sweep merge", [&] {
      if (args.size() < 2 || args[0] == "--help") {
        std::cout << "usage: peft-sweep merge OUT.h5 PART.h5 [PART.h5 …]\n";
        return args.empty() ? 2 : (args[0] == "--help" ? 0 : 2);
      }
      return peft::sweep::merge_results({args.begin() + 1, args.end()}, args[0]);
    });
  }
  if (argc > 1 && std::string(argv[1]) == "status") {
    // No MPI: a read-only look at the files of a sweep that may be running (sweep/status.h).
    peft::init_logging(0, "warn");
    std::vector<std::string> args(argv + 2, argv + argc);
    return run_guarded("peft-sweep status", [&] {
      if (args.size() != 1 || args[0] == "--help") {
        std::cout << "usage: peft-sweep status RESULTS.h5\n"
                     "Prints every trial's state (waiting, running at step s/N with its loss, complete, failed, diverged,\n"
                     "interrupted), the ETA and the best result so far per data set and method, from the results file,\n"
                     "its part files and its event log RESULTS.h5.events.jsonl. Safe on a running sweep (read-only).\n";
        return !args.empty() && args[0] == "--help" ? 0 : 2;
      }
      return peft::sweep::print_status(args[0], std::cout);
    });
  }
  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  peft::init_logging(rank, "info");
  int rc = 1;
  try {
    rc = sweep_main(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "peft-sweep: rank " << rank << ": error: " << e.what() << "\n";
    // A failure on one rank must not leave the others waiting in a collective.
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  MPI_Finalize();
  return rc;
}
