#pragma once
// The names a sweep file may use: methods, datasets and what each of them reads.
#include <string>
#include <string_view>
#include <vector>

namespace peft {

/// lora, sparse_lora, hira, qlora, full, head.
const std::vector<std::string>& known_methods();

/// sst2, imdb, wikitext2, synthetic_sentiment, synthetic_mlm.
const std::vector<std::string>& known_datasets();

/// Methods with low-rank adapters (rank, dropout, targets, layers apply).
bool method_has_rank(std::string_view method);
/// Methods that scale the update by alpha / rank (alpha and rslora apply); HiRA has
/// hira_scale instead.
bool method_has_alpha(std::string_view method);

bool dataset_is_synthetic(std::string_view dataset);
/// Masked-language-model datasets (block_size applies; perplexity is the metric).
bool dataset_is_mlm(std::string_view dataset);
/// The `format` a dataset's reader expects ("glue-sst2", "aclimdb", "wikitext-2", "synthetic").
std::string_view dataset_format(std::string_view dataset);

/// Adapter target names of DistilBERT's linear layers, plus "all-linear".
const std::vector<std::string>& known_target_modules();

}  // namespace peft
