#include "results/trial_group.h"

#include <algorithm>
#include <charconv>
#include <stdexcept>

#include "results/h5_io.h"

namespace peft::results_detail {
namespace {

constexpr const char* kReserved[] = {"status", "error", "diverged_step", "interrupted_step", "group", "wall_seconds"};

bool reserved(const std::string& name) {
  return std::find(std::begin(kReserved), std::end(kReserved), name) != std::end(kReserved);
}

template <typename T>
T number(const std::map<std::string, std::string>& params, const std::string& key, T fallback) {
  const auto it = params.find(key);
  if (it == params.end()) return fallback;
  T v{};
  const auto [end, ec] = std::from_chars(it->second.data(), it->second.data() + it->second.size(), v);
  return ec == std::errc() ? v : fallback;
}

std::string text(const std::map<std::string, std::string>& params, const std::string& key) {
  const auto it = params.find(key);
  return it == params.end() ? std::string() : it->second;
}

}  // namespace

void write_trial_group(hid_t g, const TrialSpec& spec, const TrialResult& r) {
  for (const auto& [key, value] : spec.params)
    if (!reserved(key)) h5::write_string_attr(g, key, value);
  h5::write_string_attr(g, "status", r.status);
  h5::write_string_attr(g, "error", r.error);
  h5::write_int_attr(g, "diverged_step", r.diverged_step);
  h5::write_int_attr(g, "interrupted_step", r.interrupted_step);
  h5::write_int_attr(g, "group", r.group);
  h5::write_double_attr(g, "wall_seconds", r.wall_seconds);

  h5::Group train = h5::create_group(g, "train");
  h5::write_vector(train.get(), "step", r.train_step);
  h5::write_vector(train.get(), "loss", r.train_loss);
  h5::write_vector(train.get(), "lr", r.train_lr);

  h5::Group eval = h5::create_group(g, "eval");
  h5::write_vector(eval.get(), "step", r.eval_step);
  h5::write_vector(eval.get(), "epoch", r.eval_epoch);
  h5::write_vector(eval.get(), "accuracy", r.eval_accuracy);
  h5::write_vector(eval.get(), "f1", r.eval_f1);
  h5::write_vector(eval.get(), "perplexity", r.eval_perplexity);
  h5::write_vector(eval.get(), "loss", r.eval_loss);

  h5::Group metrics = h5::create_group(g, "metrics");
  for (const auto& [name, value] : r.metrics) h5::write_double_attr(metrics.get(), name, value);

  if (!r.sparsity.empty()) {
    std::vector<std::string> names;
    std::vector<int64_t> nonzero, total;
    for (const auto& [name, counts] : r.sparsity) {
      names.push_back(name);
      nonzero.push_back(counts.first);
      total.push_back(counts.second);
    }
    h5::Group s = h5::create_group(g, "sparsity");
    h5::write_strings(s.get(), "name", names);
    h5::write_vector(s.get(), "nonzero", nonzero);
    h5::write_vector(s.get(), "total", total);
  }
}

TrialResult read_trial_group(hid_t g, const std::string& id) {
  TrialResult r;
  r.id = id;
  r.status = h5::read_string_attr(g, "status");
  r.error = h5::read_string_attr(g, "error");
  r.diverged_step = h5::read_int_attr(g, "diverged_step");
  r.interrupted_step = h5::has_attr(g, "interrupted_step") ? h5::read_int_attr(g, "interrupted_step") : -1;  // older files lack it
  r.group = h5::read_int_attr(g, "group");
  r.wall_seconds = h5::read_double_attr(g, "wall_seconds");

  h5::Group train = h5::open_group(g, "train");
  r.train_step = h5::read_ints(train.get(), "step");
  r.train_loss = h5::read_doubles(train.get(), "loss");
  r.train_lr = h5::read_doubles(train.get(), "lr");

  h5::Group eval = h5::open_group(g, "eval");
  r.eval_step = h5::read_ints(eval.get(), "step");
  r.eval_epoch = h5::read_doubles(eval.get(), "epoch");
  r.eval_accuracy = h5::read_doubles(eval.get(), "accuracy");
  r.eval_f1 = h5::read_doubles(eval.get(), "f1");
  r.eval_perplexity = h5::read_doubles(eval.get(), "perplexity");
  r.eval_loss = h5::read_doubles(eval.get(), "loss");

  h5::Group metrics = h5::open_group(g, "metrics");
  for (const std::string& name : h5::attr_names(metrics.get()))
    r.metrics[name] = h5::read_double_attr(metrics.get(), name);

  if (h5::exists(g, "sparsity")) {
    h5::Group s = h5::open_group(g, "sparsity");
    const auto names = h5::read_strings(s.get(), "name");
    const auto nonzero = h5::read_ints(s.get(), "nonzero");
    const auto total = h5::read_ints(s.get(), "total");
    if (names.size() != nonzero.size() || names.size() != total.size())
      throw std::runtime_error("trial " + id + ": sparsity datasets differ in length");
    for (std::size_t i = 0; i < names.size(); ++i) r.sparsity[names[i]] = {nonzero[i], total[i]};
  }
  return r;
}

std::map<std::string, std::string> read_trial_params(hid_t g) {
  std::map<std::string, std::string> params;
  for (const std::string& name : h5::attr_names(g))
    if (!reserved(name)) params[name] = h5::read_string_attr(g, name);
  return params;
}

std::string read_trial_status(hid_t g) { return h5::read_string_attr(g, "status"); }

SummaryRow read_summary_row(hid_t g, const std::string& id) {
  const auto params = read_trial_params(g);
  SummaryRow row;
  row.id = id;
  row.status = read_trial_status(g);
  row.method = text(params, "method.name");
  row.dataset = text(params, "dataset.name");
  row.rank = number<int64_t>(params, "method.rank", 0);
  row.sparsity = number<double>(params, "method.sparsity", 0.0);
  row.seed = number<int64_t>(params, "seed", 0);
  row.lr = number<double>(params, "train.lr", 0.0);
  row.wall_seconds = h5::read_double_attr(g, "wall_seconds");
  h5::Group metrics = h5::open_group(g, "metrics");
  for (const std::string& name : h5::attr_names(metrics.get()))
    row.metrics[name] = h5::read_double_attr(metrics.get(), name);
  return row;
}

}  // namespace peft::results_detail
