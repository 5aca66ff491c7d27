#pragma once
// A JSON value as shown in an error message: short, and computed without recursion.
// nlohmann's dump() recurses once per nesting level, so dumping a hostile value such as
// [[[[…]]]] nested a million deep would overflow the stack; parsing and destroying it do not.
#include <cstddef>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace peft {

/// `v` as JSON text, cut to about `max_chars`; a container nested deeper than 8 levels or
/// holding more than 256 values is shown by kind only ("an array (3 values)").
inline std::string json_excerpt(const nlohmann::json& v, std::size_t max_chars = 80) {
  std::size_t nodes = 0;
  bool small = true;
  std::vector<std::pair<const nlohmann::json*, int>> stack{{&v, 0}};
  while (!stack.empty() && small) {
    auto [n, depth] = stack.back();
    stack.pop_back();
    if (++nodes > 256 || depth > 8) small = false;
    else if (n->is_structured())
      for (const auto& child : *n) stack.push_back({&child, depth + 1});
  }
  if (!small) {
    const std::string n = std::to_string(v.size());
    return v.is_array() ? "an array (" + n + (v.size() == 1 ? " value)" : " values)")
                        : "an object (" + n + (v.size() == 1 ? " key)" : " keys)");
  }
  std::string s = v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (s.size() > max_chars) s = s.substr(0, max_chars > 3 ? max_chars - 3 : 0) + "...";
  return s;
}

}  // namespace peft
