// DistilBERT against an independent, tensor-by-tensor forward written here from the
// transformers source (no module code shared), for all three heads, masked and unmasked.
#include <cmath>
#include <filesystem>
#include <fstream>

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

DistilBertConfig small_config() {
  DistilBertConfig c;
  c.vocab_size = 50;
  c.max_position_embeddings = 16;
  c.n_layers = 2;
  c.n_heads = 4;
  c.dim = 32;
  c.hidden_dim = 48;
  c.dropout = 0.1;
  c.attention_dropout = 0.1;
  c.seq_classif_dropout = 0.2;
  c.id2label = {"NEG", "POS", "NEUTRAL"};
  return c;
}

torch::Tensor layer_norm_ref(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b) {
  auto mean = x.mean(-1, true);
  auto var = (x - mean).pow(2).mean(-1, true);
  return (x - mean) / torch::sqrt(var + 1e-12) * w + b;
}
torch::Tensor gelu_ref(const torch::Tensor& x) { return 0.5 * x * (1.0 + torch::erf(x / std::sqrt(2.0))); }
torch::Tensor lin(const Tensors& t, const std::string& p, const torch::Tensor& x) {
  return torch::matmul(x, t.at(p + ".weight").t()) + t.at(p + ".bias");
}

/// Plain re-implementation of DistilBertModel.forward in eval mode, one head at a time.
torch::Tensor hidden_ref(const Tensors& t, const DistilBertConfig& c, const torch::Tensor& ids, const torch::Tensor& mask) {
  const int64_t B = ids.size(0), S = ids.size(1), H = c.n_heads, dh = c.dim / H;
  auto x = t.at("distilbert.embeddings.word_embeddings.weight").index_select(0, ids.flatten()).view({B, S, c.dim}) +
           t.at("distilbert.embeddings.position_embeddings.weight").narrow(0, 0, S).unsqueeze(0);
  x = layer_norm_ref(x, t.at("distilbert.embeddings.LayerNorm.weight"), t.at("distilbert.embeddings.LayerNorm.bias"));
  for (int64_t l = 0; l < c.n_layers; ++l) {
    const std::string p = "distilbert.transformer.layer." + std::to_string(l) + ".";
    auto q = lin(t, p + "attention.q_lin", x), k = lin(t, p + "attention.k_lin", x), v = lin(t, p + "attention.v_lin", x);
    std::vector<torch::Tensor> heads;
    for (int64_t h = 0; h < H; ++h) {
      auto qh = q.narrow(2, h * dh, dh), kh = k.narrow(2, h * dh, dh), vh = v.narrow(2, h * dh, dh);
      auto scores = torch::bmm(qh, kh.transpose(1, 2)) / std::sqrt(double(dh));  // [B,S,S]
      if (mask.defined()) {
        auto keep = mask.to(torch::kFloat).unsqueeze(1);  // [B,1,S]
        scores = scores * keep + (1 - keep) * -1e30;
      }
      auto e = torch::exp(scores - std::get<0>(scores.max(-1, true)));
      heads.push_back(torch::bmm(e / e.sum(-1, true), vh));
    }
    auto ctx = lin(t, p + "attention.out_lin", torch::cat(heads, 2));
    auto sa = layer_norm_ref(ctx + x, t.at(p + "sa_layer_norm.weight"), t.at(p + "sa_layer_norm.bias"));
    auto f = lin(t, p + "ffn.lin2", gelu_ref(lin(t, p + "ffn.lin1", sa)));
    x = layer_norm_ref(f + sa, t.at(p + "output_layer_norm.weight"), t.at(p + "output_layer_norm.bias"));
  }
  return x;
}

torch::Tensor classifier_ref(const Tensors& t, const torch::Tensor& hidden) {
  auto pooled = hidden.select(1, 0);
  return lin(t, "classifier", torch::relu(lin(t, "pre_classifier", pooled)));
}

torch::Tensor mlm_ref(const Tensors& t, const torch::Tensor& hidden) {
  auto h = layer_norm_ref(gelu_ref(lin(t, "vocab_transform", hidden)), t.at("vocab_layer_norm.weight"), t.at("vocab_layer_norm.bias"));
  return torch::matmul(h, t.at("distilbert.embeddings.word_embeddings.weight").t()) + t.at("vocab_projector.bias");
}

/// A checkpoint with random (non-default) values in every tensor, written like HF would.
std::string write_checkpoint(const TempDir& dir, const DistilBertConfig& c) {
  DistilBert m(c, {Head::Classifier, Head::MLM});
  m.init_weights(7);
  torch::NoGradGuard g;
  torch::manual_seed(3);
  for (auto& p : m.named_parameters()) p.value().add_(torch::randn_like(p.value()) * 0.05);  // LayerNorm ≠ 1/0
  save_pretrained(m, dir / "ckpt");
  return dir / "ckpt";
}

struct Inputs {
  torch::Tensor ids, mask;
};
Inputs make_inputs() {
  auto ids = torch::tensor({{1, 5, 9, 22, 49, 3, 0, 0}, {1, 7, 7, 7, 2, 0, 0, 0}, {1, 40, 41, 42, 43, 44, 45, 2}}, torch::kLong);
  auto mask = (ids != 0).to(torch::kLong);
  mask.index_put_({2, 0}, 1);
  return {ids, mask};
}

void expect_close(const torch::Tensor& a, const torch::Tensor& b, double rel = 1e-5) {
  ASSERT_EQ(a.sizes(), b.sizes());
  const double err = (a - b).abs().max().item<double>();
  const double scale = b.abs().max().item<double>();
  EXPECT_LE(err, rel * std::max(scale, 1.0)) << "max abs err " << err << " scale " << scale;
}

}  // namespace

class DistilBertReference : public ::testing::TestWithParam<std::tuple<Head, bool>> {};

TEST_P(DistilBertReference, LoadedCheckpointMatchesPlainTensorForward) {
  auto [head, masked] = GetParam();
  TempDir dir;
  auto c = small_config();
  auto path = write_checkpoint(dir, c);
  Tensors t = read_safetensors(path + "/model.safetensors");
  LoadOptions opts;
  opts.heads = {head};
  LoadReport report;
  auto model = load_pretrained(path, opts, &report);
  EXPECT_TRUE(report.newly_initialised.empty());
  model->eval();
  torch::NoGradGuard g;
  auto in = make_inputs();
  torch::Tensor mask = masked ? in.mask : torch::Tensor();
  auto out = model->forward(head, in.ids, mask);
  auto ref_hidden = hidden_ref(t, c, in.ids, mask);
  torch::Tensor ref = head == Head::None ? ref_hidden : head == Head::Classifier ? classifier_ref(t, ref_hidden) : mlm_ref(t, ref_hidden);
  expect_close(out, ref);
  if (head == Head::Classifier) EXPECT_EQ(out.sizes(), (std::vector<int64_t>{3, 3}));
  if (head == Head::MLM) EXPECT_EQ(out.sizes(), (std::vector<int64_t>{3, 8, 50}));
}

INSTANTIATE_TEST_SUITE_P(AllHeads, DistilBertReference,
                         ::testing::Combine(::testing::Values(Head::None, Head::Classifier, Head::MLM), ::testing::Bool()),
                         [](const auto& info) {
                           return head_name(std::get<0>(info.param)) + (std::get<1>(info.param) ? "_masked" : "_unmasked");
                         });

TEST(DistilBert, PaddingDoesNotChangeUnpaddedPositions) {
  auto c = small_config();
  DistilBert m(c, {Head::Classifier});
  m.init_weights(1);
  m.eval();
  torch::NoGradGuard g;
  auto short_ids = torch::tensor({{1, 5, 9, 2}}, torch::kLong);
  auto long_ids = torch::tensor({{1, 5, 9, 2, 0, 0}}, torch::kLong);
  auto a = m.classify(short_ids, torch::ones_like(short_ids));
  auto b = m.classify(long_ids, (long_ids != 0).to(torch::kLong));
  expect_close(a, b);
}

TEST(DistilBert, DropoutOnlyInTraining) {
  auto c = small_config();
  DistilBert m(c, {Head::Classifier});
  m.init_weights(1);
  auto in = make_inputs();
  m.eval();
  auto e1 = m.classify(in.ids, in.mask), e2 = m.classify(in.ids, in.mask);
  EXPECT_TRUE(torch::equal(e1, e2));
  m.train();
  auto t1 = m.classify(in.ids, in.mask);
  EXPECT_FALSE(torch::allclose(t1, e1));
}

TEST(Checkpoint, MissingHeadIsInitialisedAndReported) {
  TempDir dir;
  auto c = small_config();
  DistilBert base(c, {});  // encoder only, like DistilBertModel
  save_pretrained(base, dir / "base");
  LoadOptions opts;
  opts.heads = {Head::Classifier, Head::MLM};
  LoadReport report;
  auto m = load_pretrained(dir / "base", opts, &report);
  std::vector<std::string> expected = {"pre_classifier.weight", "pre_classifier.bias", "classifier.weight", "classifier.bias",
                                       "vocab_transform.weight", "vocab_transform.bias", "vocab_layer_norm.weight",
                                       "vocab_layer_norm.bias", "vocab_projector.bias"};
  auto got = report.newly_initialised;
  std::sort(got.begin(), got.end());
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(got, expected);
  EXPECT_GT(m->classifier->weight_param().abs().sum().item<double>(), 0.0);
}

TEST(Checkpoint, AcceptsNamesWithoutDistilbertPrefix) {
  TempDir dir;
  auto c = small_config();
  DistilBert m(c, {});
  m.init_weights(5);
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  for (auto& p : m.named_parameters()) tensors.emplace_back(p.key().substr(std::string("distilbert.").size()), p.value());
  std::filesystem::create_directories(dir / "m");
  write_safetensors(dir / "m/model.safetensors", tensors);
  std::ofstream(dir / "m/config.json") << c.to_json_string();
  LoadOptions opts;
  opts.heads = {};
  auto loaded = load_pretrained(dir / "m", opts);
  EXPECT_TRUE(torch::equal(loaded->embeddings->word_embeddings->weight, m.embeddings->word_embeddings->weight));
}

TEST(Checkpoint, ShapeMismatchNamesFileAndTensor) {
  TempDir dir;
  auto c = small_config();
  auto path = write_checkpoint(dir, c);
  auto c2 = c;
  c2.hidden_dim = 64;
  std::ofstream(path + "/config.json") << c2.to_json_string();
  try {
    load_pretrained(path, {});
    FAIL() << "expected an error";
  } catch (const peft::InputError& e) {
    EXPECT_NE(std::string(e.what()).find("model.safetensors"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("ffn.lin1.weight"), std::string::npos) << e.what();
  }
}

TEST(Checkpoint, MissingEncoderTensorIsAnError) {
  TempDir dir;
  auto c = small_config();
  DistilBert m(c, {});
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  for (auto& p : m.named_parameters())
    if (p.key().find("layer.1.ffn.lin2.bias") == std::string::npos) tensors.emplace_back(p.key(), p.value());
  std::filesystem::create_directories(dir / "m");
  write_safetensors(dir / "m/model.safetensors", tensors);
  std::ofstream(dir / "m/config.json") << c.to_json_string();
  EXPECT_THROW(
      {
        try {
          load_pretrained(dir / "m", {});
        } catch (const peft::InputError& e) {
          EXPECT_NE(std::string(e.what()).find("distilbert.transformer.layer.1.ffn.lin2.bias"), std::string::npos);
          throw;
        }
      },
      peft::InputError);
}

TEST(Checkpoint, HalfPrecisionWeightsAreConverted) {
  TempDir dir;
  auto c = small_config();
  DistilBert m(c, {Head::Classifier});
  m.init_weights(2);
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  for (auto& p : m.named_parameters()) tensors.emplace_back(p.key(), p.value().to(torch::kBFloat16));
  std::filesystem::create_directories(dir / "m");
  write_safetensors(dir / "m/model.safetensors", tensors);
  std::ofstream(dir / "m/config.json") << c.to_json_string();
  auto loaded = load_pretrained(dir / "m", {});
  EXPECT_TRUE(torch::equal(loaded->classifier->weight_param(), m.classifier->weight_param().to(torch::kBFloat16).to(torch::kFloat)));
}

TEST(Config, ReadsHuggingFaceConfig) {
  PEFT_REQUIRE_SHARED(path, "distilbert-base-uncased/config.json");
  auto c = DistilBertConfig::from_json_file(path);
  EXPECT_EQ(c.dim, 768);
  EXPECT_EQ(c.n_layers, 6);
  EXPECT_EQ(c.n_heads, 12);
  EXPECT_EQ(c.hidden_dim, 3072);
  EXPECT_EQ(c.vocab_size, 30522);
  EXPECT_EQ(c.max_position_embeddings, 512);
  EXPECT_EQ(c.activation, "gelu");
}

TEST(Config, BadValuesNameTheKey) {
  auto bad = [](const std::string& json, const std::string& needle) {
    try {
      DistilBertConfig::from_json_string(json, "cfg.json");
      ADD_FAILURE() << "accepted " << json;
    } catch (const peft::InputError& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("cfg.json"), std::string::npos) << e.what();
    }
  };
  bad(R"({"dim": "768"})", "\"dim\"");
  bad(R"({"dim": 100, "n_heads": 12})", "divisible");
  bad(R"({"dropout": 1.5})", "\"dropout\"");
  bad(R"({"activation": "swish"})", "activation");
  bad(R"({"model_type": "roberta"})", "model_type");  // "bert" is the second family (test_bert.cpp)
  bad(R"([1,2])", "object");
  bad(R"({"dim": )", "JSON");
}

TEST(Config, JsonRoundTrip) {
  auto c = small_config();
  auto d = DistilBertConfig::from_json_string(c.to_json_string(), "x");
  EXPECT_EQ(d.to_json_string(), c.to_json_string());
}
