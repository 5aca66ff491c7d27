#include "model/distilbert.h"

#include <array>
#include <cmath>
#include <limits>

#include <torch/nn/functional/activation.h>
#include <torch/nn/functional/linear.h>
#include <torch/nn/functional/normalization.h>

#include <ATen/CPUGeneratorImpl.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include "core/error.h"
#include "model/dropout.h"
#include "model/gelu.h"
#include "model/head_matmul.h"

namespace peft::model {
namespace F = torch::nn::functional;

Head parse_head(const std::string& name) {
  if (name == "none") return Head::None;
  if (name == "classifier") return Head::Classifier;
  if (name == "mlm") return Head::MLM;
  throw_input("unknown head \"{}\" (expected classifier, mlm or none)", name);
}

std::string head_name(Head h) {
  switch (h) {
    case Head::None: return "none";
    case Head::Classifier: return "classifier";
    case Head::MLM: return "mlm";
  }
  return "?";
}

namespace {

torch::nn::LayerNorm make_layer_norm(const DistilBertConfig& c) {
  return torch::nn::LayerNorm(torch::nn::LayerNormOptions({c.dim}).eps(c.layer_norm_eps));
}

/// Holder for a lone parameter so it gets a module path ("vocab_projector.bias").
class BiasOnly : public torch::nn::Module {
 public:
  explicit BiasOnly(int64_t n) { bias = register_parameter("bias", torch::zeros({n})); }
  torch::Tensor bias;
};

/// transformers' create_sinusoidal_embeddings.
torch::Tensor sinusoidal_positions(int64_t n_pos, int64_t dim) {
  auto pos = torch::arange(n_pos, torch::kFloat64).unsqueeze(1);
  auto j = torch::arange(dim, torch::kFloat64);
  auto enc = pos / torch::pow(10000.0, 2.0 * torch::floor_divide(j, 2) / static_cast<double>(dim));
  auto out = torch::empty({n_pos, dim}, torch::kFloat64);
  using torch::indexing::Slice;
  out.index_put_({Slice(), Slice(0, torch::indexing::None, 2)}, torch::sin(enc.index({Slice(), Slice(0, torch::indexing::None, 2)})));
  out.index_put_({Slice(), Slice(1, torch::indexing::None, 2)}, torch::cos(enc.index({Slice(), Slice(1, torch::indexing::None, 2)})));
  return out.to(torch::kFloat32);
}

}  // namespace

double lowest_finite(c10::ScalarType t) {
  // transformers masks with torch.finfo(scores.dtype).min: the scores' own dtype, so the fill
  // fits under bf16/fp16 autocast (float's lowest overflows bf16 and LibTorch throws).
  switch (t) {
    case torch::kBFloat16: return static_cast<double>(std::numeric_limits<c10::BFloat16>::lowest());
    case torch::kHalf: return static_cast<double>(std::numeric_limits<c10::Half>::lowest());
    case torch::kDouble: return std::numeric_limits<double>::lowest();
    default: return static_cast<double>(std::numeric_limits<float>::lowest());
  }
}

Embeddings::Embeddings(const DistilBertConfig& c) : dropout(c.dropout) {
  word_embeddings = register_module(
      "word_embeddings", torch::nn::Embedding(torch::nn::EmbeddingOptions(c.vocab_size, c.dim).padding_idx(c.pad_token_id)));
  position_embeddings = register_module("position_embeddings", torch::nn::Embedding(c.max_position_embeddings, c.dim));
  if (c.is_bert())
    token_type_embeddings = register_module("token_type_embeddings", torch::nn::Embedding(c.type_vocab_size, c.dim));
  layer_norm = register_module("LayerNorm", make_layer_norm(c));
}

torch::Tensor Embeddings::forward(const torch::Tensor& ids) {
  const int64_t seq = ids.size(1);
  if (seq > position_embeddings->weight.size(0))
    throw_input("sequence length {} exceeds max_position_embeddings {}", seq, position_embeddings->weight.size(0));
  auto positions = torch::arange(seq, ids.options().dtype(torch::kLong));
  auto x = word_embeddings->forward(ids);
  // Single sentences are segment 0 (transformers' default token_type_ids): one row, broadcast.
  if (token_type_embeddings) x = x + token_type_embeddings->weight[0];
  x = x + position_embeddings->forward(positions).unsqueeze(0);
  x = layer_norm->forward(x);
  return model::dropout(x, dropout, is_training());
}

MultiHeadSelfAttention::MultiHeadSelfAttention(const DistilBertConfig& c)
    : n_heads(c.n_heads), dim(c.dim), dropout(c.attention_dropout) {
  const bool bert = c.is_bert();
  q_lin = register_module(bert ? "query" : "q_lin", std::make_shared<DenseLinear>(c.dim, c.dim));
  k_lin = register_module(bert ? "key" : "k_lin", std::make_shared<DenseLinear>(c.dim, c.dim));
  v_lin = register_module(bert ? "value" : "v_lin", std::make_shared<DenseLinear>(c.dim, c.dim));
  // BERT registers the output projection in attention.output (see TransformerBlock).
  out_lin = std::make_shared<DenseLinear>(c.dim, c.dim);
  if (!bert) register_module("out_lin", out_lin);
}

torch::Tensor MultiHeadSelfAttention::forward(const torch::Tensor& x, const torch::Tensor& masked) {
  const int64_t bs = x.size(0), len = x.size(1), dh = dim / n_heads;
  auto shape = [&](const torch::Tensor& t) { return t.view({bs, len, n_heads, dh}).transpose(1, 2); };
  // The heads are strided views of the projections; head_matmul multiplies them as they are.
  auto q = shape(q_lin->forward(x));
  auto k = shape(k_lin->forward(x));
  auto v = shape(v_lin->forward(x));
  // q kᵀ / √dh, the padded keys at the lowest finite value: [bs, heads, len, len]
  auto scores = head_matmul(q, k.transpose(2, 3), std::sqrt(static_cast<double>(dh)), false, masked);
  auto weights = torch::softmax(scores, -1);
  weights = model::dropout(weights, dropout, is_training());
  // Written as [bs, len, heads, dh]: joining the heads is a view.
  auto context = head_matmul(weights, v, 1.0, /*heads_last=*/true).transpose(1, 2).reshape({bs, len, dim});
  return out_lin->forward(context);
}

FFN::FFN(const DistilBertConfig& c) : gelu(c.activation == "gelu"), dropout(c.dropout) {
  lin1 = std::make_shared<DenseLinear>(c.dim, c.hidden_dim);
  lin2 = std::make_shared<DenseLinear>(c.hidden_dim, c.dim);
  // BERT registers them as intermediate.dense and output.dense (see TransformerBlock).
  if (!c.is_bert()) {
    register_module("lin1", lin1);
    register_module("lin2", lin2);
  }
}

torch::Tensor FFN::forward(const torch::Tensor& x) {
  auto h = lin1->forward(x);
  h = gelu ? model::gelu(h) : torch::relu(h);
  h = lin2->forward(h);
  return model::dropout(h, dropout, is_training());
}

TransformerBlock::TransformerBlock(const DistilBertConfig& c) : dropout(c.dropout), attention_dropout_after_output(c.is_bert()) {
  if (!c.is_bert()) {
    attention = register_module("attention", std::make_shared<MultiHeadSelfAttention>(c));
    sa_layer_norm = register_module("sa_layer_norm", make_layer_norm(c));
    ffn = register_module("ffn", std::make_shared<FFN>(c));
    output_layer_norm = register_module("output_layer_norm", make_layer_norm(c));
    auto* a = attention.get();
    auto* f = ffn.get();
    places = {{a, "q_lin", "attention.q_lin"}, {a, "k_lin", "attention.k_lin"}, {a, "v_lin", "attention.v_lin"},
              {a, "out_lin", "attention.out_lin"}, {f, "lin1", "ffn.lin1"}, {f, "lin2", "ffn.lin2"}};
    return;
  }
  // transformers' BertLayer: attention.{self.{query,key,value}, output.{dense,LayerNorm}},
  // intermediate.dense, output.{dense,LayerNorm}. The FFN module is not registered (it owns no
  // parameters here); the block applies its dropout.
  auto att = register_module("attention", std::make_shared<torch::nn::Module>());
  attention = att->register_module("self", std::make_shared<MultiHeadSelfAttention>(c));
  auto att_out = att->register_module("output", std::make_shared<torch::nn::Module>());
  ffn = std::make_shared<FFN>(c);
  att_out->register_module("dense", attention->out_lin);
  sa_layer_norm = att_out->register_module("LayerNorm", make_layer_norm(c));
  auto inter = register_module("intermediate", std::make_shared<torch::nn::Module>());
  inter->register_module("dense", ffn->lin1);
  auto out = register_module("output", std::make_shared<torch::nn::Module>());
  out->register_module("dense", ffn->lin2);
  output_layer_norm = out->register_module("LayerNorm", make_layer_norm(c));
  auto* a = attention.get();
  places = {{a, "query", "attention.self.query"},        {a, "key", "attention.self.key"},
            {a, "value", "attention.self.value"},        {att_out.get(), "dense", "attention.output.dense"},
            {inter.get(), "dense", "intermediate.dense"}, {out.get(), "dense", "output.dense"}};
}

torch::Tensor TransformerBlock::forward(const torch::Tensor& x, const torch::Tensor& masked) {
  auto drop = [&](const torch::Tensor& t) { return model::dropout(t, dropout, is_training()); };
  auto a = attention->forward(x, masked);
  if (attention_dropout_after_output) a = drop(a);
  auto sa = sa_layer_norm->forward(a + x);
  auto h = ffn->lin1->forward(sa);
  h = ffn->gelu ? model::gelu(h) : torch::relu(h);
  h = drop(ffn->lin2->forward(h));
  return output_layer_norm->forward(h + sa);
}

DistilBert::DistilBert(const DistilBertConfig& config, std::vector<Head> heads) : config_(config), heads_(std::move(heads)) {
  const bool bert = config_.is_bert();
  config_.validate(bert ? "BERT config" : "DistilBERT config");
  auto base = register_module(bert ? "bert" : "distilbert", std::make_shared<torch::nn::Module>());
  embeddings = base->register_module("embeddings", std::make_shared<Embeddings>(config_));
  auto transformer = base->register_module(bert ? "encoder" : "transformer", std::make_shared<torch::nn::Module>());
  auto layer_list = transformer->register_module("layer", torch::nn::ModuleList());
  for (int64_t i = 0; i < config_.n_layers; ++i) {
    layers.push_back(std::make_shared<TransformerBlock>(config_));
    layer_list->push_back(layers.back());
  }
  if (has_head(Head::Classifier)) {
    pre_classifier = std::make_shared<DenseLinear>(config_.dim, config_.dim);
    if (bert)
      base->register_module("pooler", std::make_shared<torch::nn::Module>())->register_module("dense", pre_classifier);
    else
      register_module("pre_classifier", pre_classifier);
    classifier = register_module("classifier", std::make_shared<DenseLinear>(config_.dim, config_.num_labels()));
  }
  if (has_head(Head::MLM)) {
    vocab_transform = std::make_shared<DenseLinear>(config_.dim, config_.dim);
    vocab_layer_norm = make_layer_norm(config_);
    if (bert) {
      auto predictions = register_module("cls", std::make_shared<torch::nn::Module>())
                             ->register_module("predictions", std::make_shared<torch::nn::Module>());
      auto transform = predictions->register_module("transform", std::make_shared<torch::nn::Module>());
      transform->register_module("dense", vocab_transform);
      transform->register_module("LayerNorm", vocab_layer_norm);
      vocab_projector_bias = predictions->register_parameter("bias", torch::zeros({config_.vocab_size}));
    } else {
      register_module("vocab_transform", vocab_transform);
      register_module("vocab_layer_norm", vocab_layer_norm);
      vocab_projector_bias = register_module("vocab_projector", std::make_shared<BiasOnly>(config_.vocab_size))->bias;
    }
  }
  init_weights(0);
}

bool DistilBert::has_head(Head h) const {
  return h == Head::None || std::find(heads_.begin(), heads_.end(), h) != heads_.end();
}

torch::Tensor DistilBert::hidden_states(const torch::Tensor& ids, const torch::Tensor& mask) {
  if (ids.dim() != 2) throw_input("input ids must be [batch, seq], got {} dims", ids.dim());
  torch::Tensor masked;
  if (mask.defined()) {
    if (mask.sizes() != ids.sizes())
      throw_input("attention mask shape {} differs from ids shape {}", fmt::join(mask.sizes(), "x"), fmt::join(ids.sizes(), "x"));
    masked = (mask == 0).view({ids.size(0), 1, 1, ids.size(1)});
  }
  auto x = embeddings->forward(ids);
  for (auto& block : layers) x = block->forward(x, masked);
  return x;
}

torch::Tensor DistilBert::classifier_head(const torch::Tensor& hidden) {
  PEFT_CHECK(has_head(Head::Classifier), "model was built without the classifier head");
  using torch::indexing::Slice;
  auto pooled = hidden.index({Slice(), 0});
  // DistilBERT: pre_classifier → ReLU; BERT: the pooler (dense → tanh).
  pooled = pre_classifier->forward(pooled);
  pooled = config_.is_bert() ? torch::tanh(pooled) : torch::relu(pooled);
  pooled = model::dropout(pooled, config_.seq_classif_dropout, is_training());
  return classifier->forward(pooled);
}

torch::Tensor DistilBert::mlm_head(const torch::Tensor& hidden) {
  PEFT_CHECK(has_head(Head::MLM), "model was built without the MLM head");
  auto h = vocab_transform->forward(hidden);
  h = config_.activation == "gelu" ? model::gelu(h) : torch::relu(h);
  // CPU autocast (LibTorch 1.13) does not run layer_norm in fp32 as CUDA autocast does: a bf16
  // activation meets the fp32 LayerNorm weights, so it is widened here (a no-op in fp32).
  h = vocab_layer_norm->forward(h.to(vocab_layer_norm->weight.scalar_type()));
  return F::linear(h, embeddings->word_embeddings->weight, vocab_projector_bias);
}

torch::Tensor DistilBert::classify(const torch::Tensor& ids, const torch::Tensor& mask) {
  return classifier_head(hidden_states(ids, mask));
}

torch::Tensor DistilBert::mlm_logits(const torch::Tensor& ids, const torch::Tensor& mask) {
  return mlm_head(hidden_states(ids, mask));
}

torch::Tensor DistilBert::forward(Head head, const torch::Tensor& ids, const torch::Tensor& mask) {
  switch (head) {
    case Head::None: return hidden_states(ids, mask);
    case Head::Classifier: return classify(ids, mask);
    case Head::MLM: return mlm_logits(ids, mask);
  }
  throw std::logic_error("unhandled head");
}

std::vector<LinearSlot> DistilBert::linear_slots() {
  std::vector<LinearSlot> slots;
  for (int64_t i = 0; i < static_cast<int64_t>(layers.size()); ++i) {
    auto block = layers[i];
    const std::string prefix = config_.is_bert() ? fmt::format("bert.encoder.layer.{}.", i) : fmt::format("distilbert.transformer.layer.{}.", i);
    auto* att = block->attention.get();
    auto* ffn = block->ffn.get();
    const std::array<std::shared_ptr<LinearBase>*, 6> members = {&att->q_lin, &att->k_lin, &att->v_lin, &att->out_lin, &ffn->lin1, &ffn->lin2};
    for (std::size_t k = 0; k < members.size(); ++k) {
      const auto& place = block->places.at(k);
      // DistilBERT slots are named by their module (q_lin); BERT's by the path in the block
      // past "attention.self." (query, …, attention.output.dense, intermediate.dense, output.dense).
      std::string name = place.path.rfind("attention.self.", 0) == 0 ? place.name : (config_.is_bert() ? place.path : place.name);
      auto* member = members[k];
      slots.push_back({prefix + place.path, i, std::move(name), [member] { return *member; },
                       [owner = place.owner, member, local = place.name](std::shared_ptr<LinearBase> m) {
                         owner->replace_module(local, m);
                         *member = std::move(m);
                       }});
    }
  }
  return slots;
}

void DistilBert::init_weights(uint64_t seed) {
  torch::NoGradGuard g;
  auto gen = at::detail::createCPUGenerator(seed);
  const double std = config_.initializer_range;
  auto normal = [&](torch::Tensor& t) { t.normal_(0.0, std, gen); };
  normal(embeddings->word_embeddings->weight);
  embeddings->word_embeddings->weight[config_.pad_token_id].zero_();
  if (config_.sinusoidal_pos_embds) {
    embeddings->position_embeddings->weight.copy_(sinusoidal_positions(config_.max_position_embeddings, config_.dim));
    embeddings->position_embeddings->weight.set_requires_grad(false);
  } else {
    normal(embeddings->position_embeddings->weight);
  }
  if (embeddings->token_type_embeddings) normal(embeddings->token_type_embeddings->weight);
  auto reset_ln = [](torch::nn::LayerNorm& ln) {
    ln->weight.fill_(1.0);
    ln->bias.zero_();
  };
  reset_ln(embeddings->layer_norm);
  for (auto& block : layers) {
    for (auto* lin : {&block->attention->q_lin, &block->attention->k_lin, &block->attention->v_lin,
                      &block->attention->out_lin, &block->ffn->lin1, &block->ffn->lin2}) {
      auto dense = std::dynamic_pointer_cast<DenseLinear>(*lin);
      PEFT_CHECK(dense, "init_weights before adapters are injected");
      dense->weight_param().normal_(0.0, std, gen);
      dense->bias_param().zero_();
    }
    reset_ln(block->sa_layer_norm);
    reset_ln(block->output_layer_norm);
  }
  for (Head h : heads_)
    if (h != Head::None) init_head(h, false, seed + 1);
}

void DistilBert::init_head(Head h, bool torch_default, uint64_t seed) {
  torch::NoGradGuard g;
  auto gen = at::detail::createCPUGenerator(seed);
  auto init = [&](DenseLinear& lin) {
    if (torch_default) {
      const double bound = 1.0 / std::sqrt(static_cast<double>(lin.in_features()));
      // kaiming_uniform(a=√5) on [out,in] is U(±1/√in), as is nn.Linear's bias.
      lin.weight_param().uniform_(-bound, bound, gen);
      lin.bias_param().uniform_(-bound, bound, gen);
    } else {
      lin.weight_param().normal_(0.0, config_.initializer_range, gen);
      lin.bias_param().zero_();
    }
  };
  if (h == Head::Classifier) {
    PEFT_CHECK(pre_classifier, "no classifier head");
    init(*pre_classifier);
    init(*classifier);
  } else if (h == Head::MLM) {
    PEFT_CHECK(vocab_transform, "no MLM head");
    init(*vocab_transform);
    vocab_layer_norm->weight.fill_(1.0);
    vocab_layer_norm->bias.zero_();
    vocab_projector_bias.zero_();
  }
}

std::vector<std::string> DistilBert::head_parameter_names(Head h) const {
  switch (h) {
    case Head::Classifier:
      if (config_.is_bert()) return {"bert.pooler.dense.weight", "bert.pooler.dense.bias", "classifier.weight", "classifier.bias"};
      return {"pre_classifier.weight", "pre_classifier.bias", "classifier.weight", "classifier.bias"};
    case Head::MLM:
      if (config_.is_bert())
        return {"cls.predictions.transform.dense.weight", "cls.predictions.transform.dense.bias", "cls.predictions.transform.LayerNorm.weight",
                "cls.predictions.transform.LayerNorm.bias", "cls.predictions.bias"};
      return {"vocab_transform.weight", "vocab_transform.bias", "vocab_layer_norm.weight", "vocab_layer_norm.bias",
              "vocab_projector.bias"};
    case Head::None: return {};
  }
  return {};
}

}  // namespace peft::model
