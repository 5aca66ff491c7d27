#pragma once
// Where a tokenizer vocabulary is: shared by the sweep parser (which checks the path) and the
// trial runner and tools (which load it).
#include <string>

namespace peft {

/// The tokenizer vocabulary of a checkpoint folder: vocab.txt, else tokenizer.json; "" if none.
std::string find_vocab(const std::string& dir);
/// `path` when it is a file, the vocabulary inside it when it is a folder (find_vocab), else "".
std::string resolve_vocab(const std::string& path);

}  // namespace peft
