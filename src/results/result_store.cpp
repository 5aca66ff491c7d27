#include "results/result_store.h"

#include <unistd.h>

#include <chrono>
#include <ctime>
#include <filesystem>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "core/error.h"
#include "results/h5_io.h"
#include "results/store_impl.h"
#include "results/summary_table.h"
#include "results/trial_group.h"

namespace peft {

using namespace results_detail;

namespace results_detail {

std::string iso_now() {
  const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm utc{};
  gmtime_r(&now, &utc);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return buf;
}

h5::Plist file_access() {
  h5::Plist fapl(PEFT_H5_CALL(H5Pcreate(H5P_FILE_ACCESS)));
  // The 1.8 object formats: compact/dense groups and attributes for thousands of trials,
  // still readable by any HDF5 >= 1.8 (h5py, pandas, h5dump).
  PEFT_H5_CHECK(H5Pset_libver_bounds(fapl.get(), H5F_LIBVER_V18, H5F_LIBVER_V18));
#if H5_VERSION_GE(1, 10, 7)
  // Keep HDF5's lock (one writer per file) but do not fail on file systems without flock.
  PEFT_H5_CHECK(H5Pset_file_locking(fapl.get(), true, true));
#endif
  return fapl;
}

}  // namespace results_detail

void ResultStore::Impl::flush_to_disk() {
  PEFT_H5_CHECK(H5Fflush(file.get(), H5F_SCOPE_GLOBAL));
  // H5Fflush hands the data to the kernel (enough if the process dies); fsync also survives
  // the node going down.
  h5::Plist fapl(PEFT_H5_CALL(H5Fget_access_plist(file.get())));
  if (H5Pget_driver(fapl.get()) != H5FD_SEC2) return;
  void* handle = nullptr;
  if (H5Fget_vfd_handle(file.get(), fapl.get(), &handle) >= 0 && handle) ::fsync(*static_cast<int*>(handle));
}

void ResultStore::Impl::require_writable(const char* what) const {
  if (!file.valid()) throw std::logic_error(fmt::format("{}: {} after close()", path, what));
  if (!writable) throw std::logic_error(fmt::format("{}: {} on a file opened read-only", path, what));
}

void ResultStore::Impl::require_open(const char* what) const {
  if (!file.valid()) throw std::logic_error(fmt::format("{}: {} after close()", path, what));
}

void ResultStore::Impl::write_summary_rows() {
  std::vector<SummaryRow> list;
  list.reserve(rows.size());
  for (const auto& [id, row] : rows) list.push_back(row);
  write_summary(file.get(), list);
}

void ResultStore::Impl::load_rows() {
  rows.clear();
  h5::Group trials = h5::open_group(file.get(), "trials");
  for (const std::string& id : h5::children(trials.get())) {
    h5::Group g = h5::open_group(trials.get(), id);
    rows[id] = read_summary_row(g.get(), id);
  }
}

std::unique_ptr<ResultStore::Impl> ResultStore::Impl::open_existing(const std::string& path, bool writable) {
  h5::quiet();
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) throw_input("{}: no such results file", path);
  if (H5Fis_hdf5(path.c_str()) <= 0) {
    H5Eclear2(H5E_DEFAULT);
    throw_input("{} is not a peft-sweep results file (not an HDF5 file)", path);
  }
  auto s = std::make_unique<Impl>();
  s->path = path;
  s->writable = writable;
  h5::Plist fapl = file_access();
  s->file = h5::File(PEFT_H5_CALL(H5Fopen(path.c_str(), writable ? H5F_ACC_RDWR : H5F_ACC_RDONLY, fapl.get())));
  if (!h5::has_attr(s->file.get(), "peft_sweep_version") || !h5::exists(s->file.get(), "trials"))
    throw_input("{} is not a peft-sweep results file (no peft_sweep_version attribute or /trials group)", path);
  if (writable && h5::exists(s->file.get(), "staging")) {
    // A trial half-written when the writer died: never moved into /trials, so not committed.
    h5::Group staging = h5::open_group(s->file.get(), "staging");
    for (const std::string& id : h5::children(staging.get())) {
      spdlog::warn("{}: dropping trial {} whose write did not finish", path, id);
      h5::remove(staging.get(), id);
    }
  }
  s->load_rows();
  return s;
}

ResultStore::ResultStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ResultStore::ResultStore(ResultStore&&) noexcept = default;
ResultStore& ResultStore::operator=(ResultStore&&) noexcept = default;

ResultStore::~ResultStore() {
  if (!impl_) return;
  try {
    close();
  } catch (const std::exception& e) {
    spdlog::error("{}: closing the results file failed: {}", impl_->path, e.what());
  }
}

ResultStore ResultStore::create(const std::string& path, const std::string& sweep_text, const std::string& sweep_name,
                                int64_t world_size, const std::string& version) {
  h5::quiet();
  std::error_code ec;
  if (std::filesystem::exists(path, ec))
    throw_input("{}: the results file already exists; pass --resume to continue it, or choose another --output",
                path);
  return with_path(path, [&] {
    const auto parent = std::filesystem::path(path).parent_path();
    if (!parent.empty()) std::filesystem::create_directories(parent);
    auto s = std::make_unique<Impl>();
    s->path = path;
    s->writable = true;
    h5::Plist fapl = file_access();
    h5::Plist fcpl = h5::compact_attributes(H5P_FILE_CREATE);
    s->file = h5::File(PEFT_H5_CALL(H5Fcreate(path.c_str(), H5F_ACC_EXCL, fcpl.get(), fapl.get())));
    const hid_t root = s->file.get();
    h5::write_string_attr(root, "peft_sweep_version", version);
    h5::write_int_attr(root, "results_format", kResultsFormat);
    h5::write_string_attr(root, "sweep_name", sweep_name);
    h5::write_string_attr(root, "sweep_toml", sweep_text);
    h5::write_int_attr(root, "world_size", world_size);
    h5::write_string_attr(root, "created", iso_now());
    h5::create_group(root, "trials");
    s->write_summary_rows();
    s->flush_to_disk();
    return ResultStore(std::move(s));
  });
}

ResultStore ResultStore::open_for_resume(const std::string& path) {
  return with_path(path, [&] { return ResultStore(Impl::open_existing(path, true)); });
}

ResultStore ResultStore::open_read(const std::string& path) {
  return with_path(path, [&] { return ResultStore(Impl::open_existing(path, false)); });
}

ResultStore ResultStore::open_or_create(const std::string& path, bool resume, const std::string& sweep_text,
                                        const std::string& sweep_name, int64_t world_size, const std::string& version) {
  std::error_code ec;
  if (resume && std::filesystem::exists(path, ec)) {
    ResultStore store = open_for_resume(path);
    store.record_resume(sweep_text, world_size);
    return store;
  }
  return create(path, sweep_text, sweep_name, world_size, version);
}

const std::string& ResultStore::path() const { return impl_->path; }

StoreInfo ResultStore::info() const {
  impl_->require_open("info()");
  return with_path(impl_->path, [&] {
    const hid_t root = impl_->file.get();
    StoreInfo i;
    i.version = h5::read_string_attr(root, "peft_sweep_version");
    i.sweep_name = h5::read_string_attr(root, "sweep_name");
    i.sweep_toml = h5::read_string_attr(root, "sweep_toml");
    i.world_size = h5::read_int_attr(root, "world_size");
    i.created = h5::read_string_attr(root, "created");
    return i;
  });
}

std::vector<std::string> ResultStore::trial_ids() const {
  std::vector<std::string> ids;
  for (const auto& [id, row] : impl_->rows) ids.push_back(id);
  return ids;
}

std::set<std::string> ResultStore::completed_ids() const {
  std::set<std::string> ids;
  for (const auto& [id, row] : impl_->rows)
    if (row.status == "complete") ids.insert(id);
  return ids;
}

bool ResultStore::contains(const std::string& id) const { return impl_->rows.contains(id); }

void ResultStore::write_trial(const TrialSpec& spec, const TrialResult& result) {
  Impl& s = *impl_;
  s.require_writable("write_trial()");
  const std::string& id = spec.id;
  if (id.empty() || id.find('/') != std::string::npos || id == "." || id == "..")
    throw std::logic_error(fmt::format("{}: write_trial() with an invalid trial id '{}'", s.path, id));
  if (!result.id.empty() && result.id != id)
    throw std::logic_error(fmt::format("{}: write_trial() with spec {} but result {}", s.path, id, result.id));
  if (auto it = s.rows.find(id); it != s.rows.end() && it->second.status == "complete")
    throw std::logic_error(fmt::format("{}: trial {} is already complete; a complete trial is never overwritten",
                                       s.path, id));
  with_path(s.path, [&] {
    const hid_t root = s.file.get();
    h5::Group trials = h5::open_group(root, "trials");
    h5::Group staging = h5::exists(root, "staging") ? h5::open_group(root, "staging") : h5::create_group(root, "staging");
    if (h5::exists(staging.get(), id)) h5::remove(staging.get(), id);
    // 1. The whole trial under /staging: invisible to readers and to resume until moved.
    {
      h5::Group g = h5::create_group(staging.get(), id);
      try {
        write_trial_group(g.get(), spec, result);
      } catch (...) {
        g.reset();
        PEFT_H5_WARN(H5Ldelete(staging.get(), id.c_str(), H5P_DEFAULT));
        throw;
      }
    }
    // 2. One link operation puts it in place (replacing a failed attempt).
    if (h5::exists(trials.get(), id)) h5::remove(trials.get(), id);
    PEFT_H5_CHECK(H5Lmove(staging.get(), id.c_str(), trials.get(), id.c_str(), H5P_DEFAULT, H5P_DEFAULT));
    // 3. The summary, from what is now in the file; then everything to disk.
    h5::Group g = h5::open_group(trials.get(), id);
    s.rows[id] = read_summary_row(g.get(), id);
    s.write_summary_rows();
    s.flush_to_disk();
  });
}

void ResultStore::record_resume(const std::string& sweep_text, int64_t world_size) {
  Impl& s = *impl_;
  s.require_writable("record_resume()");
  with_path(s.path, [&] {
    const hid_t root = s.file.get();
    h5::write_string_attr(root, "sweep_toml", sweep_text);
    h5::write_int_attr(root, "world_size", world_size);
    h5::write_string_attr(root, "resumed", iso_now());
    s.flush_to_disk();
  });
}

TrialResult ResultStore::read_trial(const std::string& id) const {
  impl_->require_open("read_trial()");
  if (!contains(id)) throw_input("{}: no trial {}", impl_->path, id);
  return with_path(impl_->path, [&] {
    h5::Group trials = h5::open_group(impl_->file.get(), "trials");
    h5::Group g = h5::open_group(trials.get(), id);
    return read_trial_group(g.get(), id);
  });
}

std::map<std::string, std::string> ResultStore::read_params(const std::string& id) const {
  impl_->require_open("read_params()");
  if (!contains(id)) throw_input("{}: no trial {}", impl_->path, id);
  return with_path(impl_->path, [&] {
    h5::Group trials = h5::open_group(impl_->file.get(), "trials");
    h5::Group g = h5::open_group(trials.get(), id);
    return read_trial_params(g.get());
  });
}

std::vector<SummaryRow> ResultStore::summary() const {
  std::vector<SummaryRow> list;
  for (const auto& [id, row] : impl_->rows) list.push_back(row);
  return list;
}

void ResultStore::close() {
  if (!impl_ || !impl_->file.valid()) return;
  with_path(impl_->path, [&] {
    if (impl_->writable) impl_->flush_to_disk();
    impl_->file.reset();
  });
}

}  // namespace peft
