#include "train/inference_bench.h"

#include <algorithm>
#include <chrono>
#include <vector>

#include <torch/torch.h>

#include "core/memory.h"

namespace peft::train {
namespace {

using Clock = std::chrono::steady_clock;

double median(std::vector<double> v) {
  if (v.empty()) return std::numeric_limits<double>::quiet_NaN();
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

}  // namespace

int64_t model_bytes(model::DistilBert& m) {
  int64_t bytes = 0;
  for (auto& p : m.parameters(true)) bytes += static_cast<int64_t>(p.nbytes());
  for (auto& b : m.buffers(true)) bytes += static_cast<int64_t>(b.nbytes());
  return bytes;
}

InferenceStats measure_inference(model::DistilBert& m, TaskKind kind, BatchSource& data, const torch::Device& dev,
                                 int64_t batch, int64_t repeats) {
  torch::NoGradGuard g;
  tune_heap_for_steps();  // each repeat reuses the last one's blocks (core/memory.h)
  m.eval();
  InferenceStats s;
  const auto& batches = data.eval_batches(batch);
  if (batches.empty()) return s;
  auto run = [&](const torch::Tensor& ids, const torch::Tensor& mask) {
    auto h = m.hidden_states(ids, mask);
    auto out = kind == TaskKind::Classification ? m.classifier_head(h) : m.mlm_head(h);
    if (dev.is_cuda()) torch::cuda::synchronize();
    return out;
  };
  const auto& first = batches.front();
  auto ids = first.ids.to(dev), mask = first.mask.to(dev);
  s.probe = run(ids, mask).to(torch::kCPU);
  // Batch 1: the first rows of the evaluation set one by one, trimmed to their own length.
  const int64_t n1 = std::min<int64_t>(16, ids.size(0));
  for (int64_t i = 0; i < std::min<int64_t>(3, n1); ++i) run(ids.narrow(0, i, 1), mask.narrow(0, i, 1));
  // Row lengths from the host copy: nothing is read back from the device inside the timing.
  std::vector<int64_t> lens;
  for (int64_t i = 0; i < n1; ++i) lens.push_back(std::max<int64_t>(1, first.mask[i].sum().item<int64_t>()));
  std::vector<double> lat;
  for (int64_t r = 0; r < repeats; ++r) {
    const auto t0 = Clock::now();
    for (int64_t i = 0; i < n1; ++i) {
      const int64_t len = lens[static_cast<std::size_t>(i)];
      run(ids.narrow(0, i, 1).narrow(1, 0, len), mask.narrow(0, i, 1).narrow(1, 0, len));
    }
    lat.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count() / static_cast<double>(n1));
  }
  s.ms_batch1 = median(lat);
  // Throughput: up to 4 full batches per repeat, after one warm-up batch.
  const std::size_t nb = std::min<std::size_t>(4, batches.size());
  std::vector<std::pair<torch::Tensor, torch::Tensor>> on_device;  // the model is timed, not the copies
  for (std::size_t k = 0; k < nb; ++k) on_device.emplace_back(batches[k].ids.to(dev), batches[k].mask.to(dev));
  run(ids, mask);
  std::vector<double> tput;
  for (int64_t r = 0; r < repeats; ++r) {
    int64_t rows = 0;
    const auto t0 = Clock::now();
    for (const auto& [bi, bm] : on_device) {
      run(bi, bm);
      rows += bi.size(0);
    }
    tput.push_back(static_cast<double>(rows) / std::chrono::duration<double>(Clock::now() - t0).count());
  }
  s.samples_per_second = median(tput);
  return s;
}

}  // namespace peft::train
