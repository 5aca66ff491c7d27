#pragma once
// DistilBERT (Sanh et al., 2019) as in transformers' DistilBertModel,
// DistilBertForSequenceClassification and DistilBertForMaskedLM, with the same parameter
// names (`distilbert.transformer.layer.0.attention.q_lin.weight`, `pre_classifier.weight`,
// `vocab_projector.bias`, …) so Hugging Face checkpoints load as they are.
//
// The same class is the BERT family's encoder (config.family == Family::Bert, transformers'
// BertModel / BertForSequenceClassification / BertForMaskedLM): the computation is shared and
// only the module names differ (`bert.encoder.layer.0.attention.self.query`, …), plus the
// token-type embeddings (segment 0), the dropout after the attention output, and the pooler.
// For BERT the members keep their DistilBERT names: `pre_classifier` is bert.pooler.dense
// (tanh instead of ReLU), `vocab_transform` / `vocab_layer_norm` / `vocab_projector_bias` are
// cls.predictions.transform.dense / .LayerNorm / cls.predictions.bias (decoder tied to the
// word embeddings, as in DistilBERT).
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/normalization.h>
#include <torch/types.h>

#include "model/config.h"
#include "model/linear.h"

namespace peft::model {

enum class Head { None, Classifier, MLM };
/// The most negative finite value of a floating dtype (torch.finfo(t).min): the attention
/// mask's fill, which must fit the scores' dtype under autocast.
double lowest_finite(c10::ScalarType t);
Head parse_head(const std::string& name);  // "none" | "classifier" | "mlm"
std::string head_name(Head h);

class Embeddings : public torch::nn::Module {
 public:
  explicit Embeddings(const DistilBertConfig& c);
  torch::Tensor forward(const torch::Tensor& ids);
  torch::nn::Embedding word_embeddings{nullptr}, position_embeddings{nullptr};
  torch::nn::Embedding token_type_embeddings{nullptr};  // BERT only
  torch::nn::LayerNorm layer_norm{nullptr};
  double dropout;
};

class MultiHeadSelfAttention : public torch::nn::Module {
 public:
  explicit MultiHeadSelfAttention(const DistilBertConfig& c);
  /// `masked`: bool [batch, 1, 1, seq], true where the key is padding (or undefined).
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& masked);
  std::shared_ptr<LinearBase> q_lin, k_lin, v_lin, out_lin;
  int64_t n_heads, dim;
  double dropout;
};

class FFN : public torch::nn::Module {
 public:
  explicit FFN(const DistilBertConfig& c);
  torch::Tensor forward(const torch::Tensor& x);
  std::shared_ptr<LinearBase> lin1, lin2;
  bool gelu;
  double dropout;
};

class TransformerBlock : public torch::nn::Module {
 public:
  explicit TransformerBlock(const DistilBertConfig& c);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& masked);
  std::shared_ptr<MultiHeadSelfAttention> attention;
  torch::nn::LayerNorm sa_layer_norm{nullptr}, output_layer_norm{nullptr};
  std::shared_ptr<FFN> ffn;
  /// Where each of the six linears (q, k, v, out, lin1, lin2) is registered: the owning module,
  /// its name there, and its path inside the block ("attention.q_lin", "attention.self.query").
  struct Place {
    torch::nn::Module* owner;
    std::string name, path;
  };
  std::vector<Place> places;
  double dropout;       // after the attention output (BERT) and the FFN
  bool attention_dropout_after_output;  // BERT's BertSelfOutput dropout
};

/// A replaceable linear layer of the encoder, addressed by its module path.
struct LinearSlot {
  std::string path;   // e.g. "distilbert.transformer.layer.0.attention.q_lin"
  int64_t layer;      // transformer block index
  std::string name;   // q_lin … lin2 (DistilBERT); query, key, value, attention.output.dense,
                      // intermediate.dense, output.dense (BERT)
  std::function<std::shared_ptr<LinearBase>()> get;
  std::function<void(std::shared_ptr<LinearBase>)> set;
};

/// The encoder (`distilbert.*`) plus the heads it was built with.
class DistilBert : public torch::nn::Module {
 public:
  /// Builds the encoder and the listed heads; weights are randomly initialised (init_weights).
  DistilBert(const DistilBertConfig& config, std::vector<Head> heads);

  torch::Tensor hidden_states(const torch::Tensor& ids, const torch::Tensor& mask);  // [B, S, dim]
  torch::Tensor classify(const torch::Tensor& ids, const torch::Tensor& mask);       // [B, num_labels]
  torch::Tensor mlm_logits(const torch::Tensor& ids, const torch::Tensor& mask);     // [B, S, vocab]
  /// Classifier logits from an already computed hidden state.
  torch::Tensor classifier_head(const torch::Tensor& hidden);
  torch::Tensor mlm_head(const torch::Tensor& hidden);
  torch::Tensor forward(Head head, const torch::Tensor& ids, const torch::Tensor& mask);

  bool has_head(Head h) const;
  const DistilBertConfig& config() const { return config_; }
  Family family() const { return config_.family; }
  /// The encoder's module prefix: "distilbert." or "bert."; head modules lie outside it.
  std::string base_prefix() const { return family_name(config_.family) + "."; }
  std::vector<LinearSlot> linear_slots();

  /// transformers' _init_weights for the encoder (N(0, initializer_range), LayerNorm 1/0,
  /// padding row zero, sinusoidal positions when configured), from `seed`.
  void init_weights(uint64_t seed);
  /// Re-initialise one head's parameters. `torch_default` = PyTorch nn.Linear init
  /// (U(±1/√fan_in)), which keeps ReLUs alive on a random frozen base; otherwise transformers'.
  void init_head(Head h, bool torch_default, uint64_t seed);
  /// Parameter names of a head ("pre_classifier.weight", …).
  std::vector<std::string> head_parameter_names(Head h) const;

  std::shared_ptr<Embeddings> embeddings;
  std::vector<std::shared_ptr<TransformerBlock>> layers;
  // Classification head.
  std::shared_ptr<DenseLinear> pre_classifier, classifier;
  // MLM head; the projector's weight is tied to the word embeddings, its bias is its own.
  std::shared_ptr<DenseLinear> vocab_transform;
  torch::nn::LayerNorm vocab_layer_norm{nullptr};
  torch::Tensor vocab_projector_bias;

 private:
  DistilBertConfig config_;
  std::vector<Head> heads_;
};

}  // namespace peft::model
