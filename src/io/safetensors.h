#pragma once
// safetensors (https://github.com/huggingface/safetensors) reader and writer, no LibTorch.
// File layout: u64 little-endian header length N, N bytes of JSON header
// {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, "__metadata__": {str: str}},
// then the data buffer; offsets are relative to the start of the buffer.
// The reader memory-maps the file and validates everything up front: every error names
// the file and, where there is one, the tensor.
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace peft::st {

enum class DType { F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL };

std::string_view dtype_name(DType d);           // "F32", ...
DType parse_dtype(std::string_view name);       // throws peft::InputError for unknown names
std::size_t dtype_size(DType d);                // bytes per element

struct TensorInfo {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  uint64_t begin = 0;  // offsets into the data buffer
  uint64_t end = 0;
  int64_t numel() const;
  uint64_t nbytes() const { return end - begin; }
};

class SafetensorsReader {
 public:
  /// Maps and validates `path`; throws peft::InputError naming the file (and tensor).
  explicit SafetensorsReader(const std::string& path);
  ~SafetensorsReader();
  SafetensorsReader(SafetensorsReader&&) noexcept;
  SafetensorsReader& operator=(SafetensorsReader&&) noexcept;

  const std::string& path() const;
  /// Tensors in file order (ascending data offset).
  const std::vector<TensorInfo>& tensors() const;
  const TensorInfo* find(std::string_view name) const;   // nullptr when absent
  const TensorInfo& at(std::string_view name) const;     // throws, naming file and tensor
  bool contains(std::string_view name) const { return find(name) != nullptr; }
  /// The tensor's bytes, inside the mapping (valid while the reader lives).
  std::span<const std::byte> data(const TensorInfo& t) const;
  /// at(name) plus a check of dtype and shape; throws naming file, tensor, expected and found.
  const TensorInfo& expect(std::string_view name, DType dtype, const std::vector<int64_t>& shape) const;
  const std::map<std::string, std::string>& metadata() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// One tensor to write: borrowed bytes (row-major, little-endian).
struct TensorView {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  const void* data = nullptr;
  std::size_t nbytes = 0;  // must equal numel * dtype_size
};

/// Writes a safetensors file atomically (temporary file + rename). Tensors are laid out
/// in name order and the header padded with spaces to a multiple of 8 bytes, so the same
/// tensors always give the same bytes. Throws on duplicate names or size mismatches.
void write_safetensors(const std::string& path, const std::vector<TensorView>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace peft::st
