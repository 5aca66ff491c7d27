#pragma once
// The contract between the sweep file (src/config), the trainer (src/train) and the results
// store (src/results): one trial's resolved parameters and its measured outcome.
// Plain data, no LibTorch.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace peft {

struct ModelSettings {
  std::string checkpoint;        // Hugging Face folder (config.json, model.safetensors, vocab)
  std::string preset;            // "tiny": built-in config, random init from the seed
  std::string vocab;             // tiny preset on real data: vocab.txt / tokenizer.json (or a folder with one)
  bool pretrain = false;         // tiny preset: MLM-pretrain the base on the synthetic corpus first (cached)
  int64_t pretrain_steps = 600;
  std::string cache_dir = ".cache/peft-sweep";
};

struct MethodSettings {
  std::string method = "lora";   // lora | sparse_lora | hira | qlora | full | head
  int64_t rank = 8;              // not used by full / head
  double alpha = 16.0;
  double dropout = 0.0;
  bool rslora = false;
  std::vector<std::string> targets = {"q_lin", "v_lin"};  // names, a regex, or {"all-linear"}
  std::vector<int64_t> layers;   // layers_to_transform; empty = all
  // Sparse LoRA
  double sparsity = 0.0;         // target fraction of zero weights in A and B
  std::string prune_schedule = "cubic";   // cubic | oneshot
  double prune_start = 0.1;      // fractions of the total steps
  double prune_end = 0.6;
  int64_t prune_every = 10;      // steps between pruning updates (cubic)
  bool structured = false;       // prune whole rank channels
  double l1 = 0.0;               // λ of the L1 penalty
  bool l1_proximal = false;      // soft-threshold after the step instead of a loss term
  // HiRA
  double hira_scale = 1.0;
  // QLoRA
  std::string compute_dtype = "auto";  // qlora: auto (the precision's) | float32 | bfloat16 | float16
};

struct DatasetSettings {
  std::string name;              // sst2 | imdb | wikitext2 | synthetic_sentiment | synthetic_mlm
  std::string path;              // folder in the official layout (not for synthetic)
  int64_t max_length = 128;      // classification truncation
  int64_t block_size = 128;      // MLM block length
  int64_t max_train = 0;         // 0 = all
  int64_t max_eval = 0;
  int64_t synthetic_train = 10000;
  int64_t synthetic_eval = 1000;
};

struct TrainSettings {
  int64_t epochs = 3;
  int64_t max_steps = 0;         // > 0 overrides epochs
  int64_t batch_size = 32;       // global batch of one optimizer step, split over the dp ranks
  int64_t grad_accum = 1;        // micro-batches per optimizer step (batch_size / (dp × grad_accum) rows each)
  double lr = 3e-4;              // adapters (and everything for full)
  double head_lr = 0.0;          // 0 = lr
  double weight_decay = 0.01;
  double warmup_ratio = 0.06;
  double max_grad_norm = 1.0;    // 0 = no clipping
  int64_t eval_every = 0;        // steps; 0 = every epoch
  std::string optimizer = "adamw";  // adamw | paged_adamw (states in host memory, streamed per step)
  std::string precision = "auto";  // auto | fp32 | bf16 (bf16 only on GPU)
  std::string device = "auto";   // auto | cpu | cuda
  int64_t inference_batch = 64;
  int64_t inference_repeats = 5;
  bool save_adapter = false;
  std::string adapter_dir;       // where to save the PEFT adapter when save_adapter
  // Mid-trial checkpoints (bitwise resume on CPU): every N optimizer steps, and/or every M
  // minutes of the group's rank 0 (agreed in the step's all-reduce); 0 = off.
  int64_t checkpoint_every = 0;
  double checkpoint_minutes = 0;
};

struct TrialSpec {
  std::string id;                // stable hash of the resolved parameters
  ModelSettings model;
  MethodSettings method;
  DatasetSettings dataset;
  TrainSettings train;
  uint64_t seed = 1;
  int64_t dp = 1;
  /// Resolved parameters as flat key → value strings (method.rank, dataset.name, …),
  /// the trial's HDF5 attributes and the input of its id.
  std::map<std::string, std::string> params;
};

struct TrialResult {
  std::string id;
  std::string status = "complete";  // complete | failed | diverged | interrupted
  std::string error;
  int64_t diverged_step = -1;
  int64_t interrupted_step = -1;    // optimizer steps done when a stop interrupted the trial
  // Training curve, one entry per logged step.
  std::vector<int64_t> train_step;
  std::vector<double> train_loss;
  std::vector<double> train_lr;
  // Evaluation curve, one entry per evaluation.
  std::vector<int64_t> eval_step;
  std::vector<double> eval_epoch;
  std::vector<double> eval_accuracy;    // NaN for MLM
  std::vector<double> eval_f1;          // NaN for MLM
  std::vector<double> eval_perplexity;  // NaN for classification
  std::vector<double> eval_loss;
  /// Final metrics by name (see README "Results file"); NaN where not applicable.
  std::map<std::string, double> metrics;
  /// Per-layer sparsity report etc.: name → (nonzero, total).
  std::map<std::string, std::pair<int64_t, int64_t>> sparsity;
  double wall_seconds = 0;
  int64_t group = 0;
};

}  // namespace peft
