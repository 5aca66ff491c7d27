// Hostile sweep files: long values must be refused (or accepted) with a message, never by
// overflowing the stack; and every error carries file:line:column, also for what is missing.
#include <string>

#include <gtest/gtest.h>

#include "config/sweep_spec.h"
#include "config_test_util.h"
#include "core/error.h"

namespace peft {
namespace {

using testing::base_sweep;
using testing::contains;
using testing::parse_error;

std::string replace_line(std::string s, const std::string& from, const std::string& to) {
  const std::size_t at = s.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  return s.replace(at, from.size(), to);
}

// std::regex_match recursed once per character: these values overflowed the stack.
TEST(SweepRobustness, LongSweepNameIsCheckedWithoutRecursion) {
  const std::string name(400'000, 'a');
  const SweepSpec spec = parse_sweep_string(replace_line(base_sweep(), "name = \"t\"", "name = \"" + name + "\""), "x.toml");
  EXPECT_EQ(spec.name, name);
  const std::string bad = parse_error(replace_line(base_sweep(), "name = \"t\"", "name = \"" + name + " \""));
  EXPECT_TRUE(contains(bad, "x.toml:2:8: sweep.name: expected letters, digits"));
}

TEST(SweepRobustness, LongTargetModuleIsRefusedWithoutRecursion) {
  const std::string path(300'000, 'q');
  const std::string err = parse_error(base_sweep() + "[method]\ntargets = [\"" + path + ".q_lin.\"]\n");
  EXPECT_TRUE(contains(err, "x.toml:13:12: method.targets: unknown module"));
  // A long but well-formed module path ending in a known name is accepted.
  std::string dotted;
  for (int i = 0; i < 50'000; ++i) dotted += "layer.";
  const SweepSpec spec = parse_sweep_string(base_sweep() + "[method]\ntargets = [\"" + dotted + "q_lin\"]\n", "x.toml");
  EXPECT_EQ(spec.method.targets.back(), dotted + "q_lin");
}

TEST(SweepRobustness, LongUnknownValuesAndKeys) {
  const std::string word(500'000, 'x');
  EXPECT_TRUE(contains(parse_error(replace_line(base_sweep(), "dataset = \"synthetic_sentiment\"", "dataset = \"" + word + "\"")),
                       "x.toml:11:11: grid.dataset: expected one of"));
  EXPECT_TRUE(contains(parse_error(word + " = 1\n" + base_sweep()), "x.toml:1:1: " + word.substr(0, 10)));
}

TEST(SweepRobustness, MissingTablesPointAtTheEndOfTheFile) {
  // base_sweep() without [grid] (lines 9-11): 8 lines, the end is line 9, column 1.
  std::string no_grid = base_sweep();
  no_grid.erase(no_grid.find("[grid]"));
  EXPECT_EQ(parse_error(no_grid),
            "x.toml:9:1: grid: missing table [grid]: it needs at least method = [...] and dataset = [...]");
  // No final newline: the end is after the last character.
  std::string no_model = replace_line(base_sweep(), "[model]\npreset = \"tiny\"\n", "");
  no_model.pop_back();
  EXPECT_TRUE(contains(parse_error(no_model), "x.toml:9:32: model: missing table [model]"));
  EXPECT_TRUE(contains(parse_error(""), "x.toml:1:1: model: missing table [model]"));
}

TEST(SweepRobustness, DpKeepsItsPositionForChecksAfterParsing) {
  const SweepSpec spec = parse_sweep_string(base_sweep(), "x.toml");
  EXPECT_EQ(spec.dp_pos.line, 3u);
  EXPECT_EQ(spec.dp_pos.column, 6u);
  EXPECT_EQ(spec.locate(spec.dp_pos, "sweep.dp", "= 2 does not divide the 1 MPI ranks"),
            "x.toml:3:6: sweep.dp: = 2 does not divide the 1 MPI ranks");
  const SweepSpec defaulted = parse_sweep_string(replace_line(base_sweep(), "dp = 2\n", ""), "x.toml");
  EXPECT_EQ(defaulted.dp_pos.line, 0u);
  EXPECT_EQ(defaulted.locate(defaulted.dp_pos, "sweep.dp", "m"), "x.toml:1:1: sweep.dp: m");
}

}  // namespace
}  // namespace peft

namespace peft {
namespace {

// oneshot prunes at prune_start (what the trial runner does); ramp keys are refused with it.
TEST(SweepPruning, OneshotPrunesAtPruneStartAndRefusesRampKeys) {
  const std::string grid = "[grid]\nmethod = \"sparse_lora\"\ndataset = \"synthetic_sentiment\"\nsparsity = 0.5\n";
  const std::string head = "[model]\npreset = \"tiny\"\n" + grid + "[methods.sparse_lora]\nprune_schedule = \"oneshot\"\n";
  const SweepSpec spec = parse_sweep_string(head + "prune_start = 0.8\n", "x.toml");
  EXPECT_EQ(spec.methods.at("sparse_lora").method.prune_schedule, "oneshot");
  EXPECT_EQ(spec.methods.at("sparse_lora").method.prune_start, 0.8);  // after the default prune_end: fine
  EXPECT_EQ(testing::parse_error(head + "prune_end = 0.9\n"),
            "x.toml:9:13: methods.sparse_lora.prune_end: prune_end belongs to the cubic ramp; prune_schedule = "
            "\"oneshot\" prunes once, at prune_start");
  EXPECT_TRUE(testing::contains(testing::parse_error(head + "prune_every = 3\n"),
                                "x.toml:9:15: methods.sparse_lora.prune_every: prune_every belongs to the cubic ramp"));
}

}  // namespace
}  // namespace peft

#include <fstream>

#include "test_util.h"

namespace peft {
namespace {

// Sequence lengths beyond the model's positions are refused at validation, naming both keys.
TEST(SweepPositions, LengthBeyondTheModelsPositionsIsRefused) {
  const std::string tiny = "[model]\npreset = \"tiny\"\n[grid]\nmethod = \"lora\"\ndataset = \"synthetic_sentiment\"\n";
  EXPECT_EQ(testing::parse_error(tiny + "[datasets.synthetic_sentiment]\nmax_length = 256\n"),
            "x.toml:7:14: datasets.synthetic_sentiment.max_length: 256 exceeds the model's max_position_embeddings "
            "128 (model.preset = \"tiny\" with the synthetic vocabulary)");
  EXPECT_NO_THROW(parse_sweep_string(tiny + "[datasets.synthetic_sentiment]\nmax_length = 128\n", "x.toml"));

  // The tiny preset with a real vocabulary has 512 positions (--dry-run: the vocab is not read).
  const std::string real = "[model]\npreset = \"tiny\"\nvocab = \"v.txt\"\n[grid]\nmethod = \"lora\"\ndataset = \"imdb\"\n"
                           "[datasets.imdb]\npath = \"aclImdb\"\nmax_length = 512\n";
  EXPECT_EQ(parse_sweep_string(real, "x.toml", false).datasets.at("imdb").max_length, 512);
}

TEST(SweepPositions, CheckpointPositionsComeFromConfigJson) {
  testing::TempDir dir;
  std::ofstream(dir.path() / "config.json") << R"({"model_type": "distilbert", "max_position_embeddings": 64})";
  const std::string sweep = "[model]\ncheckpoint = \"" + dir.path().string() +
                            "\"\n[grid]\nmethod = \"lora\"\ndataset = \"synthetic_mlm\"\n";
  const std::string err = testing::parse_error(sweep);
  EXPECT_TRUE(testing::contains(err, "x.toml:5:11: datasets.synthetic_mlm.block_size: the default 128 exceeds the model's "
                                     "max_position_embeddings 64 (" + (dir.path() / "config.json").string() +
                                     "): set datasets.synthetic_mlm.block_size"));
  EXPECT_NO_THROW(parse_sweep_string(sweep + "[datasets.synthetic_mlm]\nblock_size = 64\n", "x.toml"));
  std::ofstream(dir.path() / "config.json") << "[1, 2";
  EXPECT_TRUE(testing::contains(testing::parse_error(sweep), "x.toml:2:14: model.checkpoint: "));
}

}  // namespace
}  // namespace peft
