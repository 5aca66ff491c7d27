#include "sweep/run_files.h"

#include <algorithm>
#include <filesystem>
#include <system_error>

#include <fmt/format.h>

namespace peft::sweep {
namespace fs = std::filesystem;

std::string part_path(const std::string& output, int group) { return fmt::format("{}.part-g{}.h5", output, group); }

std::vector<std::string> existing_parts(const std::string& output) {
  std::vector<std::string> parts;
  const fs::path out(output);
  const fs::path dir = out.has_parent_path() ? out.parent_path() : fs::path(".");
  const std::string prefix = out.filename().string() + ".part-g";
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (name.rfind(prefix, 0) == 0 && name.size() > 3 && name.substr(name.size() - 3) == ".h5") parts.push_back(e.path().string());
  }
  std::sort(parts.begin(), parts.end());
  return parts;
}

std::string describe_trial(const std::string& method, const std::string& dataset, int64_t rank, double sparsity,
                           int64_t seed, double lr) {
  std::string s = fmt::format("{} {}", method, dataset);
  if (method != "full" && method != "head") s += fmt::format(" r={}", rank);
  if (method == "sparse_lora") s += fmt::format(" s={}", sparsity);
  return s + fmt::format(" seed={} lr={}", seed, lr);
}

std::string describe_trial(const TrialSpec& t) {
  return describe_trial(t.method.method, t.dataset.name, t.method.rank, t.method.sparsity, static_cast<int64_t>(t.seed), t.train.lr);
}

}  // namespace peft::sweep
