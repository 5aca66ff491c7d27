// The NCCL-or-MPI decision from made-up PCI bus ids (comm/device_binding.h).
#include <gtest/gtest.h>

#include "comm/device_binding.h"

using peft::comm::choose_gpu_backend;
using peft::comm::GpuSeen;
using peft::comm::normalize_bus_id;

namespace {
std::vector<GpuSeen> on(const std::string& host, std::vector<std::string> buses) {
  std::vector<GpuSeen> g;
  for (auto& b : buses) g.push_back({host, b});
  return g;
}
}  // namespace

TEST(DeviceBinding, DistinctGpusGetNccl) {
  // srun --gpus-per-task=1 or a per-rank CUDA_VISIBLE_DEVICES: every rank sees "device 0",
  // but each one is a different physical GPU.
  const auto c = choose_gpu_backend(on("n1", {"0000:18:00.0", "0000:3B:00.0", "0000:86:00.0", "0000:AF:00.0"}), true);
  EXPECT_TRUE(c.nccl) << c.reason;
  EXPECT_NE(c.reason.find("4 distinct"), std::string::npos) << c.reason;
}

TEST(DeviceBinding, SharedGpuGetsMpi) {
  // Four ranks on a two-GPU node: local rank % 2 puts two ranks on each GPU.
  const auto c = choose_gpu_backend(on("n1", {"0000:18:00.0", "0000:3b:00.0", "0000:18:00.0", "0000:3b:00.0"}), true);
  EXPECT_FALSE(c.nccl);
  EXPECT_NE(c.reason.find("ranks 0,2 share the GPU at 0000:18:00.0"), std::string::npos) << c.reason;
}

TEST(DeviceBinding, SameGpuSpelledTwoWaysIsOneGpu) {
  // NVML's 8-digit domain, CUDA's 4-digit one, upper and lower case.
  EXPECT_EQ(normalize_bus_id("00000000:3B:00.0"), "0000:3b:00.0");
  EXPECT_EQ(normalize_bus_id("0000:3b:00.0"), "0000:3b:00.0");
  EXPECT_FALSE(choose_gpu_backend(on("n1", {"00000000:3B:00.0", "0000:3b:00.0"}), true).nccl);
}

TEST(DeviceBinding, SameBusIdOnTwoNodesIsTwoGpus) {
  // Bus ids repeat across identical nodes: one GPU per task on two nodes is NCCL.
  EXPECT_TRUE(choose_gpu_backend({{"n1", "0000:18:00.0"}, {"n2", "0000:18:00.0"}}, true).nccl);
  EXPECT_FALSE(choose_gpu_backend({{"n1", "0000:18:00.0"}, {"n2", "0000:18:00.0"}, {"n2", "0000:18:00.0"}}, true).nccl);
}

TEST(DeviceBinding, UnknownIdOrNoNcclGetsMpi) {
  EXPECT_FALSE(choose_gpu_backend(on("n1", {"0000:18:00.0", ""}), true).nccl);
  const auto c = choose_gpu_backend(on("n1", {"0000:18:00.0", "0000:3b:00.0"}), false);
  EXPECT_FALSE(c.nccl);
  EXPECT_NE(c.reason.find("no NCCL"), std::string::npos);
}

TEST(DeviceBinding, OneRankGetsNccl) { EXPECT_TRUE(choose_gpu_backend(on("n1", {"0000:18:00.0"}), true).nccl); }
