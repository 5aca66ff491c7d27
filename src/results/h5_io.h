#pragma once
// Small typed reads and writes on HDF5 groups: links, attributes, 1-D datasets
// (internal to src/results). Strings are written as UTF-8 variable-length attributes and
// fixed-length null-padded datasets, the forms h5py and pandas read most simply.
#include <cstdint>
#include <string>
#include <vector>

#include "results/h5_handle.h"

namespace peft::h5 {

/// Objects keep up to this many attributes in their header (see compact_attributes()).
inline constexpr unsigned kMaxCompactAttributes = 4096;
/// Creation properties (group or file) that keep attributes compact.
Plist compact_attributes(hid_t plist_class);

bool exists(hid_t loc, const std::string& name);
Group create_group(hid_t loc, const std::string& name);
Group open_group(hid_t loc, const std::string& name);
/// Link names of a group in name order.
std::vector<std::string> children(hid_t group);
void remove(hid_t loc, const std::string& name);

bool has_attr(hid_t obj, const std::string& name);
std::vector<std::string> attr_names(hid_t obj);
bool attr_is_string(hid_t obj, const std::string& name);
// Writers replace an attribute of the same name.
void write_string_attr(hid_t obj, const std::string& name, const std::string& value);
void write_double_attr(hid_t obj, const std::string& name, double value);
void write_int_attr(hid_t obj, const std::string& name, int64_t value);
std::string read_string_attr(hid_t obj, const std::string& name);  // fixed or variable length
double read_double_attr(hid_t obj, const std::string& name);       // any numeric type
int64_t read_int_attr(hid_t obj, const std::string& name);

void write_vector(hid_t loc, const std::string& name, const std::vector<double>& values);
void write_vector(hid_t loc, const std::string& name, const std::vector<int64_t>& values);
void write_strings(hid_t loc, const std::string& name, const std::vector<std::string>& values);
std::vector<double> read_doubles(hid_t loc, const std::string& name);
std::vector<int64_t> read_ints(hid_t loc, const std::string& name);
std::vector<std::string> read_strings(hid_t loc, const std::string& name);

/// A fixed-length, null-padded string type of `size` bytes (at least 1).
Type fixed_string_type(std::size_t size);

}  // namespace peft::h5
