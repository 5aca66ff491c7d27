#include "data/dataset.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include "core/error.h"
#include "data/imdb.h"
#include "data/rng.h"
#include "data/sst2.h"
#include "data/synthetic_lexicon.h"
#include "data/synthetic_mlm.h"
#include "data/synthetic_sentiment.h"
#include "data/wikitext.h"

namespace peft::data {

namespace {

constexpr int64_t kSyntheticTrainSentences = 10000, kSyntheticEvalSentences = 1000;
constexpr int64_t kSyntheticTrainBlocks = 4000, kSyntheticEvalBlocks = 400;

void attach_tokenizer(const TaskSpec& spec, Task& task, bool synthetic) {
  if (!spec.vocab_path.empty()) {
    task.vocab_path = spec.vocab_path;
    task.tokenizer = std::make_shared<const text::WordPieceTokenizer>(
        text::WordPieceTokenizer::from_file(spec.vocab_path));
  } else if (synthetic) {
    task.vocab = synthetic_vocab();
    task.tokenizer = std::make_shared<const text::WordPieceTokenizer>(task.vocab);
  } else {
    throw_input("data set '{}' needs a vocabulary: use model.checkpoint (its vocab.txt / tokenizer.json), or model.vocab with preset = \"tiny\"",
                spec.name);
  }
}

void require_path(const TaskSpec& spec) {
  if (spec.path.empty()) throw_input("data set '{}' needs a path to its folder", spec.name);
}

/// Synthetic MLM blocks: generates lines until `blocks` blocks are filled.
MlmData synthetic_blocks(const text::WordPieceTokenizer& tok, int64_t block_size, int64_t blocks, uint64_t seed) {
  // ~25 tokens per line on average; start a little above what the blocks need.
  int64_t lines = blocks * (block_size - 2) / 20 + 16;
  for (;;) {
    MlmData d = make_mlm_blocks(synthetic_mlm_corpus({lines, seed}), tok, block_size, blocks);
    if (d.size() >= blocks) return d;
    lines *= 2;
  }
}

void finish_mlm(const TaskSpec& spec, Task& task) {
  task.kind = TaskKind::MaskedLM;
  task.num_labels = 0;
  task.masking = MaskingOptions::for_tokenizer(*task.tokenizer);
  if (task.train_mlm.size() == 0 || task.eval_mlm.size() == 0)
    throw_input("data set '{}' has fewer tokens than one block of {} ({} train, {} eval blocks)", spec.name,
                spec.block_size, task.train_mlm.size(), task.eval_mlm.size());
  task.eval_masked = mask_tokens(task.eval_mlm.blocks, task.masking, spec.eval_mask_seed);
}

}  // namespace

std::string task_kind_name(TaskKind k) { return k == TaskKind::Classification ? "classification" : "mlm"; }

const std::vector<std::string>& known_tasks() {
  static const std::vector<std::string> names = {"sst2", "imdb", "wikitext2", "synthetic_sentiment",
                                                 "synthetic_mlm"};
  return names;
}

Task load_task(const TaskSpec& spec) {
  Task task;
  task.name = spec.name;
  const std::string& n = spec.name;
  if (n == "sst2" || n == "imdb" || n == "synthetic_sentiment") {
    TextSplit train, eval;
    if (n == "sst2") {
      require_path(spec);
      train = read_sst2(spec.path, "train", spec.max_train);
      eval = read_sst2(spec.path, "dev", spec.max_eval);
    } else if (n == "imdb") {
      require_path(spec);
      train = read_imdb(spec.path, "train", spec.max_train);
      eval = read_imdb(spec.path, "test", spec.max_eval);
    } else {
      SyntheticSentimentOptions o;
      o.contrast_fraction = spec.synthetic_contrast;
      o.negation_prob = spec.synthetic_negation;
      o.num_examples = spec.max_train > 0 ? spec.max_train : kSyntheticTrainSentences;
      o.seed = derive_seed(spec.seed, 100);
      train = synthetic_sentiment(o);
      o.num_examples = spec.max_eval > 0 ? spec.max_eval : kSyntheticEvalSentences;
      o.seed = derive_seed(spec.seed, 101);
      eval = synthetic_sentiment(o);
    }
    attach_tokenizer(spec, task, n == "synthetic_sentiment");
    task.kind = TaskKind::Classification;
    task.num_labels = 2;
    task.train_cls = tokenize_classification(train, *task.tokenizer, spec.max_length);
    task.eval_cls = tokenize_classification(eval, *task.tokenizer, spec.max_length);
    spdlog::info("data {}: {} train / {} eval examples, longest {} / {} tokens", n, task.train_cls.size(),
                 task.eval_cls.size(), task.train_cls.max_length(), task.eval_cls.max_length());
    return task;
  }
  if (n == "wikitext2") {
    require_path(spec);
    attach_tokenizer(spec, task, false);
    const WikiTextVariant v = parse_wikitext_variant(spec.wikitext_variant);
    task.train_mlm = make_mlm_blocks(read_wikitext(spec.path, "train", v), *task.tokenizer, spec.block_size,
                                     spec.max_train);
    task.eval_mlm = make_mlm_blocks(read_wikitext(spec.path, "valid", v), *task.tokenizer, spec.block_size,
                                    spec.max_eval);
    finish_mlm(spec, task);
  } else if (n == "synthetic_mlm") {
    attach_tokenizer(spec, task, true);
    task.train_mlm = synthetic_blocks(*task.tokenizer, spec.block_size,
                                      spec.max_train > 0 ? spec.max_train : kSyntheticTrainBlocks,
                                      derive_seed(spec.seed, 200));
    task.eval_mlm = synthetic_blocks(*task.tokenizer, spec.block_size,
                                     spec.max_eval > 0 ? spec.max_eval : kSyntheticEvalBlocks,
                                     derive_seed(spec.seed, 201));
    finish_mlm(spec, task);
  } else {
    throw_input("unknown data set '{}': known are {}", n, fmt::join(known_tasks(), ", "));
  }
  spdlog::info("data {}: {} train / {} eval blocks of {} tokens", n, task.train_mlm.size(), task.eval_mlm.size(),
               spec.block_size);
  return task;
}

}  // namespace peft::data
