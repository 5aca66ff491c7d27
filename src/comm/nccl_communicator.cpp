// NCCL communicator (GPU tensors). Compiled only with PEFT_WITH_NCCL; elsewhere the factory
// reports that the build has no NCCL.
#include <chrono>
#include <thread>

#include <torch/torch.h>

#include "comm/communicator.h"
#include "comm/mpi_check.h"

#ifdef PEFT_WITH_NCCL
#include <cuda_runtime_api.h>
#include <nccl.h>
#include <unistd.h>

#define PEFT_CUDA_CHECK(call)                                                                              \
  do {                                                                                                     \
    cudaError_t peft_cuda_rc_ = (call);                                                                    \
    if (peft_cuda_rc_ != cudaSuccess)                                                                      \
      throw std::runtime_error(fmt::format("{}:{}: rank {}: {} failed: {}", __FILE__, __LINE__,             \
                                           ::peft::comm::world_rank_or_minus1(), #call,                    \
                                           cudaGetErrorString(peft_cuda_rc_)));                             \
  } while (0)

#define PEFT_NCCL_CHECK(call)                                                                              \
  do {                                                                                                     \
    ncclResult_t peft_nccl_rc_ = (call);                                                                   \
    if (peft_nccl_rc_ != ncclSuccess && peft_nccl_rc_ != ncclInProgress) {                                 \
      char host_[256] = {0};                                                                               \
      gethostname(host_, sizeof(host_) - 1);                                                               \
      throw std::runtime_error(fmt::format("{}:{}: {} rank {}: {} failed: {}", __FILE__, __LINE__, host_,    \
                                           ::peft::comm::world_rank_or_minus1(), #call,                    \
                                           ncclGetErrorString(peft_nccl_rc_)));                             \
    }                                                                                                      \
  } while (0)
#endif

namespace peft::comm {

#ifdef PEFT_WITH_NCCL
namespace {

class NcclCommunicator : public Communicator {
 public:
  NcclCommunicator(MPI_Comm group, const torch::Device& device, double timeout) : group_(group), timeout_(timeout) {
    PEFT_MPI_CHECK(MPI_Comm_rank(group_, &rank_));
    PEFT_MPI_CHECK(MPI_Comm_size(group_, &size_));
    device_index_ = device.index() < 0 ? 0 : device.index();
    PEFT_CUDA_CHECK(cudaSetDevice(device_index_));
    ncclUniqueId id;
    if (rank_ == 0) PEFT_NCCL_CHECK(ncclGetUniqueId(&id));
    PEFT_MPI_CHECK(MPI_Bcast(&id, sizeof(id), MPI_BYTE, 0, group_));
    // Non-blocking init so a missing peer cannot hang us: poll with the timeout.
    ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
    config.blocking = 0;
    PEFT_NCCL_CHECK(ncclCommInitRankConfig(&comm_, size_, id, rank_, &config));
    wait_ready("ncclCommInitRankConfig");
    PEFT_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    PEFT_CUDA_CHECK(cudaEventCreateWithFlags(&done_, cudaEventDisableTiming));
  }
  ~NcclCommunicator() override {
    if (stream_) cudaStreamDestroy(stream_);
    if (done_) cudaEventDestroy(done_);
    if (comm_) {
      if (aborted_)
        ncclCommAbort(comm_);
      else
        ncclCommDestroy(comm_);
    }
  }

  void allreduce_sum(torch::Tensor& flat) override {
    if (!flat.is_cuda() || flat.scalar_type() != torch::kFloat32 || !flat.is_contiguous())
      throw std::logic_error("NcclCommunicator: the gradient buffer must be a contiguous fp32 CUDA tensor");
    // The gradients were produced on the current (LibTorch) stream; order our stream after it.
    PEFT_CUDA_CHECK(cudaDeviceSynchronize());
    PEFT_NCCL_CHECK(ncclAllReduce(flat.data_ptr<float>(), flat.data_ptr<float>(), static_cast<size_t>(flat.numel()), ncclFloat,
                                  ncclSum, comm_, stream_));
    wait_stream("ncclAllReduce");
  }
  double allreduce_sum(double v) override {
    double out = 0;
    PEFT_MPI_CHECK(MPI_Allreduce(&v, &out, 1, MPI_DOUBLE, MPI_SUM, group_));
    return out;
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string backend() const override { return "nccl"; }

 private:
  /// Polls the communicator's async error until ready; aborts it on error or timeout.
  void wait_ready(const char* what) {
    const auto t0 = std::chrono::steady_clock::now();
    for (;;) {
      ncclResult_t state = ncclSuccess;
      PEFT_NCCL_CHECK(ncclCommGetAsyncError(comm_, &state));
      if (state == ncclSuccess) return;
      if (state != ncclInProgress) fail(what, ncclGetErrorString(state));
      if (std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() > timeout_) fail(what, "timed out");
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  void wait_stream(const char* what) {
    PEFT_CUDA_CHECK(cudaEventRecord(done_, stream_));
    const auto t0 = std::chrono::steady_clock::now();
    for (;;) {
      cudaError_t q = cudaEventQuery(done_);
      if (q == cudaSuccess) return;
      if (q != cudaErrorNotReady) PEFT_CUDA_CHECK(q);
      ncclResult_t state = ncclSuccess;
      PEFT_NCCL_CHECK(ncclCommGetAsyncError(comm_, &state));
      if (state != ncclSuccess && state != ncclInProgress) fail(what, ncclGetErrorString(state));
      if (std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() > timeout_) fail(what, "timed out");
      std::this_thread::yield();
    }
  }
  [[noreturn]] void fail(const char* what, const std::string& why) {
    aborted_ = true;
    throw std::runtime_error(fmt::format("rank {}: {} {} after {} s: NCCL communicator aborted", world_rank_or_minus1(), what, why, timeout_));
  }

  MPI_Comm group_;
  double timeout_;
  int rank_ = 0, size_ = 1, device_index_ = 0;
  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr;
  cudaEvent_t done_ = nullptr;
  bool aborted_ = false;
};

}  // namespace

std::unique_ptr<Communicator> make_nccl_communicator(MPI_Comm group, const torch::Device& device, double timeout_seconds) {
  return std::make_unique<NcclCommunicator>(group, device, timeout_seconds);
}
#else
std::unique_ptr<Communicator> make_nccl_communicator(MPI_Comm, const torch::Device&, double) {
  throw std::runtime_error("peft-sweep was not compiled with NCCL (configure with -DPEFT_WITH_NCCL=ON and a CUDA toolkit)");
}
#endif

}  // namespace peft::comm
