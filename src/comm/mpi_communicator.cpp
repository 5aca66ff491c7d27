#include <algorithm>
#include <climits>
#include <cstring>

#include <unistd.h>

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include "comm/communicator.h"
#include "comm/device_binding.h"
#include "comm/gpu_info.h"
#include "comm/mpi_check.h"

namespace peft::comm {
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
      reduce_host(host_.data_ptr<float>(), host_.numel());
      flat.copy_(host_);
      return;
    }
    reduce_host(flat.data_ptr<float>(), flat.numel());
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

 protected:
  int lowest_failing_rank(bool failed) override { return comm::lowest_failing_rank(comm_, rank_, failed); }

 private:
  /// In-place sum over the group, in slices of kSlice floats (4 MiB). OpenMPI allocates a
  /// temporary as large as the message on every call, so one 268 MB all-reduce (full
  /// fine-tuning of distilbert-base) page-faulted through a fresh buffer each step: 856 ms on 2
  /// ranks, against 45.6 ms in 4 MiB slices (64 MiB slices: 1082 ms). `peft-bench allreduce`
  /// measures it. Still a few collectives on contiguous memory, never one per parameter.
  void reduce_host(float* data, int64_t n) {
    for (int64_t begin = 0; begin < n; begin += kSlice) {
      const int count = static_cast<int>(std::min<int64_t>(kSlice, n - begin));
      PEFT_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, data + begin, count, MPI_FLOAT, MPI_SUM, comm_));
    }
  }
  static constexpr int64_t kSlice = int64_t{1} << 20;
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

int lowest_failing_rank(MPI_Comm group, int rank, bool failed) {
  int mine = failed ? rank : INT_MAX, lowest = INT_MAX;
  PEFT_MPI_CHECK(MPI_Allreduce(&mine, &lowest, 1, MPI_INT, MPI_MIN, group));
  return lowest == INT_MAX ? -1 : lowest;
}

std::vector<std::string> allgather_string(MPI_Comm group, const std::string& value) {
  constexpr int kMax = 256;
  if (value.size() >= kMax) throw std::logic_error("allgather_string: value over 255 bytes");
  int size = 1;
  PEFT_MPI_CHECK(MPI_Comm_size(group, &size));
  char mine[kMax] = {0};
  std::memcpy(mine, value.data(), value.size());
  std::vector<char> all(static_cast<std::size_t>(kMax) * static_cast<std::size_t>(size));
  PEFT_MPI_CHECK(MPI_Allgather(mine, kMax, MPI_CHAR, all.data(), kMax, MPI_CHAR, group));
  std::vector<std::string> out;
  for (int r = 0; r < size; ++r) out.emplace_back(all.data() + static_cast<std::size_t>(r) * kMax);
  return out;
}

std::unique_ptr<Communicator> make_communicator(MPI_Comm group, const torch::Device& device) {
  if (!device.is_cuda()) {
    auto c = make_mpi_communicator(group);
    c->reason = "CPU tensors";
    return c;
  }
#ifdef PEFT_WITH_NCCL
  constexpr bool nccl_built = true;
#else
  constexpr bool nccl_built = false;
#endif
  std::vector<GpuSeen> gpus;
  if (nccl_built) {
    // Every rank reports (an empty id when CUDA cannot tell), so the gather always matches.
    std::string bus;
    try {
      bus = pci_bus_id(device.index() < 0 ? 0 : device.index());
    } catch (const std::exception& e) {
      spdlog::warn("{}", e.what());
    }
    char host[128] = {0};
    gethostname(host, sizeof(host) - 1);
    const auto hosts = allgather_string(group, host);
    const auto buses = allgather_string(group, bus);
    for (std::size_t r = 0; r < hosts.size(); ++r) gpus.push_back({hosts[r], buses[r]});
  }
  const BackendChoice choice = choose_gpu_backend(gpus, nccl_built);
  auto c = choice.nccl ? make_nccl_communicator(group, device) : make_mpi_communicator(group);
  c->reason = choice.reason;
  return c;
}

}  // namespace peft::comm
