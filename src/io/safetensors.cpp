// safetensors reader and writer. The reader's checks follow the official Rust crate
// (huggingface/safetensors, `SafeTensors::read_metadata` / `Metadata::validate`): header
// length within the file and at most 100 MB, a JSON object, tensors that cover the data
// buffer contiguously (no overlap, no hole, nothing after the last tensor), and
// end - begin == numel * dtype size. Everything is checked before any tensor is handed out,
// so a later data() never reads outside the mapping.
#include "io/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <limits>
#include <optional>
#include <filesystem>
#include <set>
#include <tuple>
#include <utility>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/json_excerpt.h"

namespace peft::st {
namespace {

using nlohmann::json;

// Same limit as the official crate: a larger header is not a safetensors file.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;
constexpr std::size_t kLengthBytes = 8;
constexpr std::string_view kMetadataKey = "__metadata__";

struct DTypeEntry {
  DType dtype;
  std::string_view name;
  std::size_t size;
};

constexpr std::array<DTypeEntry, 10> kDTypes{{
    {DType::F64, "F64", 8},
    {DType::F32, "F32", 4},
    {DType::F16, "F16", 2},
    {DType::BF16, "BF16", 2},
    {DType::I64, "I64", 8},
    {DType::I32, "I32", 4},
    {DType::I16, "I16", 2},
    {DType::I8, "I8", 1},
    {DType::U8, "U8", 1},
    {DType::BOOL, "BOOL", 1},
}};

const DTypeEntry& entry_of(DType d) {
  for (const auto& e : kDTypes)
    if (e.dtype == d) return e;
  throw std::logic_error(fmt::format("peft::st::DType value {} is not in the dtype table",
                                     static_cast<int>(d)));
}

std::optional<DType> try_parse_dtype(std::string_view name) {
  for (const auto& e : kDTypes)
    if (e.name == name) return e.dtype;
  return std::nullopt;
}

std::string supported_dtypes() {
  std::vector<std::string_view> names;
  for (const auto& e : kDTypes) names.push_back(e.name);
  return fmt::format("{}", fmt::join(names, ", "));
}

// numel * dtype_size with overflow detection; nullopt on overflow or negative dims.
std::optional<uint64_t> checked_nbytes(const std::vector<int64_t>& shape, DType dtype) {
  uint64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) return std::nullopt;
    if (__builtin_mul_overflow(n, static_cast<uint64_t>(d), &n)) return std::nullopt;
  }
  if (__builtin_mul_overflow(n, static_cast<uint64_t>(dtype_size(dtype)), &n)) return std::nullopt;
  return n;
}

std::string shape_str(const std::vector<int64_t>& shape) {
  return fmt::format("[{}]", fmt::join(shape, ", "));
}

/// A file descriptor closed on scope exit.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  /// Closes now and reports close()'s result (a failed close can mean lost writes).
  int close() {
    int rc = ::close(fd_);
    fd_ = -1;
    return rc;
  }

 private:
  int fd_;
};

/// A read-only private mapping of a whole file.
class Mapping {
 public:
  Mapping() = default;
  Mapping(const void* base, std::size_t size) : base_(base), size_(size) {}
  ~Mapping() { reset(); }
  Mapping(Mapping&& o) noexcept
      : base_(std::exchange(o.base_, nullptr)), size_(std::exchange(o.size_, 0)) {}
  Mapping& operator=(Mapping&& o) noexcept {
    if (this != &o) {
      reset();
      base_ = std::exchange(o.base_, nullptr);
      size_ = std::exchange(o.size_, 0);
    }
    return *this;
  }
  const std::byte* data() const { return static_cast<const std::byte*>(base_); }
  std::size_t size() const { return size_; }

 private:
  void reset() {
    if (base_) ::munmap(const_cast<void*>(base_), size_);
    base_ = nullptr;
    size_ = 0;
  }
  const void* base_ = nullptr;
  std::size_t size_ = 0;
};

uint64_t read_le_u64(const std::byte* p) {
  uint64_t v = 0;
  for (std::size_t i = 0; i < kLengthBytes; ++i)
    v |= static_cast<uint64_t>(std::to_integer<uint8_t>(p[i])) << (8 * i);
  return v;
}

/// Reads a JSON integer that must be >= 0; nullopt for anything else.
std::optional<uint64_t> as_non_negative(const json& v) {
  if (v.is_number_unsigned()) return v.get<uint64_t>();
  if (v.is_number_integer()) {
    int64_t i = v.get<int64_t>();
    if (i >= 0) return static_cast<uint64_t>(i);
  }
  return std::nullopt;
}

}  // namespace

// ---------------------------------------------------------------------------------------
// dtypes

std::string_view dtype_name(DType d) { return entry_of(d).name; }

std::size_t dtype_size(DType d) { return entry_of(d).size; }

DType parse_dtype(std::string_view name) {
  if (auto d = try_parse_dtype(name)) return *d;
  throw_input("unknown safetensors dtype '{}' (supported: {})", name, supported_dtypes());
}

int64_t TensorInfo::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

// ---------------------------------------------------------------------------------------
// Reader

struct SafetensorsReader::Impl {
  std::string path;
  Mapping mapping;
  const std::byte* buffer = nullptr;  // start of the data buffer, inside the mapping
  uint64_t buffer_size = 0;
  std::vector<TensorInfo> tensors;
  std::map<std::string, std::size_t, std::less<>> index;
  std::map<std::string, std::string> metadata;

  template <typename... Args>
  [[noreturn]] void fail(fmt::format_string<Args...> f, Args&&... args) const {
    throw_input("{}: {}", path, fmt::format(f, std::forward<Args>(args)...));
  }
  template <typename... Args>
  [[noreturn]] void fail_tensor(const std::string& name, fmt::format_string<Args...> f,
                                Args&&... args) const {
    throw_input("{}: tensor '{}': {}", path, name, fmt::format(f, std::forward<Args>(args)...));
  }

  void map_file();
  json parse_header(uint64_t header_len) const;
  void read_metadata(const json& value);
  TensorInfo read_entry(const std::string& name, const json& entry) const;
  void check_layout();
};

void SafetensorsReader::Impl::map_file() {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) fail("cannot open: {}", std::strerror(errno));
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) fail("cannot stat: {}", std::strerror(errno));
  if (!S_ISREG(st.st_mode)) fail("not a regular file");
  const auto size = static_cast<uint64_t>(st.st_size);
  if (size < kLengthBytes)
    fail("file is {} bytes, shorter than the 8-byte header length: not a safetensors file "
         "(or truncated)", size);
  void* base = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd.get(), 0);
  if (base == MAP_FAILED) throw_runtime("{}: cannot mmap {} bytes: {}", path, size, std::strerror(errno));
  mapping = Mapping(base, size);
  // The mapping outlives the descriptor; fd closes here.
}

json SafetensorsReader::Impl::parse_header(uint64_t header_len) const {
  const auto* begin = reinterpret_cast<const char*>(mapping.data() + kLengthBytes);
  const auto* end = begin + header_len;
  // Duplicate top-level keys would silently replace each other in the parsed object;
  // remember them so the message can name the tensor.
  std::set<std::string, std::less<>> seen;
  std::optional<std::string> duplicate;
  json::parser_callback_t cb = [&](int depth, json::parse_event_t event, json& parsed) {
    if (depth == 1 && event == json::parse_event_t::key && parsed.is_string()) {
      const auto& key = parsed.get_ref<const std::string&>();
      if (!seen.insert(key).second && !duplicate) duplicate = key;
    }
    return true;
  };
  json header;
  try {
    header = json::parse(begin, end, cb);
  } catch (const json::exception& e) {
    fail("header ({} bytes) is not valid JSON: {}", header_len, e.what());
  }
  if (!header.is_object()) fail("header is JSON but not an object (found {})", header.type_name());
  if (duplicate) fail_tensor(*duplicate, "appears twice in the header");
  return header;
}

void SafetensorsReader::Impl::read_metadata(const json& value) {
  if (value.is_null()) return;  // the official crate reads null as "no metadata"
  if (!value.is_object())
    fail("'__metadata__' must be an object of string to string, found {}", value.type_name());
  for (const auto& [key, v] : value.items()) {
    if (!v.is_string())
      fail("'__metadata__' entry '{}' must be a string, found {}", key, v.type_name());
    metadata.emplace(key, v.get<std::string>());
  }
}

TensorInfo SafetensorsReader::Impl::read_entry(const std::string& name, const json& entry) const {
  if (!entry.is_object())
    fail_tensor(name, "entry must be an object with dtype, shape and data_offsets, found {}",
                entry.type_name());
  for (const char* field : {"dtype", "shape", "data_offsets"})
    if (!entry.contains(field)) fail_tensor(name, "missing field '{}'", field);

  TensorInfo t;
  t.name = name;

  const json& dtype = entry.at("dtype");
  if (!dtype.is_string()) fail_tensor(name, "'dtype' must be a string, found {}", dtype.type_name());
  const auto& dtype_str = dtype.get_ref<const std::string&>();
  auto parsed = try_parse_dtype(dtype_str);
  if (!parsed)
    fail_tensor(name, "unknown dtype '{}' (supported: {})", dtype_str, supported_dtypes());
  t.dtype = *parsed;

  const json& shape = entry.at("shape");
  if (!shape.is_array()) fail_tensor(name, "'shape' must be an array, found {}", shape.type_name());
  for (const json& d : shape) {
    if (d.is_number_integer() && !d.is_number_unsigned() && d.get<int64_t>() < 0)
      fail_tensor(name, "negative dimension {} in shape {}", d.get<int64_t>(), json_excerpt(shape));
    auto v = as_non_negative(d);
    if (!v) fail_tensor(name, "shape {} holds a non-integer dimension", json_excerpt(shape));
    if (*v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      fail_tensor(name, "dimension {} in shape {} is too large", *v, json_excerpt(shape));
    t.shape.push_back(static_cast<int64_t>(*v));
  }

  const json& offsets = entry.at("data_offsets");
  if (!offsets.is_array() || offsets.size() != 2)
    fail_tensor(name, "'data_offsets' must be an array [begin, end], found {}", json_excerpt(offsets));
  auto b = as_non_negative(offsets[0]);
  auto e = as_non_negative(offsets[1]);
  if (!b || !e)
    fail_tensor(name, "'data_offsets' {} must hold two non-negative integers", json_excerpt(offsets));
  t.begin = *b;
  t.end = *e;
  if (t.begin > t.end)
    fail_tensor(name, "data_offsets [{}, {}]: begin is after end", t.begin, t.end);

  auto expected = checked_nbytes(t.shape, t.dtype);
  if (!expected)
    fail_tensor(name, "shape {} of {} overflows the byte count", shape_str(t.shape),
                dtype_name(t.dtype));
  if (t.end - t.begin != *expected)
    fail_tensor(name, "data_offsets [{}, {}] span {} bytes but {} {} needs {} bytes: "
                "dtype/shape do not match the data", t.begin, t.end, t.end - t.begin,
                dtype_name(t.dtype), shape_str(t.shape), *expected);
  if (t.end > buffer_size)
    fail_tensor(name, "data_offsets [{}, {}] end beyond the data buffer ({} bytes): file truncated?",
                t.begin, t.end, buffer_size);
  return t;
}

void SafetensorsReader::Impl::check_layout() {
  // Same rule as the official crate: sorted by offset, each tensor starts where the
  // previous one ended, and the last one ends at the end of the file.
  std::sort(tensors.begin(), tensors.end(), [](const TensorInfo& a, const TensorInfo& b) {
    return std::tie(a.begin, a.end, a.name) < std::tie(b.begin, b.end, b.name);
  });
  uint64_t cursor = 0;
  const TensorInfo* prev = nullptr;
  for (const auto& t : tensors) {
    if (t.begin < cursor)
      fail_tensor(t.name, "data_offsets [{}, {}] overlap tensor '{}' at [{}, {}]", t.begin, t.end,
                  prev->name, prev->begin, prev->end);
    if (t.begin > cursor)
      fail_tensor(t.name, "data_offsets [{}, {}] leave a hole of {} unused bytes before it "
                  "(tensors must cover the data buffer contiguously)", t.begin, t.end,
                  t.begin - cursor);
    cursor = t.end;
    prev = &t;
  }
  if (cursor != buffer_size)
    fail("data buffer is {} bytes but the tensors cover only {}: {} trailing bytes not described "
         "by the header", buffer_size, cursor, buffer_size - cursor);
}

SafetensorsReader::SafetensorsReader(const std::string& path) : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.path = path;
  m.map_file();
  const uint64_t file_size = m.mapping.size();
  const uint64_t header_len = read_le_u64(m.mapping.data());
  if (header_len > kMaxHeaderBytes)
    m.fail("header length {} is over the {}-byte limit: not a safetensors file?", header_len,
           kMaxHeaderBytes);
  if (header_len > file_size - kLengthBytes)
    m.fail("header length {} is larger than the rest of the file ({} bytes): file truncated?",
           header_len, file_size - kLengthBytes);
  m.buffer = m.mapping.data() + kLengthBytes + header_len;
  m.buffer_size = file_size - kLengthBytes - header_len;

  json header = m.parse_header(header_len);
  for (const auto& [key, value] : header.items()) {
    if (key == kMetadataKey) {
      m.read_metadata(value);
      continue;
    }
    m.tensors.push_back(m.read_entry(key, value));
  }
  m.check_layout();
  for (std::size_t i = 0; i < m.tensors.size(); ++i) m.index.emplace(m.tensors[i].name, i);
}

SafetensorsReader::~SafetensorsReader() = default;
SafetensorsReader::SafetensorsReader(SafetensorsReader&&) noexcept = default;
SafetensorsReader& SafetensorsReader::operator=(SafetensorsReader&&) noexcept = default;

const std::string& SafetensorsReader::path() const { return impl_->path; }

const std::vector<TensorInfo>& SafetensorsReader::tensors() const { return impl_->tensors; }

const std::map<std::string, std::string>& SafetensorsReader::metadata() const {
  return impl_->metadata;
}

const TensorInfo* SafetensorsReader::find(std::string_view name) const {
  auto it = impl_->index.find(name);
  return it == impl_->index.end() ? nullptr : &impl_->tensors[it->second];
}

const TensorInfo& SafetensorsReader::at(std::string_view name) const {
  if (const TensorInfo* t = find(name)) return *t;
  throw_input("{}: no tensor '{}' (the file holds {} tensors)", impl_->path, name,
              impl_->tensors.size());
}

std::span<const std::byte> SafetensorsReader::data(const TensorInfo& t) const {
  // A TensorInfo from another reader (or edited by hand) must not reach outside the mapping.
  PEFT_CHECK(t.begin <= t.end && t.end <= impl_->buffer_size,
             "{}: tensor '{}' offsets [{}, {}] are outside this file's data buffer ({} bytes)",
             impl_->path, t.name, t.begin, t.end, impl_->buffer_size);
  return {impl_->buffer + t.begin, static_cast<std::size_t>(t.end - t.begin)};
}

const TensorInfo& SafetensorsReader::expect(std::string_view name, DType dtype,
                                            const std::vector<int64_t>& shape) const {
  const TensorInfo& t = at(name);
  if (t.dtype != dtype || t.shape != shape)
    throw_input("{}: tensor '{}': expected {} {}, found {} {}", impl_->path, name,
                dtype_name(dtype), shape_str(shape), dtype_name(t.dtype), shape_str(t.shape));
  return t;
}

// ---------------------------------------------------------------------------------------
// Writer

namespace {

void write_all(int fd, const void* data, std::size_t n, const std::string& tmp) {
  const auto* p = static_cast<const char*>(data);
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      throw_runtime("{}: write failed: {}", tmp, std::strerror(errno));
    }
    p += w;
    n -= static_cast<std::size_t>(w);
  }
}

std::string build_header(const std::string& path, const std::vector<const TensorView*>& sorted,
                         const std::map<std::string, std::string>& metadata) {
  json header = json::object();
  uint64_t offset = 0;
  for (const TensorView* t : sorted) {
    json entry = json::object();
    entry["dtype"] = dtype_name(t->dtype);
    entry["shape"] = t->shape;
    entry["data_offsets"] = json::array({offset, offset + t->nbytes});
    header[t->name] = std::move(entry);
    offset += t->nbytes;
  }
  if (!metadata.empty()) header[std::string(kMetadataKey)] = metadata;
  std::string text;
  try {
    text = header.dump();  // compact; keys sorted (nlohmann's std::map objects)
  } catch (const json::exception& e) {
    throw_input("{}: cannot encode the header (names and metadata must be UTF-8): {}", path,
                e.what());
  }
  // Pad with spaces to a multiple of 8 bytes, as the official writer does, so the data
  // buffer starts 8-byte aligned.
  text.resize((text.size() + kLengthBytes - 1) / kLengthBytes * kLengthBytes, ' ');
  if (text.size() > kMaxHeaderBytes)
    throw_input("{}: header would be {} bytes, over the {}-byte limit", path, text.size(),
                kMaxHeaderBytes);
  return text;
}

}  // namespace

void write_safetensors(const std::string& path, const std::vector<TensorView>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  std::vector<const TensorView*> sorted;
  sorted.reserve(tensors.size());
  for (const auto& t : tensors) {
    if (t.name == kMetadataKey)
      throw_input("{}: '{}' is reserved for metadata and cannot name a tensor", path, kMetadataKey);
    for (int64_t d : t.shape)
      if (d < 0)
        throw_input("{}: tensor '{}': negative dimension in shape {}", path, t.name,
                    shape_str(t.shape));
    auto expected = checked_nbytes(t.shape, t.dtype);
    if (!expected)
      throw_input("{}: tensor '{}': shape {} overflows the byte count", path, t.name,
                  shape_str(t.shape));
    if (*expected != t.nbytes)
      throw_input("{}: tensor '{}': {} bytes given but {} {} needs {} bytes", path, t.name,
                  t.nbytes, dtype_name(t.dtype), shape_str(t.shape), *expected);
    if (t.nbytes > 0 && t.data == nullptr)
      throw_input("{}: tensor '{}': data is null for {} bytes", path, t.name, t.nbytes);
    sorted.push_back(&t);
  }
  std::sort(sorted.begin(), sorted.end(),
            [](const TensorView* a, const TensorView* b) { return a->name < b->name; });
  for (std::size_t i = 1; i < sorted.size(); ++i)
    if (sorted[i]->name == sorted[i - 1]->name)
      throw_input("{}: tensor '{}' given twice", path, sorted[i]->name);

  const std::string header = build_header(path, sorted, metadata);
  std::array<unsigned char, kLengthBytes> len{};
  for (std::size_t i = 0; i < kLengthBytes; ++i)
    len[i] = static_cast<unsigned char>((static_cast<uint64_t>(header.size()) >> (8 * i)) & 0xff);

  // Write beside the target and rename over it: readers see the old file or the whole new
  // one, never a partial write.
  const std::string tmp = fmt::format("{}.tmp.{}", path, ::getpid());
  Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (fd.get() < 0) throw_runtime("{}: cannot create: {}", tmp, std::strerror(errno));
  try {
    write_all(fd.get(), len.data(), len.size(), tmp);
    write_all(fd.get(), header.data(), header.size(), tmp);
    for (const TensorView* t : sorted) write_all(fd.get(), t->data, t->nbytes, tmp);
    if (::fsync(fd.get()) != 0) throw_runtime("{}: fsync failed: {}", tmp, std::strerror(errno));
    if (fd.close() != 0) throw_runtime("{}: close failed: {}", tmp, std::strerror(errno));
    if (::rename(tmp.c_str(), path.c_str()) != 0)
      throw_runtime("{}: cannot rename {} to it: {}", path, tmp, std::strerror(errno));
  } catch (...) {
    ::unlink(tmp.c_str());
    throw;
  }
  // Make the rename itself durable. Best effort: some file systems refuse to fsync a folder.
  std::string dir = std::filesystem::path(path).parent_path().string();
  Fd dfd(::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dfd.get() >= 0) ::fsync(dfd.get());
}

}  // namespace peft::st
