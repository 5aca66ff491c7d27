#include <torch/torch.h>

#include "dist/communicator.h"
#include "dist/mpi_check.h"

namespace peft::dist {
namespace {

class MpiCommunicator : public Communicator {
 public:
  explicit MpiCommunicator(MPI_Comm comm) : comm_(comm) {
    PEFT_MPI_CHECK(MPI_Comm_rank(comm_, &rank_));
    PEFT_MPI_CHECK(MPI_Comm_size(comm_, &size_));
  }
  void allreduce_sum(torch::Tensor& flat) override {
    if (size_ == 1) return;
    check_buffer(flat);
    if (flat.is_cuda()) {
      // Staging buffer allocated once and reused.
      if (!host_.defined() || host_.numel() != flat.numel()) host_ = torch::empty({flat.numel()}, torch::kFloat32).pin_memory();
      host_.copy_(flat);
      PEFT_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, host_.data_ptr<float>(), static_cast<int>(host_.numel()), MPI_FLOAT, MPI_SUM, comm_));
      flat.copy_(host_);
      return;
    }
    PEFT_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, flat.data_ptr<float>(), static_cast<int>(flat.numel()), MPI_FLOAT, MPI_SUM, comm_));
  }
  double allreduce_sum(double v) override {
    if (size_ == 1) return v;
    double out = 0;
    PEFT_MPI_CHECK(MPI_Allreduce(&v, &out, 1, MPI_DOUBLE, MPI_SUM, comm_));
    return out;
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string backend() const override { return "mpi"; }

 private:
  static void check_buffer(const torch::Tensor& t) {
    if (t.scalar_type() != torch::kFloat32 || !t.is_contiguous())
      throw std::logic_error("MpiCommunicator: the gradient buffer must be contiguous fp32");
    if (t.numel() > std::numeric_limits<int>::max()) throw std::logic_error("MpiCommunicator: buffer over 2^31 elements");
  }
  MPI_Comm comm_;
  int rank_ = 0, size_ = 1;
  torch::Tensor host_;
};

}  // namespace

std::unique_ptr<Communicator> make_mpi_communicator(MPI_Comm group) { return std::make_unique<MpiCommunicator>(group); }

std::unique_ptr<Communicator> make_communicator(MPI_Comm group, const torch::Device& device, bool group_shares_gpu) {
  int size = 1;
  PEFT_MPI_CHECK(MPI_Comm_size(group, &size));
#ifdef PEFT_WITH_NCCL
  if (device.is_cuda() && !group_shares_gpu) return make_nccl_communicator(group, device);
#endif
  (void)device;
  (void)group_shares_gpu;
  return make_mpi_communicator(group);
}

}  // namespace peft::dist
