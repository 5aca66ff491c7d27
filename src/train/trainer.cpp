#include "train/trainer.h"

#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <exception>
#include <optional>
#include <unordered_set>

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include "core/error.h"
#include "core/memory.h"
#include "model/autocast.h"
#include "train/device.h"
#include "train/metrics.h"
#include "train/schedule.h"
#include "train/trial_checkpoint.h"

namespace peft::train {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

bool no_decay(const std::string& name) {
  // transformers' convention: no weight decay for biases and LayerNorm weights.
  return name.size() >= 4 && (name.rfind("bias") == name.size() - 4 || name.find("LayerNorm") != std::string::npos ||
                              name.find("layer_norm") != std::string::npos);
}

// The tail of the flat gradient buffer: loss sum, count, stop flag, failure flag, and the
// "checkpoint now" flag of a time-based checkpoint (rank 0's clock decides for the group).
constexpr int64_t kTail = 5;
constexpr int64_t kLoss = 0, kCount = 1, kStop = 2, kFail = 3, kCkpt = 4;

/// PEFT_TEST_FAULT="rank=R,step=S[,what=throw|data|setup|stop]" (tests only): group rank R
/// fails at training step S (throw: an exception in the step; data: an unreadable batch;
/// setup: before training starts, step ignored; stop: a SIGTERM to this rank only; kill: a
/// SIGKILL to this rank, as a preempted or crashed node). It fires
/// once per process, in the first trial that reaches it.
struct TestFault {
  int rank = -1;
  int64_t step = -1;
  std::string what = "throw";
};

std::optional<TestFault> test_fault() {
  const char* env = std::getenv("PEFT_TEST_FAULT");
  if (!env || !*env) return std::nullopt;
  TestFault f;
  std::string text(env);
  for (std::size_t p = 0; p <= text.size();) {
    const std::size_t q = std::min(text.find(',', p), text.size());
    const std::string item = text.substr(p, q - p);
    const std::size_t eq = item.find('=');
    const std::string key = item.substr(0, eq), value = eq == std::string::npos ? "" : item.substr(eq + 1);
    try {
      if (key == "rank") f.rank = std::stoi(value);
      else if (key == "step") f.step = std::stoll(value);
      else if (key == "what" && (value == "throw" || value == "data" || value == "setup" || value == "stop" || value == "kill")) f.what = value;
      else throw std::invalid_argument(key);
    } catch (const std::logic_error&) {
      throw_input("PEFT_TEST_FAULT=\"{}\": bad item \"{}\" (expected rank=R,step=S[,what=throw|data|setup|stop|kill])", text, item);
    }
    p = q + 1;
  }
  if (f.rank < 0 || (f.step < 0 && f.what != "setup"))
    throw_input("PEFT_TEST_FAULT=\"{}\": rank and step are required (rank=R,step=S[,what=...])", text);
  return f;
}

bool g_fault_fired = false;

/// The flat indices of the MLM labels that count (not -100). `labels` should be on the host,
/// where this costs no device synchronisation (the data sources' batches are).
torch::Tensor masked_positions(const torch::Tensor& labels) {
  return (labels.reshape({-1}) != -100).nonzero().reshape({-1});
}

/// Sum of the masked-token cross-entropy with the vocabulary logits computed at the masked
/// positions only (15 % of the rows at BERT's masking rate), not at every position: the
/// projection onto 30,522 words is most of an MLM step's head cost and memory.
torch::Tensor mlm_loss_sum(model::DistilBert& m, const torch::Tensor& hidden, const torch::Tensor& labels,
                           const torch::Tensor& positions) {
  auto h = hidden.reshape({-1, hidden.size(-1)}).index_select(0, positions);
  auto logits = m.mlm_head(h).to(torch::kFloat32);
  return torch::nn::functional::cross_entropy(logits, labels.reshape({-1}).index_select(0, positions),
                                              torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum));
}

}  // namespace

Trainer::Trainer(model::DistilBert& model, TaskKind kind, std::vector<ParamGroup> groups, TrainSettings settings,
                 MethodHooks hooks, GradSync& sync, torch::Device device, uint64_t seed)
    : model_(model), kind_(kind), groups_(std::move(groups)), settings_(std::move(settings)), hooks_(std::move(hooks)),
      sync_(sync), device_(device), seed_(seed) {
  tune_heap_for_steps();  // the step's activations are reused from the heap, not faulted in again (core/memory.h)
  bf16_ = resolve_precision(settings_.precision, device_) == "bf16";
  if (settings_.optimizer != "adamw" && settings_.optimizer != "paged_adamw")
    throw_input("train.optimizer: expected \"adamw\" or \"paged_adamw\", found \"{}\"", settings_.optimizer);

  // Every trainable parameter becomes a view into one flat buffer (its values copied in, the
  // parameter object kept, so modules and adapters see the same tensor), its .grad a view into
  // another. Groups are contiguous ranges of both. A parameter listed twice counts once.
  std::unordered_set<const void*> seen;
  int64_t total = 0;
  for (auto& g : groups_) {
    std::vector<torch::Tensor> unique;
    for (auto& p : g.params) {
      PEFT_CHECK(p.requires_grad(), "parameter in group {} does not require grad", g.name);
      PEFT_CHECK(p.scalar_type() == torch::kFloat32, "trainable parameters must be fp32 (master weights)");
      PEFT_CHECK(p.device() == device_, "trainable parameter on {}, the trainer runs on {}", p.device().str(), device_.str());
      if (seen.insert(p.unsafeGetTensorImpl()).second) unique.push_back(p), total += p.numel();
    }
    g.params = std::move(unique);
  }
  const auto f32 = torch::TensorOptions().dtype(torch::kFloat32).device(device_);
  flat_params_ = torch::empty({total}, f32);
  // [gradients..., loss sum, count, stop flag, failure flag]: the step's one all-reduce carries
  // the signals and the failures of the group too (kTail slots after the gradients).
  flat_grad_ = torch::zeros({total + kTail}, f32);
  grads_ = flat_grad_.narrow(0, 0, total);
  loss_slot_ = flat_grad_.narrow(0, total, 1);
  count_slot_ = flat_grad_.narrow(0, total + 1, 1);
  clip_scale_ = torch::zeros({}, f32);
  std::vector<AdamWGroup> adam_groups;
  int64_t offset = 0;
  torch::NoGradGuard no_grad;
  for (auto& g : groups_) {
    AdamWGroup ag{offset, 0, g.lr, g.weight_decay};
    for (auto& p : g.params) {
      auto values = flat_params_.narrow(0, offset, p.numel()).view(p.sizes());
      values.copy_(p);
      p.set_data(values);
      p.mutable_grad() = grads_.narrow(0, offset, p.numel()).view(p.sizes());
      offset += p.numel();
    }
    ag.numel = offset - ag.offset;
    if (ag.numel > 0) adam_groups.push_back(ag);
  }
  AdamWOptions opts;
  opts.paged = settings_.optimizer == "paged_adamw";
  if (opts.paged && !device_.is_cuda())
    spdlog::info("train.optimizer = \"paged_adamw\" on {}: the states are in host memory already; paging only adds copies",
                 device_.str());
  optimizer_ = std::make_unique<FlatAdamW>(flat_params_, flat_grad_, std::move(adam_groups), opts);

  if (hooks_.gradient_masks) {
    auto masks = hooks_.gradient_masks();
    if (!masks.empty()) {
      flat_mask_ = torch::ones({total}, f32);
      const float* base = flat_params_.data_ptr<float>();
      for (auto& [param, mask] : masks) {
        const int64_t at = static_cast<const float*>(param.data_ptr()) - base;
        PEFT_CHECK(at >= 0 && at + param.numel() <= total && mask.sizes() == param.sizes() && mask.device() == device_,
                   "gradient mask of a tensor that is not a trainable parameter of this trainer (or of another shape)");
        auto view = flat_mask_.narrow(0, at, param.numel()).view(param.sizes());
        view.copy_(mask);
        mask.set_data(view);  // the method's mask tensor is now this view: its pruning updates it in place
      }
      optimizer_->set_state_mask(flat_mask_);
    }
  }
}

Trainer::~Trainer() = default;

std::vector<ParamGroup> Trainer::decay_groups(const std::string& name,
                                              const std::vector<std::pair<std::string, torch::Tensor>>& params,
                                              double lr, double weight_decay) {
  ParamGroup decay{name + ".decay", {}, lr, weight_decay}, plain{name + ".no_decay", {}, lr, 0.0};
  for (const auto& [n, p] : params) (no_decay(n) ? plain : decay).params.push_back(p);
  std::vector<ParamGroup> out;
  if (!decay.params.empty()) out.push_back(std::move(decay));
  if (!plain.params.empty()) out.push_back(std::move(plain));
  return out;
}

int64_t Trainer::total_steps(BatchSource& data) const {
  if (settings_.max_steps > 0) return settings_.max_steps;
  return settings_.epochs * data.batches_per_epoch(settings_.batch_size);
}

torch::Tensor Trainer::loss_sum(const Batch& b) {
  auto hidden = model_.hidden_states(b.ids, b.mask);
  if (kind_ == TaskKind::MLM) return mlm_loss_sum(model_, hidden, b.labels, b.positions);
  torch::Tensor logits = model_.classifier_head(hidden).to(torch::kFloat32);
  auto loss = torch::nn::functional::cross_entropy(
      logits.reshape({-1, logits.size(-1)}), b.labels.reshape({-1}),
      torch::nn::functional::CrossEntropyFuncOptions().ignore_index(-100).reduction(torch::kSum));
  return loss;
}

FitStats Trainer::fit(BatchSource& data, TrialResult& result, const std::function<bool()>& stop,
                      const std::function<void(const Progress&)>& progress,
                      const std::function<void(const EvalEvent&)>& on_eval) {
  FitStats stats;
  on_eval_ = on_eval ? &on_eval : nullptr;
  const int64_t per_epoch = data.batches_per_epoch(settings_.batch_size);
  if (per_epoch <= 0)
    throw_input("the training split ({} examples) is smaller than one batch of {}", data.train_examples(), settings_.batch_size);
  const int64_t total = total_steps(data);
  total_ = total;
  const int64_t accum = std::max<int64_t>(1, settings_.grad_accum);
  if (settings_.batch_size % (static_cast<int64_t>(sync_.size()) * accum) != 0)
    throw_input("train.batch_size = {} does not split into train.grad_accum = {} micro-batches on each of {} ranks",
                settings_.batch_size, accum, sync_.size());
  const int64_t warmup = static_cast<int64_t>(std::ceil(settings_.warmup_ratio * static_cast<double>(total)));
  const int dp = sync_.size(), rank = sync_.rank();
  const int64_t log_every = std::max<int64_t>(1, total / 200);
  std::vector<double> base_lr;
  for (auto& g : groups_) base_lr.push_back(g.lr);

  const auto fault = test_fault();
  auto fault_at = [&](int64_t s, const char* what) {
    if (!fault || g_fault_fired || fault->rank != rank || fault->what != what || (s >= 0 && fault->step != s)) return false;
    g_fault_fired = true;
    return true;
  };
  if (fault_at(-1, "setup")) throw std::runtime_error(fmt::format("PEFT_TEST_FAULT: injected failure before training on rank {}", rank));
  // Start-of-training agreement: a rank that failed while setting the trial up makes the same
  // collective from the driver, so nobody enters the step all-reduces alone.
  if (dp > 1) {
    const int failing = sync_.agree_failure(false);
    if (failing >= 0) {
      sync_.set_peer_failure();
      throw std::runtime_error(fmt::format("rank {} of the data-parallel group failed before training", failing));
    }
  }

  torch::manual_seed(seed_ * 1000003ULL + static_cast<uint64_t>(rank));  // dropout / adapter dropout
  model_.train();
  double train_time = 0;
  int64_t step = 0;
  double loss_acc = 0;
  int64_t loss_n = 0;
  const int64_t eval_every = settings_.eval_every;

  // Mid-trial checkpoints: continue from the latest one when resuming (every rank of the group
  // must have read the same step, or all start from step 0), and write one every
  // checkpoint_every steps or checkpoint_minutes (at the top of a step, so the state is that of
  // the steps before it, evaluations included).
  const bool checkpointing = !ckpt_.dir.empty() && (settings_.checkpoint_every > 0 || settings_.checkpoint_minutes > 0);
  const CheckpointKey ckpt_key{ckpt_.trial_id, dp, total, flat_params_.numel()};
  std::vector<std::pair<std::string, torch::Tensor>> method_state;
  if (hooks_.training_state) method_state = hooks_.training_state();
  if (!ckpt_.dir.empty() && ckpt_.resume) {
    TrainerSnapshot snap;
    snap.method_state = method_state;
    std::string why;
    const auto latest = latest_checkpoint(ckpt_.dir);
    const bool ok = latest && read_checkpoint(ckpt_.dir, rank, *latest, ckpt_key, snap, result, why);
    const double s = ok ? static_cast<double>(*latest) : 0.0;
    const double n_ok = dp > 1 ? sync_.allreduce_sum(ok ? 1.0 : 0.0) : (ok ? 1.0 : 0.0);
    const double sum = dp > 1 ? sync_.allreduce_sum(s) : s, sum2 = dp > 1 ? sync_.allreduce_sum(s * s) : s * s;
    if (n_ok == dp && sum == dp * s && sum2 == dp * s * s) {
      torch::NoGradGuard no_grad;
      flat_params_.copy_(snap.params.reshape({-1}));
      optimizer_->restore(snap.exp_avg, snap.exp_avg_sq, snap.optimizer_steps);
      for (std::size_t i = 0; i < method_state.size(); ++i) method_state[i].second.copy_(snap.method_state[i].second);
      set_rng_state(device_, snap.rng);
      step = snap.step;
      loss_acc = snap.loss_acc;
      loss_n = snap.loss_n;
      train_time = snap.train_seconds;
      stats.samples = snap.samples;
      stats.tokens = snap.tokens;
      stats.resumed_from = step;
      spdlog::info("trial {}: continuing from its checkpoint at step {}/{}", ckpt_.trial_id, step, total);
    } else {
      if (latest && rank == 0)
        spdlog::warn("trial {}: the checkpoint at step {} in {} is not used ({}); the trial starts again", ckpt_.trial_id, *latest,
                     ckpt_.dir, ok ? "another rank of the group could not read its part" : why);
      result.train_step.clear(), result.train_loss.clear(), result.train_lr.clear();
      result.eval_step.clear(), result.eval_epoch.clear(), result.eval_accuracy.clear(), result.eval_f1.clear();
      result.eval_perplexity.clear(), result.eval_loss.clear();
    }
  }
  const int64_t start_step = step;
  auto last_ckpt = Clock::now();
  bool ckpt_flag_seen = false;

  // The reduced tail of every step (loss sum, count, stop, failure) stays on the device and is
  // read back every `window` steps (and before every log, evaluation and the end): no host sync
  // per step; a non-finite loss is found at its step; all ranks read at the same steps, so
  // they act on the stop and failure flags at the same step. On the CPU the buffer is host
  // memory the (synchronous) MPI all-reduce has already filled: reading it every step is a
  // few loads, so at dp > 1 a CPU group acts within the step the flag was raised in.
  const int64_t window = dp > 1 && !device_.is_cuda() ? 1 : std::min<int64_t>(log_every, 16);
  auto tails = torch::zeros({window, kTail}, torch::TensorOptions().dtype(torch::kFloat32).device(device_));
  const auto tail = flat_grad_.narrow(0, flat_grad_.numel() - kTail, kTail);
  auto stop_slot = tail.narrow(0, kStop, 1), fail_slot = tail.narrow(0, kFail, 1), ckpt_slot = tail.narrow(0, kCkpt, 1);
  int64_t pending = 0;
  bool stop_seen = false, failure_seen = false;
  int64_t flag_step = -1;
  auto read_losses = [&]() -> bool {
    if (pending == 0) return true;
    auto host = tails.narrow(0, 0, pending).to(torch::kCPU).contiguous();
    const float* v = host.data_ptr<float>();
    const int64_t first = step - pending;
    const int64_t n = pending;
    pending = 0;
    // Flags first: identical on every rank (reduced values), so every rank acts on them at
    // this same step. A failure ends the loop here; a stop after this step's log.
    for (int64_t i = 0; i < n; ++i) {
      if (v[i * kTail + kFail] > 0) {
        failure_seen = true;
        flag_step = first + i;
        return false;
      }
      if (v[i * kTail + kStop] > 0 && !stop_seen) stop_seen = true, flag_step = first + i;
      if (v[i * kTail + kCkpt] > 0) ckpt_flag_seen = true;
    }
    for (int64_t i = 0; i < n; ++i) {
      const float l = v[i * kTail + kLoss] / std::max(v[i * kTail + kCount], 1.0f);
      if (!std::isfinite(l)) {
        stats.diverged = true;
        stats.diverged_step = first + i;
        result.status = "diverged";
        result.diverged_step = first + i;
        result.error = fmt::format("non-finite training loss ({}) at step {}", l, first + i);
        step = first + i;
        return false;
      }
      loss_acc += l;
      ++loss_n;
    }
    return true;
  };

  // A failure on this rank at dp > 1 (exception, out of memory, unreadable data) is caught and
  // kept; the rank goes on taking part in the step all-reduces with zero gradients and the
  // failure flag set, until the read-back at which every rank sees the flag and raises.
  std::exception_ptr failure;
  auto guarded = [&](auto&& fn) {
    if (failure) return;
    try {
      fn();
    } catch (...) {
      if (dp == 1) throw;
      failure = std::current_exception();
    }
  };

  // Every rank of the group writes its file; rank 0 publishes the set once all have (one small
  // collective). A failed write is reported and training goes on: the previous set stays valid.
  auto write_checkpoint = [&]() {
    const auto t0 = Clock::now();
    TrainerSnapshot snap;
    snap.step = step;
    snap.optimizer_steps = optimizer_->steps();
    snap.loss_acc = loss_acc;
    snap.loss_n = loss_n;
    snap.train_seconds = train_time;
    snap.samples = stats.samples;
    snap.tokens = stats.tokens;
    snap.rng = rng_state(device_);
    if (rank == 0) {
      snap.params = flat_params_;
      snap.exp_avg = optimizer_->exp_avg();
      snap.exp_avg_sq = optimizer_->exp_avg_sq();
      snap.method_state = method_state;
    }
    bool ok = true;
    try {
      write_checkpoint_file(ckpt_.dir, rank, ckpt_key, snap, result);
    } catch (const std::exception& e) {
      ok = false;
      spdlog::warn("trial {}: rank {} could not write its checkpoint at step {}: {}", ckpt_.trial_id, rank, step, e.what());
    }
    const double n_ok = dp > 1 ? sync_.allreduce_sum(ok ? 1.0 : 0.0) : (ok ? 1.0 : 0.0);
    if (n_ok == dp && rank == 0) {
      try {
        publish_checkpoint(ckpt_.dir, step);
      } catch (const std::exception& e) {
        spdlog::warn("trial {}: checkpoint at step {} not published: {}", ckpt_.trial_id, step, e.what());
      }
    }
    ++stats.checkpoints;
    last_ckpt = Clock::now();
    ckpt_flag_seen = false;
    spdlog::debug("trial {}: checkpoint at step {} in {:.2f}s", ckpt_.trial_id, step, seconds_since(t0));
  };
  const int64_t ckpt_every = settings_.checkpoint_every;
  const double ckpt_seconds = settings_.checkpoint_minutes * 60.0;

  for (int64_t epoch = step / per_epoch; step < total; ++epoch) {
    for (int64_t index = epoch == start_step / per_epoch ? start_step % per_epoch : 0; index < per_epoch && step < total; ++index) {
      if (checkpointing && step > start_step && ((ckpt_every > 0 && step % ckpt_every == 0) || ckpt_flag_seen)) {
        // The queued steps' losses and flags first: the same read on every rank, at this step.
        const auto tr = Clock::now();
        const bool ok = read_losses();
        train_time += seconds_since(tr);
        if (!ok) break;
        write_checkpoint();
        if (stop_seen) break;
      }
      const bool local_stop = stop && stop();  // this rank's signal flag: no communication
      if (local_stop && dp == 1) {
        stats.interrupted = true;
        break;
      }
      const auto ts = Clock::now();
      bool reduced = false;
      int64_t batch_rows = 0;
      auto after_reduce = [&]() {
        tails.narrow(0, pending, 1).copy_(tail.reshape({1, kTail}));
        ++pending;
        reduced = true;
      };
      guarded([&]() {
        if (fault_at(step, "throw")) throw std::runtime_error(fmt::format("PEFT_TEST_FAULT: injected exception at step {} on rank {}", step, rank));
        if (fault_at(step, "stop")) std::raise(SIGTERM);
        if (fault_at(step, "kill")) std::raise(SIGKILL);
        if (fault_at(step, "data")) throw_input("PEFT_TEST_FAULT: unreadable training batch at step {} on rank {}", step, rank);
        // grad_accum micro-batches: this rank's share of the global batch in `accum` pieces
        // (shard rank·accum + micro of dp·accum), their summed losses' gradients accumulated
        // into the flat buffer, then the step's one all-reduce.
        flat_grad_.zero_();
        double local_count = 0;
        int64_t local_tokens = 0;
        batch_rows = 0;
        for (int64_t micro = 0; micro < accum; ++micro) {
          Batch b = data.train_batch(epoch, index, settings_.batch_size, rank * static_cast<int>(accum) + static_cast<int>(micro),
                                     dp * static_cast<int>(accum), seed_);
          // Counted on the host (no device sync): examples, or masked tokens for MLM. The
          // gradients are divided by the global count after the all-reduce, so they are the
          // global-batch mean whatever each rank's share.
          local_count += b.count >= 0 ? static_cast<double>(b.count)
                         : kind_ == TaskKind::Classification ? static_cast<double>(b.labels.size(0))
                                                             : (b.labels != -100).sum().item<double>();
          local_tokens += b.tokens >= 0 ? b.tokens : b.mask.sum().item<int64_t>();
          batch_rows += b.labels.size(0);
          if (kind_ == TaskKind::MLM && !b.positions.defined()) b.positions = masked_positions(b.labels);
          b.ids = b.ids.to(device_, /*non_blocking=*/true);
          b.mask = b.mask.to(device_, true);
          b.labels = b.labels.to(device_, true);
          if (b.positions.defined()) b.positions = b.positions.to(device_, true);
          torch::Tensor loss;
          {
            model::AutocastGuard autocast(device_, bf16_);  // left on no exception path
            loss = loss_sum(b);
          }
          loss.backward();
          torch::NoGradGuard no_grad;
          loss_slot_.add_(loss.detach().reshape({1}));
        }
        {
          torch::NoGradGuard no_grad;
          count_slot_.fill_(local_count);
          if (local_stop) stop_slot.fill_(1.0);
          if (ckpt_seconds > 0 && rank == 0 && seconds_since(last_ckpt) >= ckpt_seconds) ckpt_slot.fill_(1.0);
          // Gradients, loss, count and the stop flag: one collective.
          if (dp > 1) sync_.allreduce_sum(flat_grad_);
          after_reduce();
          count_slot_.clamp_min_(1.0);
          grads_.div_(count_slot_);
        }
        if (hooks_.penalty) {
          // A penalty of the parameters (L1): identical on every rank, so added after the
          // all-reduce, once. Its gradient accumulates into the same buffer.
          auto pen = hooks_.penalty();
          if (pen.defined()) pen.backward();
        }
        torch::NoGradGuard no_grad;
        if (flat_mask_.defined()) grads_.mul_(flat_mask_);  // pruned weights: no gradient, not in the norm
        if (settings_.max_grad_norm > 0) {
          // torch's clip_grad_norm_ on the flat buffer, without reading the norm back:
          // scale = min(1, max_norm / (norm + 1e-6)).
          at::linalg_vector_norm_out(clip_scale_, grads_, 2);
          clip_scale_.add_(1e-6).reciprocal_().mul_(settings_.max_grad_norm).clamp_max_(1.0);
          grads_.mul_(clip_scale_);
        }
        const double factor = linear_warmup_decay(step, warmup, total);
        optimizer_->step(factor);
        if (hooks_.after_optimizer_step) hooks_.after_optimizer_step(step, total, factor);
        stats.tokens += local_tokens * dp;  // approximate global tokens (equal shards)
      });
      if (failure && !reduced) {
        // This rank failed before its share of the step's all-reduce: it still takes part,
        // with zero gradients and the failure flag.
        torch::NoGradGuard no_grad;
        flat_grad_.zero_();
        fail_slot.fill_(1.0);
        if (local_stop) stop_slot.fill_(1.0);
        sync_.allreduce_sum(flat_grad_);
        after_reduce();
      }
      const double factor = linear_warmup_decay(step, warmup, total);
      ++step;
      stats.samples += dp * batch_rows;
      const bool log_now = step % log_every == 0 || step == total;
      const bool eval_now = eval_every > 0 && step % eval_every == 0 && step < total;
      // The read-back waits for the device to finish the queued steps: part of training time.
      const bool ok = (pending < window && !log_now && !eval_now) || read_losses();
      train_time += seconds_since(ts);
      if (!ok) break;
      if (log_now && !failure) {
        result.train_step.push_back(step);
        result.train_loss.push_back(loss_acc / static_cast<double>(std::max<int64_t>(1, loss_n)));
        result.train_lr.push_back(base_lr.empty() ? 0.0 : base_lr[0] * factor);
        loss_acc = 0;
        loss_n = 0;
        if (progress) {
          const double sps = static_cast<double>(stats.samples) / std::max(1e-9, train_time);
          const double eta = train_time / static_cast<double>(step) * static_cast<double>(total - step);
          progress({step, total, result.train_loss.back(), sps, eta, result.train_lr.back()});
        }
      }
      if (stop_seen && step < total) break;
      if (eval_now) guarded([&]() { record_eval(data, result, step, static_cast<double>(step) / static_cast<double>(per_epoch)); });
    }
    if (!stats.diverged && !stats.interrupted && !failure_seen) {
      // Losses (and flags) of the epoch's last steps (sets stats.diverged if one is bad).
      const auto tr = Clock::now();
      read_losses();
      train_time += seconds_since(tr);
    }
    if (stats.diverged || stats.interrupted || failure_seen) break;
    // A stop raised in the last step of training: the training is complete, so the trial is
    // too; the driver's between-trials check stops the sweep.
    if (stop_seen && step < total) break;
    if (eval_every <= 0 || step == total)
      guarded([&]() { record_eval(data, result, step, static_cast<double>(step) / static_cast<double>(per_epoch)); });
  }
  // Every rank of the group has left the step loop at the same step.
  if (failure) std::rethrow_exception(failure);  // this rank's own failure
  if (failure_seen) {
    sync_.set_peer_failure();
    throw std::runtime_error(fmt::format("another rank of the data-parallel group failed (failure flag read at step {})", flag_step));
  }
  if (stop_seen && step < total) {
    stats.interrupted = true;
    spdlog::debug("rank {}: stop flag of step {} read at step {}", rank, flag_step, step);
  }
  stats.steps = step;
  stats.train_seconds = train_time;
  on_eval_ = nullptr;
  return stats;
}

void Trainer::record_eval(BatchSource& data, TrialResult& result, int64_t step, double epoch) {
  auto ev = evaluate(data);
  last_eval_ = ev;
  result.eval_step.push_back(step);
  result.eval_epoch.push_back(epoch);
  result.eval_accuracy.push_back(ev.accuracy);
  result.eval_f1.push_back(ev.f1);
  result.eval_perplexity.push_back(ev.perplexity);
  result.eval_loss.push_back(ev.loss);
  if (on_eval_) (*on_eval_)({step, total_, epoch, ev});
  model_.train();
}

const std::vector<Batch>& Trainer::device_eval_batches(BatchSource& data) {
  const auto& host = data.eval_batches(settings_.inference_batch);
  if (!device_.is_cuda()) return host;
  // Moved to the device once per trainer, not at every evaluation.
  if (eval_host_ != &host) {
    eval_device_.clear();
    for (const auto& b : host) {
      Batch d{b.ids.to(device_), b.mask.to(device_), b.labels.to(device_), b.contrast};
      if (kind_ == TaskKind::MLM) d.positions = masked_positions(b.labels).to(device_);
      eval_device_.push_back(std::move(d));
    }
    eval_host_ = &host;
  }
  return eval_device_;
}

EvalResult Trainer::evaluate(BatchSource& data) {
  torch::NoGradGuard no_grad;
  model::AutocastGuard autocast(device_, bf16_);  // evaluation runs in the trial's precision
  model_.eval();
  EvalResult r;
  std::vector<int64_t> pred, labels;
  std::vector<uint8_t> contrast;
  // Loss and predictions stay on the device until the end: one read-back per evaluation.
  auto loss_acc = torch::zeros({}, torch::TensorOptions().dtype(torch::kFloat64).device(device_));
  std::vector<torch::Tensor> preds;
  double count = 0;
  const auto& host = data.eval_batches(settings_.inference_batch);
  const auto& batches = device_eval_batches(data);
  for (std::size_t i = 0; i < batches.size(); ++i) {
    const Batch& b = batches[i];
    const Batch& cpu = host[i];
    auto hidden = model_.hidden_states(b.ids, b.mask);
    if (kind_ == TaskKind::Classification) {
      auto logits = model_.classifier_head(hidden).to(torch::kFloat32);
      loss_acc += torch::nn::functional::cross_entropy(logits, b.labels, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum));
      count += static_cast<double>(cpu.labels.size(0));
      preds.push_back(logits.argmax(-1));
      auto l = cpu.labels.contiguous();
      labels.insert(labels.end(), l.data_ptr<int64_t>(), l.data_ptr<int64_t>() + l.numel());
      if (cpu.contrast.defined()) {
        auto c = cpu.contrast.to(torch::kUInt8).contiguous();
        contrast.insert(contrast.end(), c.data_ptr<uint8_t>(), c.data_ptr<uint8_t>() + c.numel());
      }
    } else {
      loss_acc += mlm_loss_sum(model_, hidden, b.labels, b.positions.defined() ? b.positions : masked_positions(cpu.labels));
      count += (cpu.labels != -100).sum().item<double>();
    }
  }
  const double loss_sum = loss_acc.item<double>();
  if (!preds.empty()) {
    auto p = torch::cat(preds).to(torch::kCPU).contiguous();
    pred.assign(p.data_ptr<int64_t>(), p.data_ptr<int64_t>() + p.numel());
  }
  r.loss = count > 0 ? loss_sum / count : std::nan("");
  if (kind_ == TaskKind::Classification) {
    r.examples = static_cast<int64_t>(pred.size());
    r.accuracy = accuracy(pred, labels);
    r.f1 = f1_score(pred, labels, model_.config().num_labels());
    if (contrast.size() == pred.size()) {
      std::vector<int64_t> cp, cl;
      for (std::size_t i = 0; i < pred.size(); ++i)
        if (contrast[i]) cp.push_back(pred[i]), cl.push_back(labels[i]);
      if (!cp.empty()) r.contrast_accuracy = accuracy(cp, cl);
    }
  } else {
    r.examples = static_cast<int64_t>(count);
    r.perplexity = std::exp(r.loss);
  }
  return r;
}

}  // namespace peft::train
