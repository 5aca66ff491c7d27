// Every kind of bad sweep file is refused before anything runs, with one line per problem
// naming the file, the full key and its line:column.
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "config/sweep_spec.h"
#include "config_test_util.h"
#include "core/error.h"
#include "test_util.h"

namespace peft {
namespace {

using testing::base_sweep;
using testing::parse_error;
using testing::contains;
using testing::starts_with;

/// base_sweep() with one line replaced (1-based).
std::string with_line(int line, const std::string& text) {
  std::string s = base_sweep();
  std::size_t begin = 0;
  for (int i = 1; i < line; ++i) begin = s.find('\n', begin) + 1;
  const std::size_t end = s.find('\n', begin);
  return s.replace(begin, end - begin, text);
}

TEST(SweepValidation, BaseSweepIsValid) {
  const SweepSpec spec = parse_sweep_string(base_sweep(), "x.toml");
  EXPECT_EQ(spec.name, "t");
  EXPECT_EQ(spec.output, "results/t.h5");
  EXPECT_EQ(spec.dp, 2);
  EXPECT_EQ(spec.train.lr, 0.001);
  EXPECT_EQ(spec.text, base_sweep());
  EXPECT_TRUE(spec.warnings.empty());
}

TEST(SweepValidation, OutOfRangeNamesKeyLineAndColumn) {
  EXPECT_EQ(parse_error(with_line(8, "lr = -1")), "x.toml:8:6: train.lr: expected a positive number, found -1");
}

TEST(SweepValidation, WrongTypeNamesKeyAndValue) {
  EXPECT_EQ(parse_error(with_line(8, "lr = \"fast\"")),
            "x.toml:8:6: train.lr: expected a positive number, found \"fast\"");
  EXPECT_EQ(parse_error(with_line(7, "batch_size = 8.5")),
            "x.toml:7:14: train.batch_size: expected an integer >= 1, found 8.5");
  EXPECT_EQ(parse_error(with_line(3, "dp = \"2\"")), "x.toml:3:6: sweep.dp: expected an integer >= 1, found \"2\"");
  EXPECT_EQ(parse_error(base_sweep() + "[method]\nrslora = 1\n"),
            "x.toml:13:10: method.rslora: expected true or false, found 1");
}

TEST(SweepValidation, TableWhereValueExpected) {
  EXPECT_EQ(parse_error("method = 3\n" + base_sweep()), "x.toml:1:10: method: expected a table, found 3");
}

TEST(SweepValidation, UnknownKeySuggestsTheClosest) {
  EXPECT_EQ(parse_error(with_line(8, "lrr = 0.001")),
            "x.toml:8:1: train.lrr: unknown key; did you mean 'lr'?");
  EXPECT_EQ(parse_error(with_line(7, "batch_sise = 8")),
            "x.toml:7:1: train.batch_sise: unknown key; did you mean 'batch_size'?");
  // Nothing close: no suggestion.
  EXPECT_EQ(parse_error(with_line(8, "temperature = 1")), "x.toml:8:1: train.temperature: unknown key");
}

TEST(SweepValidation, UnknownTableSuggestsTheClosest) {
  EXPECT_EQ(parse_error(with_line(6, "[trian]")), "x.toml:6:2: trian: unknown table; did you mean 'train'?");
}

TEST(SweepValidation, KeyInTheWrongTableSaysWhere) {
  EXPECT_TRUE(contains(parse_error(base_sweep() + "[methods.lora]\nprune_start = 0.2\n"), "x.toml:13:1: methods.lora.prune_start: unknown key (a setting of "
                        "[methods.sparse_lora], not of [methods.lora])"));
  EXPECT_TRUE(contains(parse_error(base_sweep() + "[methods.head]\nrank = 4\n"), "methods.head.rank: unknown key (method 'head' has no adapter, so no rank)"));
  EXPECT_TRUE(contains(parse_error(base_sweep() + "[methods.lora]\ndevice = \"cpu\"\n"), "methods.lora.device: unknown key (a setting of [train] for the whole sweep"));
}

TEST(SweepValidation, UnknownMethodInGrid) {
  EXPECT_EQ(parse_error(with_line(10, "method = [\"lora\", \"lorra\"]")),
            "x.toml:10:19: grid.method: expected one of \"lora\", \"sparse_lora\", \"hira\", \"qlora\", "
            "\"full\", \"head\", found \"lorra\"; did you mean 'lora'?");
}

TEST(SweepValidation, UnknownMethodTable) {
  EXPECT_EQ(parse_error(base_sweep() + "[methods.hirra]\nhira_scale = 2\n"),
            "x.toml:12:10: methods.hirra: unknown method; did you mean 'hira'?");
}

TEST(SweepValidation, UnknownDataset) {
  EXPECT_TRUE(contains(parse_error(with_line(11, "dataset = \"sst-2\"")), "x.toml:11:11: grid.dataset: expected one of \"sst2\""));
  EXPECT_TRUE(contains(parse_error(with_line(11, "dataset = \"sst-2\"")), "found \"sst-2\"; did you mean 'sst2'?"));
  EXPECT_EQ(parse_error(base_sweep() + "[datasets.imbd]\npath = \"x\"\n"),
            "x.toml:12:11: datasets.imbd: unknown dataset; did you mean 'imdb'?");
}

TEST(SweepValidation, RangeChecks) {
  EXPECT_EQ(parse_error(with_line(3, "dp = 0")), "x.toml:3:6: sweep.dp: expected an integer >= 1, found 0");
  EXPECT_EQ(parse_error(with_line(7, "batch_size = 1")),
            "x.toml:7:14: train.batch_size: expected a multiple of sweep.dp = 2 (the global batch is "
            "split evenly over the ranks of a trial), found 1");
  EXPECT_TRUE(contains(parse_error(with_line(7, "batch_size = 9")), "x.toml:7:14: train.batch_size"));
  EXPECT_EQ(parse_error(with_line(8, "warmup_ratio = 1.0")),
            "x.toml:8:16: train.warmup_ratio: expected a number in [0, 1), found 1.0");
  EXPECT_EQ(parse_error(base_sweep() + "[method]\ndropout = 1\n"),
            "x.toml:13:11: method.dropout: expected a number in [0, 1), found 1");
  EXPECT_EQ(parse_error(base_sweep() + "rank = [4, 0]\n"),
            "x.toml:12:12: grid.rank: expected an integer >= 1, found 0");
  EXPECT_EQ(parse_error(base_sweep() + "sparsity = [0.5, 1.0]\n"),
            "x.toml:12:18: grid.sparsity: expected a number in [0, 1), found 1.0");
  EXPECT_EQ(parse_error(base_sweep() + "lr = [0.001, 0]\n"), "x.toml:12:14: grid.lr: expected a positive number, found 0");
  EXPECT_EQ(parse_error(base_sweep() + "rank = [4, 8, 4]\n"), "x.toml:12:15: grid.rank: duplicate value 4");
  EXPECT_EQ(parse_error(base_sweep() + "rank = []\n"),
            "x.toml:12:8: grid.rank: expected at least one value, found an empty array");
  EXPECT_EQ(parse_error(with_line(8, "lr = nan")), "x.toml:8:6: train.lr: expected a positive number, found nan");
}

TEST(SweepValidation, DefaultBatchNotAMultipleOfDp) {
  std::string text = with_line(3, "dp = 3");
  text = text.replace(text.find("batch_size = 8\n"), 15, "");
  EXPECT_EQ(parse_error(text),
            "x.toml:3:6: sweep.dp: the default train.batch_size 32 is not a multiple of 3: set train.batch_size");
}

TEST(SweepValidation, Bf16OnCpuIsAccepted) {
  // bf16 runs on the CPU through CPU autocast: no longer a validation error.
  auto spec = parse_sweep_string(with_line(8, "lr = 0.001\ndevice = \"cpu\"\nprecision = \"bf16\""), "x.toml", false);
  EXPECT_EQ(spec.train.precision, "bf16");
  EXPECT_EQ(spec.train.device, "cpu");
}

TEST(SweepValidation, ChoicesSuggestTheClosest) {
  EXPECT_EQ(parse_error(with_line(8, "precision = \"fp23\"")),
            "x.toml:8:13: train.precision: expected one of \"auto\", \"fp32\", \"bf16\", found \"fp23\"; did you "
            "mean 'fp32'?");
}

TEST(SweepValidation, OptimizerChoices) {
  EXPECT_EQ(parse_error(with_line(8, "optimizer = \"paged_adam\"")),
            "x.toml:8:13: train.optimizer: expected one of \"adamw\", \"paged_adamw\", found \"paged_adam\"; did you "
            "mean 'paged_adamw'?");
}

TEST(SweepValidation, TargetModulesAreChecked) {
  EXPECT_TRUE(contains(parse_error(base_sweep() + "[method]\ntargets = [\"q_lin\", \"q_lim\"]\n"),
                       "x.toml:13:21: method.targets: unknown module \"q_lim\""));
  EXPECT_TRUE(contains(parse_error(base_sweep() + "[method]\ntargets = [\"q_lin\", \"q_lim\"]\n"),
                       "did you mean 'q_lin'?"));
  EXPECT_TRUE(contains(parse_error(base_sweep() + "[method]\ntargets = [\"all-linear\", \"q_lin\"]\n"),
                       "x.toml:13:12: method.targets: \"all-linear\" already names every linear layer: use it alone"));
  // Regular expressions are not module names (targets are matched as names or path suffixes).
  EXPECT_TRUE(contains(parse_error(base_sweep() + "[method]\ntargets = \".*q_lin\"\n"),
                       "x.toml:13:11: method.targets: unknown module \".*q_lin\""));
  const SweepSpec spec = parse_sweep_string(
      base_sweep() + "[method]\ntargets = [\"transformer.layer.0.attention.q_lin\", \"lin2\"]\n", "x.toml");
  EXPECT_EQ(spec.method.targets, (std::vector<std::string>{"transformer.layer.0.attention.q_lin", "lin2"}));
}

TEST(SweepValidation, SparseLoraNeedsASparsity) {
  EXPECT_EQ(parse_error(with_line(10, "method = [\"lora\", \"sparse_lora\"]")),
            "x.toml:10:19: grid.method: sparse_lora needs a target sparsity: add a grid.sparsity axis or set "
            "methods.sparse_lora.sparsity");
  EXPECT_NO_THROW(parse_sweep_string(with_line(10, "method = \"sparse_lora\"") +
                                         "[methods.sparse_lora]\nsparsity = 0.5\n", "x.toml"));
  EXPECT_EQ(parse_error(with_line(10, "method = \"sparse_lora\"") +
                        "[methods.sparse_lora]\nsparsity = 0.5\nprune_start = 0.7\nprune_end = 0.5\n"),
            "x.toml:15:13: methods.sparse_lora.prune_end: prune_start (0.7) must not come after prune_end (0.5) "
            "(fractions of the training steps)");
}

TEST(SweepValidation, DatasetOnDiskNeedsASection) {
  EXPECT_EQ(parse_error(with_line(11, "dataset = [\"synthetic_sentiment\", \"sst2\"]")),
            "x.toml:11:35: grid.dataset: 'sst2' needs a [datasets.sst2] table with path = the folder in its "
            "official layout (GLUE SST-2: train.tsv, dev.tsv)");
  EXPECT_EQ(parse_error(with_line(11, "dataset = \"imdb\"") + "[datasets.imdb]\nmax_length = 128\n"),
            "x.toml:12:1: datasets.imdb: missing key 'path': the folder in the official layout (aclImdb: "
            "train/{pos,neg}, test/{pos,neg})");
}

TEST(SweepValidation, MissingDataFolder) {
  const std::string text = with_line(11, "dataset = \"sst2\"") + "[datasets.sst2]\npath = \"/no/such/SST-2\"\n";
  EXPECT_EQ(parse_error(text),
            "x.toml:13:8: datasets.sst2.path: folder '/no/such/SST-2' not found (expected GLUE SST-2: "
            "train.tsv, dev.tsv)");
  // A dry run may expand the grid without the data.
  EXPECT_NO_THROW(parse_sweep_string(text, "x.toml", /*check_paths=*/false));
  testing::TempDir dir;
  const std::string ok = with_line(11, "dataset = \"sst2\"") + "[datasets.sst2]\npath = \"" + dir.path().string() + "\"\n";
  EXPECT_EQ(parse_sweep_string(ok, "x.toml").datasets.at("sst2").path, dir.path().string());
}

TEST(SweepValidation, DatasetSettingsBelongToTheirKind) {
  EXPECT_EQ(parse_error(base_sweep() + "[datasets.synthetic_mlm]\nmax_length = 64\n"),
            "x.toml:13:1: datasets.synthetic_mlm.max_length: unknown key (max_length is for classification; "
            "'synthetic_mlm' uses block_size)");
  EXPECT_EQ(parse_error(base_sweep() + "[datasets.synthetic_sentiment]\nblock_size = 64\n"),
            "x.toml:13:1: datasets.synthetic_sentiment.block_size: unknown key (block_size is for MLM data sets; "
            "'synthetic_sentiment' is classification)");
  EXPECT_EQ(parse_error(base_sweep() + "[datasets.synthetic_sentiment]\nformat = \"tsv\"\n"),
            "x.toml:13:10: datasets.synthetic_sentiment.format: expected one of \"synthetic\", found \"tsv\"");
}

TEST(SweepValidation, CheckpointNeedsConfigJson) {
  testing::TempDir dir;
  const std::string text = with_line(5, "checkpoint = \"" + dir.path().string() + "\"");
  EXPECT_EQ(parse_error(text), "x.toml:5:14: model.checkpoint: '" + dir.path().string() +
                                   "' has no config.json (expected a Hugging Face checkpoint folder)");
  std::ofstream(dir / "config.json") << "{}";
  EXPECT_EQ(parse_sweep_string(text, "x.toml").model.checkpoint, dir.path().string());
  EXPECT_TRUE(contains(parse_error(with_line(5, "checkpoint = \"/no/such/model\"")), "x.toml:5:14: model.checkpoint: folder '/no/such/model' not found"));
}

TEST(SweepValidation, CheckpointXorPreset) {
  EXPECT_EQ(parse_error(with_line(5, "checkpoint = \"m\"\npreset = \"tiny\""), false),
            "x.toml:6:10: model.preset: set either model.checkpoint or model.preset, not both");
  EXPECT_EQ(parse_error(with_line(5, "pretrain_steps = 10")),
            "x.toml:4:1: model: set checkpoint = \"<Hugging Face folder>\" or preset = \"tiny\"");
  EXPECT_EQ(parse_error(with_line(5, "checkpoint = \"m\"\npretrain = true"), false),
            "x.toml:6:12: model.pretrain: pretraining is for preset = \"tiny\" only (a checkpoint is already trained)");
}

TEST(SweepValidation, TinyVocabulary) {
  EXPECT_EQ(parse_error(with_line(5, "checkpoint = \"m\"\nvocab = \"v.txt\""), false),
            "x.toml:6:9: model.vocab: a checkpoint brings its own vocabulary; model.vocab is for preset = \"tiny\"");
  EXPECT_EQ(parse_error(with_line(5, "preset = \"tiny\"\npretrain = true\nvocab = \"v.txt\""), false),
            "x.toml:7:9: model.vocab: pretrain = true trains the tiny base on the synthetic corpus and its vocabulary; "
            "drop one of them");
  EXPECT_EQ(parse_error(with_line(5, "preset = \"tiny\"\nvocab = \"/no/such/vocab.txt\"")),
            "x.toml:6:9: model.vocab: '/no/such/vocab.txt' is neither a vocab.txt / tokenizer.json file nor a folder "
            "holding one");
  // --dry-run does not look for it; the id then carries it.
  auto trials = expand(parse_sweep_string(with_line(5, "preset = \"tiny\"\nvocab = \"models/x/vocab.txt\""), "x.toml", false));
  EXPECT_EQ(trials.at(0).params.at("model.vocab"), "models/x/vocab.txt");
}

TEST(SweepValidation, MissingTables) {
  EXPECT_EQ(parse_error("[model]\npreset = \"tiny\"\n"),
            "x.toml:3:1: grid: missing table [grid]: it needs at least method = [...] and dataset = [...]");
  EXPECT_EQ(parse_error("[model]\npreset = \"tiny\"\n[grid]\nmethod = \"lora\"\n"),
            "x.toml:3:1: grid: missing key 'dataset' (one or more of sst2, imdb, wikitext2, synthetic_sentiment "
            "and synthetic_mlm)");
}

TEST(SweepValidation, SyntaxErrorHasPosition) {
  const std::string message = parse_error("[sweep]\nname = \"t\"\ndp = = 2\n");
  EXPECT_TRUE(starts_with(message, "x.toml:3:"));
  EXPECT_TRUE(contains(message, "TOML syntax error"));
  EXPECT_TRUE(starts_with(parse_error("[train]\nlr = 1\nlr = 2\n"), "x.toml:3:"));
}

TEST(SweepValidation, AllErrorsAreReportedTogetherInFileOrder) {
  std::string text = with_line(8, "lr = -1");
  text = text.replace(text.find("dp = 2"), 6, "dp = 0");
  text += "rank = 0\n[methods.lorra]\n";
  EXPECT_EQ(parse_error(text),
            "x.toml:3:6: sweep.dp: expected an integer >= 1, found 0\n"
            "x.toml:8:6: train.lr: expected a positive number, found -1\n"
            "x.toml:12:8: grid.rank: expected an integer >= 1, found 0\n"
            "x.toml:13:10: methods.lorra: unknown method; did you mean 'lora'?");
}

TEST(SweepValidation, HarmlessOdditiesAreWarnings) {
  const SweepSpec spec = parse_sweep_string(base_sweep() + "sparsity = 0.5\n[methods.qlora]\nrank = 4\n", "x.toml");
  ASSERT_EQ(spec.warnings.size(), 2u);
  EXPECT_EQ(spec.warnings[0], "x.toml:12:12: grid.sparsity: no sparse_lora in grid.method, so no trial uses this axis");
  EXPECT_EQ(spec.warnings[1], "x.toml:13:1: methods.qlora: not in grid.method, so these settings are not used");
}

TEST(SweepValidation, MissingFileIsAnInputError) {
  EXPECT_THROW(parse_sweep_file("/no/such/sweep.toml"), InputError);
}

}  // namespace
}  // namespace peft

namespace peft {
namespace {

using testing::base_sweep;
using testing::contains;
using testing::parse_error;

TEST(SweepValidation, GradAccumMustSplitTheBatchOverTheRanks) {
  // batch_size = 8 on dp = 2: 4 rows per rank, so 2 or 4 micro-batches, not 3.
  EXPECT_EQ(parse_sweep_string(with_line(8, "lr = 0.001\ngrad_accum = 4"), "x.toml").train.grad_accum, 4);
  EXPECT_EQ(parse_error(base_sweep() + "[methods.lora]\ngrad_accum = 3\n"),
            "x.toml:13:14: methods.lora.grad_accum: batch_size = 8 does not split into 3 micro-batches on each of the "
            "sweep.dp = 2 ranks (batch_size must be a multiple of dp × grad_accum = 6)");
  EXPECT_TRUE(contains(parse_error(with_line(8, "grad_accum = 0")), "x.toml:8:14: train.grad_accum: expected an integer >= 1"));
}

TEST(SweepValidation, CheckpointEveryTakesStepsOrATime) {
  auto spec = [](const std::string& v) { return parse_sweep_string(with_line(8, "checkpoint_every = " + v), "x.toml").train; };
  EXPECT_EQ(spec("200").checkpoint_every, 200);
  EXPECT_EQ(spec("\"30min\"").checkpoint_minutes, 30.0);
  EXPECT_EQ(spec("\"1.5 h\"").checkpoint_minutes, 90.0);
  EXPECT_EQ(spec("\"30min\"").checkpoint_every, 0);
  EXPECT_TRUE(contains(parse_error(with_line(8, "checkpoint_every = \"30s\"")),
                       "x.toml:8:20: train.checkpoint_every: expected a number of steps (200) or a time (\"30min\", \"2h\"), found \"30s\""));
  EXPECT_TRUE(contains(parse_error(with_line(8, "checkpoint_every = -1")), "x.toml:8:20: train.checkpoint_every: expected an integer >= 0"));
  EXPECT_TRUE(contains(parse_error(with_line(8, "checkpoint_every = \"-5min\"")), "must be positive"));
}

TEST(SweepValidation, SaveAdaptersIsASweepSetting) {
  auto s = parse_sweep_string(with_line(2, "save_adapters = true\nname = \"t\""), "x.toml");
  EXPECT_TRUE(s.save_adapters);
  EXPECT_EQ(adapters_dir("results/x.h5"), "results/x.adapters");
  EXPECT_EQ(checkpoints_dir("out.h5"), "out.checkpoints");
  EXPECT_TRUE(contains(parse_error(with_line(2, "save_adapters = 1\nname = \"t\"")), "x.toml:2:17: sweep.save_adapters: expected true or false, found 1"));
}

}  // namespace
}  // namespace peft
