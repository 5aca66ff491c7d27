// NCCL communicator (GPU tensors). Compiled only with PEFT_WITH_NCCL and a CUDA LibTorch
// (PEFT_TORCH_HAS_CUDA: torch's current stream); elsewhere the factory says what is missing.
//
// Ordering (no host wait per step): torch's current stream → event → NCCL's stream waits; the
// all-reduce; event on NCCL's stream → torch's current stream waits. The host learns of the
// result when the trainer reads its losses back (every <= 16 steps). A collective that never
// completes (a dead peer) is caught by a watchdog thread that polls the newest all-reduce's
// event with backoff and aborts the communicator past the timeout; the abort makes the stuck
// kernel return and the next call on this rank throws the error.
//
// Not run on a GPU yet (README "What has been verified on real hardware").
#include <chrono>
#include <thread>

#include <torch/torch.h>

#include "comm/communicator.h"
#include "comm/mpi_check.h"

#if defined(PEFT_WITH_NCCL) && defined(PEFT_TORCH_HAS_CUDA)
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime_api.h>
#include <nccl.h>
#include <unistd.h>

#include <condition_variable>
#include <mutex>

namespace peft::comm {
namespace {

std::string host_name() {
  char h[256] = {0};
  gethostname(h, sizeof(h) - 1);
  return h;
}

#define PEFT_CUDA_CHECK(call)                                                                              \
  do {                                                                                                     \
    cudaError_t peft_cuda_rc_ = (call);                                                                    \
    if (peft_cuda_rc_ != cudaSuccess)                                                                      \
      throw std::runtime_error(fmt::format("{}:{}: {} rank {}: {} failed: {}", __FILE__, __LINE__,          \
                                           host_name(), ::peft::comm::world_rank_or_minus1(), #call,       \
                                           cudaGetErrorString(peft_cuda_rc_)));                             \
  } while (0)

/// Sleeps 50 µs, doubling to 50 ms: a wait never spins a core.
class Backoff {
 public:
  void pause() {
    std::this_thread::sleep_for(delay_);
    delay_ = std::min(delay_ * 2, std::chrono::microseconds(50000));
  }

 private:
  std::chrono::microseconds delay_{50};
};

class NcclCommunicator : public Communicator {
 public:
  NcclCommunicator(MPI_Comm group, const torch::Device& device, double timeout) : group_(group), timeout_(timeout) {
    PEFT_MPI_CHECK(MPI_Comm_rank(group_, &rank_));
    PEFT_MPI_CHECK(MPI_Comm_size(group_, &size_));
    device_index_ = device.index() < 0 ? 0 : device.index();
    PEFT_CUDA_CHECK(cudaSetDevice(device_index_));
    ncclUniqueId id;
    if (rank_ == 0) check(ncclGetUniqueId(&id), "ncclGetUniqueId");
    PEFT_MPI_CHECK(MPI_Bcast(&id, sizeof(id), MPI_BYTE, 0, group_));
    // Non-blocking communicator: every call may return ncclInProgress; a missing peer cannot
    // hang the init (polled with the timeout).
    ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
    config.blocking = 0;
    check(ncclCommInitRankConfig(&comm_, size_, id, rank_, &config), "ncclCommInitRankConfig");
    wait_ready("ncclCommInitRankConfig");
    PEFT_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    PEFT_CUDA_CHECK(cudaEventCreateWithFlags(&ready_, cudaEventDisableTiming));
    PEFT_CUDA_CHECK(cudaEventCreateWithFlags(&done_, cudaEventDisableTiming));
    watchdog_ = std::thread([this] { watch(); });
  }
  ~NcclCommunicator() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      quit_ = true;
    }
    cv_.notify_all();
    if (watchdog_.joinable()) watchdog_.join();
    if (comm_) {
      if (aborted_) {
        ncclCommAbort(comm_);
      } else {
        ncclCommFinalize(comm_);
        ncclResult_t state = ncclInProgress;
        Backoff b;
        const auto t0 = std::chrono::steady_clock::now();
        while (ncclCommGetAsyncError(comm_, &state) == ncclSuccess && state == ncclInProgress &&
               std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() < timeout_)
          b.pause();
        if (state == ncclSuccess)
          ncclCommDestroy(comm_);
        else
          ncclCommAbort(comm_);
      }
    }
    if (stream_) cudaStreamDestroy(stream_);
    if (ready_) cudaEventDestroy(ready_);
    if (done_) cudaEventDestroy(done_);
  }

  void allreduce_sum(torch::Tensor& flat) override {
    if (!flat.is_cuda() || flat.scalar_type() != torch::kFloat32 || !flat.is_contiguous())
      throw std::logic_error("NcclCommunicator: the gradient buffer must be a contiguous fp32 CUDA tensor");
    std::unique_lock<std::mutex> lock(mu_);
    if (aborted_) throw std::runtime_error(error_);
    const cudaStream_t torch_stream = c10::cuda::getCurrentCUDAStream(static_cast<c10::DeviceIndex>(device_index_)).stream();
    // The gradients were produced on torch's current stream: NCCL's stream waits for them.
    PEFT_CUDA_CHECK(cudaEventRecord(ready_, torch_stream));
    PEFT_CUDA_CHECK(cudaStreamWaitEvent(stream_, ready_, 0));
    const ncclResult_t rc = ncclAllReduce(flat.data_ptr<float>(), flat.data_ptr<float>(), static_cast<size_t>(flat.numel()),
                                          ncclFloat, ncclSum, comm_, stream_);
    check(rc, "ncclAllReduce");
    // Non-blocking communicator: the call may return before the operation is enqueued; the
    // event may be recorded only once the async error reads ncclSuccess.
    if (rc == ncclInProgress) wait_ready("ncclAllReduce");
    // The watchdog's clock restarts whenever the previous collective is seen finished.
    if (!pending_ || cudaEventQuery(done_) == cudaSuccess) pending_since_ = std::chrono::steady_clock::now();
    PEFT_CUDA_CHECK(cudaEventRecord(done_, stream_));
    PEFT_CUDA_CHECK(cudaStreamWaitEvent(torch_stream, done_, 0));  // the optimizer waits on the device
    pending_ = true;
    lock.unlock();
    cv_.notify_all();
  }
  double allreduce_sum(double v) override {
    double out = 0;
    PEFT_MPI_CHECK(MPI_Allreduce(&v, &out, 1, MPI_DOUBLE, MPI_SUM, group_));
    return out;
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string backend() const override { return "nccl"; }

 protected:
  int lowest_failing_rank(bool failed) override { return comm::lowest_failing_rank(group_, rank_, failed); }

 private:
  void check(ncclResult_t rc, const char* what) {
    if (rc == ncclSuccess || rc == ncclInProgress) return;
    fail(what, fmt::format("{} ({})", ncclGetErrorString(rc), comm_ ? ncclGetLastError(comm_) : ""));
  }
  /// Polls the communicator's async error until ncclSuccess (with backoff); aborts on error or
  /// timeout.
  void wait_ready(const char* what) {
    const auto t0 = std::chrono::steady_clock::now();
    Backoff backoff;
    for (;;) {
      ncclResult_t state = ncclSuccess;
      check(ncclCommGetAsyncError(comm_, &state), "ncclCommGetAsyncError");
      if (state == ncclSuccess) return;
      if (state != ncclInProgress) fail(what, fmt::format("{} ({})", ncclGetErrorString(state), ncclGetLastError(comm_)));
      if (std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() > timeout_)
        fail(what, fmt::format("timed out after {} s (NCCL: {})", timeout_, ncclGetErrorString(state)));
      backoff.pause();
    }
  }
  /// Watchdog thread: asleep while nothing is pending; polls with backoff otherwise.
  void watch() {
    std::unique_lock<std::mutex> lock(mu_);
    Backoff backoff;
    while (!quit_) {
      if (!pending_ || aborted_) {
        cv_.wait(lock, [&] { return quit_ || (pending_ && !aborted_); });
        backoff = Backoff();
        continue;
      }
      const cudaError_t q = cudaEventQuery(done_);
      ncclResult_t state = ncclSuccess;
      ncclCommGetAsyncError(comm_, &state);
      const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - pending_since_).count();
      if (q == cudaSuccess) {
        pending_ = false;
        continue;
      }
      if ((state != ncclSuccess && state != ncclInProgress) || waited > timeout_ || (q != cudaErrorNotReady)) {
        const std::string why = state != ncclSuccess && state != ncclInProgress
                                    ? fmt::format("{} ({})", ncclGetErrorString(state), ncclGetLastError(comm_))
                                : q != cudaErrorNotReady ? std::string(cudaGetErrorString(q))
                                                         : fmt::format("timed out after {} s (NCCL: {})", timeout_, ncclGetErrorString(state));
        error_ = message("ncclAllReduce", why);
        aborted_ = true;
        ncclCommAbort(comm_);  // the stuck kernel returns; the next call throws error_
        comm_ = nullptr;
        spdlog_error(error_);
        continue;
      }
      lock.unlock();
      backoff.pause();
      lock.lock();
    }
  }
  static void spdlog_error(const std::string& e) { std::fprintf(stderr, "peft-sweep: %s\n", e.c_str()); }
  std::string message(const char* what, const std::string& why) const {
    return fmt::format("rank {} (world rank {}) on {}: {} failed: {}; NCCL communicator aborted", rank_, world_rank_or_minus1(),
                       host_name(), what, why);
  }
  [[noreturn]] void fail(const char* what, const std::string& why) {
    aborted_ = true;
    error_ = message(what, why);
    throw std::runtime_error(error_);
  }

  MPI_Comm group_;
  double timeout_;
  int rank_ = 0, size_ = 1, device_index_ = 0;
  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr;
  cudaEvent_t ready_ = nullptr, done_ = nullptr;
  std::mutex mu_;
  std::condition_variable cv_;
  std::thread watchdog_;
  bool pending_ = false, aborted_ = false, quit_ = false;
  std::chrono::steady_clock::time_point pending_since_;
  std::string error_;
};

}  // namespace

std::unique_ptr<Communicator> make_nccl_communicator(MPI_Comm group, const torch::Device& device, double timeout_seconds) {
  return std::make_unique<NcclCommunicator>(group, device, timeout_seconds);
}

}  // namespace peft::comm
#else
namespace peft::comm {

std::unique_ptr<Communicator> make_nccl_communicator(MPI_Comm, const torch::Device&, double) {
#ifndef PEFT_WITH_NCCL
  throw std::runtime_error("peft-sweep was not compiled with NCCL (configure with -DPEFT_WITH_NCCL=ON and a CUDA toolkit)");
#else
  throw std::runtime_error("the NCCL communicator needs a CUDA build of LibTorch (torch's current CUDA stream); this one is CPU-only");
#endif
}

}  // namespace peft::comm
#endif
