#include "train/task_cache.h"

#include <map>
#include <memory>
#include <mutex>

#include <fmt/format.h>

namespace peft::train {

data::TaskSpec task_spec(const TrialSpec& spec, const std::string& vocab_path) {
  data::TaskSpec t;
  t.name = spec.dataset.name;
  t.path = spec.dataset.path;
  t.vocab_path = vocab_path;
  t.max_length = static_cast<int>(spec.dataset.max_length);
  t.block_size = static_cast<int>(spec.dataset.block_size);
  const bool synthetic = t.name.rfind("synthetic", 0) == 0;
  t.max_train = synthetic ? spec.dataset.synthetic_train : spec.dataset.max_train;
  t.max_eval = synthetic ? spec.dataset.synthetic_eval : spec.dataset.max_eval;
  // The data itself must not vary with the trial seed (only the order and the init do):
  // a fixed generation seed keeps trials comparable.
  t.seed = 12345;
  return t;
}

const data::Task& cached_task(const data::TaskSpec& spec) {
  static std::map<std::string, std::unique_ptr<data::Task>> cache;
  static std::mutex mu;
  const std::string key = fmt::format("{}|{}|{}|{}|{}|{}|{}|{}", spec.name, spec.path, spec.vocab_path, spec.max_length,
                                      spec.block_size, spec.max_train, spec.max_eval, spec.seed);
  std::lock_guard lock(mu);
  auto it = cache.find(key);
  if (it == cache.end()) it = cache.emplace(key, std::make_unique<data::Task>(data::load_task(spec))).first;
  return *it->second;
}

}  // namespace peft::train
