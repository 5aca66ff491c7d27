#pragma once
// The data-set seam of a trial: a TaskSpec names a data set, load_task reads (or
// generates) it, tokenises it once and returns tensors the trainer batches with
// BatchPlan / gather_batch (data/batch.h) and, for MLM, mask_tokens (data/mlm_masking.h).
//
//   name                 kind            train / eval         source
//   sst2                 classification  train.tsv / dev.tsv  GLUE SST-2 folder
//   imdb                 classification  train / test         aclImdb folder
//   wikitext2            mlm             train / valid        wiki.*.tokens or wiki.*.raw
//   synthetic_sentiment  classification  generated            seed (no files)
//   synthetic_mlm        mlm             generated            seed (no files)
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "data/classification_data.h"
#include "data/mlm_data.h"
#include "data/mlm_masking.h"
#include "text/wordpiece.h"

namespace peft::data {

enum class TaskKind { Classification, MaskedLM };
std::string task_kind_name(TaskKind k);  // "classification" | "mlm"

struct TaskSpec {
  std::string name;        // one of known_tasks()
  std::string path;        // data folder (sst2, imdb, wikitext2)
  std::string vocab_path;  // vocab.txt or tokenizer.json; empty: synthetic_vocab() for the
                           // synthetic tasks, an error for the real ones
  int max_length = 128;    // classification: truncation, [CLS] and [SEP] included
  int block_size = 128;    // MLM: tokens per block, [CLS] and [SEP] included
  // Caps, 0 = everything. Classification: examples (SST-2: the first rows; IMDB: balanced,
  // lowest ids). MLM: blocks. Synthetic tasks have no "everything": 0 means 10,000 / 1,000
  // sentences (sentiment) or 4,000 / 400 blocks (mlm).
  int64_t max_train = 0, max_eval = 0;
  uint64_t seed = 0;            // generates the synthetic tasks (train and eval differ)
  // Difficulty of synthetic_sentiment (data/synthetic_sentiment.h). The defaults put a
  // bag-of-words model at ~62% (50% on contrast sentences); lower them for an easier task.
  double synthetic_contrast = 0.5;  // share of two-clause contrast sentences
  double synthetic_negation = 0.3;  // probability that a clause is negated
  uint64_t eval_mask_seed = 1234;  // MLM evaluation masks: keep fixed across trials
  std::string wikitext_variant = "auto";  // auto | tokens | raw
};

struct Task {
  std::string name;
  TaskKind kind = TaskKind::Classification;
  int num_labels = 0;  // 2 for classification, 0 for MLM

  ClassificationData train_cls, eval_cls;  // kind == Classification
  MlmData train_mlm, eval_mlm;             // kind == MaskedLM
  MaskedTokens eval_masked;                // eval_mlm masked once with eval_mask_seed
  MaskingOptions masking;                  // for the training masks (kind == MaskedLM)

  std::shared_ptr<const text::WordPieceTokenizer> tokenizer;
  std::string vocab_path;          // the vocabulary file used, or empty
  std::vector<std::string> vocab;  // the synthetic vocabulary when no file was used
};

/// The names load_task accepts.
const std::vector<std::string>& known_tasks();

/// Reads or generates, then tokenises the task. Unknown name → InputError listing the known
/// ones; data errors → InputError naming file and line.
Task load_task(const TaskSpec& spec);

}  // namespace peft::data
