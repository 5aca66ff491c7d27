// The sweep files shipped in sweeps/ parse, expand to the advertised grids, and the demo
// compiled into the library is the file.
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>

#include <gtest/gtest.h>

#include "config/sweep_spec.h"
#include "config_test_util.h"
#include "core/error.h"

namespace peft {
namespace {

const std::string kSweeps = std::string(PEFT_FIXTURES) + "/../../sweeps/";

std::map<std::string, int> count_by_method(const std::vector<TrialSpec>& trials) {
  std::map<std::string, int> n;
  for (const TrialSpec& t : trials) ++n[t.method.method];
  return n;
}

TEST(SweepFiles, DemoRunsEveryMethodOnTwoSyntheticTasks) {
  const SweepSpec spec = parse_sweep_file(kSweeps + "demo.toml");
  EXPECT_TRUE(spec.warnings.empty()) << spec.warnings.front();
  EXPECT_EQ(spec.dp, 2);
  EXPECT_FALSE(spec.model.pretrain);  // all-linear adapters learn on the random tiny base
  const auto trials = expand(spec);
  EXPECT_EQ(trials.size(), 12u);
  EXPECT_EQ(count_by_method(trials).size(), 6u);
  for (const TrialSpec& t : trials) {
    if (t.method.method == "sparse_lora") EXPECT_EQ(t.method.sparsity, 0.5);
    if (t.method.method == "hira") EXPECT_EQ(t.method.hira_scale, 50);
  }
  std::cout << "demo.toml: " << trials.size() << " trials\n";
}

TEST(SweepFiles, EmbeddedDemoIsTheFile) {
  std::ifstream in(kSweeps + "demo.toml", std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_EQ(embedded_demo_sweep(), text.str());
  EXPECT_EQ(expand(parse_sweep_string(embedded_demo_sweep(), "demo.toml (embedded)")).size(), 12u);
}

TEST(SweepFiles, SmokeIsSmall) {
  const SweepSpec spec = parse_sweep_file(kSweeps + "smoke.toml");
  EXPECT_TRUE(spec.warnings.empty()) << spec.warnings.front();
  const auto trials = expand(spec);
  EXPECT_EQ(trials.size(), 3u);
  for (const TrialSpec& t : trials) EXPECT_LE(t.train.max_steps, 20);
  std::cout << "smoke.toml: " << trials.size() << " trials\n";
}

TEST(SweepFiles, FullExpandsWithoutTheDataOnADryRun) {
  const SweepSpec spec = parse_sweep_file(kSweeps + "full.toml", /*check_paths=*/false);
  EXPECT_TRUE(spec.warnings.empty()) << spec.warnings.front();
  const auto trials = expand(spec);
  // Per data set and seed: lora 4 + sparse_lora 12 + hira 4 + qlora 4 + full 1 + head 1.
  EXPECT_EQ(trials.size(), 26u * 3u * 3u);
  const auto n = count_by_method(trials);
  EXPECT_EQ(n.at("sparse_lora"), 12 * 9);
  EXPECT_EQ(n.at("full"), 9);
  std::cout << "full.toml: " << trials.size() << " trials\n";
}

TEST(SweepFiles, FullNeedsTheDataForARealRun) {
  if (std::filesystem::exists("models/distilbert-base-uncased/config.json")) GTEST_SKIP() << "data present";
  try {
    parse_sweep_file(kSweeps + "full.toml");
    FAIL() << "full.toml parsed without its data";
  } catch (const InputError& e) {
    const std::string message = e.what();
    for (const char* key : {"model.checkpoint", "datasets.sst2.path", "datasets.imdb.path", "datasets.wikitext2.path"})
      EXPECT_TRUE(testing::contains(message, key));
  }
}

// The real-data study's variants share trial ids with it, so their results line up with the
// full study's (README, "The study on real data on 2 cores"): the quick variant is its seed 1,
// the SST-2 seed spread's seeds 1-3 are its HiRA and head-only SST-2 trials; the IMDB sizing
// run has 62 steps per trial and ids of its own (another data cap).
std::set<std::string> real_cpu_ids(const std::string& file) {
  std::set<std::string> ids;
  for (const TrialSpec& t : expand(parse_sweep_file(kSweeps + file, /*check_paths=*/false))) ids.insert(t.id);
  return ids;
}

TEST(SweepFiles, RealCpuVariantsShareTheStudysTrialIds) {
  const auto full = real_cpu_ids("real-cpu.toml");
  EXPECT_EQ(full.size(), 54u);
  const auto quick = real_cpu_ids("real-cpu-quick.toml");
  EXPECT_EQ(quick.size(), 18u);
  for (const auto& id : quick) EXPECT_TRUE(full.count(id)) << "real-cpu-quick.toml: " << id << " not in real-cpu.toml";

  const auto seeds = expand(parse_sweep_file(kSweeps + "real-cpu-sst2-seeds.toml", /*check_paths=*/false));
  EXPECT_EQ(seeds.size(), 16u);
  int shared = 0;
  for (const TrialSpec& t : seeds) {
    EXPECT_EQ(t.dataset.name, "sst2");
    if (t.seed <= 3) {
      EXPECT_TRUE(full.count(t.id)) << "real-cpu-sst2-seeds.toml: " << t.id << " (seed " << t.seed << ") not in real-cpu.toml";
      ++shared;
    }
  }
  EXPECT_EQ(shared, 6);

  const auto imdb = expand(parse_sweep_file(kSweeps + "real-cpu-imdb-1000.toml", /*check_paths=*/false));
  EXPECT_EQ(imdb.size(), 18u);  // 6 methods x seeds 1-3
  for (const TrialSpec& t : imdb) {
    EXPECT_EQ(t.dataset.max_train, 1000);
    EXPECT_EQ(t.train.eval_every, 16);
    EXPECT_FALSE(full.count(t.id));
  }
}

}  // namespace
}  // namespace peft
