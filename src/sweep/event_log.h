#pragma once
// The event log of a sweep: `<output>.events.jsonl`, beside the results file, one JSON object
// per line (fields in README "Watching a sweep"). Rank 0 writes a `run_start` and a `run_end`
// line per run; each group leader writes `trial_start`, `step` (every logged step), `eval`
// (every evaluation) and `trial_end` lines for its trials. `peft-sweep status` and
// analysis/report.py read it.
//
// Several processes append to the same file: it is opened with O_APPEND and every line is one
// write(2), so the kernel places each line whole at the end of the file, never interleaved
// with another process's (on a local file system; NFS does not promise O_APPEND atomicity).
// Nothing is buffered in the process: a line is in the file when append() returns. A resumed
// run appends to the same log; a new results file starts a new log.
#include <string>

#include <nlohmann/json.hpp>

namespace peft::sweep {

/// `<output>.events.jsonl`.
std::string event_log_path(const std::string& output);

/// Rank 0, before any line of a run: a run that creates a new results file removes the log of
/// an earlier results file of the same name (a resumed run keeps and appends to it).
void start_event_log(const std::string& output, bool resumed);

/// Seconds since the Unix epoch (the `time` field of every line).
double unix_time();

class EventLog {
 public:
  EventLog() = default;  // not open: append() does nothing
  /// Opens (creating) `path` for appending. A log that cannot be opened is a warning, not an
  /// error: the sweep runs without it.
  explicit EventLog(const std::string& path);
  EventLog(EventLog&&) noexcept;
  EventLog& operator=(EventLog&&) noexcept;
  EventLog(const EventLog&) = delete;
  EventLog& operator=(const EventLog&) = delete;
  ~EventLog();

  bool is_open() const { return fd_ >= 0; }
  /// Writes `line` (plus "time" when absent) as one line with one write(2). NaN and infinite
  /// numbers become null. A failed write is logged once and otherwise ignored.
  void append(nlohmann::json line);

 private:
  int fd_ = -1;
  std::string path_;
  bool warned_ = false;
};

}  // namespace peft::sweep
