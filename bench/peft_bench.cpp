// peft-bench: the figures behind the speed and memory claims, each a ratio measured in one run
// against the straightforward LibTorch way of doing the same thing (what eager PyTorch does).
//
//   optimizer  FlatAdamW (resident and paged) vs torch::optim::AdamW over the same tensors
//   nf4        NF4 dequantization vs copying the fp32 weight; NF4 linear vs dense linear
//   step       one training step of the trainer vs the eager loop (mean loss, backward,
//              clip_grad_norm_, AdamW, loss.item()), LoRA r=8 on q_lin,v_lin
//   inference  the base model's forward (batch 1 and batch 16) vs each method unmerged and merged
//   allreduce  (under mpirun, ≥ 2 ranks) one all-reduce of the flat gradient buffer vs one
//              per parameter tensor, through the communicator the trainer uses
//
// Tests only check that it runs (--quick); the figures are for people, not thresholds.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <iostream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/csrc/autograd/profiler_legacy.h>
#include <torch/cuda.h>
#include <torch/torch.h>
#include <torch/version.h>

#include <mpi.h>

#include "adapters/inject.h"
#include "adapters/method.h"
#include "adapters/model_ops.h"
#include "adapters/sparse_lora.h"
#include "comm/communicator.h"
#include "cli/cli_common.h"
#include "core/blas_core.h"
#include "core/error.h"
#include "core/memory.h"
#include "model/dropout.h"
#include "model/autocast.h"
#include "model/distilbert.h"
#include "model/gelu.h"
#include "model/head_matmul.h"
#include "quant/nf4.h"
#include "quant/nf4_dequant_cpu.h"
#include "train/adamw.h"
#include "train/device.h"
#include "train/trainer.h"
#include "train/inference_bench.h"
#include "train/method_setup.h"
#include "train/trial_runner.h"

namespace peft::bench {
namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  std::string what = "all";
  torch::Device device{torch::kCPU};
  bool quick = false;
  int repeats = 5;
  int steps = 8;
  std::string precision = "auto";
  int64_t batch = 0, seq = 0;  // step: 0 = the defaults (16 x 64, MLM 16 x 128; 4 x 16 with --quick)
  std::string method = "lora";  // step: any trial method
  std::string task = "cls";     // step: cls | mlm
  double sparsity = 0.5;        // step, sparse_lora
  bool structured = false;      // step, sparse_lora
  int64_t rank = 8;             // step, inference: adapter rank
  std::vector<std::string> targets = {"q_lin", "v_lin"};  // step, inference: adapted linears
  bool trainer_only = false;    // step: no eager loop
  bool sgemm = true;            // step: time the dominant gemm too
  std::string profile;          // step: a Chrome trace of one more fit of the trainer
  int threads = 0;              // 0: every allowed core
};

void sync(const torch::Device& d) {
  if (d.is_cuda()) torch::cuda::synchronize();
}

/// Median milliseconds of `fn` over `repeats` runs after one warm-up run.
double median_ms(const std::function<void()>& fn, int repeats, const torch::Device& d) {
  fn();
  sync(d);
  std::vector<double> ms;
  for (int i = 0; i < repeats; ++i) {
    const auto t0 = Clock::now();
    fn();
    sync(d);
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

using Shapes = std::vector<std::vector<int64_t>>;

/// Trainable tensors of distilbert-shaped models: LoRA r=8 on q_lin,v_lin plus the classifier
/// head, or every weight (full fine-tuning).
Shapes lora_shapes(const model::DistilBertConfig& c, int64_t r) {
  Shapes s;
  for (int64_t l = 0; l < c.n_layers; ++l)
    for (int k = 0; k < 2; ++k) s.push_back({r, c.dim}), s.push_back({c.dim, r});
  s.insert(s.end(), {{c.dim, c.dim}, {c.dim}, {2, c.dim}, {2}});
  return s;
}

Shapes full_shapes(const model::DistilBertConfig& c) {
  Shapes s{{c.vocab_size, c.dim}, {c.max_position_embeddings, c.dim}, {c.dim}, {c.dim}};
  for (int64_t l = 0; l < c.n_layers; ++l) {
    for (int k = 0; k < 4; ++k) s.push_back({c.dim, c.dim}), s.push_back({c.dim});
    s.insert(s.end(), {{c.hidden_dim, c.dim}, {c.hidden_dim}, {c.dim, c.hidden_dim}, {c.dim}, {c.dim}, {c.dim}, {c.dim}, {c.dim}});
  }
  s.insert(s.end(), {{c.dim, c.dim}, {c.dim}, {2, c.dim}, {2}});
  return s;
}

int64_t numel(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (auto d : shape) n *= d;
  return n;
}

void bench_optimizer(const Options& o, const model::DistilBertConfig& c) {
  std::cout << "\n== optimizer: one AdamW step (median of " << o.repeats << ", " << o.device.str() << ")\n";
  std::cout << fmt::format("{:<28} {:>8} {:>12} {:>12} {:>12} {:>12} {:>10} {:>10}\n", "trainable set", "tensors", "params",
                           "torch ms", "flat ms", "paged ms", "torch/flat", "paged/flat");
  const auto f32 = torch::TensorOptions().dtype(torch::kFloat32).device(o.device);
  for (const auto& [name, shapes] : std::vector<std::pair<std::string, Shapes>>{
           {"lora r=8 q,v + head", lora_shapes(c, 8)}, {"full (every weight)", full_shapes(c)}}) {
    int64_t total = 0;
    for (const auto& s : shapes) total += numel(s);
    // torch::optim::AdamW over separate tensors.
    std::vector<torch::Tensor> params;
    for (const auto& s : shapes) {
      auto p = torch::randn(s, f32).mul_(0.02).requires_grad_(true);
      p.mutable_grad() = torch::randn(s, f32);
      params.push_back(p);
    }
    torch::optim::AdamW eager(params, torch::optim::AdamWOptions(1e-3).weight_decay(0.01));
    const double t_eager = median_ms([&] { eager.step(); }, o.repeats, o.device);
    // FlatAdamW over one buffer, states resident, then paged.
    auto flat_p = torch::randn({total}, f32).mul_(0.02), flat_g = torch::randn({total}, f32);
    train::FlatAdamW flat(flat_p, flat_g, {{0, total, 1e-3, 0.01}});
    const double t_flat = median_ms([&] { flat.step(1.0); }, o.repeats, o.device);
    train::AdamWOptions po;
    po.paged = true;
    train::FlatAdamW paged(flat_p, flat_g, {{0, total, 1e-3, 0.01}}, po);
    const double t_paged = median_ms([&] { paged.step(1.0); }, o.repeats, o.device);
    std::cout << fmt::format("{:<28} {:>8} {:>12} {:>12.3f} {:>12.3f} {:>12.3f} {:>10.2f} {:>10.2f}\n", name, shapes.size(), total,
                             t_eager, t_flat, t_paged, t_eager / t_flat, t_paged / t_flat);
    std::cout << fmt::format("{:<28} states on the device: resident {:.1f} MB, paged {:.1f} MB (+ {:.1f} MB in host memory)\n", "",
                             flat.device_bytes() / 1e6, paged.device_bytes() / 1e6, paged.host_bytes() / 1e6);
  }
}

void bench_dropout(const Options& o, const model::DistilBertConfig& c) {
  // A step of the encoder runs 2 dropouts per layer on [tokens, dim] (3 in BERT), one over every
  // attention matrix [batch, heads, seq, seq], and LoRA's on each adapted input: at p = 0.1,
  // forward then backward (the gradient through the same mask), LibTorch's against model::dropout.
  const int64_t batch = o.batch > 0 ? o.batch : (o.quick ? 4 : 16), seq = o.seq > 0 ? o.seq : (o.quick ? 16 : 64);
  std::cout << fmt::format("\n== dropout p = 0.1, forward + backward (median of {}, {}); copy: x.clone() forward + backward\n", o.repeats,
                           o.device.str());
  std::cout << fmt::format("{:<34} {:>10} {:>10} {:>10} {:>10} {:>12} {:>14}\n", "tensor", "elements", "torch ms", "peft ms", "copy ms",
                           "torch/peft", "peft GB/s");
  const auto f32 = torch::TensorOptions().dtype(torch::kFloat32).device(o.device);
  for (const auto& [name, shape] : std::vector<std::pair<std::string, std::vector<int64_t>>>{
           {fmt::format("hidden [{}x{}, {}]", batch, seq, c.dim), {batch * seq, c.dim}},
           {fmt::format("attention [{}, {}, {}, {}]", batch, c.n_heads, seq, seq), {batch, c.n_heads, seq, seq}}}) {
    auto x = torch::randn(shape, f32).requires_grad_(true);
    auto g = torch::randn(shape, f32);
    auto run = [&](auto&& fn) {
      return median_ms([&] {
        x.mutable_grad() = torch::Tensor();
        fn(x).backward(g);
      }, o.repeats, o.device);
    };
    const double t_torch = run([](const torch::Tensor& t) { return torch::dropout(t, 0.1, true); });
    const double t_ours = run([](const torch::Tensor& t) { return model::dropout(t, 0.1, true); });
    const double t_copy = run([](const torch::Tensor& t) { return t.clone(); });
    // Bytes moved by ours: forward reads x, writes y; backward reads g, writes dx (4 passes).
    const double gbs = 4.0 * static_cast<double>(x.numel()) * 4.0 / (t_ours * 1e6);
    std::cout << fmt::format("{:<34} {:>10} {:>10.3f} {:>10.3f} {:>10.3f} {:>12.2f} {:>14.1f}\n", name, x.numel(), t_torch, t_ours, t_copy,
                             t_torch / t_ours, gbs);
  }
}

void bench_kernels(const Options& o, const model::DistilBertConfig& c) {
  // peft-sweep's own CPU kernels (PEFT_CPU_KERNELS) against the LibTorch ops they replace, on one
  // layer's tensors, forward then backward: GELU over [tokens, hidden_dim]; the attention's
  // q·kᵀ/√dh and weights·v on the heads' strided views, as the model calls them.
  if (!o.device.is_cpu()) return;
  tune_heap_for_steps();  // as a trial's steps run (core/memory.h): else every 50 MB block is faulted in again
  const int64_t batch = o.batch > 0 ? o.batch : (o.quick ? 4 : 16), seq = o.seq > 0 ? o.seq : (o.quick ? 16 : 64);
  const int64_t dh = c.dim / c.n_heads;
  std::cout << fmt::format("\n== CPU kernels, forward + backward (median of {}; BLAS path of the attention products: {})\n", o.repeats,
                           model::head_matmul_uses_blas() ? "yes" : "no (PEFT_CPU_KERNELS=torch or no sgemm_)");
  std::cout << fmt::format("{:<48} {:>10} {:>10} {:>12}\n", "op", "torch ms", "peft ms", "torch/peft");
  torch::manual_seed(4);
  auto report = [&](const std::string& name, auto&& torch_fn, auto&& peft_fn) {
    const double a = median_ms(torch_fn, o.repeats, o.device), b = median_ms(peft_fn, o.repeats, o.device);
    std::cout << fmt::format("{:<48} {:>10.3f} {:>10.3f} {:>12.2f}\n", name, a, b, a / b);
  };
  {
    auto x = torch::randn({batch * seq, c.hidden_dim}).mul_(2).requires_grad_(true);
    auto g = torch::randn({batch * seq, c.hidden_dim});
    auto fb = [&](auto&& fn) {
      return [&, fn] {
        x.mutable_grad() = torch::Tensor();
        fn(x).backward(g);
      };
    };
    report(fmt::format("gelu [{}, {}] forward", batch * seq, c.hidden_dim), [&] { torch::NoGradGuard ng; torch::gelu(x); },
           [&] { torch::NoGradGuard ng; model::gelu(x); });
    report(fmt::format("gelu [{}, {}] forward + backward", batch * seq, c.hidden_dim),
           fb([](const torch::Tensor& t) { return torch::gelu(t); }), fb([](const torch::Tensor& t) { return model::gelu(t); }));
  }
  {
    auto heads = [&](const torch::Tensor& t) { return t.view({batch, seq, c.n_heads, dh}).transpose(1, 2); };
    auto qx = torch::randn({batch, seq, c.dim}).requires_grad_(true), kx = torch::randn({batch, seq, c.dim}).requires_grad_(true);
    auto w = torch::softmax(torch::randn({batch, c.n_heads, seq, seq}), -1).requires_grad_(true);
    auto gs = torch::randn({batch, c.n_heads, seq, seq}), gc = torch::randn({batch, seq, c.dim});
    const double scale = std::sqrt(static_cast<double>(dh));
    auto clear = [&] { qx.mutable_grad() = kx.mutable_grad() = w.mutable_grad() = torch::Tensor(); };
    report(fmt::format("q kT / sqrt(dh) [{}, {}, {}, {}]", batch, c.n_heads, seq, dh),
           [&] { clear(); torch::matmul(heads(qx) / scale, heads(kx).transpose(2, 3)).backward(gs); },
           [&] { clear(); model::head_matmul(heads(qx), heads(kx).transpose(2, 3), scale).backward(gs); });
    report(fmt::format("weights v, heads joined [{}, {}, {}]", batch, seq, c.dim),
           [&] { clear(); torch::matmul(w, heads(kx)).transpose(1, 2).reshape({batch, seq, c.dim}).backward(gc); },
           [&] { clear(); model::head_matmul(w, heads(kx), 1.0, true).transpose(1, 2).reshape({batch, seq, c.dim}).backward(gc); });
  }
}

void bench_nf4(const Options& o, const model::DistilBertConfig& c) {
  std::cout << "\n== nf4: the FFN weight " << c.hidden_dim << "x" << c.dim << " (median of " << o.repeats << ", "
            << o.device.str() << ")\n";
  torch::manual_seed(1);
  auto w = torch::randn({c.hidden_dim, c.dim}).mul_(0.02);
  auto q = quant::quantize_nf4(w).to(o.device);
  auto dense = w.to(o.device), out = torch::empty_like(dense);
  const double bytes = static_cast<double>(w.numel()) * 4;
  const double t_copy = median_ms([&] { out.copy_(dense); }, o.repeats, o.device);
  std::cout << fmt::format("fp32 copy (Tensor::copy_, {} threads) {:.3f} ms: {:.1f} GB/s of fp32 written\n",
                           o.device.is_cpu() ? at::get_num_threads() : 0, t_copy, bytes / t_copy / 1e6);
  if (o.device.is_cpu()) {
    const double t_memcpy = median_ms([&] { std::memcpy(out.data_ptr(), dense.data_ptr(), static_cast<size_t>(bytes)); },
                                      o.repeats, o.device);
    std::cout << fmt::format("fp32 std::memcpy (1 thread) {:.3f} ms: {:.1f} GB/s\n", t_memcpy, bytes / t_memcpy / 1e6);
  }
  // Every instruction set this CPU has (the fastest is what runs), then bf16 output.
  const int best = o.device.is_cpu() ? static_cast<int>(quant::nf4_cpu_isa_available()) : 0;
  for (int level = o.device.is_cpu() ? 0 : best; level <= best; ++level) {
    if (o.device.is_cpu()) quant::force_nf4_cpu_isa(static_cast<quant::Nf4CpuIsa>(level));
    const char* isa = o.device.is_cpu() ? quant::nf4_cpu_isa_name(static_cast<quant::Nf4CpuIsa>(level)) : "cuda";
    for (auto dt : {torch::kFloat32, torch::kBFloat16}) {
      const double t_deq = median_ms([&] { (void)quant::dequantize_nf4(q, dt); }, o.repeats, o.device);
      const double written = bytes * static_cast<double>(c10::elementSize(dt)) / 4;
      std::cout << fmt::format("dequantize {:<6} -> {:<8} {:.3f} ms: {:.1f} GB/s written, {:.2f} of the fp32 copy's bandwidth{}\n", isa,
                               c10::toString(dt), t_deq, written / t_deq / 1e6, (written / t_deq) / (bytes / t_copy),
                               level == best ? "  (the path that runs)" : "");
    }
  }
  if (o.device.is_cpu()) quant::force_nf4_cpu_isa(quant::Nf4CpuIsa::kAuto);
  std::cout << fmt::format("storage: fp32 {:.2f} MB, NF4 {:.3f} MB ({:.3f} bits per weight)\n", bytes / 1e6, q.storage_bytes() / 1e6,
                           8.0 * static_cast<double>(q.storage_bytes()) / static_cast<double>(w.numel()));
  auto x = torch::randn({o.quick ? 64 : 16 * 64, c.dim}, torch::TensorOptions().device(o.device));
  auto bias = torch::zeros({c.hidden_dim}, torch::TensorOptions().device(o.device));
  torch::NoGradGuard no_grad;
  const double t_nf4 = median_ms([&] { (void)quant::nf4_linear(x, q, bias); }, o.repeats, o.device);
  const double t_lin = median_ms([&] { (void)torch::nn::functional::linear(x, dense, bias); }, o.repeats, o.device);
  std::cout << fmt::format("linear on {} tokens: NF4 {:.3f} ms, dense {:.3f} ms, NF4/dense {:.2f}\n", x.size(0), t_nf4, t_lin, t_nf4 / t_lin);
}

// A fixed random batch, as a BatchSource for the trainer. Classification: random ids in
// [1, vocab), labels in {0, 1}. MLM: 15% of the positions (torch::rand < 0.15) become id 4 and
// are the labels (their original ids), the rest -100. Generated on the CPU from seed 5, the
// same calls as bench/compare_step.py makes, which checks the sums printed in the result line.
class FixedSource : public train::BatchSource {
 public:
  FixedSource(int64_t batch, int64_t seq, int64_t vocab, train::TaskKind kind) : kind_(kind) {
    torch::manual_seed(5);
    b_.ids = torch::randint(1, vocab, {batch, seq}, torch::kLong);
    b_.mask = torch::ones({batch, seq}, torch::kLong);
    if (kind == train::TaskKind::Classification) {
      b_.labels = torch::randint(0, 2, {batch}, torch::kLong);
    } else {
      auto picked = torch::rand({batch, seq}) < 0.15;
      b_.labels = torch::where(picked, b_.ids, torch::full_like(b_.ids, -100));
      b_.ids = torch::where(picked, torch::full_like(b_.ids, 4), b_.ids);
      b_.count = picked.sum().item<int64_t>();
    }
    b_.tokens = batch * seq;
    eval_.push_back(b_);
  }
  train::TaskKind kind() const override { return kind_; }
  int64_t train_examples() const override { return b_.ids.size(0) * 1000000; }
  int64_t batches_per_epoch(int64_t) const override { return 1000000; }
  train::Batch train_batch(int64_t, int64_t, int64_t, int, int, uint64_t) override { return b_; }
  const std::vector<train::Batch>& eval_batches(int64_t) override { return eval_; }
  const train::Batch& batch() const { return b_; }

 private:
  train::TaskKind kind_;
  train::Batch b_;
  std::vector<train::Batch> eval_;
};

/// The step's model as a trial builds it (train/trial_runner.cpp): random base (seed 1), the
/// method's config, adapters from seed 2, QLoRA's NF4 base, bf16 frozen linears under bf16.
struct StepModel {
  std::shared_ptr<model::DistilBert> m;
  adapters::Method method;
  int64_t frozen_bf16 = 0;
};

StepModel step_model(const Options& o, const model::DistilBertConfig& c, const TrialSpec& spec, bool bf16, bool cast_frozen) {
  const model::Head head = o.task == "mlm" ? model::Head::MLM : model::Head::Classifier;
  StepModel r;
  r.m = std::make_shared<model::DistilBert>(c, std::vector<model::Head>{head});
  r.m->init_weights(1);
  r.m->init_head(head, true, 1);
  auto mc = train::method_config(spec, spec.train.max_steps, /*train_mlm_head=*/head == model::Head::MLM);  // a random base
  r.method = mc.method;
  torch::manual_seed(2);
  const auto quantize = mc.method == adapters::Method::QLoRA
                            ? train::nf4_base_transform(train::qlora_compute_dtype(spec.method.compute_dtype, bf16, o.device))
                            : adapters::BaseTransform{};
  adapters::apply_method(*r.m, mc, head, quantize);
  r.m->to(o.device);
  if (bf16 && cast_frozen) r.frozen_bf16 = train::cast_frozen_linears(*r.m, torch::kBFloat16);
  return r;
}

/// Median and mean milliseconds per step of one fit(), from the trainer's per-step progress
/// calls (it reports every step when a fit has at most 200 steps; on a CPU the loss read-back
/// that comes with each report costs nothing).
struct FitTimes {
  double median_ms = 0, mean_ms = 0;
  double last_loss = 0;
};

FitTimes timed_fit(train::Trainer& trainer, FixedSource& data) {
  std::vector<double> at;
  TrialResult result;
  at.push_back(0);
  const auto t0 = Clock::now();
  auto stats = trainer.fit(data, result, {}, [&](const train::Progress&) {
    at.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  });
  FitTimes t;
  std::vector<double> ms;
  for (std::size_t i = 2; i < at.size(); ++i) ms.push_back(at[i] - at[i - 1]);  // the first interval holds fit()'s set-up
  std::sort(ms.begin(), ms.end());
  t.median_ms = ms.empty() ? 0 : ms[ms.size() / 2];
  t.mean_ms = 1000.0 * stats.train_seconds / static_cast<double>(std::max<int64_t>(1, stats.steps));
  if (ms.empty()) t.median_ms = t.mean_ms;
  t.last_loss = result.train_loss.empty() ? 0.0 : result.train_loss.back();
  return t;
}

/// sgemm (or bf16 gemm) of the step's dominant shape, tokens x dim by dim x hidden_dim: GFLOP/s.
double gemm_gflops(const Options& o, int64_t tokens, int64_t k, int64_t n, c10::ScalarType dtype) {
  torch::manual_seed(3);
  auto opts = torch::TensorOptions().device(o.device).dtype(dtype);
  auto x = torch::randn({tokens, k}, opts), w = torch::randn({k, n}, opts), out = torch::empty({tokens, n}, opts);
  // Each sample: enough back-to-back matmuls for ~5 ms at 50 GFLOP/s (as compare_step.py).
  const double flop = 2.0 * static_cast<double>(tokens * k * n);
  const int inner = static_cast<int>(std::clamp(5e-3 * 50e9 / flop, 1.0, 1000.0));
  const double ms = median_ms([&] { for (int i = 0; i < inner; ++i) at::matmul_out(out, x, w); }, 7, o.device) / inner;
  return flop / ms / 1e6;
}

void bench_step(const Options& o, model::DistilBertConfig c) {
  c.dropout = c.attention_dropout = c.seq_classif_dropout = 0.0;  // both paths see the same function
  const bool mlm = o.task == "mlm";
  const int64_t batch = o.batch > 0 ? o.batch : o.quick ? 4 : 16, seq = o.seq > 0 ? o.seq : o.quick ? 16 : mlm ? 128 : 64;
  const bool bf16 = train::resolve_precision(o.precision, o.device) == "bf16";
  const auto kind = mlm ? train::TaskKind::MLM : train::TaskKind::Classification;
  TrialSpec spec;
  spec.method.method = o.method;
  spec.method.rank = o.rank;
  spec.method.alpha = 2.0 * static_cast<double>(o.rank);  // alpha/r = 2 at every rank, as r=8, alpha 16
  spec.method.targets = o.targets;
  spec.method.sparsity = o.method == "sparse_lora" ? o.sparsity : 0.0;
  spec.method.structured = o.structured;
  spec.method.prune_schedule = "oneshot";  // at step 1 of each fit: the timed steps run pruned
  spec.method.prune_start = 0.0;
  auto& s = spec.train;
  s.max_steps = o.steps;
  s.batch_size = batch;
  s.lr = 1e-3;
  s.warmup_ratio = 0.0;
  s.precision = bf16 ? "bf16" : "fp32";
  std::cout << "\n== step: " << o.method
            << (o.method == "full" || o.method == "head" ? "" : fmt::format(" r={} {}", o.rank, fmt::join(o.targets, ",")))
            << (o.method == "sparse_lora" ? fmt::format(" sparsity {} {}", o.sparsity, o.structured ? "structured" : "unstructured") : "")
            << (mlm ? " (MLM)" : " + head") << ", batch " << batch << " x " << seq << " tokens, " << o.steps
            << " steps after as many warm-up steps, " << o.device.str() << (bf16 ? " bf16 autocast" : " fp32") << "\n";
  FixedSource data(batch, seq, c.vocab_size, kind);

  // The trainer, as a trial runs it: under bf16 the frozen linears are held in bf16.
  auto a = step_model(o, c, spec, bf16, true);
  auto make_trainer = [&](StepModel& sm, train::GradSync& sync) {
    return std::make_unique<train::Trainer>(*sm.m, kind, train::parameter_groups(*sm.m, sm.method, spec), s,
                                            train::method_hooks(*sm.m, s.lr), sync, o.device, 1);
  };
  train::LocalGradSync local;
  auto trainer = make_trainer(a, local);
  timed_fit(*trainer, data);  // warm-up: `steps` steps, not timed
  train::reset_peak_memory(o.device);
  const FitTimes tt = timed_fit(*trainer, data);
  const int64_t trainer_peak = train::peak_memory_bytes(o.device);
  const double trainer_ms = tt.mean_ms;
  if (!o.profile.empty()) {
    {
      // LibTorch's own op-level profiler (every dispatched op, its name and time; no shapes),
      // around one more fit of `steps` steps; it adds a few microseconds per op.
      torch::autograd::profiler::RecordProfile guard(o.profile);
      timed_fit(*trainer, data);
    }
    std::cout << fmt::format("profile of one more fit ({} steps): {} (chrome://tracing; bench/trace_summary.py sums it by op)\n",
                             o.steps, o.profile);
  }
  int64_t trainable = 0;
  for (auto& p : a.m->parameters(true))
    if (p.requires_grad()) trainable += p.numel();
  if (bf16 && !o.trainer_only) {
    // What holding the frozen weights in bf16 saves: the same trainer with them in fp32, which
    // autocast casts to bf16 again in every forward pass.
    auto f = step_model(o, c, spec, bf16, false);
    train::LocalGradSync l2;
    auto t2 = make_trainer(f, l2);
    timed_fit(*t2, data);
    const double fp32_frozen_ms = timed_fit(*t2, data).mean_ms;
    std::cout << fmt::format(
        "frozen linears in bf16: {:.2f} ms/step; kept in fp32 (autocast re-casts them every forward): {:.2f} ms/step ({:.2f}x); "
        "their weights {:.1f} MB instead of {:.1f} MB\n",
        trainer_ms, fp32_frozen_ms, fp32_frozen_ms / trainer_ms, a.frozen_bf16 * 2 / 1e6, a.frozen_bf16 * 4 / 1e6);
  }

  double eager_ms = 0, last_loss = 0;
  int64_t eager_peak = 0;
  if (!o.trainer_only) {
    // The eager loop, on an identical model (no method hooks: Sparse LoRA's masks and pruning
    // are the trainer's only).
    auto b = step_model(o, c, spec, bf16, true);
    std::vector<torch::Tensor> params;
    std::vector<std::pair<std::string, torch::Tensor>> named;
    for (auto& p : b.m->named_parameters(true))
      if (p.value().requires_grad()) params.push_back(p.value()), named.emplace_back(p.key(), p.value());
    std::vector<torch::optim::OptimizerParamGroup> groups;
    for (auto& g : train::Trainer::decay_groups("all", named, s.lr, s.weight_decay))
      groups.emplace_back(g.params, std::make_unique<torch::optim::AdamWOptions>(torch::optim::AdamWOptions(g.lr).weight_decay(g.weight_decay)));
    torch::optim::AdamW opt(groups, torch::optim::AdamWOptions(s.lr));
    auto ids = data.batch().ids.to(o.device), mask = data.batch().mask.to(o.device), labels = data.batch().labels.to(o.device);
    int64_t eager_i = 0;
    auto eager_step = [&] {
      // The trainer's schedule: no warm-up, linear decay to 0 over each fit() of `steps` steps.
      const double factor = static_cast<double>(o.steps - eager_i % o.steps) / static_cast<double>(o.steps);
      ++eager_i;
      for (std::size_t g = 0; g < opt.param_groups().size(); ++g)
        static_cast<torch::optim::AdamWOptions&>(opt.param_groups()[g].options()).lr(s.lr * factor);
      torch::Tensor loss;
      {
        model::AutocastGuard autocast(o.device, bf16);
        auto logits = (mlm ? b.m->mlm_head(b.m->hidden_states(ids, mask)) : b.m->classify(ids, mask)).to(torch::kFloat32);
        loss = torch::nn::functional::cross_entropy(logits.reshape({-1, logits.size(-1)}), labels.reshape({-1}),
                                                    torch::nn::functional::CrossEntropyFuncOptions().ignore_index(-100));
      }
      opt.zero_grad();
      loss.backward();
      torch::nn::utils::clip_grad_norm_(params, 1.0);
      opt.step();
      last_loss = loss.item<double>();
    };
    for (int i = 0; i < o.steps; ++i) eager_step();  // the same warm-up
    sync(o.device);
    train::reset_peak_memory(o.device);
    const auto t0 = Clock::now();
    for (int i = 0; i < o.steps; ++i) eager_step();
    sync(o.device);
    eager_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count() / o.steps;
    eager_peak = train::peak_memory_bytes(o.device);
    std::cout << fmt::format("trainer {:.2f} ms/step   eager {:.2f} ms/step   eager/trainer {:.2f}   (mean of {} steps after {} warm-up steps)\n",
                             trainer_ms, eager_ms, eager_ms / trainer_ms, o.steps, o.steps);
    std::cout << fmt::format("loss of the last step: trainer {:.6f}, eager {:.6f} (same model, data and updates)\n", tt.last_loss, last_loss);
    if (o.device.is_cuda())
      std::cout << fmt::format("peak device memory: trainer {:.1f} MB, eager {:.1f} MB\n", trainer_peak / 1e6, eager_peak / 1e6);
  } else {
    std::cout << fmt::format("trainer {:.2f} ms/step (mean), {:.2f} ms/step (median of {} steps after {} warm-up steps)\n", trainer_ms,
                             tt.median_ms, o.steps, o.steps);
  }
  const double sgemm = o.sgemm ? gemm_gflops(o, batch * seq, c.dim, c.hidden_dim, torch::kFloat32) : 0.0;
  const double bgemm = o.sgemm && bf16 ? gemm_gflops(o, batch * seq, c.dim, c.hidden_dim, torch::kBFloat16) : 0.0;
  if (o.sgemm)
    std::cout << fmt::format("gemm {}x{} by {}x{}: fp32 {:.1f} GFLOP/s{}\n", batch * seq, c.dim, c.dim, c.hidden_dim, sgemm,
                             bf16 ? fmt::format(", bf16 {:.1f} GFLOP/s", bgemm) : "");
  // One line for bench/compare_step.py.
  std::cout << fmt::format(
      "step-result {{\"method\": \"{}\", \"task\": \"{}\", \"precision\": \"{}\", \"batch\": {}, \"seq\": {}, \"threads\": {}, "
      "\"trainer_ms_median\": {:.4f}, \"trainer_ms_mean\": {:.4f}, \"eager_ms\": {:.4f}, \"sgemm_gflops\": {:.3f}, "
      "\"bf16_gemm_gflops\": {:.3f}, \"trainable\": {}, \"ids_sum\": {}, \"labels_sum\": {}, \"masked\": {}, \"loss\": {:.6f}, \"libtorch\": \"{}.{}.{}\", "
      "\"openblas_core\": \"{}\"}}\n",
      o.method, mlm ? "mlm" : "cls", bf16 ? "bf16" : "fp32", batch, seq, torch::get_num_threads(), tt.median_ms, tt.mean_ms, eager_ms,
      sgemm, bgemm, trainable, data.batch().ids.sum().item<int64_t>(), data.batch().labels.sum().item<int64_t>(), data.batch().count, tt.last_loss,
      TORCH_VERSION_MAJOR, TORCH_VERSION_MINOR, TORCH_VERSION_PATCH, openblas_core());
}

void bench_allreduce(const Options& o, const model::DistilBertConfig& c) {
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized) MPI_Init(nullptr, nullptr);
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  auto comm = comm::make_communicator(MPI_COMM_WORLD, o.device);
  if (rank == 0)
    std::cout << "\n== allreduce: " << size << " ranks, " << comm->backend() << ", " << o.device.str() << " (median of "
              << o.repeats << ")\n"
              << fmt::format("{:<28} {:>8} {:>12} {:>14} {:>10} {:>12}\n", "gradients", "tensors", "params", "per tensor ms",
                             "flat ms", "tensor/flat");
  if (size < 2 && rank == 0) std::cout << "(one rank: the collectives are no-ops; run under mpirun -np 2 or more)\n";
  const auto f32 = torch::TensorOptions().dtype(torch::kFloat32).device(o.device);
  for (const auto& [name, shapes] : std::vector<std::pair<std::string, Shapes>>{
           {"lora r=8 q,v + head", lora_shapes(c, 8)}, {"full (every weight)", full_shapes(c)}}) {
    int64_t total = 0;
    for (const auto& sh : shapes) total += numel(sh);
    auto flat = torch::ones({total}, f32);
    std::vector<torch::Tensor> views;
    int64_t off = 0;
    for (const auto& sh : shapes) views.push_back(flat.narrow(0, off, numel(sh)).view(sh)), off += numel(sh);
    auto timed = [&](const std::function<void()>& fn) {
      return median_ms([&] { MPI_Barrier(MPI_COMM_WORLD); fn(); }, o.repeats, o.device);
    };
    const double t_each = timed([&] { for (auto& v : views) comm->allreduce_sum(v); });
    const double t_flat = timed([&] { comm->allreduce_sum(flat); });
    if (rank == 0)
      std::cout << fmt::format("{:<28} {:>8} {:>12} {:>14.3f} {:>10.3f} {:>12.2f}\n", name, shapes.size(), total, t_each, t_flat,
                               t_each / t_flat);
  }
  // Correctness of the sliced path: 2.5 slices and an odd tail, each rank adding rank + 1.
  const int64_t n = (int64_t{5} << 20) / 2 + 3;
  auto check = torch::full({n}, static_cast<float>(rank + 1), f32);
  comm->allreduce_sum(check);
  const double expected = size * (size + 1) / 2.0;
  const bool ok = check.eq(expected).all().item<bool>();
  if (rank == 0) std::cout << fmt::format("sums {} over {} floats\n", ok ? "checked" : "WRONG", n);
  comm.reset();
  if (!initialized) MPI_Finalize();
  if (!ok) throw std::runtime_error("all-reduce gave a wrong sum");
}

/// Inference of a trained model as a trial measures it (train::measure_inference: batch-1
/// latency over 16 rows, throughput at batch 16): the base model (no adapters) against each
/// method unmerged and, where a dense weight exists, merged. The base is timed before and after
/// the methods, so drift of the machine during the run shows.
void bench_inference(const Options& o, model::DistilBertConfig c) {
  c.dropout = c.attention_dropout = c.seq_classif_dropout = 0.0;
  const int64_t seq = o.seq > 0 ? o.seq : o.quick ? 16 : 64, batch = o.batch > 0 ? o.batch : 16;
  const bool bf16 = train::resolve_precision(o.precision, o.device) == "bf16";
  std::cout << "\n== inference: batch 1 (16 rows of " << seq << " tokens, one by one) and batch " << batch << ", median of "
            << o.repeats << ", " << o.device.str() << (bf16 ? " bf16 autocast" : " fp32") << ", adapters r=" << o.rank << " on "
            << fmt::format("{}", fmt::join(o.targets, ",")) << "\n";
  FixedSource data(batch, seq, c.vocab_size, train::TaskKind::Classification);
  auto timed = [&](model::DistilBert& m) {
    model::AutocastGuard autocast(o.device, bf16);
    return train::measure_inference(m, train::TaskKind::Classification, data, o.device, batch, o.repeats);
  };
  // Sparse LoRA is pruned to --sparsity before it is timed, unstructured and structured: dead
  // rank channels leave the unmerged computation (sparse_lora.h), unstructured zeros do not.
  auto model_for = [&](const std::string& method, bool structured = false) {
    TrialSpec spec;
    spec.method.method = method;
    spec.method.rank = o.rank;
    spec.method.alpha = 2.0 * static_cast<double>(o.rank);
    spec.method.targets = o.targets;
    spec.method.structured = structured;
    spec.train.max_steps = 10;
    spec.train.precision = bf16 ? "bf16" : "fp32";
    Options mo = o;
    mo.task = "cls";
    auto sm = step_model(mo, c, spec, bf16, true);
    // B starts at zero (LoRA, HiRA): give it values so that merging really changes the weights.
    torch::NoGradGuard g;
    for (auto& p : sm.m->named_parameters(true))
      if (p.value().requires_grad() && (p.key().find("lora_B") != std::string::npos || p.key().find("hira_B") != std::string::npos))
        p.value().normal_(0, 0.01);
    if (method == "sparse_lora")
      for (auto& r : adapters::find_adapters(*sm.m)) {
        auto sp = std::dynamic_pointer_cast<adapters::SparseLoraLinear>(r.adapter);
        PEFT_CHECK(sp != nullptr, "sparse_lora model without a SparseLoraLinear at {}", r.path);
        sp->prune_to(o.sparsity);  // with the granularity of spec.method.structured
      }
    return sm;
  };
  // The VMs drift by 10-25 % within minutes, so a model is not compared with one early timing
  // of the base: each is timed in kRounds rounds of (base, model) back to back, and its "x base"
  // is the median of the per-round ratios. A merged model runs the base's very kernels, so its
  // ratio is then what merging costs, not what the machine did meanwhile.
  constexpr int kRounds = 3;
  std::cout << fmt::format("{:<22} {:>12} {:>10} {:>14} {:>10}   (x base: median of {} paired rounds)\n", "model", "ms, batch 1", "x base",
                           "rows/s, batch", "x base", kRounds);
  auto base = model_for("head");
  struct Paired {
    train::InferenceStats stats;  // the model's, from the median round
    double latency_ratio = 0, throughput_ratio = 0;
  };
  auto paired = [&](model::DistilBert& m) {
    std::vector<double> lat, thr;
    std::vector<train::InferenceStats> runs;
    for (int r = 0; r < kRounds; ++r) {
      const auto b = timed(*base.m);
      runs.push_back(timed(m));
      lat.push_back(runs.back().ms_batch1 / b.ms_batch1);
      thr.push_back(b.samples_per_second / runs.back().samples_per_second);
    }
    auto median = [](std::vector<double> v) {
      std::sort(v.begin(), v.end());
      return v[v.size() / 2];
    };
    std::vector<std::size_t> idx(runs.size());
    for (std::size_t i = 0; i < idx.size(); ++i) idx[i] = i;
    std::sort(idx.begin(), idx.end(), [&](std::size_t a, std::size_t b) { return runs[a].ms_batch1 < runs[b].ms_batch1; });
    return Paired{runs[idx[idx.size() / 2]], median(lat), median(thr)};
  };
  auto line = [&](const std::string& name, const Paired& p) {
    std::cout << fmt::format("{:<22} {:>12.3f} {:>10.3f} {:>14.1f} {:>10.3f}\n", name, p.stats.ms_batch1, p.latency_ratio,
                             p.stats.samples_per_second, p.throughput_ratio);
  };
  line("base (no adapters)", paired(*base.m));
  const std::vector<std::pair<std::string, bool>> methods = {
      {"lora", false}, {"hira", false}, {"sparse_lora", false}, {"sparse_lora", true}, {"qlora", false}};
  for (const auto& [method, structured] : methods) {
    auto sm = model_for(method, structured);
    const auto un = paired(*sm.m);
    const std::string name = method == "sparse_lora" ? fmt::format("sparse {}{:g}", structured ? "str " : "", o.sparsity) : method;
    line(name + " unmerged", un);
    if (sm.method == adapters::Method::QLoRA) {
      std::cout << fmt::format("{:<22} (NF4 base: no dense weight to merge into)\n", name + " merged");
      continue;
    }
    adapters::merge_all(*sm.m);
    const auto me = paired(*sm.m);
    line(name + " merged", me);
    std::cout << fmt::format("{:<22} merged vs unmerged outputs: max |diff| {:.2e}\n", "",
                             (me.stats.probe - un.stats.probe).abs().max().item<double>());
  }
  std::cout << "(x base: time over the base model's in the same round, > 1 is slower; for throughput the base's rows/s over the\n"
               " model's; the base's own line is its ratio to itself across rounds, 1 when the machine held still)\n";
}

int run(const std::vector<std::string>& args) {
  Options o;
  std::string device = "auto", shape = "base", targets;
  cli::po::options_description desc("peft-bench options");
  desc.add_options()
      ("what", cli::po::value(&o.what)->default_value("all"), "all (optimizer, nf4, dropout, kernels, step, inference) | optimizer | nf4 | dropout | kernels | step | inference | allreduce (under mpirun)")
      ("device", cli::po::value(&device)->default_value("auto"), "auto | cpu | cuda")
      ("shape", cli::po::value(&shape)->default_value("base"), "base (distilbert-base: 768/6/3072) | tiny (64/2/256)")
      ("repeats", cli::po::value(&o.repeats)->default_value(5), "timed repetitions (median)")
      ("steps", cli::po::value(&o.steps)->default_value(8), "timed training steps")
      ("batch", cli::po::value(&o.batch)->default_value(0), "step, inference: batch size (0: 16, or 4 with --quick for step)")
      ("seq", cli::po::value(&o.seq)->default_value(0), "step, inference: tokens per sequence (0: 64, or 16 with --quick)")
      ("precision", cli::po::value(&o.precision)->default_value("auto"), "step: auto (bf16 on a GPU, fp32 on CPU) | fp32 | bf16 (CPU autocast on CPU)")
      ("method", cli::po::value(&o.method)->default_value("lora"), "step: lora | sparse_lora | hira | qlora | full | head (--rank, --targets; as a trial sets it up)")
      ("task", cli::po::value(&o.task)->default_value("cls"), "step: cls (sequence classification) | mlm (masked LM, 15% of positions; --seq default 128)")
      ("sparsity", cli::po::value(&o.sparsity)->default_value(0.5), "step, inference: Sparse LoRA's target sparsity (step: one-shot pruning after the first step of each fit)")
      ("structured", cli::po::bool_switch(&o.structured), "step, sparse_lora: prune whole rank channels")
      ("rank", cli::po::value(&o.rank)->default_value(8), "step, inference: adapter rank r (alpha = 2r)")
      ("targets", cli::po::value(&targets)->default_value("q_lin,v_lin"), "step, inference: adapted linears, comma-separated (q_lin,k_lin,v_lin,out_lin,lin1,lin2)")
      ("trainer-only", cli::po::bool_switch(&o.trainer_only), "step: time the trainer only, not the C++ eager loop")
      ("no-sgemm", "step: don't time the dominant gemm")
      ("profile", cli::po::value(&o.profile), "step: write a Chrome trace of one more fit of the trainer (LibTorch's op profiler) to this file")
      ("threads", cli::po::value(&o.threads)->default_value(0), "intra-op threads (0: every allowed core)")
      ("quick", cli::po::bool_switch(&o.quick), "tiny shapes, 2 repetitions: a smoke run");
  cli::po::positional_options_description pos;
  pos.add("what", 1);
  cli::po::variables_map vm;
  if (!cli::parse_args("peft-bench", "peft-bench [all|optimizer|nf4|dropout|kernels|step|inference] [options]", args, desc, vm, &pos)) return 0;
  if (o.what != "all" && o.what != "optimizer" && o.what != "nf4" && o.what != "dropout" && o.what != "kernels" && o.what != "step" &&
      o.what != "inference" && o.what != "allreduce")
    throw_input("expected all, optimizer, nf4, dropout, kernels, step, inference or allreduce, found \"{}\"", o.what);
  if (shape != "base" && shape != "tiny") throw_input("--shape: expected base or tiny, found \"{}\"", shape);
  if (o.repeats < 1 || o.steps < 1) throw_input("--repeats and --steps must be at least 1");
  if (o.batch < 0 || o.seq < 0) throw_input("--batch and --seq must be >= 0 (0: the default)");
  if (o.precision != "auto" && o.precision != "fp32" && o.precision != "bf16")
    throw_input("--precision: expected auto, fp32 or bf16, found \"{}\"", o.precision);
  if (o.task != "cls" && o.task != "mlm") throw_input("--task: expected cls or mlm, found \"{}\"", o.task);
  (void)adapters::parse_method(o.method);  // names the accepted methods when wrong
  if (o.sparsity < 0 || o.sparsity >= 1) throw_input("--sparsity: expected a value in [0, 1), found {}", o.sparsity);
  if (o.threads < 0) throw_input("--threads must be >= 0 (0: every allowed core)");
  if (o.rank < 1) throw_input("--rank must be >= 1, found {}", o.rank);
  o.targets.clear();
  for (std::size_t at = 0; at <= targets.size();) {
    const auto comma = std::min(targets.find(',', at), targets.size());
    if (comma == at) throw_input("--targets: expected comma-separated linear names, found \"{}\"", targets);
    o.targets.push_back(targets.substr(at, comma - at));
    at = comma + 1;
  }
  o.sgemm = vm.count("no-sgemm") == 0;
  if (o.quick) shape = "tiny", o.repeats = std::min(o.repeats, 2), o.steps = std::min(o.steps, 2);
  o.device = train::resolve_device(device);
  torch::set_num_threads(o.threads > 0 ? o.threads : train::threads_per_rank(1));
  const auto config = shape == "base" ? model::DistilBertConfig{} : model::DistilBertConfig::tiny(1000, 512);  // 512 positions: seq 256 fits
  if (o.what != "allreduce")  // (every rank would print it)
    std::cout << cli::version_banner() << ", " << torch::get_num_threads() << " threads, shape " << shape << "\n";
  if (o.what == "all" || o.what == "optimizer") bench_optimizer(o, config);
  if (o.what == "all" || o.what == "nf4") bench_nf4(o, config);
  if (o.what == "all" || o.what == "dropout") bench_dropout(o, config);
  if (o.what == "all" || o.what == "kernels") bench_kernels(o, config);
  if (o.what == "all" || o.what == "step") bench_step(o, config);
  if (o.what == "all" || o.what == "inference") bench_inference(o, config);
  if (o.what == "allreduce") bench_allreduce(o, config);
  return 0;
}

}  // namespace
}  // namespace peft::bench

int main(int argc, char** argv) {
  peft::restart_for_fitting_openblas_core(argv);  // core/blas_core.h
  std::vector<std::string> args(argv + 1, argv + argc);
  return peft::cli::run_guarded("peft-bench", [&] { return peft::bench::run(args); });
}
