// HF PEFT layout: adapter_config.json + adapter_model.safetensors. Round trips are byte-identical,
// PEFT's own files re-emit byte for byte, the real adapters load onto a distilbert-base-shaped
// model, and adapters that do not fit are refused naming the tensor.
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "adapters/method.h"
#include "adapters/model_ops.h"
#include "adapters/peft_io.h"
#include "core/error.h"
#include "io/safetensors.h"
#include "model/tensor_io.h"
#include "test_util.h"

using namespace peft;
using namespace peft::adapters;
using model::Head;
using peft::testing::TempDir;

namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::shared_ptr<model::DistilBert> tiny(std::vector<Head> heads = {Head::Classifier}, int64_t layers = 2, int64_t dim = 64,
                                        int64_t labels = 2) {
  auto c = model::DistilBertConfig::tiny(40);
  c.n_layers = layers;
  c.dim = dim;
  c.id2label.resize(labels, "X");
  auto m = std::make_shared<model::DistilBert>(c, heads);
  m->eval();
  return m;
}

/// Every trainable tensor random (B and the heads too), so a round trip has something to carry.
void randomise_trainable(model::DistilBert& m, uint64_t seed) {
  torch::NoGradGuard g;
  torch::manual_seed(seed);
  for (auto& p : m.parameters())
    if (p.requires_grad()) p.normal_(0.0, 0.2);
}

std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

/// Trains nothing: applies `cfg`, randomises, saves; loads into a fresh model, saves again;
/// both folders must hold the same bytes, and the two models compute the same.
void round_trip(const MethodConfig& cfg, Head head, const std::function<void(model::DistilBert&)>& tweak = {}) {
  auto a = tiny({head});
  apply_method(*a, cfg, head);
  randomise_trainable(*a, 3);
  if (tweak) tweak(*a);
  TempDir d1, d2;
  auto pc = PeftAdapterConfig::from_method(cfg, head);
  save_adapter(*a, pc, d1.path().string());

  auto b = tiny({head});
  auto loaded = load_adapter(*b, d1.path().string());
  save_adapter(*b, loaded.config, d2.path().string());
  for (const char* f : {"adapter_config.json", "adapter_model.safetensors"})
    EXPECT_EQ(slurp(d1 / f), slurp(d2 / f)) << method_name(cfg.method) << ": " << f << " differs after save → load → save";

  auto ids = torch::randint(1, 40, {2, 10});
  auto ya = a->forward(head, ids, {}), yb = b->forward(head, ids, {});
  EXPECT_TRUE(torch::allclose(ya, yb, 1e-5, 1e-5)) << method_name(cfg.method) << ": " << (ya - yb).abs().max().item<double>();
}

std::shared_ptr<model::DistilBert> base_shaped(std::vector<Head> heads) {
  auto m = std::make_shared<model::DistilBert>(model::DistilBertConfig{}, heads);
  m->eval();
  return m;
}

}  // namespace

TEST(PeftConfig, ReEmitsPeftFilesByteForByte) {
  PEFT_REQUIRE_SHARED(root, "peft-adapters");
  int checked = 0;
  for (const char* name : {"lora-sst2", "sparse-lora-sst2", "lora-wikitext2", "qlora-sst2"}) {
    const auto path = std::filesystem::path(root) / name / "adapter_config.json";
    if (!std::filesystem::exists(path)) continue;
    auto cfg = PeftAdapterConfig::from_json_file(path.string());
    EXPECT_EQ(cfg.to_json_string(), slurp(path.string())) << name;
    ++checked;
  }
  EXPECT_GT(checked, 0);
}

TEST(PeftConfig, RefusesWhatItCannotCompute) {
  auto parse = [](const std::string& s) { return message_of([&] { PeftAdapterConfig::from_json_string(s, "cfg.json"); }); };
  auto msg = parse(R"({"peft_type": "IA3", "target_modules": ["q_lin"]})");
  EXPECT_NE(msg.find("cfg.json"), std::string::npos) << msg;
  EXPECT_NE(msg.find("IA3"), std::string::npos) << msg;
  msg = parse(R"({"peft_type": "LORA", "r": 8, "target_modules": ["q_lin"], "use_dora": true})");
  EXPECT_NE(msg.find("use_dora"), std::string::npos) << msg;
  msg = parse(R"({"peft_type": "LORA", "r": "8", "target_modules": ["q_lin"]})");
  EXPECT_NE(msg.find("\"r\""), std::string::npos) << msg;
  msg = parse(R"({"peft_type": "LORA", "r": 8, "target_modules": null})");
  EXPECT_NE(msg.find("target_modules"), std::string::npos) << msg;
  msg = parse(R"({"peft_type": "LORA", "r": 8, "target_modules": ["q_lin"], "rank_pattern": {"q_lin": 4}})");
  EXPECT_NE(msg.find("rank_pattern"), std::string::npos) << msg;
  msg = parse("{not json");
  EXPECT_NE(msg.find("not valid JSON"), std::string::npos) << msg;
  auto ok = PeftAdapterConfig::from_json_string(
      R"({"peft_type": "HIRA", "r": 4, "target_modules": ".*q_lin", "hira_dropout": 0.1, "unknown_key": 1})", "h.json");
  EXPECT_EQ(ok.targets.kind, TargetSpec::Kind::Regex);
  EXPECT_DOUBLE_EQ(ok.dropout, 0.1);
  auto layers = PeftAdapterConfig::from_json_string(R"({"peft_type": "LORA", "target_modules": ["q_lin"], "layers_to_transform": 1})", "l.json");
  EXPECT_EQ(layers.targets.layers, (std::vector<int64_t>{1}));
}

TEST(PeftConfig, FromMethod) {
  MethodConfig c;
  c.targets = TargetSpec::all_linear({0});
  auto pc = PeftAdapterConfig::from_method(c, Head::Classifier);
  EXPECT_EQ(pc.peft_type, "LORA");
  EXPECT_EQ(pc.task_type, "SEQ_CLS");
  EXPECT_EQ(pc.targets.names, encoder_linear_names());  // all-linear expanded, as PEFT saves it
  EXPECT_EQ(pc.targets.layers, (std::vector<int64_t>{0}));
  EXPECT_EQ(*pc.modules_to_save, (std::vector<std::string>{"classifier", "score"}));
  EXPECT_TRUE(pc.saves_module("pre_classifier"));  // PEFT's suffix rule
  c.method = Method::HiRA;
  EXPECT_EQ(PeftAdapterConfig::from_method(c, Head::MLM).peft_type, "HIRA");
  EXPECT_FALSE(PeftAdapterConfig::from_method(c, Head::MLM).modules_to_save);
  c.method = Method::Full;
  EXPECT_THROW(PeftAdapterConfig::from_method(c, Head::Classifier), InputError);
}

TEST(PeftIo, SavedKeysArePeftsKeys) {
  auto m = tiny();
  MethodConfig c;
  apply_method(*m, c, Head::Classifier);
  TempDir d;
  save_adapter(*m, PeftAdapterConfig::from_method(c, Head::Classifier), d.path().string());
  st::SafetensorsReader r(d / "adapter_model.safetensors");
  std::vector<std::string> names;
  for (const auto& t : r.tensors()) names.push_back(t.name);
  std::sort(names.begin(), names.end());
  std::vector<std::string> want = {"base_model.model.classifier.bias", "base_model.model.classifier.weight"};
  for (int l = 0; l < 2; ++l)
    for (const char* lin : {"q_lin", "v_lin"})
      for (const char* ab : {"lora_A", "lora_B"})
        want.push_back(fmt::format("base_model.model.distilbert.transformer.layer.{}.attention.{}.{}.weight", l, lin, ab));
  want.push_back("base_model.model.pre_classifier.bias");
  want.push_back("base_model.model.pre_classifier.weight");
  EXPECT_EQ(names, want);
  EXPECT_EQ(r.metadata().at("format"), "pt");

  auto h = tiny({Head::MLM});
  c.method = Method::HiRA;
  apply_method(*h, c, Head::MLM);
  TempDir dh;
  save_adapter(*h, PeftAdapterConfig::from_method(c, Head::MLM), dh.path().string());
  st::SafetensorsReader rh(dh / "adapter_model.safetensors");
  EXPECT_TRUE(rh.contains("base_model.model.distilbert.transformer.layer.1.attention.v_lin.hira_B"));
  EXPECT_EQ(rh.tensors().size(), 8u);  // no head: PEFT saves none for MLM by default
  EXPECT_NE(slurp(dh / "adapter_config.json").find("\"peft_type\": \"HIRA\""), std::string::npos);
}

TEST(PeftIo, SaveLoadSaveIsByteIdenticalForEveryMethod) {
  MethodConfig lora;
  lora.use_rslora = true;
  lora.dropout = 0.05;
  round_trip(lora, Head::Classifier);

  MethodConfig all = lora;
  all.targets = TargetSpec::all_linear({1});
  round_trip(all, Head::Classifier);

  MethodConfig regex;
  regex.targets = TargetSpec::from_regex(R"(.*layer\.0\.ffn\.lin[12])");
  round_trip(regex, Head::Classifier);

  MethodConfig hira;
  hira.method = Method::HiRA;
  hira.hira_scale = 7.0;  // folded into hira_B on save
  hira.targets = TargetSpec::all_linear();
  round_trip(hira, Head::Classifier);

  MethodConfig sparse;
  sparse.method = Method::SparseLoRA;
  sparse.rank = 6;
  round_trip(sparse, Head::Classifier, [](model::DistilBert& m) {
    for (auto& r : find_adapters(m)) std::dynamic_pointer_cast<SparseLoraLinear>(r.adapter)->prune_to(0.5);
  });

  MethodConfig mlm;
  mlm.train_mlm_head = true;
  round_trip(mlm, Head::MLM);
}

TEST(PeftIo, SparseLoraSavesZerosAndLoadsAsLora) {
  auto a = tiny();
  MethodConfig c;
  c.method = Method::SparseLoRA;
  apply_method(*a, c, Head::Classifier);
  randomise_trainable(*a, 5);
  for (auto& r : find_adapters(*a)) std::dynamic_pointer_cast<SparseLoraLinear>(r.adapter)->prune_to(0.25);
  const auto before = sparsity_report(*a);
  EXPECT_EQ(before.total - before.nonzero, 4 * (std::llround(0.25 * 8 * 64) * 2));
  TempDir d;
  save_adapter(*a, PeftAdapterConfig::from_method(c, Head::Classifier), d.path().string());
  EXPECT_NE(slurp(d / "adapter_config.json").find("\"peft_type\": \"LORA\""), std::string::npos);
  auto b = tiny();
  auto loaded = load_adapter(*b, d.path().string());
  EXPECT_EQ(loaded.adapters[0].adapter->kind(), "lora");
  const auto after = sparsity_report(*b);
  EXPECT_EQ(after.nonzero, before.nonzero);
  EXPECT_EQ(after.total, before.total);
}

TEST(PeftIo, LoadSetsTrainability) {
  auto a = tiny();
  MethodConfig c;
  apply_method(*a, c, Head::Classifier);
  TempDir d;
  save_adapter(*a, PeftAdapterConfig::from_method(c, Head::Classifier), d.path().string());
  auto b = tiny();
  load_adapter(*b, d.path().string());
  EXPECT_EQ(count_parameters(*b).trainable, 0);
  auto t = tiny();
  load_adapter(*t, d.path().string(), {.trainable = true});
  EXPECT_EQ(count_parameters(*t).trainable, count_parameters(*a).trainable);
}

TEST(PeftIo, MismatchedAdaptersAreRefusedNamingTheTensor) {
  auto a = tiny({Head::Classifier}, 3);
  MethodConfig c;
  apply_method(*a, c, Head::Classifier);
  TempDir d;
  save_adapter(*a, PeftAdapterConfig::from_method(c, Head::Classifier), d.path().string());

  // Narrower model: the first adapter tensor does not fit.
  auto narrow = tiny({Head::Classifier}, 3, 32);
  auto msg = message_of([&] { load_adapter(*narrow, d.path().string()); });
  EXPECT_NE(msg.find("base_model.model.distilbert.transformer.layer.0.attention.q_lin.lora_A.weight"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[8, 64]"), std::string::npos) << msg;
  EXPECT_TRUE(find_adapters(*narrow).empty());  // nothing changed

  // Fewer layers: layer 2's tensors have no place.
  auto shallow = tiny({Head::Classifier}, 2);
  msg = message_of([&] { load_adapter(*shallow, d.path().string()); });
  EXPECT_NE(msg.find("layer.2.attention.q_lin.lora_A.weight"), std::string::npos) << msg;
  EXPECT_TRUE(find_adapters(*shallow).empty());

  // Another label count: the classifier does not fit.
  auto three = tiny({Head::Classifier}, 3, 64, 3);
  msg = message_of([&] { load_adapter(*three, d.path().string()); });
  EXPECT_NE(msg.find("base_model.model.classifier.weight has shape [2, 64], the model needs [3, 64]"), std::string::npos) << msg;

  // A model without the classifier head has no place for the saved head.
  auto mlm = tiny({Head::MLM}, 3);
  msg = message_of([&] { load_adapter(*mlm, d.path().string()); });
  EXPECT_NE(msg.find("base_model.model.classifier.bias"), std::string::npos) << msg;

  EXPECT_THROW(load_adapter(*mlm, (d.path() / "nope").string()), InputError);
  auto twice = tiny({Head::Classifier}, 3);
  load_adapter(*twice, d.path().string());
  EXPECT_THROW(load_adapter(*twice, d.path().string()), std::logic_error);
}

TEST(PeftIo, SaveRefusesAConfigThatDoesNotDescribeTheModel) {
  auto a = tiny();
  MethodConfig c;
  apply_method(*a, c, Head::Classifier);
  TempDir d;
  auto pc = PeftAdapterConfig::from_method(c, Head::Classifier);
  pc.r = 4;
  EXPECT_THROW(save_adapter(*a, pc, d.path().string()), std::logic_error);
  pc = PeftAdapterConfig::from_method(c, Head::Classifier);
  pc.targets = TargetSpec::from_names({"q_lin"});
  EXPECT_THROW(save_adapter(*a, pc, d.path().string()), std::logic_error);
}

TEST(PeftRealAdapters, LoraSst2Loads) {
  PEFT_REQUIRE_SHARED(dir, "peft-adapters/lora-sst2");
  auto m = base_shaped({Head::Classifier});
  auto loaded = load_adapter(*m, dir);
  EXPECT_EQ(loaded.adapters.size(), 12u);
  EXPECT_EQ(loaded.heads.size(), 4u);
  auto file = model::read_safetensors(dir + "/adapter_model.safetensors");
  auto q0 = std::dynamic_pointer_cast<LoraLinear>(loaded.adapters[0].adapter);
  ASSERT_TRUE(q0);
  EXPECT_DOUBLE_EQ(q0->scaling(), 2.0);  // α 16 / r 8
  EXPECT_TRUE(torch::equal(q0->lora_A(), file.at("base_model.model.distilbert.transformer.layer.0.attention.q_lin.lora_A.weight")));
  EXPECT_TRUE(torch::equal(m->classifier->weight_param(), file.at("base_model.model.classifier.weight")));
  EXPECT_TRUE(torch::equal(m->pre_classifier->bias_param(), file.at("base_model.model.pre_classifier.bias")));
  auto logits = m->classify(torch::tensor({{101, 2023, 3185, 2001, 2307, 102}}), {});
  EXPECT_EQ(logits.sizes(), (std::vector<int64_t>{1, 2}));
  EXPECT_TRUE(torch::isfinite(logits).all().item<bool>());
  EXPECT_GT(count_parameters(*m).adapter_nonzero, 0);
}

TEST(PeftRealAdapters, SparseLoraSst2LoadsWithItsSparsity) {
  PEFT_REQUIRE_SHARED(dir, "peft-adapters/sparse-lora-sst2");
  auto m = base_shaped({Head::Classifier});
  load_adapter(*m, dir);
  auto report = sparsity_report(*m);
  EXPECT_EQ(report.total, 147456);  // sparsity_stats.json: total_lora_parameters
  EXPECT_EQ(report.nonzero, 73728);  // and nonzero_parameters (50 %)
  EXPECT_EQ(report.tensors.size(), 24u);
}

TEST(PeftRealAdapters, LoraWikitext2LoadsOntoTheMlmModel) {
  PEFT_REQUIRE_SHARED(dir, "peft-adapters/lora-wikitext2");
  auto m = base_shaped({Head::MLM});
  auto loaded = load_adapter(*m, dir);
  EXPECT_EQ(loaded.adapters.size(), 12u);
  EXPECT_TRUE(loaded.heads.empty());
  EXPECT_EQ(loaded.config.task_type, "FEATURE_EXTRACTION");
  auto logits = m->mlm_logits(torch::tensor({{101, 103, 2003, 102}}), {});
  EXPECT_EQ(logits.size(2), 30522);
}

TEST(PeftRealAdapters, QloraSst2IsABertAdapter) {
  // PEFT trained this one on bert-base-uncased (target_modules query/key/value under
  // bert.encoder…, modules_to_save classifier): it loads onto a bert-base-shaped model, and its
  // tensors have no place in DistilBERT.
  PEFT_REQUIRE_SHARED(dir, "peft-adapters/qlora-sst2");
  auto distil = base_shaped({Head::Classifier});
  auto msg = message_of([&] { load_adapter(*distil, dir); });
  EXPECT_NE(msg.find("match no linear layer"), std::string::npos) << msg;
  EXPECT_NE(msg.find("query"), std::string::npos) << msg;
  EXPECT_TRUE(find_adapters(*distil).empty());

  model::DistilBertConfig bert_base;  // bert-base-uncased: 12 layers, 768, FFN 3072
  bert_base.family = model::Family::Bert;
  bert_base.n_layers = 12;
  auto m = std::make_shared<model::DistilBert>(bert_base, std::vector<Head>{Head::Classifier});
  m->eval();
  auto ids = torch::tensor({{101, 2023, 3185, 2001, 2307, 102}});
  torch::Tensor before;
  {
    torch::NoGradGuard g;
    before = m->classify(ids, {});
  }
  auto loaded = load_adapter(*m, dir);
  EXPECT_EQ(loaded.adapters.size(), 36u);
  EXPECT_EQ(loaded.adapters.front().path, "bert.encoder.layer.0.attention.self.query");
  EXPECT_EQ(loaded.heads, (std::vector<std::string>{"classifier.weight", "classifier.bias"}));
  EXPECT_EQ(loaded.config.targets.names, (std::vector<std::string>{"value", "key", "query"}));
  auto lora_b = model::read_safetensors(dir + "/adapter_model.safetensors")
                    .at("base_model.model.bert.encoder.layer.3.attention.self.value.lora_B.weight");
  bool found = false;
  for (auto& p : m->named_parameters())
    if (p.key() == "bert.encoder.layer.3.attention.self.value.lora_B.weight") {
      found = true;
      EXPECT_TRUE(torch::equal(p.value(), lora_b.to(torch::kFloat32)));
    }
  EXPECT_TRUE(found);
  torch::NoGradGuard g;
  auto after = m->classify(ids, {});
  EXPECT_EQ(after.sizes(), before.sizes());
  EXPECT_GT((after - before).abs().max().item<double>(), 0.0);  // the trained head and adapters act
}

TEST(PeftBert, SaveLoadRoundTripInPeftLayoutWithBertNames) {
  auto c = model::DistilBertConfig::tiny_bert(40);
  auto a = std::make_shared<model::DistilBert>(c, std::vector<Head>{Head::Classifier});
  MethodConfig mc;
  mc.targets = TargetSpec::all_linear();
  apply_method(*a, mc, Head::Classifier);
  {
    torch::NoGradGuard g;
    for (auto& p : a->named_parameters())
      if (p.value().requires_grad()) p.value().add_(torch::randn_like(p.value()) * 0.1);
  }
  a->eval();
  TempDir d;
  const auto pc = PeftAdapterConfig::from_method(mc, Head::Classifier, model::Family::Bert);
  EXPECT_EQ(pc.targets.names, encoder_linear_names(model::Family::Bert));
  save_adapter(*a, pc, d.path().string());
  auto tensors = model::read_safetensors((d.path() / "adapter_model.safetensors").string());
  EXPECT_TRUE(tensors.count("base_model.model.bert.encoder.layer.0.attention.self.query.lora_A.weight"));
  EXPECT_TRUE(tensors.count("base_model.model.bert.encoder.layer.1.intermediate.dense.lora_B.weight"));
  EXPECT_TRUE(tensors.count("base_model.model.classifier.weight"));
  EXPECT_FALSE(tensors.count("base_model.model.bert.pooler.dense.weight"));  // frozen, not saved
  EXPECT_EQ(tensors.size(), 2u * 12 + 2);
  auto b = std::make_shared<model::DistilBert>(c, std::vector<Head>{Head::Classifier});
  // The constructor initialises the same base (seed 0) in both.
  b->eval();
  auto loaded = load_adapter(*b, d.path().string());
  EXPECT_EQ(loaded.adapters.size(), 12u);
  auto ids = torch::randint(1, 40, {2, 10});
  torch::NoGradGuard g;
  auto ya = a->classify(ids, {}), yb = b->classify(ids, {});
  EXPECT_TRUE(torch::allclose(ya, yb, 1e-5, 1e-5)) << (ya - yb).abs().max().item<double>();
}

TEST(PeftBert, TargetsByBertNames) {
  model::DistilBert m(model::DistilBertConfig::tiny_bert(40), {Head::Classifier});
  auto paths = [&](const TargetSpec& s) {
    std::vector<std::string> out;
    for (auto& slot : select_slots(m, s)) out.push_back(slot.path);
    return out;
  };
  EXPECT_EQ(paths(TargetSpec::from_names({"query", "value"}, {1})),
            (std::vector<std::string>{"bert.encoder.layer.1.attention.self.query", "bert.encoder.layer.1.attention.self.value"}));
  // "dense" is the three dense layers of a block, never the pooler.
  EXPECT_EQ(paths(TargetSpec::from_names({"dense"}, {0})),
            (std::vector<std::string>{"bert.encoder.layer.0.attention.output.dense", "bert.encoder.layer.0.intermediate.dense",
                                      "bert.encoder.layer.0.output.dense"}));
  EXPECT_EQ(paths(TargetSpec::all_linear()).size(), 12u);
  auto msg = message_of([&] { select_slots(m, TargetSpec::from_names({"q_lin"})); });
  EXPECT_NE(msg.find("bert.encoder.layer.0.attention.self.query"), std::string::npos) << msg;

  // LoRA on query/key/value: a zero-initialised B leaves the output unchanged; the pooler stays
  // frozen and only the classifier is trained with the adapters (PEFT's modules_to_save).
  m.eval();
  auto ids = torch::randint(1, 40, {3, 8});
  auto mask = torch::ones_like(ids);
  torch::Tensor before;
  {
    torch::NoGradGuard g;
    before = m.classify(ids, mask);
  }
  MethodConfig mc;
  mc.targets = TargetSpec::from_names({"query", "key", "value"});
  auto applied = apply_method(m, mc, Head::Classifier);
  EXPECT_EQ(applied.adapters.size(), 6u);
  EXPECT_EQ(applied.trained_modules, (std::vector<std::string>{"classifier"}));
  EXPECT_FALSE(m.pre_classifier->weight_param().requires_grad());
  EXPECT_TRUE(m.classifier->weight_param().requires_grad());
  torch::NoGradGuard g;
  EXPECT_TRUE(torch::allclose(m.classify(ids, mask), before, 1e-6, 1e-6));
}
