#include "model/tensor_io.h"

#include <cstring>

#include "core/error.h"

namespace peft::model {

st::DType to_st_dtype(torch::ScalarType t) {
  switch (t) {
    case torch::kFloat64: return st::DType::F64;
    case torch::kFloat32: return st::DType::F32;
    case torch::kFloat16: return st::DType::F16;
    case torch::kBFloat16: return st::DType::BF16;
    case torch::kInt64: return st::DType::I64;
    case torch::kInt32: return st::DType::I32;
    case torch::kInt16: return st::DType::I16;
    case torch::kInt8: return st::DType::I8;
    case torch::kUInt8: return st::DType::U8;
    case torch::kBool: return st::DType::BOOL;
    default: throw std::invalid_argument(fmt::format("dtype {} cannot be stored in safetensors", c10::toString(t)));
  }
}

torch::ScalarType to_torch_dtype(st::DType d) {
  switch (d) {
    case st::DType::F64: return torch::kFloat64;
    case st::DType::F32: return torch::kFloat32;
    case st::DType::F16: return torch::kFloat16;
    case st::DType::BF16: return torch::kBFloat16;
    case st::DType::I64: return torch::kInt64;
    case st::DType::I32: return torch::kInt32;
    case st::DType::I16: return torch::kInt16;
    case st::DType::I8: return torch::kInt8;
    case st::DType::U8: return torch::kUInt8;
    case st::DType::BOOL: return torch::kBool;
  }
  throw std::logic_error("unhandled safetensors dtype");
}

torch::Tensor read_tensor(const st::SafetensorsReader& reader, const st::TensorInfo& info) {
  auto bytes = reader.data(info);
  torch::Tensor t = torch::empty(info.shape, torch::TensorOptions().dtype(to_torch_dtype(info.dtype)));
  PEFT_CHECK(static_cast<uint64_t>(t.nbytes()) == bytes.size(), "{}: size mismatch for {}", reader.path(), info.name);
  if (!bytes.empty()) std::memcpy(t.data_ptr(), bytes.data(), bytes.size());
  return t;
}

std::map<std::string, torch::Tensor> read_safetensors(const std::string& path) {
  st::SafetensorsReader reader(path);
  std::map<std::string, torch::Tensor> out;
  for (const auto& info : reader.tensors()) out.emplace(info.name, read_tensor(reader, info));
  return out;
}

void write_safetensors(const std::string& path, const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  std::vector<torch::Tensor> keep;  // contiguous CPU copies, alive until written
  std::vector<st::TensorView> views;
  keep.reserve(tensors.size());
  views.reserve(tensors.size());
  for (const auto& [name, t] : tensors) {
    keep.push_back(t.detach().to(torch::kCPU).contiguous());
    const auto& c = keep.back();
    views.push_back({name, to_st_dtype(c.scalar_type()), c.sizes().vec(), c.data_ptr(), static_cast<std::size_t>(c.nbytes())});
  }
  st::write_safetensors(path, views, metadata);
}

}  // namespace peft::model
