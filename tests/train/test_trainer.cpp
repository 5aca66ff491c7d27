// The trainer's step: parameters as views of one buffer, the global-mean gradient, clipping,
// penalty, AdamW, paged states, and divergence found at its step without per-step syncs.
#include <unistd.h>

#include <cmath>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>

#include "model/distilbert.h"
#include "train/trainer.h"
#include "train/trial_checkpoint.h"

namespace peft::train {
namespace {

// A learnable toy task: the label says whether token 1 of the sequence is in the upper half
// of the vocabulary. Batches are contiguous rows, split into equal dp shards.
class ToySource : public BatchSource {
 public:
  ToySource(int64_t n, int64_t seq, int64_t vocab) {
    torch::manual_seed(3);
    ids_ = torch::randint(1, vocab, {n, seq}, torch::kLong);
    mask_ = torch::ones({n, seq}, torch::kLong);
    labels_ = (ids_.select(1, 1) >= vocab / 2).to(torch::kLong);
  }
  TaskKind kind() const override { return TaskKind::Classification; }
  int64_t train_examples() const override { return ids_.size(0); }
  int64_t batches_per_epoch(int64_t batch_size) const override { return ids_.size(0) / batch_size; }
  Batch train_batch(int64_t, int64_t index, int64_t batch_size, int rank, int dp, uint64_t) override {
    const int64_t share = batch_size / dp, begin = index * batch_size + rank * share;
    return {ids_.narrow(0, begin, share), mask_.narrow(0, begin, share), labels_.narrow(0, begin, share), {}};
  }
  const std::vector<Batch>& eval_batches(int64_t batch_size) override {
    if (eval_.empty())
      for (int64_t b = 0; b + batch_size <= ids_.size(0); b += batch_size)
        eval_.push_back({ids_.narrow(0, b, batch_size), mask_.narrow(0, b, batch_size), labels_.narrow(0, b, batch_size), {}});
    return eval_;
  }

 private:
  torch::Tensor ids_, mask_, labels_;
  std::vector<Batch> eval_;
};

constexpr int64_t kVocab = 24;

std::shared_ptr<model::DistilBert> make_model(double dropout = 0.0) {
  auto c = model::DistilBertConfig::tiny(kVocab);
  c.dropout = c.attention_dropout = c.seq_classif_dropout = dropout;
  auto m = std::make_shared<model::DistilBert>(c, std::vector<model::Head>{model::Head::Classifier});
  m->init_weights(1);
  m->init_head(model::Head::Classifier, true, 1);
  return m;
}

std::vector<std::pair<std::string, torch::Tensor>> named(model::DistilBert& m) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (auto& p : m.named_parameters(true)) out.emplace_back(p.key(), p.value());
  return out;
}

TrainSettings settings(int64_t steps, double clip) {
  TrainSettings t;
  t.max_steps = steps;
  t.batch_size = 8;
  t.lr = 1e-2;
  t.weight_decay = 0.01;
  t.warmup_ratio = 0.0;
  t.max_grad_norm = clip;
  t.precision = "fp32";
  t.device = "cpu";
  t.inference_batch = 16;
  return t;
}

double max_abs_diff(model::DistilBert& a, model::DistilBert& b) {
  double worst = 0;
  auto pa = a.named_parameters(true), pb = b.named_parameters(true);
  for (auto& p : pa) worst = std::max(worst, (p.value() - pb[p.key()]).abs().max().item<double>());
  return worst;
}

TEST(Trainer, ParametersBecomeViewsOfOneBufferWithTheirValues) {
  auto m = make_model();
  auto before = make_model();
  LocalGradSync sync;
  auto groups = Trainer::decay_groups("all", named(*m), 1e-2, 0.01);
  const void* impl = m->named_parameters(true)[0].value().unsafeGetTensorImpl();
  Trainer trainer(*m, TaskKind::Classification, groups, settings(1, 0), {}, sync, torch::kCPU, 1);
  EXPECT_EQ(max_abs_diff(*m, *before), 0.0);
  EXPECT_EQ(m->named_parameters(true)[0].value().unsafeGetTensorImpl(), impl);  // same parameter object
  const void* storage = nullptr;
  const void* grad_storage = nullptr;
  for (auto& p : m->named_parameters(true)) {
    if (!storage) storage = p.value().storage().data(), grad_storage = p.value().grad().storage().data();
    EXPECT_EQ(p.value().storage().data(), storage) << p.key();
    EXPECT_EQ(p.value().grad().storage().data(), grad_storage) << p.key();
  }
}

// One step of the trainer against the same step written out: mean loss over the global
// batch, autograd, clip_grad_norm_, an optional penalty, torch::optim::AdamW.
void expect_one_step_matches(double clip, bool penalty) {
  auto m = make_model(), ref = make_model();
  ToySource data(64, 10, kVocab);
  LocalGradSync sync;
  MethodHooks hooks;
  const double lambda = 1e-3;
  auto pen_of = [lambda](model::DistilBert& x) { return lambda * x.classifier->weight_param().abs().sum(); };
  if (penalty) hooks.penalty = [&] { return pen_of(*m); };
  auto s = settings(1, clip);
  Trainer trainer(*m, TaskKind::Classification, Trainer::decay_groups("all", named(*m), s.lr, s.weight_decay), s, hooks,
                  sync, torch::kCPU, 1);
  TrialResult result;
  auto stats = trainer.fit(data, result);
  ASSERT_EQ(stats.steps, 1);
  ASSERT_EQ(result.status, "complete");

  // The reference: the whole batch of 8 (the trainer's local batch is the same 8 rows).
  auto b = data.train_batch(0, 0, 8, 0, 1, 1);
  auto logits = ref->classify(b.ids, b.mask);
  auto loss = torch::nn::functional::cross_entropy(logits, b.labels);
  if (penalty) loss = loss + pen_of(*ref);
  loss.backward();
  std::vector<torch::Tensor> all;
  for (auto& p : ref->parameters()) all.push_back(p);
  if (clip > 0) torch::nn::utils::clip_grad_norm_(all, clip);
  std::vector<torch::optim::OptimizerParamGroup> gs;
  for (auto& g : Trainer::decay_groups("all", named(*ref), s.lr, s.weight_decay))
    gs.emplace_back(g.params, std::make_unique<torch::optim::AdamWOptions>(torch::optim::AdamWOptions(g.lr).weight_decay(g.weight_decay)));
  torch::optim::AdamW opt(gs, torch::optim::AdamWOptions(1e-3));
  opt.step();

  EXPECT_LE(max_abs_diff(*m, *ref), 2e-6) << "clip " << clip << " penalty " << penalty;
  auto fresh = make_model();
  EXPECT_GT(max_abs_diff(*m, *fresh), 5e-3);  // the step moved the weights (≈ lr)
  EXPECT_NEAR(result.train_loss.at(0), torch::nn::functional::cross_entropy(fresh->classify(b.ids, b.mask), b.labels).item<double>(), 1e-5);
}

TEST(Trainer, OneStepEqualsTheWrittenOutStep) { expect_one_step_matches(0.0, false); }
TEST(Trainer, OneStepWithClippingEqualsClipGradNorm) { expect_one_step_matches(0.05, false); }
TEST(Trainer, PenaltyGradientIsAddedOnce) { expect_one_step_matches(0.0, true); }

TEST(Trainer, PagedOptimizerTrainsTheSameModel) {
  ToySource data(64, 10, kVocab);
  LocalGradSync sync;
  auto a = make_model(), b = make_model();
  auto s = settings(24, 1.0);
  Trainer ta(*a, TaskKind::Classification, Trainer::decay_groups("all", named(*a), s.lr, s.weight_decay), s, {}, sync, torch::kCPU, 1);
  s.optimizer = "paged_adamw";
  Trainer tb(*b, TaskKind::Classification, Trainer::decay_groups("all", named(*b), s.lr, s.weight_decay), s, {}, sync, torch::kCPU, 1);
  TrialResult ra, rb;
  ta.fit(data, ra);
  tb.fit(data, rb);
  EXPECT_LE(max_abs_diff(*a, *b), 1e-6);
  EXPECT_EQ(ta.optimizer().host_bytes(), 0);
  EXPECT_EQ(tb.optimizer().host_bytes(), 8 * ta.optimizer().exp_avg().numel());
  EXPECT_LT(ra.train_loss.back(), ra.train_loss.front());  // it learns
}

TEST(Trainer, DivergenceIsReportedAtItsStep) {
  // A NaN weight after step 36's update: the loss of step 37 is the first non-finite one. The
  // losses are read back every 16 steps (4000 steps → one log every 20), so this checks that
  // the deferred read finds the exact step (read at step 40, the next log).
  ToySource data(400, 10, kVocab);
  LocalGradSync sync;
  auto m = make_model();
  MethodHooks hooks;
  model::DistilBert* mp = m.get();
  hooks.after_optimizer_step = [mp](int64_t step, int64_t, double) {
    if (step == 36) {
      torch::NoGradGuard g;
      mp->classifier->weight_param()[0][0].fill_(std::nan(""));
    }
  };
  auto s = settings(4000, 1.0);
  Trainer t(*m, TaskKind::Classification, Trainer::decay_groups("all", named(*m), s.lr, s.weight_decay), s, hooks, sync,
            torch::kCPU, 1);
  TrialResult r;
  auto stats = t.fit(data, r);
  EXPECT_TRUE(stats.diverged);
  EXPECT_EQ(stats.diverged_step, 37);
  EXPECT_EQ(r.diverged_step, 37);
  EXPECT_EQ(r.status, "diverged");
  EXPECT_EQ(stats.steps, 37);
  EXPECT_TRUE(r.eval_step.empty());  // the first epoch (50 steps) did not end
  EXPECT_NE(r.error.find("step 37"), std::string::npos) << r.error;
  // Logged losses are the finite ones before it.
  for (double l : r.train_loss) EXPECT_TRUE(std::isfinite(l));
}


TEST(Trainer, GradientAccumulationEqualsTheLargeBatch) {
  // batch 8 in 4 micro-batches of 2 against batch 8 at once: the same global-mean gradient,
  // summed in another order (so equal to fp32 rounding), hence the same training.
  ToySource data(64, 10, kVocab);
  LocalGradSync sync;
  auto grads = [](model::DistilBert& m) {
    std::vector<torch::Tensor> g;
    for (auto& p : m.parameters()) g.push_back(p.grad().flatten());
    return torch::cat(g);
  };
  auto train = [&](int64_t steps, int64_t accum, model::DistilBert& m, TrialResult& r) {
    auto s = settings(steps, 1.0);
    s.grad_accum = accum;
    Trainer t(m, TaskKind::Classification, Trainer::decay_groups("all", named(m), s.lr, s.weight_decay), s, {}, sync, torch::kCPU, 1);
    return t.fit(data, r);
  };
  {  // one step: the gradients themselves (the last step's stay in the .grad views)
    auto a = make_model(), b = make_model();
    TrialResult ra, rb;
    train(1, 1, *a, ra);
    train(1, 4, *b, rb);
    auto ga = grads(*a), gb = grads(*b);
    EXPECT_LE((ga - gb).abs().max().item<double>(), 1e-6 * ga.abs().max().item<double>());
    EXPECT_NEAR(ra.train_loss.at(0), rb.train_loss.at(0), 1e-6);
  }
  auto a = make_model(), b = make_model();
  TrialResult ra, rb;
  auto sa = train(6, 1, *a, ra);
  auto sb = train(6, 4, *b, rb);
  ASSERT_EQ(sb.steps, 6);
  EXPECT_EQ(sb.samples, sa.samples);
  // AdamW divides by sqrt(v): on elements whose gradient is near 0 a rounding difference moves
  // the update by up to ~lr·1e-2, so the weights are compared at that scale, the losses tightly.
  EXPECT_LE(max_abs_diff(*a, *b), 1e-4);
  EXPECT_GT(max_abs_diff(*b, *make_model()), 5e-3);  // it trained
  ASSERT_EQ(ra.train_loss.size(), rb.train_loss.size());
  for (std::size_t i = 0; i < ra.train_loss.size(); ++i) EXPECT_NEAR(ra.train_loss[i], rb.train_loss[i], 1e-5) << i;
  TrialResult rc;  // 8 rows do not split into 3 micro-batches
  EXPECT_THROW(train(1, 3, *b, rc), std::invalid_argument);
}

// A trial stopped half-way and continued from its last checkpoint ends bitwise where the
// uninterrupted trial ends: parameters, optimizer, dropout RNG, curves, method state.
TEST(Trainer, ResumeFromACheckpointIsBitwiseTheUninterruptedRun) {
  namespace fs = std::filesystem;
  const fs::path root = fs::temp_directory_path() / ("peft-ckpt-test-" + std::to_string(::getpid()));
  fs::remove_all(root);
  ToySource data(64, 10, kVocab);  // 8 steps per epoch
  LocalGradSync sync;
  auto s = settings(20, 1.0);
  s.checkpoint_every = 4;
  s.eval_every = 6;
  auto mask = torch::ones({4}), mask_ref = torch::ones({4});
  auto run = [&](model::DistilBert& m, torch::Tensor& state, const std::string& dir, bool resume, int64_t stop_after,
                 TrialResult& r) {
    MethodHooks hooks;
    // A method state the steps change (as Sparse LoRA's masks): saved and restored in place.
    hooks.after_optimizer_step = [&state](int64_t step, int64_t, double) { state[step % 4] = static_cast<float>(step); };
    hooks.training_state = [&state] { return std::vector<std::pair<std::string, torch::Tensor>>{{"toy.mask", state}}; };
    Trainer t(m, TaskKind::Classification, Trainer::decay_groups("all", named(m), s.lr, s.weight_decay), s, hooks, sync,
              torch::kCPU, 7);
    t.set_checkpointing({dir, "toy-trial", resume});
    int64_t calls = 0;
    return t.fit(data, r, [&] { return ++calls > stop_after; });
  };
  auto ref = make_model(0.1);  // dropout on: the RNG state must be restored too
  TrialResult r_ref;
  auto st_ref = run(*ref, mask_ref, (root / "ref").string(), false, 1 << 30, r_ref);
  ASSERT_EQ(st_ref.steps, 20);
  EXPECT_EQ(st_ref.checkpoints, 4);  // at steps 4, 8, 12, 16

  auto m = make_model(0.1);
  TrialResult r1;
  auto st1 = run(*m, mask, (root / "b").string(), false, 14, r1);
  EXPECT_TRUE(st1.interrupted);
  EXPECT_EQ(st1.steps, 14);
  ASSERT_EQ(latest_checkpoint((root / "b").string()).value_or(-1), 12);

  auto m2 = make_model(0.1);  // a fresh process: nothing of the first run in memory
  auto mask2 = torch::ones({4});
  TrialResult r2;
  auto st2 = run(*m2, mask2, (root / "b").string(), true, 1 << 30, r2);
  EXPECT_EQ(st2.resumed_from, 12);
  ASSERT_EQ(st2.steps, 20);
  EXPECT_EQ(max_abs_diff(*m2, *ref), 0.0);
  EXPECT_TRUE(torch::equal(mask2, mask_ref));
  EXPECT_EQ(r2.train_step, r_ref.train_step);
  EXPECT_EQ(r2.train_loss, r_ref.train_loss);
  EXPECT_EQ(r2.train_lr, r_ref.train_lr);
  EXPECT_EQ(r2.eval_step, r_ref.eval_step);
  EXPECT_EQ(r2.eval_loss, r_ref.eval_loss);
  EXPECT_EQ(r2.eval_accuracy, r_ref.eval_accuracy);
  EXPECT_EQ(st2.samples, st_ref.samples);

  // A checkpoint of another trial length is not continued: the run starts from step 0.
  auto m3 = make_model(0.1);
  auto mask3 = torch::ones({4});
  s.max_steps = 24;
  TrialResult r3;
  auto st3 = run(*m3, mask3, (root / "b").string(), true, 1 << 30, r3);
  EXPECT_EQ(st3.resumed_from, 0);
  EXPECT_EQ(st3.steps, 24);
  EXPECT_EQ(r3.train_step.front(), 1);
  fs::remove_all(root);
}

// MLM: the trainer computes the vocabulary logits at the masked positions only; the step must
// still be the written-out one over all positions with ignore_index = -100.
TEST(Trainer, MlmStepWithLogitsAtMaskedPositionsOnlyEqualsTheFullStep) {
  class ToyMlm : public BatchSource {
   public:
    ToyMlm() {
      torch::manual_seed(5);
      ids_ = torch::randint(1, kVocab, {16, 12}, torch::kLong);
      labels_ = torch::where(torch::rand({16, 12}) < 0.2, ids_, torch::full_like(ids_, -100));
    }
    TaskKind kind() const override { return TaskKind::MLM; }
    int64_t train_examples() const override { return 16; }
    int64_t batches_per_epoch(int64_t b) const override { return 16 / b; }
    Batch train_batch(int64_t, int64_t index, int64_t b, int rank, int dp, uint64_t) override {
      const int64_t share = b / dp, begin = index * b + rank * share;
      return {ids_.narrow(0, begin, share), torch::ones({share, 12}, torch::kLong), labels_.narrow(0, begin, share), {}};
    }
    const std::vector<Batch>& eval_batches(int64_t) override {
      if (eval_.empty()) eval_.push_back({ids_, torch::ones_like(ids_), labels_, {}});
      return eval_;
    }
    torch::Tensor ids_, labels_;
    std::vector<Batch> eval_;
  } data;
  auto make = [] {
    auto m = std::make_shared<model::DistilBert>(model::DistilBertConfig::tiny(kVocab), std::vector<model::Head>{model::Head::MLM});
    m->init_weights(1);
    m->init_head(model::Head::MLM, true, 1);
    return m;
  };
  auto m = make(), ref = make();
  LocalGradSync sync;
  auto s = settings(1, 0.0);
  s.batch_size = 16;
  Trainer trainer(*m, TaskKind::MLM, Trainer::decay_groups("all", named(*m), s.lr, s.weight_decay), s, {}, sync, torch::kCPU, 1);
  TrialResult result;
  trainer.fit(data, result);
  auto logits = ref->mlm_logits(data.ids_, torch::ones_like(data.ids_));
  auto loss = torch::nn::functional::cross_entropy(logits.reshape({-1, kVocab}), data.labels_.reshape({-1}),
                                                   torch::nn::functional::CrossEntropyFuncOptions().ignore_index(-100));
  EXPECT_NEAR(result.train_loss.at(0), loss.item<double>(), 1e-5);
  loss.backward();
  // The gradients (the step's stay in the trainer's .grad views): the same terms, summed in
  // another order. (After AdamW's first step, lr·g/|g|, elements with a near-0 gradient
  // would amplify that rounding to ~lr·1e-2.)
  double worst = 0, scale = 0;
  auto pm = m->named_parameters(true), pr = ref->named_parameters(true);
  for (auto& p : pr) {
    worst = std::max(worst, (p.value().grad() - pm[p.key()].grad()).abs().max().item<double>());
    scale = std::max(scale, p.value().grad().abs().max().item<double>());
  }
  EXPECT_LE(worst, 1e-5 * scale);
  EXPECT_GT(max_abs_diff(*m, *make()), 5e-3);  // the step moved the weights
  // Evaluation: perplexity of the masked positions, as the full logits give it.
  torch::NoGradGuard g;
  m->eval();
  auto full = torch::nn::functional::cross_entropy(m->mlm_logits(data.ids_, torch::ones_like(data.ids_)).reshape({-1, kVocab}),
                                                   data.labels_.reshape({-1}),
                                                   torch::nn::functional::CrossEntropyFuncOptions().ignore_index(-100));
  EXPECT_NEAR(trainer.evaluate(data).loss, full.item<double>(), 1e-5);
}

// Sparse LoRA's masks through MethodHooks::gradient_masks: a masked weight gets no gradient
// (so no say in the clip norm), no AdamW state and no update; the mask stays the method's to
// change in place.
TEST(Trainer, MaskedWeightsGetNoGradientStateOrUpdate) {
  ToySource data(64, 10, kVocab);
  LocalGradSync sync;
  auto m = make_model();
  auto w = m->classifier->weight_param();  // [2, 64]
  auto mask = (torch::arange(w.numel()) % 3 != 0).to(torch::kFloat32).view(w.sizes());
  {
    torch::NoGradGuard g;
    w.mul_(mask);  // pruned weights are 0, as after Sparse LoRA's prune
  }
  MethodHooks hooks;
  hooks.gradient_masks = [&] { return std::vector<std::pair<torch::Tensor, torch::Tensor>>{{w, mask}}; };
  auto s = settings(6, 0.05);
  Trainer t(*m, TaskKind::Classification, Trainer::decay_groups("all", named(*m), s.lr, s.weight_decay), s, hooks, sync,
            torch::kCPU, 1);
  TrialResult r;
  t.fit(data, r);
  const auto pruned = mask == 0;
  EXPECT_EQ(w.masked_select(pruned).abs().max().item<float>(), 0.0f);
  EXPECT_EQ(w.grad().masked_select(pruned).abs().max().item<float>(), 0.0f);
  EXPECT_GT(w.grad().masked_select(~pruned).abs().max().item<float>(), 0.0f);
  // The classifier's states, found by the weight's place in the flat buffer.
  const int64_t at = static_cast<const float*>(w.data_ptr()) - static_cast<const float*>(
                         m->named_parameters(true)[0].value().data_ptr());
  EXPECT_GE(at, 0);
  auto state = t.optimizer().exp_avg_sq().narrow(0, at, w.numel()).view(w.sizes());
  EXPECT_EQ(state.masked_select(pruned).abs().max().item<float>(), 0.0f);
  EXPECT_GT(state.masked_select(~pruned).abs().max().item<float>(), 0.0f);
  // The mask tensor is a view of the trainer's flat mask: pruning more in place takes effect.
  mask.view({-1})[1] = 0.0f;
  TrialResult r2;
  t.fit(data, r2);
  EXPECT_EQ(w.grad().view({-1})[1].item<float>(), 0.0f);
}

TEST(Trainer, RefusesAnUnknownOptimizer) {
  auto m = make_model();
  LocalGradSync sync;
  auto s = settings(1, 0);
  s.optimizer = "sgd";
  EXPECT_THROW(Trainer(*m, TaskKind::Classification, Trainer::decay_groups("all", named(*m), s.lr, s.weight_decay), s, {},
                       sync, torch::kCPU, 1),
               std::exception);
}

}  // namespace
}  // namespace peft::train
