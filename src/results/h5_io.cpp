#include "results/h5_io.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>

namespace peft::h5 {
namespace {

Type utf8_vlen_string() {
  Type t(PEFT_H5_CALL(H5Tcopy(H5T_C_S1)));
  PEFT_H5_CHECK(H5Tset_size(t.get(), H5T_VARIABLE));
  PEFT_H5_CHECK(H5Tset_cset(t.get(), H5T_CSET_UTF8));
  return t;
}

/// A fresh attribute (an old one of the same name is deleted first).
Attr new_attr(hid_t obj, const std::string& name, hid_t type) {
  if (has_attr(obj, name)) PEFT_H5_CHECK(H5Adelete(obj, name.c_str()));
  Space scalar(PEFT_H5_CALL(H5Screate(H5S_SCALAR)));
  return Attr(PEFT_H5_CALL(H5Acreate2(obj, name.c_str(), type, scalar.get(), H5P_DEFAULT, H5P_DEFAULT)));
}

Attr open_attr(hid_t obj, const std::string& name) {
  return Attr(PEFT_H5_CALL(H5Aopen(obj, name.c_str(), H5P_DEFAULT)));
}

template <typename T>
void write_numbers(hid_t loc, const std::string& name, const std::vector<T>& values, hid_t file_type,
                   hid_t mem_type) {
  const hsize_t n = values.size();
  Space space(PEFT_H5_CALL(H5Screate_simple(1, &n, nullptr)));
  Dataset d(PEFT_H5_CALL(
      H5Dcreate2(loc, name.c_str(), file_type, space.get(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)));
  if (n > 0) PEFT_H5_CHECK(H5Dwrite(d.get(), mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data()));
}

hsize_t length_of(hid_t dataset) {
  Space space(PEFT_H5_CALL(H5Dget_space(dataset)));
  const int rank = PEFT_H5_CALL(H5Sget_simple_extent_ndims(space.get()));
  if (rank != 1) throw std::runtime_error("expected a 1-D dataset");
  hsize_t n = 0;
  PEFT_H5_CHECK(H5Sget_simple_extent_dims(space.get(), &n, nullptr));
  return n;
}

template <typename T>
std::vector<T> read_numbers(hid_t loc, const std::string& name, hid_t mem_type) {
  Dataset d(PEFT_H5_CALL(H5Dopen2(loc, name.c_str(), H5P_DEFAULT)));
  std::vector<T> values(length_of(d.get()));
  if (!values.empty()) PEFT_H5_CHECK(H5Dread(d.get(), mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data()));
  return values;
}

herr_t collect_name(hid_t, const char* name, const void*, void* data) {
  static_cast<std::vector<std::string>*>(data)->push_back(name);
  return 0;
}

herr_t collect_link(hid_t, const char* name, const H5L_info_t*, void* data) {
  static_cast<std::vector<std::string>*>(data)->push_back(name);
  return 0;
}

}  // namespace

bool exists(hid_t loc, const std::string& name) { return PEFT_H5_CALL(H5Lexists(loc, name.c_str(), H5P_DEFAULT)) > 0; }

Plist compact_attributes(hid_t plist_class) {
  Plist p(PEFT_H5_CALL(H5Pcreate(plist_class)));
  // Attributes stay in the object header ("compact"), never in dense storage: HDF5 1.10.8
  // crashes copying dense variable-length string attributes (H5Ocopy, h5copy).
  PEFT_H5_CHECK(H5Pset_attr_phase_change(p.get(), kMaxCompactAttributes, kMaxCompactAttributes));
  return p;
}

Group create_group(hid_t loc, const std::string& name) {
  Plist gcpl = compact_attributes(H5P_GROUP_CREATE);
  return Group(PEFT_H5_CALL(H5Gcreate2(loc, name.c_str(), H5P_DEFAULT, gcpl.get(), H5P_DEFAULT)));
}

Group open_group(hid_t loc, const std::string& name) {
  return Group(PEFT_H5_CALL(H5Gopen2(loc, name.c_str(), H5P_DEFAULT)));
}

std::vector<std::string> children(hid_t group) {
  std::vector<std::string> names;
  hsize_t index = 0;
  PEFT_H5_CHECK(H5Literate(group, H5_INDEX_NAME, H5_ITER_INC, &index, collect_link, &names));
  return names;
}

void remove(hid_t loc, const std::string& name) { PEFT_H5_CHECK(H5Ldelete(loc, name.c_str(), H5P_DEFAULT)); }

bool has_attr(hid_t obj, const std::string& name) { return PEFT_H5_CALL(H5Aexists(obj, name.c_str())) > 0; }

std::vector<std::string> attr_names(hid_t obj) {
  std::vector<std::string> names;
  hsize_t index = 0;
  auto op = [](hid_t loc, const char* name, const H5A_info_t*, void* data) -> herr_t {
    return collect_name(loc, name, nullptr, data);
  };
  PEFT_H5_CHECK(H5Aiterate2(obj, H5_INDEX_NAME, H5_ITER_INC, &index, op, &names));
  return names;
}

bool attr_is_string(hid_t obj, const std::string& name) {
  Attr a = open_attr(obj, name);
  Type t(PEFT_H5_CALL(H5Aget_type(a.get())));
  return PEFT_H5_CALL(H5Tget_class(t.get())) == H5T_STRING;
}

void write_string_attr(hid_t obj, const std::string& name, const std::string& value) {
  Type t = utf8_vlen_string();
  Attr a = new_attr(obj, name, t.get());
  const char* text = value.c_str();
  PEFT_H5_CHECK(H5Awrite(a.get(), t.get(), &text));
}

void write_double_attr(hid_t obj, const std::string& name, double value) {
  Attr a = new_attr(obj, name, H5T_IEEE_F64LE);
  PEFT_H5_CHECK(H5Awrite(a.get(), H5T_NATIVE_DOUBLE, &value));
}

void write_int_attr(hid_t obj, const std::string& name, int64_t value) {
  Attr a = new_attr(obj, name, H5T_STD_I64LE);
  PEFT_H5_CHECK(H5Awrite(a.get(), H5T_NATIVE_INT64, &value));
}

std::string read_string_attr(hid_t obj, const std::string& name) {
  Attr a = open_attr(obj, name);
  Type file_type(PEFT_H5_CALL(H5Aget_type(a.get())));
  if (PEFT_H5_CALL(H5Tget_class(file_type.get())) != H5T_STRING)
    throw std::runtime_error("attribute '" + name + "' is not a string");
  if (PEFT_H5_CALL(H5Tis_variable_str(file_type.get())) > 0) {
    Type mem = utf8_vlen_string();
    char* text = nullptr;
    PEFT_H5_CHECK(H5Aread(a.get(), mem.get(), &text));
    std::string value = text ? text : "";
    H5free_memory(text);
    return value;
  }
  const std::size_t size = H5Tget_size(file_type.get());
  std::string value(size, '\0');
  Type mem = fixed_string_type(size);
  PEFT_H5_CHECK(H5Aread(a.get(), mem.get(), value.data()));
  value.resize(std::strlen(value.c_str()));
  return value;
}

double read_double_attr(hid_t obj, const std::string& name) {
  Attr a = open_attr(obj, name);
  double v = 0;
  PEFT_H5_CHECK(H5Aread(a.get(), H5T_NATIVE_DOUBLE, &v));
  return v;
}

int64_t read_int_attr(hid_t obj, const std::string& name) {
  Attr a = open_attr(obj, name);
  int64_t v = 0;
  PEFT_H5_CHECK(H5Aread(a.get(), H5T_NATIVE_INT64, &v));
  return v;
}

void write_vector(hid_t loc, const std::string& name, const std::vector<double>& values) {
  write_numbers(loc, name, values, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE);
}

void write_vector(hid_t loc, const std::string& name, const std::vector<int64_t>& values) {
  write_numbers(loc, name, values, H5T_STD_I64LE, H5T_NATIVE_INT64);
}

Type fixed_string_type(std::size_t size) {
  Type t(PEFT_H5_CALL(H5Tcopy(H5T_C_S1)));
  PEFT_H5_CHECK(H5Tset_size(t.get(), std::max<std::size_t>(size, 1)));
  PEFT_H5_CHECK(H5Tset_strpad(t.get(), H5T_STR_NULLPAD));
  return t;
}

void write_strings(hid_t loc, const std::string& name, const std::vector<std::string>& values) {
  std::size_t width = 1;
  for (const std::string& v : values) width = std::max(width, v.size());
  std::vector<char> buffer(values.size() * width, '\0');
  for (std::size_t i = 0; i < values.size(); ++i) std::memcpy(&buffer[i * width], values[i].data(), values[i].size());
  Type t = fixed_string_type(width);
  const hsize_t n = values.size();
  Space space(PEFT_H5_CALL(H5Screate_simple(1, &n, nullptr)));
  Dataset d(PEFT_H5_CALL(H5Dcreate2(loc, name.c_str(), t.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)));
  if (n > 0) PEFT_H5_CHECK(H5Dwrite(d.get(), t.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, buffer.data()));
}

std::vector<double> read_doubles(hid_t loc, const std::string& name) {
  return read_numbers<double>(loc, name, H5T_NATIVE_DOUBLE);
}

std::vector<int64_t> read_ints(hid_t loc, const std::string& name) {
  return read_numbers<int64_t>(loc, name, H5T_NATIVE_INT64);
}

std::vector<std::string> read_strings(hid_t loc, const std::string& name) {
  Dataset d(PEFT_H5_CALL(H5Dopen2(loc, name.c_str(), H5P_DEFAULT)));
  Type file_type(PEFT_H5_CALL(H5Dget_type(d.get())));
  if (PEFT_H5_CALL(H5Tis_variable_str(file_type.get())) > 0)
    throw std::runtime_error("dataset '" + name + "' holds variable-length strings; expected fixed-length");
  const std::size_t width = H5Tget_size(file_type.get());
  const hsize_t n = length_of(d.get());
  std::vector<char> buffer(n * width);
  Type mem = fixed_string_type(width);
  if (n > 0) PEFT_H5_CHECK(H5Dread(d.get(), mem.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, buffer.data()));
  std::vector<std::string> values;
  for (hsize_t i = 0; i < n; ++i) {
    const char* begin = &buffer[i * width];
    values.emplace_back(begin, strnlen(begin, width));
  }
  return values;
}

}  // namespace peft::h5
