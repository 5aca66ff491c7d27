#pragma once
// Bridge between safetensors files (src/io) and LibTorch tensors.
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <torch/types.h>

#include "io/safetensors.h"

namespace peft::model {

st::DType to_st_dtype(torch::ScalarType t);
torch::ScalarType to_torch_dtype(st::DType d);

/// Copies one tensor out of the mapping into a new CPU tensor of the file's dtype.
torch::Tensor read_tensor(const st::SafetensorsReader& reader, const st::TensorInfo& info);
/// All tensors of a file, by name.
std::map<std::string, torch::Tensor> read_safetensors(const std::string& path);
/// Writes CPU-contiguous copies of the tensors (any device) atomically.
void write_safetensors(const std::string& path, const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace peft::model
