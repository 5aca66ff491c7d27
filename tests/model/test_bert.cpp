// BERT-family checkpoints: against an independent, tensor-by-tensor forward written here from
// transformers' modeling_bert.py (BertEmbeddings with token type 0, BertSelfAttention,
// BertSelfOutput, BertIntermediate, BertOutput, BertPooler → tanh → classifier,
// BertLMPredictionHead with the decoder tied to the word embeddings), in every name variant a
// Hugging Face file can have: BertForSequenceClassification / BertForMaskedLM (`bert.` prefix)
// and BertModel (no prefix, no heads).
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "core/error.h"
#include "model/checkpoint.h"
#include "model/tensor_io.h"
#include "test_util.h"

using namespace peft::model;
using peft::testing::TempDir;
using Tensors = std::map<std::string, torch::Tensor>;

namespace {

DistilBertConfig small_bert() {
  DistilBertConfig c;
  c.family = Family::Bert;
  c.vocab_size = 50;
  c.max_position_embeddings = 16;
  c.type_vocab_size = 2;
  c.n_layers = 2;
  c.n_heads = 4;
  c.dim = 32;
  c.hidden_dim = 48;
  c.dropout = 0.1;
  c.attention_dropout = 0.1;
  c.seq_classif_dropout = 0.1;
  c.layer_norm_eps = 1e-7;  // not DistilBERT's 1e-12: read from config.json
  c.id2label = {"NEG", "POS", "NEUTRAL"};
  c.architectures = {"BertForMaskedLM"};
  return c;
}

torch::Tensor layer_norm_ref(const torch::Tensor& x, const Tensors& t, const std::string& p, double eps) {
  auto mean = x.mean(-1, true);
  auto var = (x - mean).pow(2).mean(-1, true);
  return (x - mean) / torch::sqrt(var + eps) * t.at(p + ".weight") + t.at(p + ".bias");
}
torch::Tensor gelu_ref(const torch::Tensor& x) { return 0.5 * x * (1.0 + torch::erf(x / std::sqrt(2.0))); }
torch::Tensor lin(const Tensors& t, const std::string& p, const torch::Tensor& x) {
  return torch::matmul(x, t.at(p + ".weight").t()) + t.at(p + ".bias");
}

/// BertModel.forward in eval mode, token_type_ids = 0, names with the `bert.` prefix.
torch::Tensor hidden_ref(const Tensors& t, const DistilBertConfig& c, const torch::Tensor& ids, const torch::Tensor& mask) {
  const int64_t B = ids.size(0), S = ids.size(1), H = c.n_heads, dh = c.dim / H;
  const double eps = c.layer_norm_eps;
  auto x = t.at("bert.embeddings.word_embeddings.weight").index_select(0, ids.flatten()).view({B, S, c.dim}) +
           t.at("bert.embeddings.token_type_embeddings.weight")[0] +
           t.at("bert.embeddings.position_embeddings.weight").narrow(0, 0, S).unsqueeze(0);
  x = layer_norm_ref(x, t, "bert.embeddings.LayerNorm", eps);
  for (int64_t l = 0; l < c.n_layers; ++l) {
    const std::string p = "bert.encoder.layer." + std::to_string(l) + ".";
    auto q = lin(t, p + "attention.self.query", x), k = lin(t, p + "attention.self.key", x), v = lin(t, p + "attention.self.value", x);
    std::vector<torch::Tensor> heads;
    for (int64_t h = 0; h < H; ++h) {
      auto qh = q.narrow(2, h * dh, dh), kh = k.narrow(2, h * dh, dh), vh = v.narrow(2, h * dh, dh);
      auto scores = torch::bmm(qh, kh.transpose(1, 2)) / std::sqrt(double(dh));
      if (mask.defined()) {
        // BERT's extended attention mask: (1 - mask) * finfo.min added to the scores.
        auto keep = mask.to(torch::kFloat).unsqueeze(1);
        scores = scores + (1 - keep) * -3.0e38;
      }
      auto e = torch::exp(scores - std::get<0>(scores.max(-1, true)));
      heads.push_back(torch::bmm(e / e.sum(-1, true), vh));
    }
    auto attn = layer_norm_ref(lin(t, p + "attention.output.dense", torch::cat(heads, 2)) + x, t, p + "attention.output.LayerNorm", eps);
    auto inter = gelu_ref(lin(t, p + "intermediate.dense", attn));
    x = layer_norm_ref(lin(t, p + "output.dense", inter) + attn, t, p + "output.LayerNorm", eps);
  }
  return x;
}

torch::Tensor classifier_ref(const Tensors& t, const torch::Tensor& hidden) {
  auto pooled = torch::tanh(lin(t, "bert.pooler.dense", hidden.select(1, 0)));
  return lin(t, "classifier", pooled);
}

torch::Tensor mlm_ref(const Tensors& t, const torch::Tensor& hidden, double eps) {
  auto h = layer_norm_ref(gelu_ref(lin(t, "cls.predictions.transform.dense", hidden)), t, "cls.predictions.transform.LayerNorm", eps);
  return torch::matmul(h, t.at("bert.embeddings.word_embeddings.weight").t()) + t.at("cls.predictions.bias");
}

/// Random values in every tensor (LayerNorm ≠ 1/0), all heads, `bert.`-prefixed names.
Tensors random_tensors(const DistilBertConfig& c) {
  DistilBert m(c, {Head::Classifier, Head::MLM});
  m.init_weights(7);
  torch::NoGradGuard g;
  torch::manual_seed(3);
  Tensors t;
  for (auto& p : m.named_parameters()) t[p.key()] = p.value().detach().clone() + torch::randn_like(p.value()) * 0.05;
  return t;
}

enum class Variant { Prefixed, BertModel, MaskedLMWithTiedCopies };

/// A checkpoint folder as transformers would write it for `variant`.
std::string write_checkpoint(const TempDir& dir, DistilBertConfig c, const Tensors& t, Variant variant, const std::string& name = "ckpt") {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& [k, v] : t) {
    if (variant == Variant::BertModel) {
      if (k.rfind("bert.", 0) != 0) continue;  // BertModel: no task heads, no prefix
      out.emplace_back(k.substr(5), v);
    } else if (variant == Variant::MaskedLMWithTiedCopies) {
      if (k.rfind("bert.pooler", 0) == 0 || k.rfind("classifier", 0) == 0) continue;  // BertForMaskedLM has no pooler
      out.emplace_back(k, v);
    } else {
      out.emplace_back(k, v);
    }
  }
  if (variant == Variant::BertModel) {
    // Old transformers saved the position_ids buffer (int64): reported, not used.
    out.emplace_back("embeddings.position_ids", torch::arange(c.max_position_embeddings, torch::kLong).unsqueeze(0));
    c.architectures = {"BertModel"};
  }
  if (variant == Variant::MaskedLMWithTiedCopies) {
    out.emplace_back("cls.predictions.decoder.weight", t.at("bert.embeddings.word_embeddings.weight"));
    out.emplace_back("cls.predictions.decoder.bias", t.at("cls.predictions.bias"));
  }
  const std::filesystem::path path = dir / name;
  std::filesystem::create_directories(path);
  std::ofstream(path / "config.json") << c.to_json_string();
  write_safetensors((path / "model.safetensors").string(), out, {{"format", "pt"}});
  return path.string();
}

struct Inputs {
  torch::Tensor ids, mask;
};
Inputs make_inputs() {
  auto ids = torch::tensor({{1, 5, 9, 22, 49, 3, 0, 0}, {1, 7, 7, 7, 2, 0, 0, 0}, {1, 40, 41, 42, 43, 44, 45, 2}}, torch::kLong);
  return {ids, (ids != 0).to(torch::kLong)};
}

std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "(no exception)";
}

void expect_close(const torch::Tensor& a, const torch::Tensor& b, double rel = 1e-5) {
  ASSERT_EQ(a.sizes(), b.sizes());
  const double err = (a - b).abs().max().item<double>();
  const double scale = b.abs().max().item<double>();
  EXPECT_LE(err, rel * std::max(scale, 1.0)) << "max abs err " << err << " scale " << scale;
}

}  // namespace

class BertReference : public ::testing::TestWithParam<std::tuple<Head, bool>> {};

TEST_P(BertReference, LoadedCheckpointMatchesPlainTensorForward) {
  auto [head, masked] = GetParam();
  TempDir dir;
  const auto c = small_bert();
  const auto t = random_tensors(c);
  const auto path = write_checkpoint(dir, c, t, Variant::Prefixed);
  LoadOptions lo;
  lo.heads = {head};
  LoadReport rep;
  auto m = load_pretrained(path, lo, &rep);
  EXPECT_EQ(m->family(), Family::Bert);
  EXPECT_DOUBLE_EQ(m->config().layer_norm_eps, 1e-7);
  EXPECT_TRUE(rep.newly_initialised.empty());
  m->eval();
  auto in = make_inputs();
  torch::Tensor mask = masked ? in.mask : torch::Tensor();
  torch::NoGradGuard g;
  auto h = hidden_ref(t, c, in.ids, mask);
  auto y = m->forward(head, in.ids, mask);
  if (head == Head::None) expect_close(y, h);
  if (head == Head::Classifier) expect_close(y, classifier_ref(t, h));
  if (head == Head::MLM) expect_close(y, mlm_ref(t, h, c.layer_norm_eps));
}

INSTANTIATE_TEST_SUITE_P(AllHeads, BertReference,
                         ::testing::Combine(::testing::Values(Head::None, Head::Classifier, Head::MLM), ::testing::Bool()));

TEST(BertCheckpoint, StateDictUsesTransformersNames) {
  DistilBert m(small_bert(), {Head::Classifier, Head::MLM});
  std::set<std::string> names;
  for (auto& p : m.named_parameters()) names.insert(p.key());
  for (const char* n : {"bert.embeddings.word_embeddings.weight", "bert.embeddings.position_embeddings.weight",
                        "bert.embeddings.token_type_embeddings.weight", "bert.embeddings.LayerNorm.weight",
                        "bert.encoder.layer.1.attention.self.query.weight", "bert.encoder.layer.1.attention.self.key.bias",
                        "bert.encoder.layer.1.attention.self.value.weight", "bert.encoder.layer.1.attention.output.dense.weight",
                        "bert.encoder.layer.1.attention.output.LayerNorm.bias", "bert.encoder.layer.1.intermediate.dense.weight",
                        "bert.encoder.layer.1.output.dense.bias", "bert.encoder.layer.1.output.LayerNorm.weight",
                        "bert.pooler.dense.weight", "classifier.weight", "cls.predictions.transform.dense.weight",
                        "cls.predictions.transform.LayerNorm.bias", "cls.predictions.bias"})
    EXPECT_TRUE(names.count(n)) << n;
  // 5 embedding tensors, 16 per layer, pooler 2, classifier 2, MLM 5: nothing else.
  EXPECT_EQ(names.size(), 5u + 16u * 2 + 2 + 2 + 5);
  DistilBert mlm(small_bert(), {Head::MLM});
  for (auto& p : mlm.named_parameters()) EXPECT_EQ(p.key().find("pooler"), std::string::npos) << p.key();
}

TEST(BertCheckpoint, BertModelFileWithoutPrefixKeepsThePoolerAndInitialisesTheClassifier) {
  TempDir dir;
  const auto c = small_bert();
  const auto t = random_tensors(c);
  const auto path = write_checkpoint(dir, c, t, Variant::BertModel);
  LoadOptions lo;
  lo.heads = {Head::Classifier};
  LoadReport rep;
  auto m = load_pretrained(path, lo, &rep);
  EXPECT_EQ(rep.newly_initialised, (std::vector<std::string>{"classifier.weight", "classifier.bias"}));
  EXPECT_EQ(rep.unexpected, (std::vector<std::string>{"embeddings.position_ids"}));
  // The pooler came from the file, not from the head initialisation.
  EXPECT_TRUE(torch::equal(m->pre_classifier->weight_param(), t.at("bert.pooler.dense.weight")));
  m->eval();
  torch::NoGradGuard g;
  auto in = make_inputs();
  expect_close(m->hidden_states(in.ids, in.mask), hidden_ref(t, c, in.ids, in.mask));
  // Re-saved, it loads back to the same model (prefixed names now).
  save_pretrained(*m, dir / "resaved");
  auto again = load_pretrained(dir / "resaved", lo);
  again->eval();
  expect_close(again->classify(in.ids, in.mask), m->classify(in.ids, in.mask), 1e-6);
}

TEST(BertCheckpoint, MaskedLMFileWithTiedCopiesLoadsAndClassifierNeedsANewPooler) {
  TempDir dir;
  const auto c = small_bert();
  const auto t = random_tensors(c);
  const auto path = write_checkpoint(dir, c, t, Variant::MaskedLMWithTiedCopies);
  LoadOptions lo;
  lo.heads = {Head::MLM};
  LoadReport rep;
  auto m = load_pretrained(path, lo, &rep);
  EXPECT_TRUE(rep.newly_initialised.empty());
  EXPECT_TRUE(rep.unexpected.empty()) << fmt::format("{}", fmt::join(rep.unexpected, ", "));
  m->eval();
  torch::NoGradGuard g;
  auto in = make_inputs();
  expect_close(m->mlm_logits(in.ids, in.mask), mlm_ref(t, hidden_ref(t, c, in.ids, in.mask), c.layer_norm_eps));
  // For classification the pooler and the classifier are new (transformers does the same).
  lo.heads = {Head::Classifier};
  load_pretrained(path, lo, &rep);
  EXPECT_EQ(rep.newly_initialised.size(), 4u);
}

TEST(BertCheckpoint, TokenTypeZeroIsTheSegmentUsed) {
  TempDir dir;
  const auto c = small_bert();
  auto t = random_tensors(c);
  LoadOptions lo;
  lo.heads = {};
  auto in = make_inputs();
  torch::NoGradGuard g;
  auto base = load_pretrained(write_checkpoint(dir, c, t, Variant::Prefixed, "a"), lo);
  base->eval();
  auto y = base->hidden_states(in.ids, in.mask);
  t["bert.embeddings.token_type_embeddings.weight"][1].add_(1.0);  // segment 1: unused
  auto same = load_pretrained(write_checkpoint(dir, c, t, Variant::Prefixed, "b"), lo);
  same->eval();
  EXPECT_TRUE(torch::equal(same->hidden_states(in.ids, in.mask), y));
  t["bert.embeddings.token_type_embeddings.weight"][0].add_(torch::randn({c.dim}));  // segment 0: used
  auto other = load_pretrained(write_checkpoint(dir, c, t, Variant::Prefixed, "c"), lo);
  other->eval();
  EXPECT_GT((other->hidden_states(in.ids, in.mask) - y).abs().max().item<double>(), 1e-3);
}

TEST(BertCheckpoint, ShapeMismatchAndMissingTensorNameFileAndTensor) {
  TempDir dir;
  auto c = small_bert();
  auto t = random_tensors(c);
  t["bert.encoder.layer.1.attention.self.key.weight"] = torch::zeros({c.dim, c.dim + 1});
  auto path = write_checkpoint(dir, c, t, Variant::Prefixed, "bad");
  LoadOptions lo;
  auto msg = message_of([&] { load_pretrained(path, lo); });
  EXPECT_NE(msg.find("model.safetensors"), std::string::npos) << msg;
  EXPECT_NE(msg.find("bert.encoder.layer.1.attention.self.key.weight"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[32, 33]"), std::string::npos) << msg;
  t = random_tensors(c);
  t.erase("bert.encoder.layer.0.output.LayerNorm.weight");
  path = write_checkpoint(dir, c, t, Variant::Prefixed, "missing");
  msg = message_of([&] { load_pretrained(path, lo); });
  EXPECT_NE(msg.find("bert.encoder.layer.0.output.LayerNorm.weight"), std::string::npos) << msg;
  EXPECT_NE(msg.find("missing"), std::string::npos) << msg;
}

TEST(BertConfig, ReadsBertKeysAndRefusesWhatItCannotCompute) {
  auto c = DistilBertConfig::from_json_string(R"({"model_type": "bert", "hidden_size": 384, "num_hidden_layers": 6,
      "num_attention_heads": 12, "intermediate_size": 1536, "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
      "attention_probs_dropout_prob": 0.05, "classifier_dropout": null, "layer_norm_eps": 1e-12, "type_vocab_size": 2,
      "vocab_size": 30522, "max_position_embeddings": 512, "position_embedding_type": "absolute", "architectures": ["BertModel"]})",
                                              "config.json");
  EXPECT_TRUE(c.is_bert());
  EXPECT_EQ(c.dim, 384);
  EXPECT_EQ(c.n_layers, 6);
  EXPECT_EQ(c.n_heads, 12);
  EXPECT_EQ(c.hidden_dim, 1536);
  EXPECT_DOUBLE_EQ(c.attention_dropout, 0.05);
  EXPECT_DOUBLE_EQ(c.seq_classif_dropout, 0.1);  // classifier_dropout null → hidden_dropout_prob
  auto back = DistilBertConfig::from_json_string(c.to_json_string(), "re");
  EXPECT_EQ(back.to_json_string(), c.to_json_string());
  auto msg_of = [](const std::string& s) { return message_of([&] { DistilBertConfig::from_json_string(s, "cfg.json"); }); };
  auto msg = msg_of(R"({"model_type": "bert", "hidden_act": "silu"})");
  EXPECT_NE(msg.find("hidden_act"), std::string::npos) << msg;
  msg = msg_of(R"({"model_type": "bert", "position_embedding_type": "relative_key"})");
  EXPECT_NE(msg.find("position_embedding_type"), std::string::npos) << msg;
  msg = msg_of(R"({"model_type": "bert", "hidden_size": 30, "num_attention_heads": 4})");
  EXPECT_NE(msg.find("cfg.json"), std::string::npos) << msg;
  msg = msg_of(R"({"model_type": "roberta"})");
  EXPECT_NE(msg.find("roberta"), std::string::npos) << msg;
}
