#pragma once
// Evaluation metrics computed from predictions (no estimates): accuracy, F1, perplexity.
#include <cstdint>
#include <vector>

namespace peft::train {

struct ConfusionCounts {
  int64_t tp = 0, fp = 0, tn = 0, fn = 0, correct = 0, total = 0;
};

/// Binary F1 of the positive class (label 1) for 2 labels; macro-F1 over labels otherwise.
double f1_score(const std::vector<int64_t>& predictions, const std::vector<int64_t>& labels, int64_t num_labels);
double accuracy(const std::vector<int64_t>& predictions, const std::vector<int64_t>& labels);

}  // namespace peft::train
