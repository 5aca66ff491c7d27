#include "train/device.h"

#include <sched.h>

#include <algorithm>
#include <cstdlib>
#include <string>
#include <thread>

#include <torch/cuda.h>

#include "core/error.h"
#include "core/memory.h"

#ifdef PEFT_TORCH_HAS_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#endif

namespace peft::train {

int threads_from_omp_num_threads(const char* value) {
  if (value == nullptr || *value == '\0') return 0;  // unset, or set empty: OpenMP ignores that too
  // OpenMP's syntax: one number, or a comma-separated list for nested levels (the first is ours).
  const std::string v(value);
  const std::string first = v.substr(0, v.find(','));
  int n = 0;
  size_t used = 0;
  try {
    n = std::stoi(first, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != first.size() || n < 1)
    throw_input("environment variable OMP_NUM_THREADS=\"{}\": expected a positive number of CPU threads per rank (unset: the "
                "CPUs this rank may run on, at most its share of the node's)",
                v);
  return n;
}

int threads_per_rank(int ranks_on_node) {
  if (const int n = threads_from_omp_num_threads(std::getenv("OMP_NUM_THREADS")); n > 0) return n;
  const int online = std::max(1u, std::thread::hardware_concurrency());
  int allowed = online;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) allowed = std::max(1, CPU_COUNT(&set));
  return std::max(1, std::min(allowed, online / std::max(1, ranks_on_node)));
}

torch::Device resolve_device(const std::string& setting, int local_rank) {
  const bool gpu = torch::cuda::is_available();
  if (setting == "cpu") return torch::kCPU;
  if (setting == "cuda" || setting == "auto") {
    if (gpu) return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(local_rank % torch::cuda::device_count()));
    if (setting == "cuda")
      throw_input("train.device = \"cuda\" but LibTorch sees no GPU (this LibTorch build: {})",
#ifdef PEFT_TORCH_HAS_CUDA
                  "CUDA"
#else
                  "CPU only — peft-sweep was not compiled against a CUDA LibTorch"
#endif
      );
    return torch::kCPU;
  }
  throw_input("train.device must be auto, cpu or cuda (found \"{}\")", setting);
}

std::string resolve_precision(const std::string& setting, const torch::Device& device) {
  if (setting == "fp32" || setting == "bf16") return setting;
  if (setting == "auto") return device.is_cuda() ? "bf16" : "fp32";
  throw_input("train.precision must be auto, fp32 or bf16 (found \"{}\")", setting);
}

std::string resolve_precision(const std::string& setting, const std::string& device_setting) {
  if (setting != "auto") return resolve_precision(setting, torch::Device(torch::kCPU));
  return resolve_precision(setting, resolve_device(device_setting));
}

void reset_peak_memory(const torch::Device& device) {
  if (device.is_cuda()) {
#ifdef PEFT_TORCH_HAS_CUDA
    c10::cuda::CUDACachingAllocator::resetPeakStats(device.index());
#endif
    return;
  }
  reset_peak_rss();
}

int64_t peak_memory_bytes(const torch::Device& device) {
  if (device.is_cuda()) {
#ifdef PEFT_TORCH_HAS_CUDA
    auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(device.index());
    // Index 0 is StatType::AGGREGATE (all pools) in every LibTorch; the enum itself moved from
    // c10::cuda::CUDACachingAllocator (1.13) to c10::CachingAllocator (2.x).
    return stats.allocated_bytes[0].peak;
#else
    return -1;
#endif
  }
  return peak_rss_bytes();
}

}  // namespace peft::train
