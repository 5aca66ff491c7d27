// The learning-rate factor is transformers' get_linear_schedule_with_warmup, value for value.
#include <gtest/gtest.h>

#include "train/schedule.h"

namespace peft::train {
namespace {

TEST(Schedule, MatchesHuggingFaceLinearWarmup) {
  // transformers: [lr_lambda(s) for s in range(11)] with num_warmup_steps=3, num_training_steps=10.
  const double expected[] = {0.0,       1.0 / 3,   2.0 / 3,   1.0,       6.0 / 7, 5.0 / 7,
                             4.0 / 7,   3.0 / 7,   2.0 / 7,   1.0 / 7,   0.0};
  for (int64_t s = 0; s <= 10; ++s) EXPECT_DOUBLE_EQ(linear_warmup_decay(s, 3, 10), expected[s]) << "step " << s;
  EXPECT_EQ(linear_warmup_decay(12, 3, 10), 0.0);  // past the end: clamped, never negative
}

TEST(Schedule, NoWarmupAndDegenerateSpans) {
  for (int64_t s = 0; s < 4; ++s) EXPECT_DOUBLE_EQ(linear_warmup_decay(s, 0, 4), (4.0 - s) / 4.0);
  EXPECT_DOUBLE_EQ(linear_warmup_decay(0, 0, 1), 1.0);
  // warmup == total: max(1, total - warmup) keeps the division defined, as in HF.
  EXPECT_DOUBLE_EQ(linear_warmup_decay(1, 2, 2), 0.5);
  EXPECT_DOUBLE_EQ(linear_warmup_decay(2, 2, 2), 0.0);
}

}  // namespace
}  // namespace peft::train
