#include "cli/single_trial.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iostream>

#include <fmt/ranges.h>
#include <torch/utils.h>

#include "cli/cli_common.h"
#include "config/known_names.h"
#include "config/sweep_spec.h"
#include "core/error.h"
#include "core/tiny_preset.h"
#include "model/config.h"
#include "train/device.h"
#include "train/trial_runner.h"

namespace peft::cli {

namespace {

/// What the sweep validation checks of a dataset's sequence length (src/config/parse_datasets.cpp),
/// for the options of `peft-sweep trial`: checked here, before any data loads, rather than by the
/// model's first forward pass after the data set was read and tokenised.
void check_sequence_length(const TrialSpec& t) {
  const bool mlm = dataset_is_mlm(t.dataset.name);
  const std::string option = mlm ? "block_size" : "--max-length";
  const int64_t length = mlm ? t.dataset.block_size : t.dataset.max_length;
  if (length < 8 || length > 512) throw_input("{}: expected an integer in [8, 512], found {}", option, length);
  int64_t positions = 0;
  std::string source;
  if (!t.model.checkpoint.empty()) {
    // A checkpoint that cannot be read is reported by the trial itself, as before.
    const auto config = std::filesystem::path(t.model.checkpoint) / "config.json";
    std::error_code ec;
    if (!std::filesystem::is_regular_file(config, ec)) return;
    try {
      positions = model::DistilBertConfig::from_json_file(config.string()).max_position_embeddings;
    } catch (const InputError&) {
      return;
    }
    source = config.string();
  } else if (t.model.preset == "tiny") {
    positions = tiny_max_positions(t.model);
    source = t.model.vocab.empty() ? "--preset tiny with the synthetic vocabulary; with --vocab it has 512"
                                   : "--preset tiny with --vocab";
  }
  if (positions > 0 && length > positions)
    throw_input("{} {} exceeds the model's max_position_embeddings {} ({}): set {} to at most {}", option, length, positions, source,
                option, positions);
}

}  // namespace

int run_single_trial(const std::vector<std::string>& args) {
  po::options_description desc("peft-sweep trial options");
  TrialSpec t;
  std::string sweep_file;
  desc.add_options()
      ("sweep", po::value(&sweep_file), "take the trial from a one-trial sweep file instead of the options below")
      ("method", po::value(&t.method.method)->default_value("lora"), "lora | sparse_lora | hira | qlora | full | head")
      ("dataset", po::value(&t.dataset.name)->default_value("synthetic_sentiment"), "sst2 | imdb | wikitext2 | synthetic_sentiment | synthetic_mlm")
      ("data-path", po::value(&t.dataset.path), "data folder in its official layout (sst2, imdb, wikitext2)")
      ("checkpoint", po::value(&t.model.checkpoint), "Hugging Face DistilBERT folder")
      ("preset", po::value(&t.model.preset), "tiny: built-in small model (default when no --checkpoint)")
      ("vocab", po::value(&t.model.vocab), "tiny: vocab.txt / tokenizer.json (or a folder with one) for real data")
      ("pretrain", po::bool_switch(&t.model.pretrain), "tiny: start from the cached MLM-pretrained base")
      ("rank", po::value(&t.method.rank)->default_value(8), "adapter rank")
      ("alpha", po::value(&t.method.alpha)->default_value(16.0), "LoRA alpha")
      ("sparsity", po::value(&t.method.sparsity)->default_value(0.0), "sparse_lora target sparsity")
      ("hira-scale", po::value(&t.method.hira_scale)->default_value(1.0), "HiRA update scale")
      ("targets", po::value<std::vector<std::string>>()->multitoken(), "target modules (q_lin v_lin …, or all-linear)")
      ("lr", po::value(&t.train.lr)->default_value(1e-3), "learning rate")
      ("head-lr", po::value(&t.train.head_lr)->default_value(0.0), "head learning rate (0: --lr)")
      ("epochs", po::value(&t.train.epochs)->default_value(3), "epochs")
      ("max-steps", po::value(&t.train.max_steps)->default_value(0), "steps (overrides --epochs)")
      ("batch-size", po::value(&t.train.batch_size)->default_value(32), "batch size")
      ("max-length", po::value(&t.dataset.max_length)->default_value(128), "classification truncation")
      ("max-train", po::value(&t.dataset.max_train)->default_value(0), "cap on training examples (0: all)")
      ("max-eval", po::value(&t.dataset.max_eval)->default_value(0), "cap on evaluation examples (0: all)")
      ("synthetic-train", po::value(&t.dataset.synthetic_train)->default_value(10000), "synthetic training sentences")
      ("seed", po::value(&t.seed)->default_value(1), "seed")
      ("device", po::value(&t.train.device)->default_value("auto"), "auto | cpu | cuda")
      ("optimizer", po::value(&t.train.optimizer)->default_value("adamw"), "adamw | paged_adamw (AdamW states in host memory)")
      ("precision", po::value(&t.train.precision)->default_value("auto"), "auto | fp32 | bf16 (bf16 on CPU: CPU autocast)")
      ("save-adapter", po::value(&t.train.adapter_dir), "save the trained adapter (PEFT layout) under DIR/<trial id>");
  po::variables_map vm;
  if (!parse_args("peft-sweep trial", "peft-sweep trial [--sweep ONE_TRIAL.toml | --method M --dataset D …]", args, desc, vm)) return 0;
  if (!sweep_file.empty()) {
    auto spec = parse_sweep_file(sweep_file);
    spec.train.precision = train::resolve_precision(spec.train.precision, spec.train.device);  // before the id
    auto trials = expand(spec);
    if (trials.size() != 1) throw_input("{}: expands to {} trials; `peft-sweep trial` runs exactly one (use peft-sweep for a sweep)", sweep_file, trials.size());
    t = trials[0];
  } else {
    // Choices are checked here, as bad arguments (exit 2), not as a failed trial.
    auto one_of = [](const std::string& option, const std::string& value, const std::vector<std::string>& choices) {
      if (std::find(choices.begin(), choices.end(), value) == choices.end())
        throw_input("--{}: expected one of {}, found \"{}\"", option, fmt::join(choices, " | "), value);
    };
    one_of("method", t.method.method, known_methods());
    one_of("dataset", t.dataset.name, known_datasets());
    one_of("device", t.train.device, {"auto", "cpu", "cuda"});
    one_of("optimizer", t.train.optimizer, {"adamw", "paged_adamw"});
    one_of("precision", t.train.precision, {"auto", "fp32", "bf16"});
    if (t.model.checkpoint.empty() && t.model.preset.empty()) t.model.preset = "tiny";
    if (!t.model.vocab.empty() && !t.model.checkpoint.empty())
      throw_input("--vocab: a checkpoint brings its own vocabulary; --vocab is for the tiny preset");
    if (vm.count("targets")) t.method.targets = vm["targets"].as<std::vector<std::string>>();
    t.train.save_adapter = !t.train.adapter_dir.empty();
    t.id = "cli";
    check_sequence_length(t);  // a sweep file's trial was checked by parse_sweep_file
  }
  t.train.precision = train::resolve_precision(t.train.precision, t.train.device);  // as the sweep driver does
  torch::set_num_threads(train::threads_per_rank(1));  // as peft-sweep does for one rank
  train::RunContext ctx;
  const bool tty = isatty(STDERR_FILENO);
  ctx.progress = [&](const train::Progress& p) {
    std::cerr << fmt::format("{}step {}/{}  loss {:.4f}  {:.0f} samples/s  ETA {:.0f}s{}", tty ? "\r" : "", p.step, p.total_steps, p.loss,
                             p.samples_per_second, p.eta_seconds, tty ? "   " : "\n")
              << std::flush;
  };
  auto r = train::run_trial(t, ctx);
  if (tty) std::cerr << "\n";
  std::cout << fmt::format("trial {}: {} on {} — status {}\n", t.id, t.method.method, t.dataset.name, r.status);
  if (!r.error.empty()) std::cout << "error: " << r.error << "\n";
  for (std::size_t i = 0; i < r.eval_step.size(); ++i)
    std::cout << fmt::format("  eval @ step {:>6} (epoch {:.2f}): accuracy {:.4f}  f1 {:.4f}  perplexity {:.3f}  loss {:.4f}\n", r.eval_step[i],
                             r.eval_epoch[i], r.eval_accuracy[i], r.eval_f1[i], r.eval_perplexity[i], r.eval_loss[i]);
  std::cout << fmt::format("  {:<40} {}\n", "metric", "value");
  for (const auto& [k, v] : r.metrics) std::cout << fmt::format("  {:<40} {:.6g}\n", k, v);
  return r.status == "complete" ? 0 : 1;
}

}  // namespace peft::cli
