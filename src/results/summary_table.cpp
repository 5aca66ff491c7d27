#include "results/summary_table.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <set>

#include "results/h5_io.h"

namespace peft::results_detail {
namespace {

enum class Kind { Text, Int, Real };

struct Column {
  std::string name;
  Kind kind;
  std::size_t size;    // bytes in a row
  std::size_t offset;
  std::string metric;  // for metric columns: the metric's name
};

/// Fixed string widths never shrink below these, so the layout rarely changes.
constexpr std::size_t kIdWidth = 16, kStatusWidth = 12, kMethodWidth = 12, kDatasetWidth = 20;

std::vector<Column> layout(const std::vector<SummaryRow>& rows) {
  std::size_t id = kIdWidth, status = kStatusWidth, method = kMethodWidth, dataset = kDatasetWidth;
  std::set<std::string> metrics;
  for (const SummaryRow& r : rows) {
    id = std::max(id, r.id.size());
    status = std::max(status, r.status.size());
    method = std::max(method, r.method.size());
    dataset = std::max(dataset, r.dataset.size());
    for (const auto& [name, value] : r.metrics) metrics.insert(name);
  }
  std::vector<Column> cols = {{"id", Kind::Text, id, 0, ""},
                              {"status", Kind::Text, status, 0, ""},
                              {"method", Kind::Text, method, 0, ""},
                              {"dataset", Kind::Text, dataset, 0, ""},
                              {"rank", Kind::Int, 8, 0, ""},
                              {"sparsity", Kind::Real, 8, 0, ""},
                              {"seed", Kind::Int, 8, 0, ""},
                              {"lr", Kind::Real, 8, 0, ""},
                              {"wall_seconds", Kind::Real, 8, 0, ""}};
  std::set<std::string> fixed;
  for (const Column& c : cols) fixed.insert(c.name);
  for (const std::string& m : metrics)
    cols.push_back({fixed.contains(m) ? "metric." + m : m, Kind::Real, 8, 0, m});
  std::size_t offset = 0;
  for (Column& c : cols) {
    c.offset = offset;
    offset += c.size;
  }
  return cols;
}

std::size_t row_size(const std::vector<Column>& cols) { return cols.back().offset + cols.back().size; }

h5::Type compound(const std::vector<Column>& cols) {
  h5::Type t(PEFT_H5_CALL(H5Tcreate(H5T_COMPOUND, row_size(cols))));
  for (const Column& c : cols) {
    if (c.kind == Kind::Text) {
      h5::Type s = h5::fixed_string_type(c.size);
      PEFT_H5_CHECK(H5Tinsert(t.get(), c.name.c_str(), c.offset, s.get()));
    } else {
      PEFT_H5_CHECK(H5Tinsert(t.get(), c.name.c_str(), c.offset, c.kind == Kind::Int ? H5T_NATIVE_INT64 : H5T_NATIVE_DOUBLE));
    }
  }
  return t;
}

void put_text(char* at, const std::string& s, std::size_t width) { std::memcpy(at, s.data(), std::min(s.size(), width)); }

template <typename T>
void put(char* at, T v) {
  std::memcpy(at, &v, sizeof v);
}

std::vector<char> pack(const std::vector<SummaryRow>& rows, const std::vector<Column>& cols) {
  const std::size_t size = row_size(cols);
  std::vector<char> buffer(rows.size() * size, '\0');
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const SummaryRow& r = rows[i];
    char* row = buffer.data() + i * size;
    for (const Column& c : cols) {
      char* at = row + c.offset;
      if (c.name == "id") put_text(at, r.id, c.size);
      else if (c.name == "status") put_text(at, r.status, c.size);
      else if (c.name == "method") put_text(at, r.method, c.size);
      else if (c.name == "dataset") put_text(at, r.dataset, c.size);
      else if (c.name == "rank") put<int64_t>(at, r.rank);
      else if (c.name == "sparsity") put<double>(at, r.sparsity);
      else if (c.name == "seed") put<int64_t>(at, r.seed);
      else if (c.name == "lr") put<double>(at, r.lr);
      else if (c.name == "wall_seconds") put<double>(at, r.wall_seconds);
      else {
        const auto m = r.metrics.find(c.metric);
        put<double>(at, m == r.metrics.end() ? std::numeric_limits<double>::quiet_NaN() : m->second);
      }
    }
  }
  return buffer;
}

}  // namespace

void write_summary(hid_t file, const std::vector<SummaryRow>& rows) {
  const std::vector<Column> cols = layout(rows);
  h5::Type type = compound(cols);
  const std::vector<char> buffer = pack(rows, cols);
  const hsize_t n = rows.size();

  h5::Dataset d;
  if (h5::exists(file, "summary")) {
    h5::Dataset old(PEFT_H5_CALL(H5Dopen2(file, "summary", H5P_DEFAULT)));
    h5::Type old_type(PEFT_H5_CALL(H5Dget_type(old.get())));
    if (PEFT_H5_CALL(H5Tequal(old_type.get(), type.get())) > 0) {
      PEFT_H5_CHECK(H5Dset_extent(old.get(), &n));
      d = std::move(old);
    } else {
      old.reset();
      h5::remove(file, "summary");
    }
  }
  if (!d.valid()) {
    const hsize_t unlimited = H5S_UNLIMITED, chunk = 256;
    h5::Space space(PEFT_H5_CALL(H5Screate_simple(1, &n, &unlimited)));
    h5::Plist dcpl(PEFT_H5_CALL(H5Pcreate(H5P_DATASET_CREATE)));
    PEFT_H5_CHECK(H5Pset_chunk(dcpl.get(), 1, &chunk));
    d = h5::Dataset(PEFT_H5_CALL(H5Dcreate2(file, "summary", type.get(), space.get(), H5P_DEFAULT, dcpl.get(), H5P_DEFAULT)));
  }
  if (n > 0) PEFT_H5_CHECK(H5Dwrite(d.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, buffer.data()));
}

}  // namespace peft::results_detail
