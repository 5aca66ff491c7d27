#include "comm/gpu_info.h"

#include <stdexcept>

#include <fmt/format.h>

#ifdef PEFT_WITH_CUDA
#include <cuda_runtime_api.h>
#endif

namespace peft::comm {

std::string pci_bus_id(int index) {
#ifdef PEFT_WITH_CUDA
  char buf[64] = {0};
  const cudaError_t rc = cudaDeviceGetPCIBusId(buf, sizeof(buf) - 1, index);
  if (rc != cudaSuccess) throw std::runtime_error(fmt::format("cudaDeviceGetPCIBusId(device {}) failed: {}", index, cudaGetErrorString(rc)));
  return buf;
#else
  throw std::runtime_error(fmt::format("the PCI bus id of CUDA device {} is unknown: peft-sweep was compiled without CUDA", index));
#endif
}

}  // namespace peft::comm
