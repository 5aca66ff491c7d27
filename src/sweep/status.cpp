#include "sweep/status.h"

#include "sweep/run_files.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <optional>
#include <ostream>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "config/sweep_spec.h"
#include "core/error.h"
#include "results/result_store.h"
#include "sweep/event_log.h"
#include "train/device.h"

namespace peft::sweep {
namespace fs = std::filesystem;
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
/// A running trial without an event for this long is flagged (the run may have died: a
/// kill -9 writes no run_end line). Logged steps come every total/200 steps.
constexpr double kStaleSeconds = 300;

struct TrialEvents {
  bool started = false, ended = false;
  int run = 0;  // the run (1, 2, … in log order) of the last trial_start
  int64_t group = -1, step = 0, total = 0;
  double loss = kNaN, eta = kNaN, step_time = 0, start_time = 0, last_time = 0;
  double eval_accuracy = kNaN, eval_perplexity = kNaN;
  std::string end_status, end_error;
  std::map<std::string, double> end_metrics;
  double end_wall = kNaN;
};

struct LogState {
  bool exists = false, live = false;
  int runs = 0;
  int64_t groups = 0, dp = 0;
  double run_start = 0, run_end = 0;
  int exit_code = 0;
  std::string precision, shard;
  std::size_t bad_lines = 0;
  std::map<std::string, TrialEvents> trials;
};

double num(const nlohmann::json& j, const char* key, double fallback = kNaN) {
  auto it = j.find(key);
  return it != j.end() && it->is_number() ? it->get<double>() : fallback;
}

std::string str(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

LogState read_event_log(const std::string& path) {
  LogState s;
  std::ifstream in(path);
  if (!in) return s;
  s.exists = true;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    // A line being appended right now may be cut short: skipped, it is whole next time.
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
      ++s.bad_lines;
      continue;
    }
    const std::string ev = str(j, "event");
    const double t = num(j, "time", 0);
    if (ev == "run_start") {
      ++s.runs;
      s.live = true;
      s.run_start = t;
      s.groups = static_cast<int64_t>(num(j, "groups", 0));
      s.dp = static_cast<int64_t>(num(j, "dp", 0));
      s.precision = str(j, "precision");
      s.shard = str(j, "shard");
      continue;
    }
    if (ev == "run_end") {
      s.live = false;
      s.run_end = t;
      s.exit_code = static_cast<int>(num(j, "exit_code", 0));
      continue;
    }
    const std::string id = str(j, "trial");
    if (id.empty()) continue;
    TrialEvents& te = s.trials[id];
    te.last_time = t;
    if (ev == "trial_start") {
      te = TrialEvents{};
      te.started = true;
      te.run = s.runs;
      te.start_time = te.last_time = t;
      te.group = static_cast<int64_t>(num(j, "group", -1));
    } else if (ev == "step") {
      te.step = static_cast<int64_t>(num(j, "step", 0));
      te.total = static_cast<int64_t>(num(j, "total_steps", 0));
      te.loss = num(j, "loss");
      te.eta = num(j, "eta_seconds");
      te.step_time = t;
    } else if (ev == "eval") {
      te.eval_accuracy = num(j, "accuracy");
      te.eval_perplexity = num(j, "perplexity");
    } else if (ev == "trial_end") {
      te.ended = true;
      te.end_status = str(j, "status");
      te.end_error = str(j, "error");
      te.end_wall = num(j, "wall_seconds");
      if (auto m = j.find("metrics"); m != j.end() && m->is_object())
        for (const auto& [k, v] : m->items())
          if (v.is_number()) te.end_metrics[k] = v.get<double>();
    }
  }
  return s;
}

/// A committed trial, from the results file or a part file.
struct Committed {
  SummaryRow row;
  std::string error;
  int64_t diverged_step = -1;
};

/// Reads the committed trials of one file into `out` (a complete trial is never replaced).
///
/// File locking: a group leader holds its part file open (read-write) for the whole run, and
/// HDF5 1.10 keeps an exclusive flock on a file opened for writing until it is closed, so a
/// locked read-only open fails at once (LOCK_NB) for as long as the sweep runs. Worse, a reader
/// holding a shared lock on the results file makes rank 0's final fold of the part files fail
/// (its read-write open cannot lock). So status opens every file without locking
/// (HDF5_USE_FILE_LOCKING=FALSE, set in print_status before the first HDF5 call): a read-only
/// open never writes, so it cannot corrupt the file or block the writer. The writer flushes
/// (H5Fflush + fsync) at the end of each write_trial() and writes nothing between trials, so
/// what a reader sees is consistent except during the few milliseconds of a commit; a read
/// that fails then is retried, and if it keeps failing that file's trials come from the event
/// log's trial_end lines and a note says so.
bool read_committed(const std::string& path, std::map<std::string, Committed>& out, std::string* why) {
  for (int attempt = 0;; ++attempt) {
    try {
      auto store = ResultStore::open_read(path);
      std::map<std::string, Committed> mine;
      for (auto& row : store.summary()) {
        Committed c;
        if (row.status != "complete") {
          const TrialResult r = store.read_trial(row.id);
          c.error = r.error;
          c.diverged_step = r.diverged_step;
        }
        c.row = std::move(row);
        mine[c.row.id] = std::move(c);
      }
      for (auto& [id, c] : mine) {
        auto it = out.find(id);
        if (it == out.end() || it->second.row.status != "complete") out[id] = std::move(c);
      }
      return true;
    } catch (const std::runtime_error& e) {
      if (attempt >= 4) {
        if (why) *why = e.what();
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  }
}

std::string metric_text(const std::map<std::string, double>& m) {
  auto get = [&](const char* k) {
    auto it = m.find(k);
    return it == m.end() ? kNaN : it->second;
  };
  if (std::isfinite(get("accuracy"))) return fmt::format("acc {:.4f}", get("accuracy"));
  if (std::isfinite(get("perplexity"))) return fmt::format("ppl {:.3f}", get("perplexity"));
  return "no metric";
}

std::string duration(double s) {
  if (!std::isfinite(s)) return "?";
  s = std::max(0.0, s);
  if (s < 90) return fmt::format("{:.0f}s", s);
  if (s < 5400) return fmt::format("{:.0f}m {:02.0f}s", std::floor(s / 60), std::fmod(s, 60));
  return fmt::format("{:.0f}h {:02.0f}m", std::floor(s / 3600), std::floor(std::fmod(s, 3600) / 60));
}

std::string utc(double unix_seconds) {
  const auto t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm);
  return buf;
}

std::string cut(std::string s, std::size_t n) {
  for (char& c : s)
    if (c == '\n' || c == '\r') c = ' ';
  return s.size() <= n ? s : s.substr(0, n) + "…";
}

struct Row {
  std::string id, method, dataset, label, state, detail;
  std::map<std::string, double> metrics;
  double wall_seconds = kNaN, eta = kNaN, elapsed = kNaN;
};

}  // namespace

int print_status(const std::string& results, std::ostream& out) {
  // Before any HDF5 call: no file lock (see read_committed).
  ::setenv("HDF5_USE_FILE_LOCKING", "FALSE", 1);
  const double now = unix_time();

  // The results file: the sweep text and the trials committed by earlier runs. It is only
  // open in the driver at a run's start and end (rank 0), so its errors are not retried away:
  // a missing or foreign file is an InputError.
  std::map<std::string, Committed> committed;
  std::vector<std::string> notes;
  StoreInfo info;
  {
    std::optional<ResultStore> store;
    for (int attempt = 0; !store; ++attempt) {
      try {
        store.emplace(ResultStore::open_read(results));
      } catch (const std::runtime_error& e) {
        if (attempt >= 4) throw;
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
      }
    }
    info = store->info();
  }
  std::string why;
  if (!read_committed(results, committed, &why)) throw_runtime("{}", why);
  const auto parts = existing_parts(results);
  for (const auto& p : parts)
    if (!read_committed(p, committed, &why))
      notes.push_back(fmt::format("part file {} could not be read ({}); its trials are shown from the event log", p, cut(why, 120)));
  const std::string log_path = event_log_path(results);
  const LogState log = read_event_log(log_path);

  // The full trial list, expanded from the sweep's own text as the driver did (same precision
  // resolution, taken from the run's log line when there is one, so that the ids match even
  // where this machine's device differs; same --shard).
  std::vector<TrialSpec> trials;
  int64_t dp = log.dp;
  try {
    SweepSpec spec = parse_sweep_string(info.sweep_toml, results + " (sweep_toml)", false);
    spec.train.precision = !log.precision.empty() ? log.precision : train::resolve_precision(spec.train.precision, spec.train.device);
    trials = expand(spec);
    if (dp <= 0) dp = spec.dp;
    int i = -1, n = 0;
    if (!log.shard.empty() && std::sscanf(log.shard.c_str(), "%d/%d", &i, &n) == 2 && n > 0) {
      std::vector<TrialSpec> mine;
      for (std::size_t k = 0; k < trials.size(); ++k)
        if (static_cast<int>(k % static_cast<std::size_t>(n)) == i) mine.push_back(trials[k]);
      trials = std::move(mine);
    }
  } catch (const std::exception& e) {
    notes.push_back(fmt::format("the sweep text in {} could not be expanded ({}); only trials in the files and the log are listed",
                                results, cut(e.what(), 160)));
  }

  std::vector<Row> rows;
  std::map<std::string, std::size_t> index;
  auto add = [&](const std::string& id) -> Row& {
    auto [it, fresh] = index.emplace(id, rows.size());
    if (fresh) {
      rows.emplace_back();
      rows.back().id = id;
    }
    return rows[it->second];
  };
  for (const auto& t : trials) {
    Row& r = add(t.id);
    r.method = t.method.method;
    r.dataset = t.dataset.name;
    r.label = describe_trial(t);
  }
  for (const auto& [id, c] : committed) {
    Row& r = add(id);
    r.method = c.row.method;
    r.dataset = c.row.dataset;
    if (r.label.empty()) r.label = describe_trial(c.row.method, c.row.dataset, c.row.rank, c.row.sparsity, c.row.seed, c.row.lr);
  }
  for (const auto& [id, te] : log.trials)
    if (te.started) add(id);

  for (Row& r : rows) {
    auto c = committed.find(r.id);
    auto e = log.trials.find(r.id);
    const TrialEvents* te = e == log.trials.end() ? nullptr : &e->second;
    const bool in_this_run = te && te->started && te->run == log.runs;
    const bool running = in_this_run && !te->ended && log.live;
    const std::string group = te && te->group >= 0 ? fmt::format(", group {}", te->group) : "";
    if (running) {
      r.state = "running";
      const double since = now - te->step_time;
      r.eta = std::isfinite(te->eta) ? std::max(0.0, te->eta - since) : kNaN;
      r.elapsed = now - te->start_time;
      r.detail = te->total > 0 ? fmt::format("running at step {}/{}, loss {:.4f}{}, ETA {}", te->step, te->total, te->loss, group,
                                             duration(r.eta))
                               : fmt::format("running (starting{}, {} so far)", group, duration(r.elapsed));
      if (std::isfinite(te->eval_accuracy)) r.detail += fmt::format(", last eval acc {:.4f}", te->eval_accuracy);
      else if (std::isfinite(te->eval_perplexity)) r.detail += fmt::format(", last eval ppl {:.3f}", te->eval_perplexity);
      if (now - te->last_time > kStaleSeconds)
        r.detail += fmt::format(" [no event for {}: the run may have died]", duration(now - te->last_time));
    } else if (c != committed.end()) {
      const Committed& k = c->second;
      r.state = k.row.status;
      r.metrics = k.row.metrics;
      r.wall_seconds = k.row.wall_seconds;
      if (r.state == "complete") r.detail = fmt::format("complete: {} ({})", metric_text(k.row.metrics), duration(k.row.wall_seconds));
      else if (r.state == "diverged") r.detail = k.diverged_step >= 0 ? fmt::format("diverged at step {}", k.diverged_step) : "diverged";
      else if (r.state == "interrupted")
        // The step comes from the event log; an `interrupted_step` attribute in the file is not
        // read through ResultStore (yet), and older files have none.
        r.detail = te && te->step > 0 ? fmt::format("interrupted at step {}/{}", te->step, te->total) : "interrupted";
      else r.detail = k.error.empty() ? r.state : fmt::format("{}: {}", r.state, cut(k.error, 100));
    } else if (te && te->ended) {
      // Ended in this run but not (yet, or not readably) in a file.
      r.state = te->end_status.empty() ? "unknown" : te->end_status;
      r.metrics = te->end_metrics;
      r.wall_seconds = te->end_wall;
      r.detail = r.state == "complete" ? fmt::format("complete: {} ({}; from the event log)", metric_text(te->end_metrics), duration(te->end_wall))
                                       : fmt::format("{}{} (from the event log)", r.state, te->end_error.empty() ? "" : ": " + cut(te->end_error, 100));
    } else if (te && te->started) {
      // Started by a run that has ended (or been superseded) without committing it.
      r.state = "interrupted";
      r.detail = te->total > 0 ? fmt::format("interrupted at step {}/{} (not in the results file)", te->step, te->total)
                               : "interrupted before its first step (not in the results file)";
    } else {
      r.state = "waiting";
      r.detail = "waiting";
    }
  }

  // Counts, ETA.
  std::map<std::string, std::size_t> counts;
  double run_eta = 0, mean_sum = 0;
  std::size_t mean_n = 0, waiting = 0, running = 0;
  for (const Row& r : rows) {
    ++counts[r.state];
    if (r.state == "waiting" || r.state == "interrupted") ++waiting;  // what a run or --resume still runs
    if (r.state == "running") {
      ++running;
      if (std::isfinite(r.eta)) run_eta = std::max(run_eta, r.eta);
    }
    if (r.state == "complete" && std::isfinite(r.wall_seconds) && r.wall_seconds > 0) {
      mean_sum += r.wall_seconds;
      ++mean_n;
    }
  }
  double remaining = 0;
  for (const Row& r : rows)
    if (r.state == "running" && std::isfinite(r.eta)) remaining += r.eta;
  double mean = mean_n ? mean_sum / static_cast<double>(mean_n) : kNaN;
  if (!mean_n) {  // no complete trial yet: what the running trials will have taken
    double s = 0;
    std::size_t n = 0;
    for (const Row& r : rows)
      if (r.state == "running" && std::isfinite(r.eta) && std::isfinite(r.elapsed)) {
        s += r.elapsed + r.eta;
        ++n;
      }
    if (n) mean = s / static_cast<double>(n);
  }
  const int64_t groups = log.groups > 0 ? log.groups : (dp > 0 && info.world_size > 0 ? std::max<int64_t>(1, info.world_size / dp) : 1);

  out << fmt::format("sweep {}: {}\n", info.sweep_name, results);
  if (!log.exists)
    out << fmt::format("event log: {} not found (a sweep run by an older peft-sweep, or not started yet)\n", log_path);
  else if (log.live)
    out << fmt::format("run: started {} ({} ago), {} groups of dp={}; event log {}\n", utc(log.run_start), duration(now - log.run_start),
                       groups, dp, log_path);
  else if (log.runs > 0)
    out << fmt::format("run: ended {} (exit status {}); event log {}\n", utc(log.run_end), log.exit_code, log_path);
  std::string tally;
  for (const char* s : {"complete", "running", "waiting", "failed", "diverged", "interrupted"})
    if (counts.count(s)) tally += fmt::format("{}{} {}", tally.empty() ? "" : ", ", counts[s], s);
  for (const auto& [s, n] : counts)
    if (s != "complete" && s != "running" && s != "waiting" && s != "failed" && s != "diverged" && s != "interrupted")
      tally += fmt::format(", {} {}", n, s);
  out << fmt::format("trials: {} ({})\n", rows.size(), tally);
  if (log.live) {
    if (running == 0 && waiting == 0) out << "ETA: the run is finishing (merging the part files)\n";
    else if (!std::isfinite(mean)) out << "ETA: unknown until a trial has logged a step\n";
    else {
      const double eta = std::max(run_eta, (remaining + static_cast<double>(waiting) * mean) / static_cast<double>(groups));
      out << fmt::format("ETA: ~{} ({} running, {} waiting × ~{} per trial, over {} group{})\n", duration(eta), running, waiting,
                         duration(mean), groups, groups == 1 ? "" : "s");
    }
  } else if (waiting > 0 || counts.count("failed") || counts.count("diverged")) {
    out << fmt::format("ETA: not running; {} trial(s) not run or interrupted: `peft-sweep SWEEP.toml --resume` runs them "
                       "(and reruns failed ones)\n",
                       waiting);
  } else {
    out << "ETA: done, every trial has a result\n";
  }
  for (const auto& n : notes) out << "note: " << n << "\n";
  if (log.bad_lines) out << fmt::format("note: {} line(s) of the event log are not JSON objects and were skipped\n", log.bad_lines);

  std::size_t w = 5;
  for (const Row& r : rows) w = std::max(w, r.detail.size());
  w = std::min<std::size_t>(w, 90);
  out << fmt::format("\n{:<12}  {:<{}}  {}\n", "trial", "state", w, "settings");
  for (const Row& r : rows) out << fmt::format("{:<12}  {:<{}}  {}\n", r.id, r.detail, w, r.label);

  // Best complete result per data set and method: accuracy (higher) or perplexity (lower).
  std::map<std::pair<std::string, std::string>, const Row*> best;
  auto score = [](const Row& r) {
    auto a = r.metrics.find("accuracy");
    if (a != r.metrics.end() && std::isfinite(a->second)) return a->second;
    auto p = r.metrics.find("perplexity");
    if (p != r.metrics.end() && std::isfinite(p->second)) return -p->second;
    return kNaN;
  };
  for (const Row& r : rows) {
    if (r.state != "complete" || !std::isfinite(score(r))) continue;
    auto& b = best[{r.dataset, r.method}];
    if (!b || score(r) > score(*b)) b = &r;
  }
  out << "\nbest so far per data set and method (accuracy, or perplexity for MLM):\n";
  if (best.empty()) out << "  none yet (no complete trial)\n";
  std::size_t wd = 7;
  for (const auto& [k, r] : best) wd = std::max(wd, k.first.size());
  for (const auto& [k, r] : best)
    out << fmt::format("  {:<{}}  {:<11}  {:<11}  {}  {}\n", k.first, wd, k.second, metric_text(r->metrics), r->id, r->label);
  return 0;
}

}  // namespace peft::sweep
