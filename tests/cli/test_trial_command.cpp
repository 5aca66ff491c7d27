// `peft-sweep trial`: bad choices are usage errors (exit 2) naming the option, and so is a
// sequence length the model cannot take; a paged-optimizer trial runs and reports its states in
// host memory.
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include "test_util.h"

namespace {

using Run = peft::testing::CommandResult;

Run run(const std::string& args) {
  peft::testing::TempDir dir;  // the trial's working folder
  return peft::testing::run_command("cd " + dir.path().string() + " && PEFT_LOG_LEVEL=warn " + std::string(PEFT_BIN_DIR) +
                                    "/peft-sweep trial " + args);
}

TEST(TrialCommand, BadChoicesAreUsageErrors) {
  for (const auto& [args, needle] : std::vector<std::pair<std::string, std::string>>{
           {"--method lorra", "--method: expected one of lora"},
           {"--dataset sst3", "--dataset: expected one of sst2"},
           {"--device gpu", "--device: expected one of auto | cpu | cuda, found \"gpu\""},
           {"--optimizer sgd", "--optimizer: expected one of adamw | paged_adamw, found \"sgd\""}}) {
    auto r = run(args);
    EXPECT_EQ(r.code, 2) << args << "\n" << r.output;
    EXPECT_NE(r.output.find(needle), std::string::npos) << args << "\n" << r.output;
  }
}

// Checked before any data loads: the data folder does not exist, and the error is about the
// sequence length, naming --max-length and the model's positions (exit 2, bad input).
TEST(TrialCommand, MaxLengthBeyondTheModelsPositionsIsRefusedBeforeTheData) {
  auto r = run("--dataset imdb --max-length 256 --data-path /nonexistent/imdb --max-steps 1 --device cpu");
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("--max-length 256 exceeds the model's max_position_embeddings 128"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("--preset tiny"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("/nonexistent/imdb"), std::string::npos) << r.output;
  r = run("--dataset sst2 --max-length 1000 --data-path /nonexistent/sst2 --device cpu");
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("--max-length: expected an integer in [8, 512], found 1000"), std::string::npos) << r.output;
}

TEST(TrialCommand, PagedOptimizerTrialReportsHostStates) {
  auto r = run("--optimizer paged_adamw --max-steps 4 --batch-size 8 --synthetic-train 64 --device cpu");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("status complete"), std::string::npos) << r.output;
  const auto at = r.output.find("optimizer_host_bytes");
  ASSERT_NE(at, std::string::npos) << r.output;
  std::istringstream line(r.output.substr(at + std::string("optimizer_host_bytes").size()));
  double bytes = 0;
  line >> bytes;
  EXPECT_GT(bytes, 0) << r.output;
}

TEST(TrialCommand, TinyPresetOnRealSst2WithAVocabulary) {
  PEFT_REQUIRE_SHARED(sst2, "sst2");
  PEFT_REQUIRE_SHARED(vocab, "distilbert-base-uncased/vocab.txt");
  auto r = run("--dataset sst2 --data-path " + sst2 + " --vocab " + vocab +
               " --max-steps 3 --batch-size 8 --max-train 64 --max-eval 32 --device cpu");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("status complete"), std::string::npos) << r.output;
  // Without one, the error says what to set.
  r = run("--dataset sst2 --data-path " + sst2 + " --max-steps 3 --device cpu");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.output.find("model.vocab with preset = \"tiny\""), std::string::npos) << r.output;
}

}  // namespace
