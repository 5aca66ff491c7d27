#pragma once
// Strict, error-collecting reads of TOML++ tables (internal to src/config).
// Every problem becomes one line "origin:line:column: full.key: message"; reading goes on
// so that the user sees all of them at once.
#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include <toml++/toml.h>

namespace peft::config_detail {

class ErrorList {
 public:
  /// `text` is the file's content: errors without a position of their own (a missing
  /// table) point at its end.
  ErrorList(std::string origin, std::string_view text);
  void at(const toml::source_region& where, std::string_view key, std::string_view message);
  void at(const toml::node& node, std::string_view key, std::string_view message) {
    at(node.source(), key, message);
  }
  /// "origin:line:column: key: message" (the form of every error and warning).
  std::string locate(const toml::source_region& where, std::string_view key, std::string_view message) const;
  /// An error with no position of its own (a missing table, say): placed at the end of the
  /// file, where the missing table would go.
  void general(std::string_view key, std::string_view message);
  bool empty() const { return entries_.empty(); }
  /// Throws one peft::InputError with every error, sorted by position, one per line.
  void throw_if_any() const;
  const std::string& origin() const { return origin_; }

 private:
  struct Entry {
    uint32_t line, column;
    std::string text;
  };
  std::string origin_;
  toml::source_position end_{1, 1};  // just past the last character
  std::vector<Entry> entries_;
};

/// A node's value as the user wrote it: 8, 0.5, "lora", true, an array, a table.
std::string describe(const toml::node& node);

/// Optimal string alignment distance (a transposition counts as one edit).
std::size_t edit_distance(std::string_view a, std::string_view b);

/// "; did you mean 'x'?" for the closest candidate within 2 edits, or "".
std::string did_you_mean(std::string_view word, const std::vector<std::string>& candidates);

struct IntRange {
  int64_t min = std::numeric_limits<int64_t>::min();
  int64_t max = std::numeric_limits<int64_t>::max();
  static IntRange at_least(int64_t m) { return {m, std::numeric_limits<int64_t>::max()}; }
  std::string describe() const;
};

struct DoubleRange {
  double lo = -std::numeric_limits<double>::infinity();
  double hi = std::numeric_limits<double>::infinity();
  bool lo_open = false;
  bool hi_open = false;
  static DoubleRange any() { return {}; }
  static DoubleRange positive() { return {0, std::numeric_limits<double>::infinity(), true, false}; }
  static DoubleRange non_negative() { return {0, std::numeric_limits<double>::infinity(), false, false}; }
  static DoubleRange unit_open() { return {0, 1, false, true}; }  // [0, 1)
  static DoubleRange unit() { return {0, 1, false, false}; }      // [0, 1]
  bool contains(double v) const;
  std::string describe() const;
};

/// One table being read. Only keys in `allowed` are read; finish() reports the others as
/// unknown, with a "did you mean" against `allowed`.
class TableReader {
 public:
  TableReader(const toml::table* table, std::string path, std::vector<std::string> allowed,
              ErrorList& errors);

  const toml::table* table() const { return table_; }
  const std::string& path() const { return path_; }
  std::string full_key(std::string_view key) const;
  bool allowed(std::string_view key) const;
  /// The node of an allowed key, or nullptr.
  const toml::node* node(std::string_view key) const;
  ErrorList& errors() { return errors_; }

  // Each getter leaves `out` unchanged and returns false when the key is absent or invalid
  // (an invalid value is reported).
  bool get(std::string_view key, int64_t& out, IntRange range = {});
  bool get(std::string_view key, double& out, DoubleRange range = DoubleRange::any());
  bool get(std::string_view key, bool& out);
  bool get(std::string_view key, std::string& out, const std::vector<std::string>& choices = {});
  /// A string or an array of strings.
  bool get_strings(std::string_view key, std::vector<std::string>& out);
  /// An integer or an array of integers.
  bool get_ints(std::string_view key, std::vector<int64_t>& out, IntRange range = {});
  /// A sub-table (reported when the key holds something else).
  const toml::table* get_table(std::string_view key);

  // Checks on single values (a grid axis element, say), reported under `key` at `node`.
  bool check_int(const toml::node& node, std::string_view key, int64_t& out, IntRange range);
  bool check_double(const toml::node& node, std::string_view key, double& out, DoubleRange range);
  bool check_string(const toml::node& node, std::string_view key, std::string& out,
                    const std::vector<std::string>& choices);

  /// Reports every key of the table not in `allowed`. `hint` may add text for a key
  /// (e.g. "a setting of [methods.sparse_lora]").
  void finish(std::string_view kind = "key",
              const std::function<std::string(std::string_view key)>& hint = {});

 private:
  const toml::table* table_;
  std::string path_;
  std::vector<std::string> allowed_;
  ErrorList& errors_;
};

/// Where a table starts, for errors about the table as a whole.
inline const toml::source_region& where(const toml::table* t) {
  static const toml::source_region none{};
  return t ? t->source() : none;
}

}  // namespace peft::config_detail
