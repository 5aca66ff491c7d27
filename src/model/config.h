#pragma once
// Encoder configuration, read from / written to a Hugging Face config.json. Two families share
// one encoder (post-LN blocks): DistilBERT (model_type "distilbert") and BERT ("bert"; adds
// token-type embeddings, the pooler, a dropout after the attention output, and its own names).
// A BERT config.json's keys map onto the fields below (hidden_size → dim, num_hidden_layers →
// n_layers, num_attention_heads → n_heads, intermediate_size → hidden_dim, hidden_act →
// activation, hidden_dropout_prob → dropout, attention_probs_dropout_prob → attention_dropout,
// classifier_dropout (or hidden_dropout_prob) → seq_classif_dropout).
#include <cstdint>
#include <string>
#include <vector>

namespace peft::model {

enum class Family { DistilBert, Bert };
std::string family_name(Family f);  // "distilbert" | "bert" (config.json's model_type)

struct DistilBertConfig {
  Family family = Family::DistilBert;
  int64_t vocab_size = 30522;
  int64_t max_position_embeddings = 512;
  bool sinusoidal_pos_embds = false;
  int64_t n_layers = 6;
  int64_t n_heads = 12;
  int64_t dim = 768;
  int64_t hidden_dim = 3072;
  double dropout = 0.1;
  double attention_dropout = 0.1;
  std::string activation = "gelu";  // "gelu" (exact, erf) or "relu"
  double initializer_range = 0.02;
  double qa_dropout = 0.1;
  double seq_classif_dropout = 0.2;
  int64_t pad_token_id = 0;
  double layer_norm_eps = 1e-12;  // fixed in transformers' DistilBERT; BERT reads layer_norm_eps
  int64_t type_vocab_size = 2;    // BERT only: token-type (segment) embeddings; segment 0 is used
  std::vector<std::string> id2label = {"LABEL_0", "LABEL_1"};
  std::vector<std::string> architectures;

  int64_t num_labels() const { return static_cast<int64_t>(id2label.size()); }
  int64_t head_dim() const { return dim / n_heads; }
  bool is_bert() const { return family == Family::Bert; }

  /// Parses config.json; unknown keys are kept out (HF configs carry many unrelated ones),
  /// wrong types or inconsistent values throw peft::InputError naming the file and key.
  static DistilBertConfig from_json_file(const std::string& path);
  static DistilBertConfig from_json_string(const std::string& text, const std::string& origin);
  std::string to_json_string() const;
  /// Throws peft::InputError (prefixed with `origin`) when values are out of range.
  void validate(const std::string& origin) const;

  /// The built-in `tiny` preset: a small encoder for the demo and the tests.
  static DistilBertConfig tiny(int64_t vocab_size, int64_t max_positions = 128);
  /// The same small encoder in the BERT family (tests).
  static DistilBertConfig tiny_bert(int64_t vocab_size);
};

}  // namespace peft::model
