#include "sweep/driver.h"

#include <mpi.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <optional>
#include <set>
#include <thread>

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include "config/sweep_spec.h"
#include "core/blas_core.h"
#include "core/error.h"
#include "comm/communicator.h"
#include "comm/mpi_check.h"
#include "peft/version.h"
#include "results/result_store.h"
#include "sweep/event_log.h"
#include "sweep/run_files.h"
#include "sweep/trial_watch.h"
#include "train/device.h"
#include "train/trial_checkpoint.h"
#include "train/trial_runner.h"

namespace peft::sweep {
namespace fs = std::filesystem;
namespace {

std::atomic<int> g_signal{0};
extern "C" void on_signal(int sig) { g_signal.store(sig); }

void install_signal_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGUSR1, &sa, nullptr);  // Slurm --signal=USR1@T: save and exit
}

std::string bcast_string(std::string s, int root, MPI_Comm comm) {
  int64_t n = static_cast<int64_t>(s.size());
  PEFT_MPI_CHECK(MPI_Bcast(&n, 1, MPI_INT64_T, root, comm));
  s.resize(static_cast<std::size_t>(n));
  if (n > 0) PEFT_MPI_CHECK(MPI_Bcast(s.data(), static_cast<int>(n), MPI_CHAR, root, comm));
  return s;
}

/// Waits at a barrier without spinning a core (OpenMPI's blocking barrier busy-polls).
void idle_barrier(MPI_Comm comm) {
  MPI_Request req;
  PEFT_MPI_CHECK(MPI_Ibarrier(comm, &req));
  int done = 0;
  for (;;) {
    PEFT_MPI_CHECK(MPI_Test(&req, &done, MPI_STATUS_IGNORE));
    if (done) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

std::string hostname_of_this_rank() {
  char name[256] = {};
  return gethostname(name, sizeof name - 1) == 0 ? std::string(name) : std::string("?");
}

/// Moves the trials of the per-group part files into the results file (one writer: rank 0).
void fold_parts(const std::string& output) {
  auto parts = existing_parts(output);
  if (parts.empty()) return;
  auto store = ResultStore::open_for_resume(output);
  auto done = store.completed_ids();
  for (const auto& part : parts) {
    {
      auto in = ResultStore::open_read(part);
      for (const auto& id : in.trial_ids()) {
        if (done.count(id)) continue;
        TrialSpec spec;
        spec.id = id;
        spec.params = in.read_params(id);
        auto r = in.read_trial(id);
        store.write_trial(spec, r);
        if (r.status == "complete") done.insert(id);
      }
    }
    fs::remove(part);
  }
  store.close();
}

std::string key_metric(const TrialResult& r) {
  auto m = [&](const char* k) {
    auto it = r.metrics.find(k);
    return it == r.metrics.end() ? std::nan("") : it->second;
  };
  if (r.status != "complete") return r.status + (r.error.empty() ? "" : ": " + r.error);
  if (!std::isnan(m("accuracy"))) return fmt::format("acc {:.4f}", m("accuracy"));
  return fmt::format("ppl {:.3f}", m("perplexity"));
}

}  // namespace

int run_sweep(const SweepOptions& opt) {
  int world_rank = 0, world_size = 1;
  PEFT_MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &world_rank));
  PEFT_MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &world_size));

  // ---- parse and validate: identical on every rank, no communication needed
  SweepSpec spec;
  std::vector<TrialSpec> trials;
  try {
    // Argument errors first: they hold whatever the sweep file says.
    if (opt.ranks < 0) throw_input("--ranks must be a positive number of ranks (found {})", opt.ranks);
    if (opt.ranks > 0 && !opt.dry_run) throw_input("--ranks states the world size of a --dry-run; a run uses mpirun's ranks");
    spec = opt.sweep_path.empty() ? parse_sweep_string(embedded_demo_sweep(), "sweeps/demo.toml (embedded)", !opt.dry_run)
                                  : parse_sweep_file(opt.sweep_path, !opt.dry_run);
    if (!opt.output.empty()) spec.output = opt.output;
    if (!opt.schedule.empty()) {
      if (opt.schedule != "dynamic" && opt.schedule != "static") throw_input("--schedule must be dynamic or static (found \"{}\")", opt.schedule);
      spec.schedule = opt.schedule;
    }
    if (spec.output.empty()) throw_input("{}: sweep.output is not set and no --output was given", spec.origin);
    // A dry run previews the plan for --ranks ranks in one process; otherwise the real world.
    if (opt.ranks > 0) world_size = opt.ranks;
    if (world_size % spec.dp != 0)
      throw_input("{}", spec.locate(spec.dp_pos, "sweep.dp",
                                    fmt::format("{} does not divide the {} {} (run with a multiple of dp ranks{})", spec.dp,
                                                world_size, opt.ranks > 0 ? "ranks of --ranks" : "MPI ranks",
                                                opt.dry_run && opt.ranks == 0 ? ", or preview with --ranks N" : "")));
    // "auto" precision is resolved before the ids are formed (bf16 on a GPU, fp32 on CPU),
    // so an id names the numerics that ran and a --resume on other hardware reruns it.
    spec.train.precision = train::resolve_precision(spec.train.precision, spec.train.device);
    trials = expand(spec);
    // [sweep] save_adapters: every trial's adapter beside the results (not part of the ids).
    if (spec.save_adapters)
      for (auto& t : trials) {
        t.train.save_adapter = true;
        if (t.train.adapter_dir.empty() || t.train.adapter_dir == fmt::format("adapters/{}", spec.name)) t.train.adapter_dir = adapters_dir(spec.output);
      }
    if (!opt.shard.empty()) {
      int i = -1, n = 0;
      if (std::sscanf(opt.shard.c_str(), "%d/%d", &i, &n) != 2 || n < 1 || i < 0 || i >= n)
        throw_input("--shard must be i/N with 0 <= i < N (found \"{}\")", opt.shard);
      std::vector<TrialSpec> mine;
      for (std::size_t k = 0; k < trials.size(); ++k)
        if (static_cast<int>(k % static_cast<std::size_t>(n)) == i) mine.push_back(trials[k]);
      trials = std::move(mine);
    }
  } catch (const std::invalid_argument& e) {
    if (world_rank == 0) std::cerr << "peft-sweep: error: " << e.what() << "\n";
    return 2;
  }
  for (const auto& w : spec.warnings)
    if (world_rank == 0) spdlog::warn("{}", w);

  const int dp = static_cast<int>(spec.dp);
  const int groups = world_size / dp;
  const int group = world_rank / dp;
  // Largest expected cost first, ties by id, so the order is the same on every rank.
  std::stable_sort(trials.begin(), trials.end(), [](const TrialSpec& a, const TrialSpec& b) {
    const double ca = expected_cost(a), cb = expected_cost(b);
    return ca != cb ? ca > cb : a.id < b.id;
  });

  if (opt.dry_run) {
    if (world_rank == 0) {
      std::cout << fmt::format("sweep {}: {} trials, {} rank groups of dp={} ({} ranks), {} scheduling, output {}\n", spec.name,
                               trials.size(), groups, dp, world_size, spec.schedule, spec.output);
      for (std::size_t k = 0; k < trials.size(); ++k) {
        const std::string where = spec.schedule == "static" ? fmt::format("group {}", k % static_cast<std::size_t>(groups))
                                  : k < static_cast<std::size_t>(groups) ? fmt::format("group {} (first wave)", k)
                                                                          : std::string("next idle group");
        std::cout << fmt::format("{:>4}  {}  {:<48}  cost {:>10.1f}  {}\n", k, trials[k].id, describe_trial(trials[k]), expected_cost(trials[k]), where);
      }
    }
    return 0;
  }

  // ---- the results file: rank 0 checks / creates it before anyone trains
  std::string status_msg;
  std::set<std::string> completed;
  if (world_rank == 0) {
    try {
      const bool exists = fs::exists(spec.output);
      if (exists && !opt.resume)
        throw_input("{} already exists: pass --resume to continue it, or --output for a new file (nothing was overwritten)", spec.output);
      if (!exists && !existing_parts(spec.output).empty() && !opt.resume)
        throw_input("part files of {} exist from an interrupted run: pass --resume", spec.output);
      if (spec.output.find('/') != std::string::npos) fs::create_directories(fs::path(spec.output).parent_path());
      auto store = ResultStore::open_or_create(spec.output, opt.resume, spec.text, spec.name, world_size, PEFT_VERSION);
      store.close();
      start_event_log(spec.output, exists);
      fold_parts(spec.output);  // a crashed run's committed trials
      auto reread = ResultStore::open_read(spec.output);
      completed = reread.completed_ids();
    } catch (const std::exception& e) {
      status_msg = e.what();
      if (status_msg.empty()) status_msg = "unknown error";
    }
  }
  status_msg = bcast_string(status_msg, 0, MPI_COMM_WORLD);
  if (!status_msg.empty()) {
    if (world_rank == 0) std::cerr << "peft-sweep: error: " << status_msg << "\n";
    return 2;
  }
  std::string done_list;
  for (const auto& id : completed) done_list += id + "\n";
  done_list = bcast_string(done_list, 0, MPI_COMM_WORLD);
  completed.clear();
  for (std::size_t p = 0, q; (q = done_list.find('\n', p)) != std::string::npos; p = q + 1) completed.insert(done_list.substr(p, q - p));
  std::vector<TrialSpec> pending;
  for (auto& t : trials)
    if (!completed.count(t.id)) pending.push_back(t);

  // ---- groups, local ranks, threads, devices
  MPI_Comm group_comm, node_comm;
  PEFT_MPI_CHECK(MPI_Comm_split(MPI_COMM_WORLD, group, world_rank, &group_comm));
  PEFT_MPI_CHECK(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, world_rank, MPI_INFO_NULL, &node_comm));
  int local_rank = 0, local_size = 1, group_rank = 0;
  MPI_Comm_rank(node_comm, &local_rank);
  MPI_Comm_size(node_comm, &local_size);
  MPI_Comm_rank(group_comm, &group_rank);
  const int threads = train::threads_per_rank(local_size);
  torch::set_num_threads(threads);
  const torch::Device device = train::resolve_device(spec.train.device, local_rank);
  spdlog::debug("rank {} on {}: local rank {} of {}, group {} rank {}, device {}", world_rank, hostname_of_this_rank(), local_rank,
                local_size, group, group_rank, device.str());
  // The device: local rank % visible devices (train::resolve_device); the backend: from the
  // PCI bus ids the group's ranks actually see (comm::make_communicator).
  auto communicator = comm::make_communicator(group_comm, device);
  if (world_rank == 0)
    spdlog::info("peft-sweep {} (LibTorch {}{}): {} ranks in {} groups of dp={}, {} threads per rank, device {}, {} backend ({}); {} trials ({} already complete), {} scheduling → {}",
                 PEFT_VERSION, TORCH_VERSION, openblas_banner_note(), world_size, groups, dp, threads, device.str(), communicator->backend(),
                 communicator->reason, trials.size(), trials.size() - pending.size(), spec.schedule, spec.output);
  // The event log (README "Watching a sweep"): rank 0's run lines, each group leader's trial lines.
  EventLog events = group_rank == 0 ? EventLog(event_log_path(spec.output)) : EventLog();
  if (world_rank == 0)
    events.append({{"event", "run_start"}, {"sweep", spec.name}, {"world_size", world_size}, {"groups", groups}, {"dp", dp},
                   {"trials", trials.size()}, {"pending", pending.size()}, {"resume", opt.resume}, {"shard", opt.shard},
                   {"precision", spec.train.precision}, {"schedule", spec.schedule}});

  // Dynamic scheduling: a shared counter on rank 0 (MPI one-sided fetch-and-add), so an idle
  // group takes the next trial without a coordinator loop.
  MPI_Win win = MPI_WIN_NULL;
  int64_t* counter = nullptr;
  PEFT_MPI_CHECK(MPI_Win_allocate(world_rank == 0 ? sizeof(int64_t) : 0, sizeof(int64_t), MPI_INFO_NULL, MPI_COMM_WORLD, &counter, &win));
  if (world_rank == 0) *counter = 0;
  PEFT_MPI_CHECK(MPI_Barrier(MPI_COMM_WORLD));
  auto next_dynamic = [&]() -> int64_t {
    int64_t idx = -1;
    if (group_rank == 0) {
      const int64_t one = 1;
      PEFT_MPI_CHECK(MPI_Win_lock(MPI_LOCK_EXCLUSIVE, 0, 0, win));
      PEFT_MPI_CHECK(MPI_Fetch_and_op(&one, &idx, MPI_INT64_T, 0, 0, MPI_SUM, win));
      PEFT_MPI_CHECK(MPI_Win_unlock(0, win));
    }
    PEFT_MPI_CHECK(MPI_Bcast(&idx, 1, MPI_INT64_T, 0, group_comm));
    return idx;
  };

  install_signal_handlers();
  // Between trials: one small all-reduce per trial. Inside a trial the flag travels in the
  // step's all-reduce (Trainer::fit), so ctx.stop is this rank's flag alone.
  auto stop_requested = [&]() {
    int local = g_signal.load() != 0, any = local;
    if (dp > 1) PEFT_MPI_CHECK(MPI_Allreduce(&local, &any, 1, MPI_INT, MPI_MAX, group_comm));
    return any != 0;
  };
  const bool leader = group_rank == 0;
  const bool tty = leader && isatty(STDERR_FILENO);
  std::unique_ptr<ResultStore> part;
  int64_t static_next = group;
  bool interrupted = false;
  const auto t_start = std::chrono::steady_clock::now();
  for (;;) {
    if (stop_requested()) {
      interrupted = true;
      break;
    }
    const int64_t idx = spec.schedule == "static" ? static_next : next_dynamic();
    static_next += groups;
    if (idx < 0 || idx >= static_cast<int64_t>(pending.size())) break;
    const TrialSpec& t = pending[static_cast<std::size_t>(idx)];
    train::RunContext ctx;
    ctx.sync = communicator.get();
    ctx.local_rank = local_rank;
    ctx.stop = [] { return g_signal.load() != 0; };
    ctx.measure_inference = leader;
    ctx.checkpoint_dir = (fs::path(checkpoints_dir(spec.output)) / t.id).string();
    ctx.resume = opt.resume;
    std::optional<TrialWatch> watch;  // the leader's event-log lines and progress lines
    if (leader) {
      watch.emplace(events, group, t, describe_trial(t), tty);
      watch->attach(ctx);
    }
    spdlog::debug("group {} starts trial {} ({})", group, t.id, describe_trial(t));
    communicator->begin_trial();
    TrialResult r = train::run_trial(t, ctx);
    r.group = group;
    {
      // Failure agreement (README "Fault handling"): a rank that failed before training makes
      // the start-of-training agreement its peers made in Trainer::fit; then every rank makes
      // the end-of-trial one, and the lowest failing rank's error is the trial's.
      const bool own_failure = r.status == "failed" && !communicator->peer_failure();
      if (communicator->agreements() == 0) communicator->agree_failure(own_failure);
      const int failing = communicator->agree_failure(own_failure);
      if (failing >= 0) {
        const std::string error = bcast_string(r.error, failing, group_comm);
        r.status = "failed";
        r.error = fmt::format("rank {} of group {} (world rank {}): {}", failing, group, group * dp + failing, error);
      }
    }
    if (watch) watch->end(r);
    if (leader) {
      if (!part) part = std::make_unique<ResultStore>(ResultStore::open_or_create(part_path(spec.output, group), true, spec.text, spec.name, world_size, PEFT_VERSION));
      part->write_trial(t, r);  // committed and flushed before the next trial starts
      // A trial's checkpoints are kept while it can still continue from them (interrupted, or
      // failed: a lost rank); a complete or diverged one does not need them.
      if (r.status == "complete" || r.status == "diverged") train::remove_checkpoints(ctx.checkpoint_dir);
    }
    if (r.status == "interrupted") {
      if (leader) spdlog::info("[group {}] trial {} ({}) interrupted at step {}: rerun with --resume to continue it", group, t.id, describe_trial(t), r.interrupted_step);
      interrupted = true;
      break;
    }
    if (leader) {
      const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
      spdlog::info("[group {}] trial {} ({}) {} in {:.1f}s", group, t.id, describe_trial(t), key_metric(r), r.wall_seconds);
      const int64_t started = spec.schedule == "static" ? idx + 1 : std::min<int64_t>(idx + 1, pending.size());
      const double eta = elapsed / static_cast<double>(std::max<int64_t>(1, started)) * static_cast<double>(pending.size() - started);
      spdlog::info("[group {}] progress: trial {}/{} of this run started, ~{:.0f}s left", group, started, pending.size(), std::max(0.0, eta));
    }
  }
  part.reset();
  idle_barrier(MPI_COMM_WORLD);
  MPI_Win_free(&win);
  communicator.reset();
  int exit_code = 0;
  if (world_rank == 0) {
    try {
      fold_parts(spec.output);
      auto store = ResultStore::open_read(spec.output);
      // This sweep's trials by status. A failed or diverged trial is a recorded result, so
      // the run still exits 0 (a job array's afterok merge must run); the line says so.
      std::set<std::string> ids;
      for (const auto& t : trials) ids.insert(t.id);
      std::map<std::string, std::size_t> by_status;
      for (const auto& row : store.summary())
        if (ids.count(row.id)) ++by_status[row.status];
      std::string others;
      for (const auto& [status, n] : by_status)
        if (status != "complete") others += fmt::format(", {} {}", n, status);
      // A warning when trials failed, so that it shows at every log level but error.
      spdlog::log(by_status.count("failed") ? spdlog::level::warn : spdlog::level::info, "{}: {}/{} trials complete{}{}",
                  spec.output, by_status["complete"], trials.size(), others,
                  interrupted ? " (interrupted: rerun with --resume)"
                              : (others.empty() ? "" : fmt::format(" (peft-sweep status {} lists them)", spec.output)));
    } catch (const std::exception& e) {
      spdlog::error("merging the part files into {} failed: {} (the part files are kept; rerun with --resume)", spec.output, e.what());
      exit_code = 1;
    }
  }
  int any_interrupt = interrupted, all = 0;
  MPI_Allreduce(&any_interrupt, &all, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  MPI_Bcast(&exit_code, 1, MPI_INT, 0, MPI_COMM_WORLD);
  if (world_rank == 0) events.append({{"event", "run_end"}, {"interrupted", all != 0}, {"exit_code", all ? 130 : exit_code}});
  MPI_Comm_free(&group_comm);
  MPI_Comm_free(&node_comm);
  if (all) return 130;
  return exit_code;
}

int merge_results(const std::vector<std::string>& parts, const std::string& out) {
  auto report = ResultStore::merge(parts, out);
  std::cout << fmt::format("{}: {} trials from {} files ({} failed attempts replaced, {} duplicates skipped)\n", out, report.trials,
                           parts.size(), report.replaced, report.duplicates);
  return 0;
}

}  // namespace peft::sweep
