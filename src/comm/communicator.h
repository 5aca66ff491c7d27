#pragma once
// Data-parallel gradient synchronisation over a rank group: MPI (CPU tensors), NCCL (GPU
// tensors) or a single process. The trainer only sees train::GradSync; one factory picks.
#include <mpi.h>

#include <memory>
#include <string>
#include <vector>

#include <torch/types.h>

#include "train/grad_sync.h"

namespace peft::comm {

class Communicator : public train::GradSync {
 public:
  virtual std::string backend() const = 0;
  /// Why this backend (the bus ids compared, or why NCCL was not an option).
  std::string reason;
};

/// MPI_Allreduce on host memory (a GPU tensor is staged through the host).
std::unique_ptr<Communicator> make_mpi_communicator(MPI_Comm group);
/// NCCL on the group's GPU; ncclUniqueId broadcast over `group`; non-blocking communicator,
/// ordered after torch's current stream; errors polled with a timeout, the communicator
/// aborted instead of hanging. Throws when not compiled with NCCL.
std::unique_ptr<Communicator> make_nccl_communicator(MPI_Comm group, const torch::Device& device, double timeout_seconds = 600);
/// NCCL when the device is a GPU, the build has NCCL and the ranks of the group use distinct
/// GPUs (PCI bus ids all-gathered over `group`, see device_binding.h); MPI otherwise. Every
/// rank of the group must call it (it communicates) and gets the same backend.
std::unique_ptr<Communicator> make_communicator(MPI_Comm group, const torch::Device& device);

/// MPI_Allreduce(MIN) of (failed ? rank : none) over `group`: the lowest failing rank or -1.
int lowest_failing_rank(MPI_Comm group, int rank, bool failed);
/// Every rank's `value` (at most 255 bytes), in group rank order.
std::vector<std::string> allgather_string(MPI_Comm group, const std::string& value);

}  // namespace peft::comm
