#pragma once
// What a group leader shows of the trial it runs: the event-log lines (event_log.h) and the
// progress on stderr, one \r-rewritten line on a terminal, plain lines otherwise (Slurm logs).
#include <chrono>
#include <string>

#include "core/trial.h"
#include "sweep/event_log.h"
#include "train/trial_runner.h"

namespace peft::sweep {

/// The cadence of progress lines when stderr is not a terminal: a line when the trial has
/// passed another kProgressLineFraction of its steps since the previous line, but not sooner
/// than kProgressLineSeconds after it (so a short trial prints one or two lines and a long
/// one a line per 10 %). The environment variable PEFT_PROGRESS_SECONDS sets the interval
/// (seconds, 0: a line at every 10 % step).
inline constexpr double kProgressLineFraction = 0.10;
inline constexpr double kProgressLineSeconds = 30.0;

/// The interval in effect: PEFT_PROGRESS_SECONDS when it is a number >= 0, else
/// kProgressLineSeconds.
double progress_line_seconds();

class TrialWatch {
 public:
  /// Writes the trial_start line. `label` describes the trial (method, data set, rank, …).
  TrialWatch(EventLog& log, int group, const TrialSpec& trial, std::string label, bool tty);
  /// Sets ctx.progress and ctx.on_eval (the watch must outlive the trial's run).
  void attach(train::RunContext& ctx);
  /// After the trial, with its final status: the trial_end line; clears the terminal line.
  void end(const TrialResult& result);

 private:
  void on_progress(const train::Progress& p);
  void on_eval(const train::EvalEvent& e);
  double elapsed() const;

  EventLog& log_;
  int group_;
  std::string id_, label_;
  bool tty_;
  double line_seconds_;
  std::chrono::steady_clock::time_point start_;
  double last_line_ = -1e300;  // elapsed() of the last plain progress line
  int64_t last_bucket_ = 0;    // kProgressLineFraction buckets passed at that line
  int64_t last_step_ = 0, total_steps_ = 0;
};

}  // namespace peft::sweep
