#include "train/trial_runner.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <map>
#include <mutex>

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include "adapters/adapter.h"
#include "adapters/method.h"
#include "adapters/model_ops.h"
#include "adapters/peft_config.h"
#include "adapters/peft_io.h"
#include "core/error.h"
#include "core/tiny_preset.h"
#include "core/vocab_path.h"
#include "core/memory.h"
#include "data/dataset.h"
#include "data/synthetic_lexicon.h"
#include "model/autocast.h"
#include "model/checkpoint.h"
#include "model/nf4_linear.h"
#include "train/device.h"
#include "train/task_source.h"

namespace peft::train {
namespace fs = std::filesystem;
namespace {

using Clock = std::chrono::steady_clock;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

/// Tasks are tokenised once per process and shared by the trials that use them.
const data::Task& cached_task(const data::TaskSpec& spec) {
  static std::map<std::string, std::unique_ptr<data::Task>> cache;
  static std::mutex mu;
  const std::string key = fmt::format("{}|{}|{}|{}|{}|{}|{}|{}", spec.name, spec.path, spec.vocab_path, spec.max_length,
                                      spec.block_size, spec.max_train, spec.max_eval, spec.seed);
  std::lock_guard lock(mu);
  auto it = cache.find(key);
  if (it == cache.end()) it = cache.emplace(key, std::make_unique<data::Task>(data::load_task(spec))).first;
  return *it->second;
}

data::TaskSpec task_spec(const TrialSpec& spec, const std::string& vocab_path) {
  data::TaskSpec t;
  t.name = spec.dataset.name;
  t.path = spec.dataset.path;
  t.vocab_path = vocab_path;
  t.max_length = static_cast<int>(spec.dataset.max_length);
  t.block_size = static_cast<int>(spec.dataset.block_size);
  const bool synthetic = t.name.rfind("synthetic", 0) == 0;
  t.max_train = synthetic ? spec.dataset.synthetic_train : spec.dataset.max_train;
  t.max_eval = synthetic ? spec.dataset.synthetic_eval : spec.dataset.max_eval;
  // The data itself must not vary with the trial seed (only the order and the init do):
  // a fixed generation seed keeps trials comparable.
  t.seed = 12345;
  return t;
}

adapters::MethodConfig method_config(const TrialSpec& spec, int64_t total_steps, bool train_mlm_head) {
  const auto& m = spec.method;
  adapters::MethodConfig c;
  c.method = adapters::parse_method(m.method);
  c.rank = m.rank;
  c.alpha = m.alpha;
  c.dropout = m.dropout;
  c.use_rslora = m.rslora;
  c.targets = adapters::TargetSpec::from_list(m.targets, m.layers);
  c.hira_scale = m.hira_scale;
  c.train_mlm_head = train_mlm_head;
  auto& s = c.sparse;
  s.l1_lambda = m.l1;
  s.l1_proximal = m.l1_proximal;
  s.granularity = m.structured ? adapters::PruneGranularity::Structured : adapters::PruneGranularity::Unstructured;
  if (c.method == adapters::Method::SparseLoRA && m.sparsity > 0) {
    s.target_sparsity = m.sparsity;
    const auto at = [&](double frac) { return std::clamp<int64_t>(std::llround(frac * static_cast<double>(total_steps)), 1, std::max<int64_t>(1, total_steps)); };
    if (m.prune_schedule == "oneshot" || m.prune_schedule == "one_shot") {
      s.schedule = adapters::PruneSchedule::OneShot;
      s.prune_step = at(m.prune_start);
    } else {
      s.schedule = adapters::PruneSchedule::Cubic;
      s.start_step = at(m.prune_start);
      s.end_step = std::max(s.start_step, at(m.prune_end));
      s.every = std::max<int64_t>(1, m.prune_every);
    }
  }
  c.validate();
  return c;
}

int64_t model_bytes(model::DistilBert& m) {
  int64_t bytes = 0;
  for (auto& p : m.parameters(true)) bytes += static_cast<int64_t>(p.nbytes());
  for (auto& b : m.buffers(true)) bytes += static_cast<int64_t>(b.nbytes());
  return bytes;
}

double median(std::vector<double> v) {
  if (v.empty()) return kNaN;
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

struct InferenceStats {
  double ms_batch1 = kNaN, samples_per_second = kNaN;
  torch::Tensor probe;  // outputs on the first batch, to compare merged with unmerged
};

/// Latency at batch 1 and throughput at `batch`, after warm-up, median of `repeats`.
InferenceStats measure_inference(model::DistilBert& m, TaskKind kind, BatchSource& data, const torch::Device& dev,
                                 int64_t batch, int64_t repeats) {
  torch::NoGradGuard g;
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

/// methods.qlora.compute_dtype as it runs: "auto" follows the precision; float16 needs a GPU.
c10::ScalarType qlora_compute_dtype(const std::string& setting, bool bf16, const torch::Device& device) {
  if (setting == "auto" || setting.empty()) return bf16 ? torch::kBFloat16 : torch::kFloat32;
  if (setting == "float32") return torch::kFloat32;
  if (setting == "bfloat16") return torch::kBFloat16;
  if (setting == "float16") {
    if (!device.is_cuda())
      throw_input("methods.qlora.compute_dtype = \"float16\" needs a GPU (LibTorch's CPU matmuls have no fp16); use \"bfloat16\" or \"float32\"");
    return torch::kHalf;
  }
  throw_input("methods.qlora.compute_dtype must be auto, float32, bfloat16 or float16 (found \"{}\")", setting);
}

/// A file lock (flock) held for the object's lifetime.
class FileLock {
 public:
  explicit FileLock(const std::string& path) {
    fd_ = ::open(path.c_str(), O_CREAT | O_RDWR, 0644);
    if (fd_ < 0) throw_runtime("{}: cannot open lock file", path);
    ::flock(fd_, LOCK_EX);
  }
  ~FileLock() {
    if (fd_ >= 0) {
      ::flock(fd_, LOCK_UN);
      ::close(fd_);
    }
  }

 private:
  int fd_ = -1;
};

std::vector<model::Head> heads_for(TaskKind kind) {
  return {kind == TaskKind::Classification ? model::Head::Classifier : model::Head::MLM};
}

}  // namespace

int64_t cast_frozen_linears(model::DistilBert& m, c10::ScalarType dtype) {
  torch::NoGradGuard g;
  int64_t n = 0;
  for (auto& slot : m.linear_slots()) {
    std::shared_ptr<model::LinearBase> l = slot.get();
    if (auto a = std::dynamic_pointer_cast<adapters::AdapterLinear>(l)) l = a->base();
    auto dense = std::dynamic_pointer_cast<model::DenseLinear>(l);
    if (!dense || dense->weight_param().requires_grad()) continue;
    dense->weight_param().set_data(dense->weight_param().to(dtype));
    if (dense->bias_param().defined() && !dense->bias_param().requires_grad())
      dense->bias_param().set_data(dense->bias_param().to(dtype));
    n += dense->weight_param().numel();
  }
  return n;
}


std::string ensure_pretrained_tiny(const ModelSettings& settings, uint64_t seed) {
  const auto vocab = data::synthetic_vocab();
  const std::string dir =
      (fs::path(settings.cache_dir) / fmt::format("tiny-mlm-v{}-s{}-seed{}", vocab.size(), settings.pretrain_steps, seed)).string();
  if (fs::exists(fs::path(dir) / "model.safetensors")) return dir;
  fs::create_directories(settings.cache_dir);
  FileLock lock((fs::path(settings.cache_dir) / ".pretrain.lock").string());
  if (fs::exists(fs::path(dir) / "model.safetensors")) return dir;  // another process made it

  spdlog::info("pretraining the tiny base with MLM on the synthetic corpus ({} steps), cached in {}", settings.pretrain_steps, dir);
  TrialSpec pre;
  pre.model.preset = "tiny";
  pre.method.method = "full";
  pre.dataset.name = "synthetic_mlm";
  pre.dataset.block_size = 32;
  pre.dataset.synthetic_train = 4000;
  pre.dataset.synthetic_eval = 200;
  pre.train.max_steps = settings.pretrain_steps;
  pre.train.batch_size = 64;
  pre.train.lr = 1e-3;
  pre.train.warmup_ratio = 0.05;
  pre.train.device = "cpu";
  pre.seed = seed;
  const auto& task = cached_task(task_spec(pre, ""));
  auto m = std::make_shared<model::DistilBert>(model::DistilBertConfig::tiny(static_cast<int64_t>(vocab.size())),
                                               std::vector<model::Head>{model::Head::MLM});
  m->init_weights(seed);
  m->init_head(model::Head::MLM, true, seed + 1);
  for (auto& p : m->parameters(true)) p.set_requires_grad(true);
  m->embeddings->position_embeddings->weight.set_requires_grad(!m->config().sinusoidal_pos_embds);
  std::vector<std::pair<std::string, torch::Tensor>> params;
  for (auto& p : m->named_parameters(true))
    if (p.value().requires_grad()) params.emplace_back(p.key(), p.value());
  LocalGradSync local;
  Trainer trainer(*m, TaskKind::MLM, Trainer::decay_groups("all", params, pre.train.lr, pre.train.weight_decay), pre.train, {},
                  local, torch::kCPU, seed);
  TaskSource source(task);
  TrialResult r;
  trainer.fit(source, r);
  spdlog::info("tiny base pretrained: MLM loss {:.3f} → {:.3f}, eval perplexity {:.2f}", r.train_loss.front(), r.train_loss.back(),
               r.eval_perplexity.empty() ? kNaN : r.eval_perplexity.back());
  const std::string tmp = dir + ".tmp." + std::to_string(::getpid());
  model::save_pretrained(*m, tmp);
  fs::rename(tmp, dir);
  return dir;
}

TrialResult run_trial(const TrialSpec& spec, RunContext& ctx) {
  TrialResult result;
  result.id = spec.id;
  LocalGradSync local;
  GradSync& sync = ctx.sync ? *ctx.sync : local;
  const auto wall0 = Clock::now();
  try {
    const torch::Device device = resolve_device(spec.train.device, ctx.local_rank);
    // ---- data
    const bool tiny = spec.model.preset == "tiny";
    if (!tiny && spec.model.checkpoint.empty()) throw_input("trial {}: model needs a checkpoint or preset = \"tiny\"", spec.id);
    std::string vocab_path;
    if (!tiny) {
      vocab_path = find_vocab(spec.model.checkpoint);
      if (vocab_path.empty()) throw_input("{}: no vocab.txt or tokenizer.json in the checkpoint folder", spec.model.checkpoint);
    } else if (!spec.model.vocab.empty()) {
      // The tiny model's vocabulary (and embedding size) for every data set, as a checkpoint's.
      vocab_path = resolve_vocab(spec.model.vocab);
      if (vocab_path.empty())
        throw_input("model.vocab: '{}' is neither a vocab.txt / tokenizer.json file nor a folder holding one", spec.model.vocab);
    }
    const data::Task& task = cached_task(task_spec(spec, vocab_path));
    TaskSource source(task, device);
    const TaskKind kind = source.kind();
    const auto heads = heads_for(kind);

    // The trial's numerics: precision ("auto" is normally resolved before the id) and QLoRA's
    // compute dtype ("auto": the precision's, as HF users set bnb_4bit_compute_dtype).
    const bool bf16 = resolve_precision(spec.train.precision, device) == "bf16";
    const c10::ScalarType nf4_dtype = qlora_compute_dtype(spec.method.compute_dtype, bf16, device);
    // ---- base model
    std::shared_ptr<model::DistilBert> m;
    bool head_fresh = true;
    model::LoadOptions lo;
    lo.heads = heads;
    lo.torch_default_head_init = tiny;  // with N(0, 0.02) heads the pre_classifier ReLUs die on a random base (accuracy stays 0.50)
    lo.seed = spec.seed;
    if (tiny) {
      const int64_t vocab = static_cast<int64_t>(task.tokenizer->vocab_size());
      if (spec.model.pretrain) {
        if (vocab != static_cast<int64_t>(data::synthetic_vocab().size()))
          throw_input("model.pretrain works with the synthetic vocabulary only (dataset {} has {} tokens)", spec.dataset.name, vocab);
        model::LoadReport rep;
        m = model::load_pretrained(ensure_pretrained_tiny(spec.model, 1), lo, &rep);
        head_fresh = !rep.newly_initialised.empty();
      } else {
        m = std::make_shared<model::DistilBert>(model::DistilBertConfig::tiny(vocab, tiny_max_positions(spec.model)), heads);
        m->init_weights(1);  // the same base for every trial; the seed varies adapters and order
        m->init_head(heads[0], true, spec.seed);
      }
    } else {
      model::LoadReport rep;
      m = model::load_pretrained(spec.model.checkpoint, lo, &rep);
      head_fresh = !rep.newly_initialised.empty();
      if (kind == TaskKind::Classification && m->config().num_labels() != task.num_labels)
        throw_input("{}: the checkpoint has {} labels, dataset {} has {}", spec.model.checkpoint, m->config().num_labels(),
                    spec.dataset.name, task.num_labels);
    }

    // ---- method
    const int64_t per_epoch = source.batches_per_epoch(spec.train.batch_size);
    const int64_t total_steps = spec.train.max_steps > 0 ? spec.train.max_steps : spec.train.epochs * per_epoch;
    const bool train_mlm_head = kind == TaskKind::MLM && head_fresh;
    auto mc = method_config(spec, total_steps, train_mlm_head);
    torch::manual_seed(spec.seed);  // adapter initialisation
    adapters::BaseTransform quantize;
    if (mc.method == adapters::Method::QLoRA)
      quantize = [nf4_dtype](std::shared_ptr<model::LinearBase> base, const model::LinearSlot&) -> std::shared_ptr<model::LinearBase> {
        auto dense = std::dynamic_pointer_cast<model::DenseLinear>(base);
        PEFT_CHECK(dense, "QLoRA expects dense base layers");
        auto q = std::make_shared<model::NF4Linear>(dense->weight_param(), dense->bias_param());
        q->set_compute_dtype(nf4_dtype);
        return q;
      };
    auto applied = adapters::apply_method(*m, mc, heads[0], quantize);
    m->to(device);
    // Under bf16 the frozen encoder linears are held in bf16, as HF users load a base with
    // torch_dtype=bfloat16: autocast then casts nothing on every forward, and they take half
    // the memory. Trainable weights stay fp32 (the optimizer's master copies).
    if (bf16) result.metrics["bf16_frozen_params"] = static_cast<double>(cast_frozen_linears(*m, torch::kBFloat16));

    // ---- parameter groups: adapters at lr, heads at head_lr; no decay on biases / LayerNorm
    const double head_lr = spec.train.head_lr > 0 ? spec.train.head_lr : spec.train.lr;
    std::vector<std::pair<std::string, torch::Tensor>> adapter_params, head_params;
    for (auto& p : m->named_parameters(true)) {
      if (!p.value().requires_grad()) continue;
      const bool is_head = p.key().rfind(m->base_prefix(), 0) != 0;
      (is_head && mc.method != adapters::Method::Full ? head_params : adapter_params).emplace_back(p.key(), p.value());
    }
    auto groups = Trainer::decay_groups("adapters", adapter_params, spec.train.lr, spec.train.weight_decay);
    for (auto& g : Trainer::decay_groups("heads", head_params, head_lr, spec.train.weight_decay)) groups.push_back(std::move(g));
    if (groups.empty()) throw_input("trial {}: method {} leaves nothing trainable", spec.id, spec.method.method);

    model::DistilBert* mp = m.get();
    MethodHooks hooks;
    hooks.penalty = [mp] { return adapters::total_penalty(*mp); };
    const double lr = spec.train.lr;
    // The proximal L1 step shrinks by the learning rate of this step (the schedule's).
    hooks.after_optimizer_step = [mp, lr](int64_t step, int64_t, double scale) {
      adapters::after_optimizer_step(*mp, step + 1, lr * scale);
    };

    // ---- train
    reset_peak_memory(device);
    Trainer trainer(*m, kind, std::move(groups), spec.train, hooks, sync, device, spec.seed);
    auto stats = trainer.fit(source, result, ctx.stop, ctx.progress, ctx.on_eval);
    const int64_t peak = peak_memory_bytes(device);
    if (stats.interrupted) {
      result.status = "interrupted";
      result.error = "stopped by a signal before the trial finished";
    }

    // ---- measurements
    auto counts = adapters::count_parameters(*m);
    int64_t quantized_params = 0;
    for (auto& slot : m->linear_slots()) {
      std::shared_ptr<model::LinearBase> l = slot.get();
      for (auto& child : l->modules(/*include_self=*/true))
        if (auto q = std::dynamic_pointer_cast<model::NF4Linear>(child)) quantized_params += q->in_features() * q->out_features();
    }
    auto& mt = result.metrics;
    mt["train_seconds"] = stats.train_seconds;
    mt["train_steps"] = static_cast<double>(stats.steps);
    mt["samples_per_second"] = stats.train_seconds > 0 ? static_cast<double>(stats.samples) / stats.train_seconds : kNaN;
    mt["tokens_per_second"] = stats.train_seconds > 0 ? static_cast<double>(stats.tokens) / stats.train_seconds : kNaN;
    mt["peak_memory_bytes"] = static_cast<double>(peak);
    // AdamW states (+ staging and scratch) on the trial's device and in host memory.
    mt["optimizer_device_bytes"] = static_cast<double>(trainer.optimizer().device_bytes());
    mt["optimizer_host_bytes"] = static_cast<double>(trainer.optimizer().host_bytes());
    mt["trainable_params"] = static_cast<double>(counts.trainable);
    mt["total_params"] = static_cast<double>(counts.total + quantized_params);
    mt["adapter_params"] = static_cast<double>(counts.adapter);
    mt["nonzero_adapter_params"] = static_cast<double>(counts.adapter_nonzero);
    mt["model_bytes"] = static_cast<double>(model_bytes(*m));
    const bool has_eval = !result.eval_step.empty();
    mt["accuracy"] = has_eval ? result.eval_accuracy.back() : kNaN;
    mt["f1"] = has_eval ? result.eval_f1.back() : kNaN;
    mt["perplexity"] = has_eval ? result.eval_perplexity.back() : kNaN;
    mt["eval_loss"] = has_eval ? result.eval_loss.back() : kNaN;
    mt["final_train_loss"] = result.train_loss.empty() ? kNaN : result.train_loss.back();
    // The last evaluation of fit() already scored the contrast subset: no second pass.
    if (kind == TaskKind::Classification && !stats.diverged) mt["contrast_accuracy"] = trainer.last_eval().contrast_accuracy;
    auto sp = adapters::sparsity_report(*m);
    if (sp.total > 0) {
      mt["adapter_sparsity"] = sp.sparsity();
      for (const auto& t : sp.tensors) result.sparsity[t.name] = {t.nonzero, t.total};
    }

    if (ctx.measure_inference && result.status == "complete") {
      const int64_t reps = std::max<int64_t>(1, spec.train.inference_repeats);
      model::AutocastGuard autocast(device, bf16);  // inference in the trial's precision
      auto un = measure_inference(*m, kind, source, device, spec.train.inference_batch, reps);
      mt["inference_ms_batch1_unmerged"] = un.ms_batch1;
      mt["inference_samples_per_second_unmerged"] = un.samples_per_second;
      const bool mergeable = !applied.adapters.empty() && mc.method != adapters::Method::QLoRA;
      if (mergeable) {
        adapters::merge_all(*m);
        auto me = measure_inference(*m, kind, source, device, spec.train.inference_batch, reps);
        mt["inference_ms_batch1_merged"] = me.ms_batch1;
        mt["inference_samples_per_second_merged"] = me.samples_per_second;
        mt["merge_max_abs_diff"] = (me.probe - un.probe).abs().max().item<double>();
        adapters::unmerge_all(*m);
      } else {
        // No adapters (full/head) or no dense weight to merge into (NF4): the model as it runs.
        mt["inference_ms_batch1_merged"] = applied.adapters.empty() ? un.ms_batch1 : kNaN;
        mt["inference_samples_per_second_merged"] = applied.adapters.empty() ? un.samples_per_second : kNaN;
        mt["merge_max_abs_diff"] = applied.adapters.empty() ? 0.0 : kNaN;
      }
    }

    if (spec.train.save_adapter && sync.rank() == 0 && result.status == "complete" && !applied.adapters.empty()) {
      const std::string dir = (fs::path(spec.train.adapter_dir.empty() ? "adapters" : spec.train.adapter_dir) / spec.id).string();
      adapters::save_adapter(*m, adapters::PeftAdapterConfig::from_method(mc, heads[0], m->family()), dir);
      spdlog::info("trial {}: adapter saved to {}", spec.id, dir);
    }
  } catch (const std::exception& e) {
    result.status = "failed";
    result.error = e.what();
  }
  result.wall_seconds = std::chrono::duration<double>(Clock::now() - wall0).count();
  return result;
}

}  // namespace peft::train
