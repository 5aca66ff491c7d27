#pragma once
// The IMDB Large Movie Review Dataset in its aclImdb layout (Maas et al., ACL 2011):
//   <root>/{train,test}/{pos,neg}/<id>_<rating>.txt, one review per file.
// Label: pos = 1, neg = 0. HTML line breaks (<br />, <br/>, <br>, any case) become a space.
// Errors (InputError naming the file or folder): missing folder, a file name that is not
// <id>_<rating>.txt, an empty review, bad UTF-8 (file:line), an unreadable file.
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "data/text_split.h"

namespace peft::data {

/// Reads one split ("train" or "test"). `root` is the aclImdb folder or a folder holding
/// `aclImdb/`. With `max_examples` > 0 the split is capped deterministically and balanced:
/// the lowest numeric ids of each class, ceil(max/2) positive and floor(max/2) negative
/// (the other class fills in when one runs short). Order: neg and pos alternate, each in
/// ascending id order, so every prefix is balanced too.
TextSplit read_imdb(const std::filesystem::path& root, std::string_view split, int64_t max_examples = 0);

/// `text` with every <br>, <br/>, <br /> tag (any case, spaces before '/' or '>') replaced
/// by one space.
std::string clean_imdb_review(std::string_view text);

}  // namespace peft::data
