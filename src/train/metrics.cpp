#include "train/metrics.h"

#include <cmath>
#include <stdexcept>

namespace peft::train {

double accuracy(const std::vector<int64_t>& pred, const std::vector<int64_t>& labels) {
  if (pred.size() != labels.size()) throw std::logic_error("accuracy: size mismatch");
  if (pred.empty()) return std::nan("");
  int64_t ok = 0;
  for (std::size_t i = 0; i < pred.size(); ++i) ok += pred[i] == labels[i];
  return static_cast<double>(ok) / static_cast<double>(pred.size());
}

namespace {
double f1_of(const std::vector<int64_t>& pred, const std::vector<int64_t>& labels, int64_t cls) {
  int64_t tp = 0, fp = 0, fn = 0;
  for (std::size_t i = 0; i < pred.size(); ++i) {
    tp += pred[i] == cls && labels[i] == cls;
    fp += pred[i] == cls && labels[i] != cls;
    fn += pred[i] != cls && labels[i] == cls;
  }
  // sklearn's convention: F1 = 0 when there are no true or predicted positives.
  return tp == 0 ? 0.0 : 2.0 * tp / static_cast<double>(2 * tp + fp + fn);
}
}  // namespace

double f1_score(const std::vector<int64_t>& pred, const std::vector<int64_t>& labels, int64_t num_labels) {
  if (pred.size() != labels.size()) throw std::logic_error("f1: size mismatch");
  if (pred.empty()) return std::nan("");
  if (num_labels == 2) return f1_of(pred, labels, 1);
  double sum = 0;
  for (int64_t c = 0; c < num_labels; ++c) sum += f1_of(pred, labels, c);
  return sum / static_cast<double>(num_labels);
}

}  // namespace peft::train
