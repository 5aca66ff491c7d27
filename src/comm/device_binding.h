#pragma once
// Which backend a GPU rank group uses, decided from the GPUs its ranks actually see: the PCI
// bus id of the device each rank would use (after CUDA_VISIBLE_DEVICES, Slurm's
// --gpus-per-task, …). NCCL refuses two ranks on one GPU, so any duplicate means MPI. Pure
// (no CUDA): the bus ids come from gpu_info.h.
#include <string>
#include <vector>

namespace peft::comm {

struct BackendChoice {
  bool nccl = false;
  std::string reason;  // for the log: which ranks share which GPU, or why NCCL is out
};

/// "0000:3B:00.0" and "00000000:3b:00.0" name one device: lower case, domain as 4 digits.
std::string normalize_bus_id(const std::string& bus_id);

/// The GPU one rank would use: its host and the device's PCI bus id (bus ids repeat across nodes).
struct GpuSeen {
  std::string host, bus_id;
};

/// `gpus[r]`: the GPU of group rank r. Distinct (host, bus id) on every rank and NCCL built:
/// NCCL; a duplicate, an empty bus id (unknown) or no NCCL in the build: MPI.
BackendChoice choose_gpu_backend(const std::vector<GpuSeen>& gpus, bool nccl_built);

}  // namespace peft::comm
