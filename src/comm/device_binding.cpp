#include "comm/device_binding.h"

#include <algorithm>
#include <cctype>
#include <map>

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace peft::comm {

std::string normalize_bus_id(const std::string& bus_id) {
  std::string s;
  for (char c : bus_id)
    if (!std::isspace(static_cast<unsigned char>(c))) s += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  // domain:bus:device.function; NVML writes an 8-digit domain, CUDA a 4-digit one.
  const std::size_t colon = s.find(':');
  if (colon != std::string::npos && s.find(':', colon + 1) != std::string::npos) {
    std::string domain = s.substr(0, colon);
    while (domain.size() > 4 && domain.front() == '0') domain.erase(0, 1);
    while (domain.size() < 4) domain.insert(0, "0");
    s = domain + s.substr(colon);
  }
  return s;
}

BackendChoice choose_gpu_backend(const std::vector<GpuSeen>& gpus, bool nccl_built) {
  if (!nccl_built) return {false, "this build has no NCCL (configure with -DPEFT_WITH_NCCL=ON)"};
  if (gpus.size() <= 1) return {true, "one rank"};
  std::map<std::pair<std::string, std::string>, std::vector<std::size_t>> ranks_of;  // (host, bus id)
  for (std::size_t r = 0; r < gpus.size(); ++r) {
    const std::string bus = normalize_bus_id(gpus[r].bus_id);
    if (bus.empty()) return {false, fmt::format("rank {} could not read its GPU's PCI bus id", r)};
    ranks_of[{gpus[r].host, bus}].push_back(r);
  }
  for (const auto& [gpu, ranks] : ranks_of)
    if (ranks.size() > 1)
      return {false, fmt::format("ranks {} share the GPU at {} on {} (NCCL needs one GPU per rank)", fmt::join(ranks, ","), gpu.second,
                                 gpu.first)};
  return {true, fmt::format("{} ranks on {} distinct GPUs", gpus.size(), ranks_of.size())};
}

}  // namespace peft::comm
