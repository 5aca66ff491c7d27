#pragma once
// The readers of the sweep file's sections (internal to src/config). Each reads one kind
// of table into the core/trial.h settings and reports every problem to the ErrorList.
#include <map>
#include <string>
#include <vector>

#include "config/sweep_spec.h"
#include "config/toml_reader.h"

namespace peft::config_detail {

/// Where the grid named each method and dataset, for errors about them.
struct GridNodes {
  std::map<std::string, const toml::node*> method;
  std::map<std::string, const toml::node*> dataset;
};

struct Context {
  ErrorList& errors;
  bool check_paths = true;
  int64_t dp = 1;
  const toml::node* dp_node = nullptr;  // [sweep] dp, when written
  // The model's max_position_embeddings (0: unknown, e.g. a checkpoint not checked on disk)
  // and what sets it, for errors about sequence lengths.
  int64_t max_positions = 0;
  std::string positions_source;
};

/// Every key of [train]; the subset a [methods.<name>] table may override.
const std::vector<std::string>& train_keys();
const std::vector<std::string>& train_override_keys();

/// Reads the train keys the reader allows into `t`; checks batch_size against dp.
void read_train(TableReader& r, TrainSettings& t, const Context& ctx);

/// [method] and [methods.<name>] into spec.method and spec.methods (for grid methods).
void read_methods(const toml::table* method_table, const toml::table* methods_table,
                  const GridNodes& grid, SweepSpec& spec, Context& ctx);

/// [datasets.<name>] into spec.datasets (for grid datasets), with path checks.
void read_datasets(const toml::table* datasets_table, const GridNodes& grid, SweepSpec& spec,
                   Context& ctx);

/// "a, b and c" for messages.
std::string join_names(const std::vector<std::string>& names);

}  // namespace peft::config_detail
