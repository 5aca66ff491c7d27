#include "config/toml_reader.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "config/trial_params.h"
#include "core/error.h"

namespace peft::config_detail {

// ---- ErrorList -------------------------------------------------------------------------

ErrorList::ErrorList(std::string origin, std::string_view text) : origin_(std::move(origin)) {
  uint32_t line = 1, column = 1;
  for (char c : text) {
    if (c == '\n') ++line, column = 1;
    else if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) ++column;  // count code points, as TOML++ does
  }
  end_ = {line, column};
}

std::string ErrorList::locate(const toml::source_region& where, std::string_view key,
                              std::string_view message) const {
  const toml::source_position pos = where.begin.line == 0 ? end_ : where.begin;
  const std::string at = fmt::format("{}:{}:{}", origin_, pos.line, pos.column);
  return key.empty() ? fmt::format("{}: {}", at, message) : fmt::format("{}: {}: {}", at, key, message);
}

void ErrorList::at(const toml::source_region& where, std::string_view key, std::string_view message) {
  if (where.begin.line == 0) return general(key, message);
  entries_.push_back({where.begin.line, where.begin.column, locate(where, key, message)});
}

void ErrorList::general(std::string_view key, std::string_view message) {
  entries_.push_back({end_.line, end_.column, locate({}, key, message)});
}

void ErrorList::throw_if_any() const {
  if (entries_.empty()) return;
  std::vector<Entry> sorted = entries_;
  std::stable_sort(sorted.begin(), sorted.end(), [](const Entry& a, const Entry& b) {
    return a.line != b.line ? a.line < b.line : a.column < b.column;
  });
  std::string message;
  std::string previous;
  for (const Entry& e : sorted) {
    if (e.text == previous) continue;
    if (!message.empty()) message += '\n';
    message += e.text;
    previous = e.text;
  }
  throw InputError(message);
}

// ---- helpers ---------------------------------------------------------------------------

std::string describe(const toml::node& node) {
  if (auto s = node.as_string()) return fmt::format("\"{}\"", s->get());
  if (auto i = node.as_integer()) return fmt::format("{}", i->get());
  if (auto f = node.as_floating_point()) {
    std::string text = canonical_double(f->get());
    if (text.find_first_of(".eni") == std::string::npos) text += ".0";  // show it is a float
    return text;
  }
  if (auto b = node.as_boolean()) return b->get() ? "true" : "false";
  if (node.is_array()) return "an array";
  if (node.is_table()) return "a table";
  return "a date/time";
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
  const std::size_t n = a.size(), m = b.size();
  std::vector<std::vector<std::size_t>> d(n + 1, std::vector<std::size_t>(m + 1));
  for (std::size_t i = 0; i <= n; ++i) d[i][0] = i;
  for (std::size_t j = 0; j <= m; ++j) d[0][j] = j;
  for (std::size_t i = 1; i <= n; ++i) {
    for (std::size_t j = 1; j <= m; ++j) {
      const std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[n][m];
}

std::string did_you_mean(std::string_view word, const std::vector<std::string>& candidates) {
  std::string lower(word);
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  std::size_t best = 3;
  const std::string* pick = nullptr;
  for (const std::string& c : candidates) {
    // The distance is at least the difference in length: skip the n·m table for words that
    // cannot be within 2 edits (a value of hundreds of kB against a key name, say).
    if (lower.size() > c.size() + 2 || c.size() > lower.size() + 2) continue;
    const std::size_t d = edit_distance(lower, c);
    if (d < best) best = d, pick = &c;
  }
  return pick ? fmt::format("; did you mean '{}'?", *pick) : std::string();
}

std::string IntRange::describe() const {
  constexpr auto lo = std::numeric_limits<int64_t>::min();
  constexpr auto hi = std::numeric_limits<int64_t>::max();
  if (min == lo && max == hi) return "an integer";
  if (max == hi) return fmt::format("an integer >= {}", min);
  if (min == lo) return fmt::format("an integer <= {}", max);
  return fmt::format("an integer in [{}, {}]", min, max);
}

bool DoubleRange::contains(double v) const {
  if (!std::isfinite(v)) return false;
  const bool above = lo_open ? v > lo : v >= lo;
  const bool below = hi_open ? v < hi : v <= hi;
  return above && below;
}

std::string DoubleRange::describe() const {
  const bool no_lo = std::isinf(lo), no_hi = std::isinf(hi);
  if (no_lo && no_hi) return "a finite number";
  if (no_hi) return lo == 0 && lo_open ? "a positive number"
                                       : fmt::format("a number {} {}", lo_open ? ">" : ">=", fmt::format("{}", lo));
  if (no_lo) return fmt::format("a number {} {}", hi_open ? "<" : "<=", fmt::format("{}", hi));
  return fmt::format("a number in {}{}, {}{}", lo_open ? "(" : "[", fmt::format("{}", lo),
                     fmt::format("{}", hi), hi_open ? ")" : "]");
}

// ---- TableReader -----------------------------------------------------------------------

TableReader::TableReader(const toml::table* table, std::string path, std::vector<std::string> allowed,
                         ErrorList& errors)
    : table_(table), path_(std::move(path)), allowed_(std::move(allowed)), errors_(errors) {}

std::string TableReader::full_key(std::string_view key) const {
  return path_.empty() ? std::string(key) : fmt::format("{}.{}", path_, key);
}

bool TableReader::allowed(std::string_view key) const {
  return std::find(allowed_.begin(), allowed_.end(), key) != allowed_.end();
}

const toml::node* TableReader::node(std::string_view key) const {
  if (!table_ || !allowed(key)) return nullptr;
  return table_->get(key);
}

bool TableReader::check_int(const toml::node& n, std::string_view key, int64_t& out, IntRange range) {
  const auto* i = n.as_integer();
  if (!i || i->get() < range.min || i->get() > range.max) {
    errors_.at(n, key, fmt::format("expected {}, found {}", range.describe(), describe(n)));
    return false;
  }
  out = i->get();
  return true;
}

bool TableReader::check_double(const toml::node& n, std::string_view key, double& out, DoubleRange range) {
  double v = 0;
  bool is_number = true;
  if (auto f = n.as_floating_point()) v = f->get();
  else if (auto i = n.as_integer()) v = static_cast<double>(i->get());
  else is_number = false;
  if (!is_number || !range.contains(v)) {
    errors_.at(n, key, fmt::format("expected {}, found {}", range.describe(), describe(n)));
    return false;
  }
  out = v;
  return true;
}

bool TableReader::check_string(const toml::node& n, std::string_view key, std::string& out,
                               const std::vector<std::string>& choices) {
  const auto* s = n.as_string();
  const bool valid_choice =
      s && (choices.empty() || std::find(choices.begin(), choices.end(), s->get()) != choices.end());
  if (valid_choice) {
    out = s->get();
    return true;
  }
  std::string expected = "a string";
  if (!choices.empty()) {
    expected = "one of";
    for (std::size_t i = 0; i < choices.size(); ++i)
      expected += fmt::format("{}\"{}\"", i ? ", " : " ", choices[i]);
  }
  std::string message = fmt::format("expected {}, found {}", expected, describe(n));
  if (s) message += did_you_mean(s->get(), choices);
  errors_.at(n, key, message);
  return false;
}

bool TableReader::get(std::string_view key, int64_t& out, IntRange range) {
  const toml::node* n = node(key);
  return n && check_int(*n, full_key(key), out, range);
}

bool TableReader::get(std::string_view key, double& out, DoubleRange range) {
  const toml::node* n = node(key);
  return n && check_double(*n, full_key(key), out, range);
}

bool TableReader::get(std::string_view key, bool& out) {
  const toml::node* n = node(key);
  if (!n) return false;
  if (auto b = n->as_boolean()) {
    out = b->get();
    return true;
  }
  errors_.at(*n, full_key(key), fmt::format("expected true or false, found {}", describe(*n)));
  return false;
}

bool TableReader::get(std::string_view key, std::string& out, const std::vector<std::string>& choices) {
  const toml::node* n = node(key);
  return n && check_string(*n, full_key(key), out, choices);
}

bool TableReader::get_strings(std::string_view key, std::vector<std::string>& out) {
  const toml::node* n = node(key);
  if (!n) return false;
  std::vector<std::string> values;
  bool ok = true;
  if (auto arr = n->as_array()) {
    for (const toml::node& el : *arr) {
      std::string v;
      if (check_string(el, full_key(key), v, {})) values.push_back(std::move(v));
      else ok = false;
    }
  } else if (auto s = n->as_string()) {
    values.push_back(s->get());
  } else {
    errors_.at(*n, full_key(key), fmt::format("expected a string or an array of strings, found {}", describe(*n)));
    return false;
  }
  if (ok) out = std::move(values);
  return ok;
}

bool TableReader::get_ints(std::string_view key, std::vector<int64_t>& out, IntRange range) {
  const toml::node* n = node(key);
  if (!n) return false;
  std::vector<int64_t> values;
  bool ok = true;
  if (auto arr = n->as_array()) {
    for (const toml::node& el : *arr) {
      int64_t v = 0;
      if (check_int(el, full_key(key), v, range)) values.push_back(v);
      else ok = false;
    }
  } else {
    int64_t v = 0;
    if (!check_int(*n, full_key(key), v, range)) return false;
    values.push_back(v);
  }
  if (ok) out = std::move(values);
  return ok;
}

const toml::table* TableReader::get_table(std::string_view key) {
  const toml::node* n = node(key);
  if (!n) return nullptr;
  if (auto t = n->as_table()) return t;
  errors_.at(*n, full_key(key), fmt::format("expected a table, found {}", describe(*n)));
  return nullptr;
}

void TableReader::finish(std::string_view kind, const std::function<std::string(std::string_view)>& hint) {
  if (!table_) return;
  for (auto&& [key, value] : *table_) {
    if (allowed(key.str())) continue;
    std::string message = fmt::format("unknown {}", kind);
    std::string extra = hint ? hint(key.str()) : std::string();
    message += extra.empty() ? did_you_mean(key.str(), allowed_) : extra;
    errors_.at(key.source(), full_key(key.str()), message);
  }
}

}  // namespace peft::config_detail
