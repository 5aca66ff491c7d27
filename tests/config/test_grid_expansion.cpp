// Grid expansion: no meaningless duplicates, stable ids, parameters that name the trial,
// per-method settings and the cost model used for largest-first scheduling.
#include <map>
#include <regex>
#include <set>

#include <gtest/gtest.h>

#include "config/sweep_spec.h"
#include "config/trial_params.h"
#include "config_test_util.h"

namespace peft {
namespace {

std::string sweep(const std::string& grid, const std::string& extra = "") {
  return "[sweep]\nseeds = [1, 2]\n[model]\npreset = \"tiny\"\n[grid]\n" + grid +
         "dataset = [\"synthetic_sentiment\", \"synthetic_mlm\"]\n" + extra;
}

std::vector<TrialSpec> trials_of(const std::string& text) { return expand(parse_sweep_string(text, "x.toml")); }

std::map<std::string, int> count_by_method(const std::vector<TrialSpec>& trials) {
  std::map<std::string, int> n;
  for (const TrialSpec& t : trials) ++n[t.method.method];
  return n;
}

TEST(GridExpansion, SparsityOnlyForSparseLoraAndNoRankForFull) {
  const auto trials = trials_of(sweep("method = [\"lora\", \"sparse_lora\", \"full\"]\nrank = [4, 8]\n"
                                      "sparsity = [0.3, 0.5]\n"));
  // Per dataset x seed (2 x 2): lora 2 ranks + sparse_lora 2 x 2 + full 1.
  EXPECT_EQ(trials.size(), 7u * 4u);
  const auto n = count_by_method(trials);
  EXPECT_EQ(n.at("lora"), 2 * 4);
  EXPECT_EQ(n.at("sparse_lora"), 4 * 4);
  EXPECT_EQ(n.at("full"), 1 * 4);
  for (const TrialSpec& t : trials) {
    if (t.method.method != "sparse_lora") {
      EXPECT_EQ(t.method.sparsity, 0.0);
      EXPECT_FALSE(t.params.contains("method.sparsity"));
    }
    if (t.method.method == "full") {
      EXPECT_EQ(t.method.rank, 0);
      EXPECT_FALSE(t.params.contains("method.rank"));
      EXPECT_FALSE(t.params.contains("method.alpha"));
    }
  }
}

TEST(GridExpansion, HiraIgnoresTheAlphaAxisQloraUsesRank) {
  const auto trials = trials_of(sweep("method = [\"hira\", \"qlora\", \"head\"]\nrank = [4, 8]\nalpha = [8, 16]\n"));
  const auto n = count_by_method(trials);
  EXPECT_EQ(n.at("hira"), 2 * 4);       // rank only
  EXPECT_EQ(n.at("qlora"), 2 * 2 * 4);  // rank x alpha
  EXPECT_EQ(n.at("head"), 1 * 4);
}

TEST(GridExpansion, IdsAreUniqueShortHex) {
  const auto trials = trials_of(sweep("method = [\"lora\", \"sparse_lora\", \"hira\", \"qlora\", \"full\", \"head\"]\n"
                                      "rank = [4, 8]\nsparsity = [0.3, 0.5]\nlr = [1e-3, 3e-4]\n"));
  std::set<std::string> ids;
  for (const TrialSpec& t : trials) {
    EXPECT_TRUE(std::regex_match(t.id, std::regex("[0-9a-f]{12}"))) << t.id;
    EXPECT_EQ(t.id, trial_id(t.params));
    ids.insert(t.id);
  }
  EXPECT_EQ(ids.size(), trials.size());
}

TEST(GridExpansion, AddingAxisValuesKeepsExistingIds) {
  const auto before = trials_of(sweep("method = [\"lora\", \"sparse_lora\"]\nrank = 4\nsparsity = 0.5\n"));
  const auto after = trials_of(sweep("method = [\"lora\", \"sparse_lora\", \"hira\"]\nrank = [4, 16]\n"
                                     "sparsity = [0.5, 0.9]\nlr = [0.0003, 0.001]\n"));
  std::map<std::string, std::map<std::string, std::string>> later;
  for (const TrialSpec& t : after) later[t.id] = t.params;
  ASSERT_EQ(before.size(), 2u * 4u);
  for (const TrialSpec& t : before) {
    ASSERT_TRUE(later.contains(t.id)) << t.id;
    EXPECT_EQ(later[t.id], t.params);
  }
  // An axis that holds the default value changes nothing either.
  const auto with_default_axis = trials_of(sweep("method = [\"lora\", \"sparse_lora\"]\nrank = 4\nsparsity = 0.5\n"
                                                 "lr = 0.0003\nalpha = 16\n"));
  ASSERT_EQ(with_default_axis.size(), before.size());
  for (std::size_t i = 0; i < before.size(); ++i) EXPECT_EQ(with_default_axis[i].id, before[i].id);
}

TEST(GridExpansion, ParamsNameWhatMatters) {
  const auto trials = trials_of(sweep("method = \"sparse_lora\"\nrank = 8\nsparsity = 0.5\n"));
  const auto& p = trials.front().params;
  EXPECT_EQ(p.at("method.name"), "sparse_lora");
  EXPECT_EQ(p.at("method.rank"), "8");
  EXPECT_EQ(p.at("method.sparsity"), "0.5");
  EXPECT_EQ(p.at("method.targets"), "q_lin,v_lin");
  EXPECT_EQ(p.at("dataset.name"), "synthetic_sentiment");
  EXPECT_EQ(p.at("seed"), "1");
  EXPECT_EQ(p.at("train.lr"), "0.0003");
  EXPECT_EQ(p.at("model.preset"), "tiny");
  // Where the data lives, the device and timing settings do not make another trial.
  EXPECT_EQ(trial_label(trials.front()), "sparse_lora r=8 s=0.5 synthetic_sentiment seed=1 lr=0.0003");
  for (const char* key : {"dataset.path", "train.device", "train.inference_batch", "train.adapter_dir"})
    EXPECT_FALSE(p.contains(key)) << key;
}

TEST(GridExpansion, PerMethodSettingsAndAxesPrecedence) {
  const std::string extra = "[method]\nalpha = 32\n[methods.full]\nlr = 5e-5\n[methods.hira]\nhira_scale = 50\n"
                            "rank = 4\n";
  auto trials = trials_of(sweep("method = [\"lora\", \"full\", \"hira\"]\n", extra));
  for (const TrialSpec& t : trials) {
    if (t.method.method == "full") EXPECT_EQ(t.train.lr, 5e-5);
    if (t.method.method == "lora") {
      EXPECT_EQ(t.train.lr, 3e-4);
      EXPECT_EQ(t.method.alpha, 32);
      EXPECT_EQ(t.method.rank, 8);
    }
    if (t.method.method == "hira") {
      EXPECT_EQ(t.method.hira_scale, 50);
      EXPECT_EQ(t.method.rank, 4);
    }
  }
  // A grid axis wins over per-method settings.
  trials = trials_of(sweep("method = [\"lora\", \"full\", \"hira\"]\nlr = 0.01\nrank = 2\n", extra));
  for (const TrialSpec& t : trials) {
    EXPECT_EQ(t.train.lr, 0.01);
    if (t.method.method == "hira") EXPECT_EQ(t.method.rank, 2);
  }
}

TEST(GridExpansion, PagedOptimizerPerMethodEntersTheIdOnlyWhenChosen) {
  auto trials = trials_of(sweep("method = [\"lora\", \"qlora\"]\n", "[methods.qlora]\noptimizer = \"paged_adamw\"\n"));
  auto plain = trials_of(sweep("method = [\"lora\", \"qlora\"]\n"));
  ASSERT_EQ(trials.size(), plain.size());
  for (std::size_t i = 0; i < trials.size(); ++i) {
    const TrialSpec& t = trials[i];
    if (t.method.method == "qlora") {
      EXPECT_EQ(t.train.optimizer, "paged_adamw");
      EXPECT_EQ(t.params.at("train.optimizer"), "paged_adamw");
      EXPECT_NE(t.id, plain[i].id);
    } else {
      EXPECT_EQ(t.train.optimizer, "adamw");
      EXPECT_FALSE(t.params.contains("train.optimizer"));
      EXPECT_EQ(t.id, plain[i].id);  // ids of sweeps written before the key existed stay valid
    }
  }
}

TEST(GridExpansion, GridSeedOverridesSweepSeeds) {
  auto trials = trials_of(sweep("method = \"lora\"\nseed = [7, 8, 9]\n"));
  std::set<uint64_t> seeds;
  for (const TrialSpec& t : trials) seeds.insert(t.seed);
  EXPECT_EQ(seeds, (std::set<uint64_t>{7, 8, 9}));
  EXPECT_EQ(trials.size(), 6u);
}

TEST(GridExpansion, AdapterFolderDefaultsToTheSweepName) {
  const std::string text = "[sweep]\nname = \"s\"\n[model]\npreset = \"tiny\"\n[train]\nsave_adapter = true\n"
                           "[grid]\nmethod = \"lora\"\ndataset = \"synthetic_sentiment\"\n";
  const auto trials = trials_of(text);
  ASSERT_EQ(trials.size(), 1u);
  EXPECT_EQ(trials[0].train.adapter_dir, "adapters/s");  // the trainer adds /<trial id>
}

TEST(GridExpansion, ExpectedCostOrdersLargestFirst) {
  TrialSpec t;
  auto cost = [&](const std::string& dataset, const std::string& method) {
    t.dataset = DatasetSettings{};
    t.dataset.name = dataset;
    if (dataset == "imdb") t.dataset.max_length = 256;
    t.method.method = method;
    return expected_cost(t);
  };
  EXPECT_GT(cost("imdb", "lora"), cost("wikitext2", "lora"));
  EXPECT_GT(cost("wikitext2", "lora"), cost("sst2", "lora"));
  EXPECT_GT(cost("sst2", "lora"), cost("synthetic_sentiment", "lora"));
  EXPECT_GT(cost("sst2", "full"), cost("sst2", "qlora"));
  EXPECT_GT(cost("sst2", "qlora"), cost("sst2", "lora"));
  EXPECT_GT(cost("sst2", "lora"), cost("sst2", "head"));
  t.train.max_steps = 10;
  EXPECT_LT(cost("imdb", "lora"), cost("synthetic_sentiment", "lora") * 100);
}

TEST(TrialParams, CanonicalNumbersAndHash) {
  EXPECT_EQ(canonical_double(3e-4), "0.0003");
  EXPECT_EQ(canonical_double(16.0), "16.0");
  EXPECT_EQ(canonical_double(1e-5), "1e-05");
  EXPECT_EQ(canonical_double(1.5e-5), "1.5e-05");
  EXPECT_EQ(canonical_double(0.1), "0.1");
  EXPECT_EQ(canonical_double(-2.5), "-2.5");
  EXPECT_EQ(canonical_double(123456.75), "123456.75");
  EXPECT_EQ(canonical_double(1e16), "1e+16");
  EXPECT_EQ(canonical_double(0.0), "0.0");
  EXPECT_EQ(fnv1a64(""), 0xcbf29ce484222325ull);
  EXPECT_EQ(fnv1a64("a"), 0xaf63dc4c8601ec8cull);
  EXPECT_EQ(trial_id({{"a", "1"}}).size(), 12u);
  EXPECT_NE(trial_id({{"a", "1"}}), trial_id({{"a", "2"}}));
}

}  // namespace
}  // namespace peft
