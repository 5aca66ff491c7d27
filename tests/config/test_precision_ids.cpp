// Trial ids name the numerics that run: the driver resolves train.precision ("auto" → fp32 on
// a CPU, bf16 on a GPU) before expanding, and QLoRA's compute_dtype "auto" follows it.
#include <gtest/gtest.h>

#include "config/sweep_spec.h"
#include "config_test_util.h"

namespace peft::testing {
namespace {

std::vector<TrialSpec> expand_with(const std::string& precision, const std::string& extra = "") {
  SweepSpec spec = parse_sweep_string(
      "[model]\npreset = \"tiny\"\n[train]\nbatch_size = 8\n" + extra +
          "[grid]\nmethod = [\"lora\", \"qlora\"]\ndataset = \"synthetic_sentiment\"\n",
      "x.toml");
  spec.train.precision = precision;  // what the driver does with the resolved value
  return expand(spec);
}

TEST(PrecisionIds, ResolvedPrecisionIsInEveryIdAndDecidesQloraComputeDtype) {
  auto fp32 = expand_with("fp32"), bf16 = expand_with("bf16");
  ASSERT_EQ(fp32.size(), 2u);
  ASSERT_EQ(bf16.size(), 2u);
  for (std::size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(fp32[i].params.at("train.precision"), "fp32");
    EXPECT_EQ(bf16[i].params.at("train.precision"), "bf16");
    EXPECT_NE(fp32[i].id, bf16[i].id);  // a resume on other hardware reruns, never mixes
    EXPECT_EQ(fp32[i].train.precision, "fp32");
  }
  for (const auto& t : fp32)
    if (t.method.method == "qlora") EXPECT_EQ(t.params.at("method.compute_dtype"), "float32");
  for (const auto& t : bf16)
    if (t.method.method == "qlora") EXPECT_EQ(t.params.at("method.compute_dtype"), "bfloat16");
}

TEST(PrecisionIds, ExplicitComputeDtypeIsKept) {
  for (const auto& t : expand_with("bf16", "[methods.qlora]\ncompute_dtype = \"float32\"\n"))
    if (t.method.method == "qlora") EXPECT_EQ(t.params.at("method.compute_dtype"), "float32");
}

TEST(PrecisionIds, UnresolvedAutoStaysAuto) {
  // expand() alone (no driver) keeps "auto"; the trial runner resolves it at run time.
  for (const auto& t : expand_with("auto")) EXPECT_EQ(t.params.at("train.precision"), "auto");
}

}  // namespace
}  // namespace peft::testing
