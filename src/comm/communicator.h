#pragma once
// Data-parallel gradient synchronisation over a rank group: MPI (CPU tensors), NCCL (GPU
// tensors) or a single process. The trainer only sees train::GradSync; one factory picks.
#include <mpi.h>

#include <memory>
#include <string>

#include <torch/types.h>

#include "train/grad_sync.h"

namespace peft::comm {

class Communicator : public train::GradSync {
 public:
  virtual std::string backend() const = 0;
};

/// MPI_Allreduce on host memory (a GPU tensor is staged through the host).
std::unique_ptr<Communicator> make_mpi_communicator(MPI_Comm group);
/// NCCL on the group's GPU; ncclUniqueId broadcast over `group`; errors polled with a timeout,
/// the communicator aborted instead of hanging. Throws when not compiled with NCCL.
std::unique_ptr<Communicator> make_nccl_communicator(MPI_Comm group, const torch::Device& device, double timeout_seconds = 600);
/// NCCL when the device is a GPU, the build has NCCL and each rank of the group has its own
/// GPU; MPI otherwise.
std::unique_ptr<Communicator> make_communicator(MPI_Comm group, const torch::Device& device, bool group_shares_gpu);

}  // namespace peft::comm
