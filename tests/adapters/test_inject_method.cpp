// Injection by names / regex / all-linear / layers, the methods' trainable sets, and
// parameter accounting (739,586 for LoRA r=8 on q_lin,v_lin + heads, as HF PEFT reports).
#include <algorithm>
#include <set>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "adapters/inject.h"
#include "adapters/method.h"
#include "adapters/model_ops.h"
#include "core/error.h"

using namespace peft;
using namespace peft::adapters;
using model::Head;

namespace {

std::shared_ptr<model::DistilBert> tiny(std::vector<Head> heads = {Head::Classifier}, int64_t layers = 2) {
  auto c = model::DistilBertConfig::tiny(40);
  c.n_layers = layers;
  return std::make_shared<model::DistilBert>(c, heads);
}

std::vector<std::string> paths(const std::vector<AdapterRef>& refs) {
  std::vector<std::string> out;
  for (const auto& r : refs) out.push_back(r.path);
  return out;
}

AdapterFactory lora_factory(int64_t r = 4) {
  return [r](std::shared_ptr<model::LinearBase> base, const model::LinearSlot&) -> std::shared_ptr<AdapterLinear> {
    return std::make_shared<LoraLinear>(std::move(base), LoraOptions{r, 8.0, 0.0, false});
  };
}

std::set<std::string> trainable(model::DistilBert& m) {
  std::set<std::string> out;
  for (const auto& p : m.named_parameters())
    if (p.value().requires_grad()) out.insert(p.key());
  return out;
}

std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(Inject, ByNamesAndSuffixes) {
  auto m = tiny();
  auto made = inject(*m, TargetSpec::from_names({"q_lin", "attention.v_lin"}), lora_factory());
  EXPECT_EQ(paths(made), (std::vector<std::string>{
                             "distilbert.transformer.layer.0.attention.q_lin", "distilbert.transformer.layer.0.attention.v_lin",
                             "distilbert.transformer.layer.1.attention.q_lin", "distilbert.transformer.layer.1.attention.v_lin"}));
  auto names = m->named_parameters().keys();
  auto has = [&](const std::string& n) { return std::find(names.begin(), names.end(), n) != names.end(); };
  EXPECT_TRUE(has("distilbert.transformer.layer.0.attention.q_lin.lora_A.weight"));
  EXPECT_TRUE(has("distilbert.transformer.layer.0.attention.q_lin.base_layer.weight"));
  EXPECT_FALSE(has("distilbert.transformer.layer.0.attention.q_lin.weight"));
  EXPECT_TRUE(has("distilbert.transformer.layer.0.attention.k_lin.weight"));
  EXPECT_EQ(find_adapters(*m).size(), 4u);
  // A slot already holding an adapter is not wrapped twice.
  EXPECT_THROW(inject(*m, TargetSpec::from_names({"q_lin"}), lora_factory()), std::logic_error);
}

TEST(Inject, NamesMatchWholeComponentsOnly) {
  auto m = tiny();
  // "lin" is not "q_lin": PEFT matches the full name or a "."-separated suffix.
  auto msg = message_of([&] { inject(*m, TargetSpec::from_names({"lin", "query"}), lora_factory()); });
  EXPECT_NE(msg.find("lin, query"), std::string::npos) << msg;
  EXPECT_NE(msg.find("match no linear layer"), std::string::npos) << msg;
  EXPECT_TRUE(find_adapters(*m).empty());
}

TEST(Inject, RegexIsAFullMatchOnThePath) {
  auto m = tiny();
  auto made = inject(*m, TargetSpec::from_regex(R"(.*\.layer\.1\..*(q_lin|lin2))"), lora_factory());
  EXPECT_EQ(paths(made), (std::vector<std::string>{"distilbert.transformer.layer.1.attention.q_lin",
                                                   "distilbert.transformer.layer.1.ffn.lin2"}));
  auto m2 = tiny();
  EXPECT_THROW(inject(*m2, TargetSpec::from_regex("q_lin"), lora_factory()), InputError);  // not a search
  EXPECT_THROW(inject(*m2, TargetSpec::from_regex("(unclosed"), lora_factory()), InputError);
  auto with_layers = TargetSpec::from_regex(".*q_lin");
  with_layers.layers = {0};
  EXPECT_THROW(with_layers.validate(), InputError);
}

TEST(Inject, AllLinearTakesTheSixEncoderLinearsNeverHeads) {
  auto m = tiny({Head::Classifier, Head::MLM});
  auto made = inject(*m, TargetSpec::all_linear(), lora_factory());
  EXPECT_EQ(made.size(), 12u);
  std::set<std::string> names;
  for (const auto& r : made) names.insert(r.name);
  EXPECT_EQ(names, (std::set<std::string>{"q_lin", "k_lin", "v_lin", "out_lin", "lin1", "lin2"}));
  EXPECT_FALSE(std::dynamic_pointer_cast<AdapterLinear>(std::shared_ptr<model::LinearBase>(m->pre_classifier)));
  EXPECT_EQ(TargetSpec::from_list({"all-linear"}).kind, TargetSpec::Kind::AllLinear);
}

TEST(Inject, LayersToTransform) {
  auto m = tiny({Head::Classifier}, 3);
  auto made = inject(*m, TargetSpec::all_linear({1}), lora_factory());
  EXPECT_EQ(made.size(), 6u);
  for (const auto& r : made) EXPECT_EQ(r.layer, 1);
  auto m2 = tiny({Head::Classifier}, 3);
  made = inject(*m2, TargetSpec::from_names({"q_lin"}, {0, 2}), lora_factory());
  EXPECT_EQ(paths(made), (std::vector<std::string>{"distilbert.transformer.layer.0.attention.q_lin",
                                                   "distilbert.transformer.layer.2.attention.q_lin"}));
  auto msg = message_of([&] { select_slots(*m2, TargetSpec::from_names({"q_lin"}, {3})); });
  EXPECT_NE(msg.find("layer 3"), std::string::npos) << msg;
}

TEST(Inject, AdaptersFollowTheModelsTrainingMode) {
  auto m = tiny();
  m->eval();
  auto made = inject(*m, TargetSpec::from_names({"q_lin"}), lora_factory());
  for (const auto& r : made) EXPECT_FALSE(r.adapter->is_training());
  m->train();
  for (const auto& r : made) EXPECT_TRUE(r.adapter->is_training());
}

TEST(Inject, FreshAdaptersLeaveTheModelUnchangedAndRemoveRestores) {
  auto m = tiny();
  m->eval();
  auto ids = torch::randint(1, 40, {3, 9});
  auto before = m->classify(ids, {});
  inject(*m, TargetSpec::all_linear(), lora_factory());
  EXPECT_TRUE(torch::allclose(m->classify(ids, {}), before, 1e-6, 1e-6));
  remove_adapters(*m);
  EXPECT_TRUE(find_adapters(*m).empty());
  EXPECT_TRUE(torch::equal(m->classify(ids, {}), before));
}

TEST(Model, MergeAllAndUnmergeAll) {
  auto m = tiny();
  m->eval();
  auto made = inject(*m, TargetSpec::all_linear(), lora_factory());
  {
    torch::NoGradGuard g;
    for (auto& r : made) std::dynamic_pointer_cast<LoraLinear>(r.adapter)->lora_B().normal_(0.0, 0.1);
  }
  auto ids = torch::randint(1, 40, {4, 11});
  auto unmerged = m->classify(ids, {});
  merge_all(*m);
  auto merged = m->classify(ids, {});
  EXPECT_TRUE(torch::allclose(merged, unmerged, 1e-4, 1e-5)) << (merged - unmerged).abs().max().item<double>();
  unmerge_all(*m);
  EXPECT_TRUE(torch::allclose(m->classify(ids, {}), unmerged, 1e-4, 1e-5));
}

TEST(Method, ParseAndValidate) {
  EXPECT_EQ(parse_method("sparse_lora"), Method::SparseLoRA);
  EXPECT_EQ(method_name(Method::HiRA), "hira");
  EXPECT_THROW(parse_method("dora"), InputError);
  MethodConfig c;
  c.rank = 0;
  EXPECT_THROW(c.validate(), InputError);
  c.method = Method::Full;
  EXPECT_NO_THROW(c.validate());  // full ignores the adapter options
}

TEST(Method, LoraTrainsAdaptersAndClassifierHead) {
  auto m = tiny();
  MethodConfig c;
  auto applied = apply_method(*m, c, Head::Classifier);
  EXPECT_EQ(applied.adapters.size(), 4u);
  EXPECT_EQ(applied.trained_modules, (std::vector<std::string>{"pre_classifier", "classifier"}));
  std::set<std::string> want = {"pre_classifier.weight", "pre_classifier.bias", "classifier.weight", "classifier.bias"};
  for (const auto& r : applied.adapters) {
    want.insert(r.path + ".lora_A.weight");
    want.insert(r.path + ".lora_B.weight");
  }
  EXPECT_EQ(trainable(*m), want);
  EXPECT_THROW(apply_method(*m, c, Head::Classifier), std::logic_error);  // already applied
}

TEST(Method, HiraAndSparseLoraBuildTheirAdapters) {
  auto m = tiny();
  MethodConfig c;
  c.method = Method::HiRA;
  c.hira_scale = 10;
  c.targets = TargetSpec::all_linear();
  auto applied = apply_method(*m, c, Head::Classifier);
  ASSERT_EQ(applied.adapters.size(), 12u);
  EXPECT_EQ(applied.adapters[0].adapter->kind(), "hira");
  EXPECT_EQ(std::dynamic_pointer_cast<HiraLinear>(applied.adapters[0].adapter)->options().scale, 10);
  auto m2 = tiny();
  c.method = Method::SparseLoRA;
  c.sparse.l1_lambda = 1e-4;
  applied = apply_method(*m2, c, Head::Classifier);
  EXPECT_EQ(applied.adapters[0].adapter->kind(), "sparse_lora");
  EXPECT_TRUE(total_penalty(*m2).defined());
}

TEST(Method, FullAndHeadBaselines) {
  auto m = tiny();
  MethodConfig c;
  c.method = Method::Full;
  apply_method(*m, c, Head::Classifier);
  EXPECT_EQ(trainable(*m).size(), m->named_parameters().size());
  EXPECT_TRUE(find_adapters(*m).empty());

  auto h = tiny();
  c.method = Method::Head;
  apply_method(*h, c, Head::Classifier);
  EXPECT_EQ(trainable(*h), (std::set<std::string>{"pre_classifier.weight", "pre_classifier.bias", "classifier.weight", "classifier.bias"}));
  auto counts = count_parameters(*h);
  EXPECT_EQ(counts.trainable, 64 * 64 + 64 + 64 * 2 + 2);
  EXPECT_EQ(counts.adapter, 0);
}

TEST(Method, MlmTrainsNoHeadByDefaultLikePeft) {
  auto m = tiny({Head::MLM});
  MethodConfig c;
  apply_method(*m, c, Head::MLM);
  for (const auto& n : trainable(*m)) EXPECT_NE(n.find(".lora_"), std::string::npos) << n;
  auto m2 = tiny({Head::MLM});
  c.train_mlm_head = true;
  apply_method(*m2, c, Head::MLM);
  auto t = trainable(*m2);
  for (const auto& n : {"vocab_transform.weight", "vocab_transform.bias", "vocab_layer_norm.weight", "vocab_layer_norm.bias",
                        "vocab_projector.bias"})
    EXPECT_TRUE(t.count(n)) << n;
  EXPECT_FALSE(t.count("distilbert.embeddings.word_embeddings.weight"));  // tied decoder weight stays frozen
  auto h = tiny({Head::MLM});
  c.method = Method::Head;
  c.train_mlm_head = false;
  apply_method(*h, c, Head::MLM);
  EXPECT_EQ(trainable(*h).size(), 5u);  // the head baseline always trains the head
}

TEST(Method, QloraNeedsAQuantizerAndPutsLoraOnItsBase) {
  auto m = tiny();
  MethodConfig c;
  c.method = Method::QLoRA;
  EXPECT_THROW(apply_method(*m, c, Head::Classifier), std::logic_error);
  auto m2 = tiny();
  int calls = 0;
  // Stand-in quantizer: a fresh DenseLinear copy (the NF4 layer comes from src/quant).
  BaseTransform q = [&](std::shared_ptr<model::LinearBase> base, const model::LinearSlot&) -> std::shared_ptr<model::LinearBase> {
    ++calls;
    auto d = std::make_shared<model::DenseLinear>(base->in_features(), base->out_features());
    torch::NoGradGuard g;
    d->weight_param().copy_(base->effective_weight());
    d->bias_param().copy_(base->bias());
    return d;
  };
  auto applied = apply_method(*m2, c, Head::Classifier, q);
  EXPECT_EQ(calls, 12);  // every encoder linear is quantized, not only the targets
  EXPECT_EQ(applied.adapters.size(), 4u);
  for (const auto& p : m2->named_parameters())
    if (p.key().find(".k_lin.") != std::string::npos) EXPECT_FALSE(p.value().requires_grad()) << p.key();
}

TEST(Method, DistilbertBaseLoraR8CountsLikePeft) {
  // distilbert-base shapes (768 / 6 layers / 12 heads / 3072 / vocab 30522 / 512 positions /
  // 2 labels), random weights.
  model::DistilBert m(model::DistilBertConfig{}, {Head::Classifier});
  const int64_t base_total = count_parameters(m).total;
  EXPECT_EQ(base_total, 66955010);  // DistilBertForSequenceClassification
  MethodConfig c;
  c.rank = 8;
  c.alpha = 16;
  c.targets = TargetSpec::from_names({"q_lin", "v_lin"});
  auto applied = apply_method(m, c, Head::Classifier);
  auto counts = count_parameters(m);
  EXPECT_EQ(counts.trainable, 739586);  // PEFT: "trainable params: 739,586"
  EXPECT_EQ(counts.adapter, 147456);
  // B is zero at the start and A is not. A kaiming-uniform draw is exactly 0.0 with
  // probability about 2^-24 per element, so of 73,728 draws one may be (CI once drew one on
  // a different CPU): count A's zeros rather than assume there are none.
  int64_t a_numel = 0, a_nonzero = 0, b_nonzero = 0;
  for (const auto& r : applied.adapters) {
    auto lora = std::dynamic_pointer_cast<LoraLinear>(r.adapter);
    ASSERT_TRUE(lora) << r.path;
    a_numel += lora->lora_A().numel();
    a_nonzero += lora->lora_A().count_nonzero().item<int64_t>();
    b_nonzero += lora->lora_B().count_nonzero().item<int64_t>();
  }
  EXPECT_EQ(a_numel, 6 * 2 * 8 * 768);
  EXPECT_EQ(b_nonzero, 0);
  EXPECT_GE(a_nonzero, a_numel - 4);
  EXPECT_EQ(counts.adapter_nonzero, a_nonzero);
  EXPECT_EQ(counts.total, base_total + 147456);
}
