#include "model/config.h"

#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/json_excerpt.h"

namespace peft::model {
namespace {

using nlohmann::json;

template <typename T>
void read_key(const json& j, const char* key, T& out, const std::string& origin) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return;
  try {
    if constexpr (std::is_same_v<T, bool>) {
      if (!it->is_boolean()) throw std::invalid_argument("expected a boolean");
    } else if constexpr (std::is_integral_v<T>) {
      if (!it->is_number_integer()) throw std::invalid_argument("expected an integer");
    } else if constexpr (std::is_floating_point_v<T>) {
      if (!it->is_number()) throw std::invalid_argument("expected a number");
    } else {
      if (!it->is_string()) throw std::invalid_argument("expected a string");
    }
    out = it->get<T>();
  } catch (const std::exception& e) {
    throw_input("{}: key \"{}\": {} (found {})", origin, key, e.what(), json_excerpt(*it));
  }
}

/// BERT's config.json names for the shared fields, and its own settings.
void read_bert_keys(const json& j, DistilBertConfig& c, const std::string& origin) {
  read_key(j, "hidden_size", c.dim, origin);
  read_key(j, "num_hidden_layers", c.n_layers, origin);
  read_key(j, "num_attention_heads", c.n_heads, origin);
  read_key(j, "intermediate_size", c.hidden_dim, origin);
  read_key(j, "hidden_act", c.activation, origin);
  read_key(j, "hidden_dropout_prob", c.dropout, origin);
  read_key(j, "attention_probs_dropout_prob", c.attention_dropout, origin);
  c.seq_classif_dropout = c.dropout;  // transformers: classifier_dropout, else hidden_dropout_prob
  read_key(j, "classifier_dropout", c.seq_classif_dropout, origin);
  read_key(j, "layer_norm_eps", c.layer_norm_eps, origin);
  read_key(j, "type_vocab_size", c.type_vocab_size, origin);
  std::string position_type = "absolute";
  read_key(j, "position_embedding_type", position_type, origin);
  if (position_type != "absolute")
    throw_input("{}: key \"position_embedding_type\" is \"{}\", only \"absolute\" is supported", origin, position_type);
  bool is_decoder = false;
  read_key(j, "is_decoder", is_decoder, origin);
  if (is_decoder) throw_input("{}: key \"is_decoder\" is true; peft-sweep supports BERT as an encoder only", origin);
}

}  // namespace

std::string family_name(Family f) { return f == Family::Bert ? "bert" : "distilbert"; }

DistilBertConfig DistilBertConfig::from_json_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw_input("{}: cannot open DistilBERT config", path);
  std::stringstream ss;
  ss << in.rdbuf();
  return from_json_string(ss.str(), path);
}

DistilBertConfig DistilBertConfig::from_json_string(const std::string& text, const std::string& origin) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {  // parse_error, or out_of_range for a number such as 1e99999
    throw_input("{}: not valid JSON: {}", origin, e.what());
  }
  if (!j.is_object()) throw_input("{}: config must be a JSON object", origin);
  DistilBertConfig c;
  if (auto mt = j.find("model_type"); mt != j.end() && mt->is_string()) {
    if (*mt == "bert")
      c.family = Family::Bert;
    else if (*mt != "distilbert")
      throw_input("{}: model_type is \"{}\", peft-sweep supports \"distilbert\" and \"bert\"", origin, mt->get<std::string>());
  }
  if (c.is_bert()) read_bert_keys(j, c, origin);
  read_key(j, "vocab_size", c.vocab_size, origin);
  read_key(j, "max_position_embeddings", c.max_position_embeddings, origin);
  read_key(j, "sinusoidal_pos_embds", c.sinusoidal_pos_embds, origin);
  read_key(j, "n_layers", c.n_layers, origin);
  read_key(j, "n_heads", c.n_heads, origin);
  read_key(j, "dim", c.dim, origin);
  read_key(j, "hidden_dim", c.hidden_dim, origin);
  read_key(j, "dropout", c.dropout, origin);
  read_key(j, "attention_dropout", c.attention_dropout, origin);
  read_key(j, "activation", c.activation, origin);
  read_key(j, "initializer_range", c.initializer_range, origin);
  read_key(j, "qa_dropout", c.qa_dropout, origin);
  read_key(j, "seq_classif_dropout", c.seq_classif_dropout, origin);
  read_key(j, "pad_token_id", c.pad_token_id, origin);
  if (auto it = j.find("id2label"); it != j.end() && it->is_object() && !it->empty()) {
    // HF writes {"0": "NEGATIVE", "1": "POSITIVE"}: order by the integer key.
    std::vector<std::string> labels(it->size());
    for (auto& [k, v] : it->items()) {
      std::size_t idx = 0;
      try {
        idx = std::stoul(k);
      } catch (...) {
        throw_input("{}: id2label key \"{}\" is not an integer", origin, k);
      }
      if (idx >= labels.size() || !v.is_string())
        throw_input("{}: id2label must map 0..{} to strings (bad entry \"{}\")", origin, labels.size() - 1, k);
      labels[idx] = v.get<std::string>();
    }
    c.id2label = labels;
  } else if (auto nl = j.find("num_labels"); nl != j.end() && nl->is_number_integer()) {
    c.id2label.clear();
    for (int64_t i = 0; i < nl->get<int64_t>(); ++i) c.id2label.push_back("LABEL_" + std::to_string(i));
  }
  if (auto it = j.find("architectures"); it != j.end() && it->is_array())
    for (auto& a : *it)
      if (a.is_string()) c.architectures.push_back(a.get<std::string>());
  c.validate(origin);
  return c;
}

void DistilBertConfig::validate(const std::string& origin) const {
  auto positive = [&](const char* key, int64_t v) {
    if (v <= 0) throw_input("{}: \"{}\" must be positive (found {})", origin, key, v);
  };
  positive("vocab_size", vocab_size);
  positive("max_position_embeddings", max_position_embeddings);
  positive("n_layers", n_layers);
  positive("n_heads", n_heads);
  positive("dim", dim);
  positive("hidden_dim", hidden_dim);
  if (dim % n_heads != 0)
    throw_input("{}: \"dim\" ({}) must be divisible by \"n_heads\" ({})", origin, dim, n_heads);
  for (auto [key, p] : {std::pair{"dropout", dropout}, {"attention_dropout", attention_dropout},
                        {"seq_classif_dropout", seq_classif_dropout}, {"qa_dropout", qa_dropout}})
    if (!(p >= 0.0 && p < 1.0)) throw_input("{}: \"{}\" must be in [0, 1) (found {})", origin, key, p);
  if (activation != "gelu" && activation != "relu")
    throw_input("{}: \"{}\" must be \"gelu\" or \"relu\" (found \"{}\")", origin, is_bert() ? "hidden_act" : "activation",
                activation);
  if (is_bert()) {
    if (type_vocab_size <= 0) throw_input("{}: \"type_vocab_size\" must be positive (found {})", origin, type_vocab_size);
    if (!(layer_norm_eps > 0.0)) throw_input("{}: \"layer_norm_eps\" must be positive (found {})", origin, layer_norm_eps);
  }
  if (id2label.empty()) throw_input("{}: id2label must not be empty", origin);
  if (pad_token_id < 0 || pad_token_id >= vocab_size)
    throw_input("{}: \"pad_token_id\" {} outside the vocabulary", origin, pad_token_id);
}

std::string DistilBertConfig::to_json_string() const {
  json j;
  if (is_bert()) {
    j["model_type"] = "bert";
    j["architectures"] = architectures.empty() ? std::vector<std::string>{"BertForMaskedLM"} : architectures;
    j["vocab_size"] = vocab_size;
    j["max_position_embeddings"] = max_position_embeddings;
    j["type_vocab_size"] = type_vocab_size;
    j["num_hidden_layers"] = n_layers;
    j["num_attention_heads"] = n_heads;
    j["hidden_size"] = dim;
    j["intermediate_size"] = hidden_dim;
    j["hidden_act"] = activation;
    j["hidden_dropout_prob"] = dropout;
    j["attention_probs_dropout_prob"] = attention_dropout;
    j["classifier_dropout"] = seq_classif_dropout;
    j["layer_norm_eps"] = layer_norm_eps;
    j["initializer_range"] = initializer_range;
    j["pad_token_id"] = pad_token_id;
    j["position_embedding_type"] = "absolute";
  } else {
  j["model_type"] = "distilbert";
  j["architectures"] = architectures.empty() ? std::vector<std::string>{"DistilBertForMaskedLM"} : architectures;
  j["vocab_size"] = vocab_size;
  j["max_position_embeddings"] = max_position_embeddings;
  j["sinusoidal_pos_embds"] = sinusoidal_pos_embds;
  j["n_layers"] = n_layers;
  j["n_heads"] = n_heads;
  j["dim"] = dim;
  j["hidden_dim"] = hidden_dim;
  j["dropout"] = dropout;
  j["attention_dropout"] = attention_dropout;
  j["activation"] = activation;
  j["initializer_range"] = initializer_range;
  j["qa_dropout"] = qa_dropout;
  j["seq_classif_dropout"] = seq_classif_dropout;
  j["pad_token_id"] = pad_token_id;
  j["tie_weights_"] = true;
  }
  json labels = json::object(), l2i = json::object();
  for (std::size_t i = 0; i < id2label.size(); ++i) {
    labels[std::to_string(i)] = id2label[i];
    l2i[id2label[i]] = i;
  }
  j["id2label"] = labels;
  j["label2id"] = l2i;
  return j.dump(2) + "\n";
}

DistilBertConfig DistilBertConfig::tiny(int64_t vocab_size, int64_t max_positions) {
  // Small enough to train in seconds on a CPU: dim 64, 2 layers, 4 heads, FFN 256, and dropout 0
  // (dropout on a small frozen random base keeps adapters from learning).
  DistilBertConfig c;
  c.vocab_size = vocab_size;
  c.max_position_embeddings = max_positions;
  c.n_layers = 2;
  c.n_heads = 4;
  c.dim = 64;
  c.hidden_dim = 256;
  c.dropout = 0.0;
  c.attention_dropout = 0.0;
  c.seq_classif_dropout = 0.0;
  c.qa_dropout = 0.0;
  c.architectures = {"DistilBertForMaskedLM"};
  return c;
}

DistilBertConfig DistilBertConfig::tiny_bert(int64_t vocab_size) {
  auto c = tiny(vocab_size);
  c.family = Family::Bert;
  c.architectures = {"BertForMaskedLM"};
  return c;
}

}  // namespace peft::model
