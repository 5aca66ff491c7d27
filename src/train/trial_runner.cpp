#include "train/trial_runner.h"

#include <chrono>
#include <filesystem>
#include <limits>

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include "adapters/adapter.h"
#include "adapters/method.h"
#include "adapters/model_ops.h"
#include "adapters/peft_config.h"
#include "adapters/peft_io.h"
#include "core/error.h"
#include "core/memory.h"
#include "core/tiny_preset.h"
#include "core/vocab_path.h"
#include "data/synthetic_lexicon.h"
#include "model/autocast.h"
#include "model/cpu_kernels.h"
#include "model/checkpoint.h"
#include "model/nf4_linear.h"
#include "train/device.h"
#include "train/inference_bench.h"
#include "train/method_setup.h"
#include "train/task_cache.h"
#include "train/task_source.h"
#include "train/tiny_base.h"
#include "train/trial_checkpoint.h"

namespace peft::train {
namespace fs = std::filesystem;
namespace {

using Clock = std::chrono::steady_clock;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

std::vector<model::Head> heads_for(TaskKind kind) {
  return {kind == TaskKind::Classification ? model::Head::Classifier : model::Head::MLM};
}

}  // namespace

TrialResult run_trial(const TrialSpec& spec, RunContext& ctx) {
  TrialResult result;
  result.id = spec.id;
  LocalGradSync local;
  GradSync& sync = ctx.sync ? *ctx.sync : local;
  const auto wall0 = Clock::now();
  try {
    tune_heap_for_steps();  // before the model's weights: every step reuses its blocks (core/memory.h)
    model::own_cpu_kernels();  // PEFT_CPU_KERNELS checked before any work (model/cpu_kernels.h)
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
    const auto quantize = mc.method == adapters::Method::QLoRA ? nf4_base_transform(nf4_dtype) : adapters::BaseTransform{};
    auto applied = adapters::apply_method(*m, mc, heads[0], quantize);
    m->to(device);
    // Under bf16 the frozen encoder linears are held in bf16, as HF users load a base with
    // torch_dtype=bfloat16: autocast then casts nothing on every forward, and they take half
    // the memory. Trainable weights stay fp32 (the optimizer's master copies).
    if (bf16) result.metrics["bf16_frozen_params"] = static_cast<double>(cast_frozen_linears(*m, torch::kBFloat16));

    // ---- parameter groups: adapters at lr, heads at head_lr; no decay on biases / LayerNorm
    auto groups = parameter_groups(*m, mc.method, spec);
    const MethodHooks hooks = method_hooks(*m, spec.train.lr);

    // ---- train
    reset_peak_memory(device);
    Trainer trainer(*m, kind, std::move(groups), spec.train, hooks, sync, device, spec.seed);
    if (!ctx.checkpoint_dir.empty()) {
      if (!ctx.resume && sync.rank() == 0) remove_checkpoints(ctx.checkpoint_dir);  // an earlier run's
      trainer.set_checkpointing({ctx.checkpoint_dir, spec.id, ctx.resume});
    }
    auto stats = trainer.fit(source, result, ctx.stop, ctx.progress, ctx.on_eval);
    const int64_t peak = peak_memory_bytes(device);
    if (stats.interrupted) {
      result.status = "interrupted";
      result.interrupted_step = stats.steps;
      result.error = fmt::format("stopped by a signal at step {} of {}", stats.steps, trainer.total_steps(source));
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
    // The best evaluation too (highest accuracy, or lowest perplexity for MLM; the first of
    // equals): accuracy, f1, perplexity and eval_loss above are the last evaluation's.
    if (has_eval) {
      std::size_t best = 0;
      for (std::size_t i = 1; i < result.eval_step.size(); ++i) {
        const bool better = kind == TaskKind::Classification ? result.eval_accuracy[i] > result.eval_accuracy[best]
                                                             : result.eval_loss[i] < result.eval_loss[best];
        if (better) best = i;
      }
      mt["best_accuracy"] = result.eval_accuracy[best];
      mt["best_f1"] = result.eval_f1[best];
      mt["best_perplexity"] = result.eval_perplexity[best];
      mt["best_eval_loss"] = result.eval_loss[best];
      mt["best_step"] = static_cast<double>(result.eval_step[best]);
    }
    mt["checkpoints_written"] = static_cast<double>(stats.checkpoints);
    mt["resumed_from_step"] = static_cast<double>(stats.resumed_from);
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
