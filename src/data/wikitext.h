#pragma once
// WikiText-2 (Merity et al., 2016, "Pointer Sentinel Mixture Models") as distributed:
// <dir>/wiki.{train,valid,test}.tokens, or the raw variant wiki.{train,valid,test}.raw.
// Lines are returned as they are (blank lines and " = Heading = " lines included); the MLM
// pipeline (data/mlm_data.h) skips the blank ones. The tokenised variant's "<unk>", "@-@"
// etc. are kept as text, as Hugging Face's run_mlm does with the wikitext-2-v1 config.
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace peft::data {

enum class WikiTextVariant { Auto, Tokens, Raw };

/// "auto" | "tokens" | "raw"; anything else → InputError.
WikiTextVariant parse_wikitext_variant(std::string_view name);

/// The file of `split` ("train", "valid", "test"). Auto prefers .tokens, then .raw, and
/// fails naming both when neither exists.
std::filesystem::path wikitext_file(const std::filesystem::path& dir, std::string_view split,
                                    WikiTextVariant variant = WikiTextVariant::Auto);

/// All lines of the split's file (without '\n'). Missing file, empty file or bad UTF-8 →
/// InputError naming file (and line).
std::vector<std::string> read_wikitext(const std::filesystem::path& dir, std::string_view split,
                                       WikiTextVariant variant = WikiTextVariant::Auto);

/// The lines of one file (any WikiText file name).
std::vector<std::string> read_wikitext_file(const std::filesystem::path& file);

}  // namespace peft::data
