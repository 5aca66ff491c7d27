#pragma once
// Device choice and device-memory probes. On GPUs the peak memory is LibTorch's CUDA caching
// allocator peak (needs a CUDA build of LibTorch); on CPU the process RSS high-water mark.
#include <string>

#include <torch/types.h>

namespace peft::train {

/// "auto" → cuda when LibTorch sees a GPU, else cpu; "cuda" without one (or without a CUDA
/// build) → peft::InputError saying so.
torch::Device resolve_device(const std::string& setting, int local_rank = 0);
/// CPU threads for one rank of `ranks_on_node` on this node: OMP_NUM_THREADS where it is set
/// (as PyTorch takes it); else the CPUs the rank may run on (its affinity mask: mpirun binding,
/// Slurm cpusets), at most its share of the node's CPUs. `peft-sweep` and `peft-sweep trial`
/// both use it, so a trial gives the same numbers in both.
int threads_per_rank(int ranks_on_node);
/// OMP_NUM_THREADS's value as a thread count: 0 when unset (nullptr) or empty, the first number
/// of an OpenMP list ("4,2" → 4); anything else (0, "two", "2x") → peft::InputError naming the
/// variable.
int threads_from_omp_num_threads(const char* value);
/// train.precision as it will run: "auto" → "bf16" on a GPU, "fp32" on CPU; "fp32" and
/// "bf16" as they are (bf16 runs on CPU through CPU autocast). Resolved before trial ids are
/// formed, so an id names the numerics that ran.
std::string resolve_precision(const std::string& setting, const torch::Device& device);
/// The same from the settings, before a device is chosen (train.device as in the sweep).
std::string resolve_precision(const std::string& setting, const std::string& device_setting);
void reset_peak_memory(const torch::Device& device);
int64_t peak_memory_bytes(const torch::Device& device);

}  // namespace peft::train
