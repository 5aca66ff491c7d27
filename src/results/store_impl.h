#pragma once
// ResultStore's state and the helpers shared by result_store.cpp and merge.cpp (internal).
#include <map>
#include <memory>
#include <stdexcept>
#include <string>

#include <fmt/format.h>

#include "results/h5_handle.h"
#include "results/result_store.h"

namespace peft {

struct ResultStore::Impl {
  std::string path;
  h5::File file;
  bool writable = false;
  std::map<std::string, SummaryRow> rows;  // every trial in /trials, by id

  /// Opens and validates an existing results file; a writer drops unfinished /staging trials.
  static std::unique_ptr<Impl> open_existing(const std::string& path, bool writable);
  /// H5Fflush plus fsync: when it returns, the file on disk holds everything written.
  void flush_to_disk();
  void require_writable(const char* what) const;
  void require_open(const char* what) const;
  void write_summary_rows();
  void load_rows();
};

namespace results_detail {

/// Bumped when the layout of the file changes incompatibly.
inline constexpr int64_t kResultsFormat = 1;

std::string iso_now();
/// File access properties of every results file (object formats, locking).
h5::Plist file_access();

/// Runs `fn`, prefixing HDF5 and other runtime errors with the file's path.
template <typename F>
auto with_path(const std::string& path, F&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    if (what.starts_with(path)) throw;
    throw std::runtime_error(fmt::format("{}: {}", path, what));
  }
}

}  // namespace results_detail
}  // namespace peft
