// --dump-config: the dump of a sweep parses again, expands to the same trial ids with the
// same parameters, spells out every default, and dumping the dump changes nothing.
#include <algorithm>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "config/dump_config.h"
#include "config/parse_sections.h"
#include "config/sweep_spec.h"
#include "config_test_util.h"

namespace peft {
namespace {

const std::string kSweeps = std::string(PEFT_FIXTURES) + "/../../sweeps/";

void expect_round_trip(const SweepSpec& spec) {
  const std::string dump = dump_config(spec);
  SweepSpec again;
  try {
    again = parse_sweep_string(dump, "dump.toml", false);
  } catch (const std::exception& e) {
    FAIL() << "the dump does not parse: " << e.what() << "\n" << dump;
  }
  EXPECT_TRUE(again.warnings.empty()) << again.warnings.front() << "\n" << dump;
  const auto a = expand(spec), b = expand(again);
  ASSERT_EQ(a.size(), b.size()) << dump;
  for (std::size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].id, b[i].id) << "trial " << i << "\n" << dump;
    EXPECT_EQ(a[i].params, b[i].params) << "trial " << i;
  }
  EXPECT_EQ(again.name, spec.name);
  EXPECT_EQ(again.output, spec.output);
  EXPECT_EQ(again.dp, spec.dp);
  EXPECT_EQ(again.schedule, spec.schedule);
  // a fixed point: the dump of the dump is the dump (but for the origin on line 1)
  const std::string twice = dump_config(again);
  EXPECT_EQ(dump.substr(dump.find('\n')), twice.substr(twice.find('\n')));
}

TEST(DumpConfig, ShippedSweepsRoundTrip) {
  for (const char* name : {"demo.toml", "smoke.toml", "full.toml"}) {
    SCOPED_TRACE(name);
    expect_round_trip(parse_sweep_file(kSweeps + name, false));
  }
}

TEST(DumpConfig, EveryMethodAxisAndOverrideRoundTrips) {
  const std::string text =
      "[sweep]\nname = \"all\"\noutput = \"out dir/\\\"q\\\".h5\"\ndp = 2\nschedule = \"static\"\nseeds = [3, 1]\n"
      "[model]\npreset = \"tiny\"\npretrain = true\npretrain_steps = 7\n"
      "[train]\nbatch_size = 8\nlr = 1e-5\nwarmup_ratio = 0.1\nmax_steps = 3\nsave_adapter = true\n"
      "[method]\nrank = 4\ntargets = [\"q_lin\", \"layer.0.attention.v_lin\"]\nlayers = [0, 1]\nrslora = true\n"
      "[methods.sparse_lora]\nprune_schedule = \"oneshot\"\nl1 = 0.25\n"
      "[methods.hira]\nhira_scale = 3.5\nlr = 0.002\n"
      "[methods.qlora]\ncompute_dtype = \"bfloat16\"\n"
      "[methods.full]\nhead_lr = 0.1\nepochs = 2\n"
      "[datasets.synthetic_sentiment]\nsynthetic_train = 50\nmax_length = 32\n"
      "[datasets.synthetic_mlm]\nblock_size = 16\n"
      "[grid]\nmethod = [\"lora\", \"sparse_lora\", \"hira\", \"qlora\", \"full\", \"head\"]\n"
      "dataset = [\"synthetic_sentiment\", \"synthetic_mlm\"]\nrank = [2, 8]\nsparsity = [0.3, 0.7]\n"
      "alpha = [8.0, 32]\nlr = [0.0001, 0.0003]\n";
  const SweepSpec spec = parse_sweep_string(text, "all.toml", false);
  EXPECT_GT(expand(spec).size(), 50u);
  expect_round_trip(spec);
  const std::string dump = dump_config(spec);
  EXPECT_TRUE(testing::contains(dump, "adapter_dir = \"adapters/all\""));  // a resolved default
  const std::string hira = dump.substr(dump.find("[methods.hira]"));
  EXPECT_TRUE(testing::contains(hira.substr(0, hira.find("\n[")), "\nhira_scale = 3.5\n"));
  EXPECT_TRUE(testing::contains(hira.substr(0, hira.find("\n[")), "\nlr = 0.002\n"));  // a method's own lr
}

TEST(DumpConfig, GridSeedAxisAndRealDataSetRoundTrip) {
  const std::string text =
      "[model]\ncheckpoint = \"/nonexistent/distilbert\"\n"
      "[datasets.sst2]\npath = \"/nonexistent/SST-2\"\nmax_train = 100\n"
      "[datasets.wikitext2]\npath = \"/nonexistent/wikitext-2\"\n"
      "[grid]\nmethod = \"lora\"\ndataset = [\"sst2\", \"wikitext2\"]\nseed = [5, 6]\n";
  expect_round_trip(parse_sweep_string(text, "real.toml", false));
}

TEST(DumpConfig, WritesEveryTrainKeyAndEveryDefault) {
  const SweepSpec spec = parse_sweep_string(testing::base_sweep(), "t.toml", false);
  const std::string dump = dump_config(spec);
  // a key added to [train] without a line in the dump fails here
  const std::size_t train = dump.find("\n[train]\n"), end = dump.find("\n[", train + 1);
  ASSERT_NE(train, std::string::npos) << dump;
  const std::string table = dump.substr(train, end - train);
  for (const std::string& key : config_detail::train_keys()) {
    if (key == "adapter_dir") continue;  // written once save_adapter resolves it (tested above)
    EXPECT_TRUE(testing::contains(table, "\n" + key + " = ")) << key << "\n" << dump;
  }
  for (const char* line : {"schedule = \"dynamic\"", "seeds = [1]", "epochs = 3", "cache_dir = \".cache/peft-sweep\"",
                           "warmup_ratio = 0.06", "rank = 8", "alpha = 16.0", "targets = [\"q_lin\", \"v_lin\"]",
                           "layers = []", "format = \"synthetic\"", "synthetic_train = 10000", "max_length = 128"})
    EXPECT_TRUE(testing::contains(dump, std::string("\n") + line + "\n")) << line << "\n" << dump;
}

}  // namespace
}  // namespace peft
