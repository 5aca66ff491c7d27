// safetensors reader/writer: round trips, byte-exact output, and every malformed file the
// reader must refuse with a peft::InputError naming the file and the tensor.
#include "io/safetensors.h"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <iterator>
#include <numeric>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/error.h"
#include "test_util.h"

namespace peft::st {
namespace {

using peft::testing::TempDir;

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string le_u64(uint64_t v) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>((v >> (8 * i)) & 0xff);
  return s;
}

/// A hand-made file: length prefix, header text, data buffer.
std::string raw_file(const std::string& header, const std::string& data) {
  return le_u64(header.size()) + header + data;
}

std::string zeros(std::size_t n) { return std::string(n, '\0'); }

/// Opening `path` must throw peft::InputError whose message holds every needle.
void expect_input_error(const std::string& path, std::initializer_list<std::string> needles) {
  try {
    SafetensorsReader r(path);
    ADD_FAILURE() << "opening " << path << " did not throw";
  } catch (const peft::InputError& e) {
    const std::string msg = e.what();
    for (const auto& n : needles)
      EXPECT_NE(msg.find(n), std::string::npos) << "message lacks '" << n << "': " << msg;
  }
}

template <typename T>
TensorView view_of(const std::string& name, DType dtype, std::vector<int64_t> shape,
                   const std::vector<T>& values) {
  return {name, dtype, std::move(shape), values.data(), values.size() * sizeof(T)};
}

std::vector<std::byte> as_bytes(const void* p, std::size_t n) {
  std::vector<std::byte> out(n);
  if (n) std::memcpy(out.data(), p, n);
  return out;
}

std::vector<std::byte> as_bytes(std::span<const std::byte> s) { return {s.begin(), s.end()}; }

// ---------------------------------------------------------------------------------------
// dtypes

TEST(SafetensorsDType, NamesAndSizesRoundTripThroughParse) {
  const std::vector<std::pair<DType, std::size_t>> all = {
      {DType::F64, 8}, {DType::F32, 4}, {DType::F16, 2}, {DType::BF16, 2}, {DType::I64, 8},
      {DType::I32, 4}, {DType::I16, 2}, {DType::I8, 1},  {DType::U8, 1},   {DType::BOOL, 1}};
  for (auto [d, size] : all) {
    EXPECT_EQ(parse_dtype(dtype_name(d)), d) << dtype_name(d);
    EXPECT_EQ(dtype_size(d), size) << dtype_name(d);
  }
  EXPECT_EQ(dtype_name(DType::BF16), "BF16");
  EXPECT_EQ(dtype_name(DType::BOOL), "BOOL");
}

TEST(SafetensorsDType, ParseRejectsUnknownNameWithInputError) {
  EXPECT_THROW(parse_dtype("float32"), peft::InputError);
  EXPECT_THROW(parse_dtype("F8_E4M3"), peft::InputError);
  EXPECT_THROW(parse_dtype(""), peft::InputError);
}

// ---------------------------------------------------------------------------------------
// Round trips

TEST(SafetensorsRoundTrip, EveryDtypeKeepsDtypeShapeAndBytes) {
  TempDir dir;
  const std::string path = dir / "all.safetensors";
  std::vector<double> f64 = {1.5, -2.25, 3.0, 1e300};
  std::vector<float> f32 = {0.f, 1.f, -1.f, 3.5f, 7.f, 8.f};
  std::vector<uint16_t> f16 = {0x3c00, 0xbc00, 0x7bff};
  std::vector<uint16_t> bf16 = {0x3f80, 0xc000};
  std::vector<int64_t> i64 = {INT64_MIN, -1, 0, INT64_MAX};
  std::vector<int32_t> i32 = {INT32_MIN, 42};
  std::vector<int16_t> i16 = {-7, 7, 300};
  std::vector<int8_t> i8 = {-128, 127};
  std::vector<uint8_t> u8 = {0, 1, 255, 9};
  std::vector<uint8_t> boolean = {1, 0, 1};
  std::vector<TensorView> views = {
      view_of("f64", DType::F64, {2, 2}, f64),   view_of("f32", DType::F32, {2, 3}, f32),
      view_of("f16", DType::F16, {3}, f16),      view_of("bf16", DType::BF16, {1, 2}, bf16),
      view_of("i64", DType::I64, {4}, i64),      view_of("i32", DType::I32, {2, 1}, i32),
      view_of("i16", DType::I16, {3}, i16),      view_of("i8", DType::I8, {2}, i8),
      view_of("u8", DType::U8, {2, 2}, u8),      view_of("bool", DType::BOOL, {3}, boolean),
  };
  write_safetensors(path, views);

  SafetensorsReader r(path);
  ASSERT_EQ(r.tensors().size(), views.size());
  for (const auto& v : views) {
    SCOPED_TRACE(v.name);
    const TensorInfo& t = r.at(v.name);
    EXPECT_EQ(t.dtype, v.dtype);
    EXPECT_EQ(t.shape, v.shape);
    EXPECT_EQ(t.nbytes(), v.nbytes);
    EXPECT_EQ(as_bytes(r.data(t)), as_bytes(v.data, v.nbytes));
  }
}

TEST(SafetensorsRoundTrip, ScalarWithNoDimsHasOneElement) {
  TempDir dir;
  const std::string path = dir / "scalar.safetensors";
  std::vector<float> value = {3.25f};
  write_safetensors(path, {view_of("scale", DType::F32, {}, value)});

  SafetensorsReader r(path);
  const TensorInfo& t = r.expect("scale", DType::F32, {});
  EXPECT_TRUE(t.shape.empty());
  EXPECT_EQ(t.numel(), 1);
  float got = 0;
  std::memcpy(&got, r.data(t).data(), sizeof got);
  EXPECT_EQ(got, 3.25f);
}

TEST(SafetensorsRoundTrip, EmptyTensorHasZeroBytesAndEqualOffsets) {
  TempDir dir;
  const std::string path = dir / "empty.safetensors";
  std::vector<float> none;
  std::vector<float> after = {1.f, 2.f};
  write_safetensors(path, {view_of("a_empty", DType::F32, {0, 3}, none),
                           view_of("b_after", DType::F32, {2}, after)});

  SafetensorsReader r(path);
  const TensorInfo& t = r.expect("a_empty", DType::F32, {0, 3});
  EXPECT_EQ(t.numel(), 0);
  EXPECT_EQ(t.begin, t.end);
  EXPECT_TRUE(r.data(t).empty());
  EXPECT_EQ(r.at("b_after").nbytes(), 8u);
}

TEST(SafetensorsRoundTrip, FileWithNoTensorsOpens) {
  TempDir dir;
  const std::string path = dir / "none.safetensors";
  write_safetensors(path, {});
  SafetensorsReader r(path);
  EXPECT_TRUE(r.tensors().empty());
  EXPECT_TRUE(r.metadata().empty());
}

TEST(SafetensorsRoundTrip, MetadataComesBackUnchanged) {
  TempDir dir;
  const std::string path = dir / "meta.safetensors";
  std::vector<float> w = {1.f};
  const std::map<std::string, std::string> meta = {
      {"format", "pt"}, {"peft", "lora r=8"}, {"unicode", "h\xc3\xa9llo"}, {"empty", ""}};
  write_safetensors(path, {view_of("w", DType::F32, {1}, w)}, meta);
  SafetensorsReader r(path);
  EXPECT_EQ(r.metadata(), meta);
}

// ---------------------------------------------------------------------------------------
// Writer layout

TEST(SafetensorsWriter, SameTensorsGiveIdenticalBytesWhateverTheInputOrder) {
  TempDir dir;
  std::vector<float> a = {1.f, 2.f, 3.f};
  std::vector<int64_t> b = {5, 6};
  std::vector<uint8_t> c = {9};
  const std::map<std::string, std::string> meta = {{"format", "pt"}};
  write_safetensors(dir / "one.safetensors",
                    {view_of("a", DType::F32, {3}, a), view_of("b", DType::I64, {2}, b),
                     view_of("c", DType::U8, {1}, c)},
                    meta);
  write_safetensors(dir / "two.safetensors",
                    {view_of("c", DType::U8, {1}, c), view_of("a", DType::F32, {3}, a),
                     view_of("b", DType::I64, {2}, b)},
                    meta);
  const std::string one = read_bytes(dir / "one.safetensors");
  EXPECT_FALSE(one.empty());
  EXPECT_EQ(one, read_bytes(dir / "two.safetensors"));
}

TEST(SafetensorsWriter, HeaderIsCompactSortedAndPaddedToMultipleOf8) {
  TempDir dir;
  const std::string path = dir / "layout.safetensors";
  std::vector<float> x = {1.f, 2.f};
  std::vector<uint8_t> y = {7};
  write_safetensors(path, {view_of("y", DType::U8, {1}, y), view_of("x", DType::F32, {2}, x)},
                    {{"k", "v"}});
  const std::string bytes = read_bytes(path);
  ASSERT_GE(bytes.size(), 8u);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(bytes[i]);
  EXPECT_EQ(n % 8, 0u);
  ASSERT_EQ(bytes.size(), 8 + n + 9);  // 8 bytes of x, 1 byte of y
  std::string header = bytes.substr(8, n);
  const std::string json =
      R"({"__metadata__":{"k":"v"},"x":{"data_offsets":[0,8],"dtype":"F32","shape":[2]},)"
      R"("y":{"data_offsets":[8,9],"dtype":"U8","shape":[1]}})";
  EXPECT_EQ(header.substr(0, json.size()), json);
  EXPECT_EQ(header.find_first_not_of(' ', json.size()), std::string::npos) << "padding is spaces";
  EXPECT_LT(header.size() - json.size(), 8u);
  EXPECT_EQ(bytes[8 + n + 8], 7) << "data buffer starts right after the header";
}

TEST(SafetensorsWriter, NoMetadataKeyWhenMetadataIsEmpty) {
  TempDir dir;
  const std::string path = dir / "nometa.safetensors";
  std::vector<float> x = {1.f};
  write_safetensors(path, {view_of("x", DType::F32, {1}, x)});
  EXPECT_EQ(read_bytes(path).find("__metadata__"), std::string::npos);
}

TEST(SafetensorsWriter, TensorsLaidOutInNameOrder) {
  TempDir dir;
  const std::string path = dir / "order.safetensors";
  std::vector<float> v = {1.f, 2.f};
  write_safetensors(path, {view_of("zeta", DType::F32, {2}, v), view_of("alpha", DType::F32, {2}, v),
                           view_of("mid", DType::F32, {2}, v)});
  SafetensorsReader r(path);
  ASSERT_EQ(r.tensors().size(), 3u);
  EXPECT_EQ(r.tensors()[0].name, "alpha");
  EXPECT_EQ(r.tensors()[1].name, "mid");
  EXPECT_EQ(r.tensors()[2].name, "zeta");
  EXPECT_EQ(r.tensors()[0].begin, 0u);
  EXPECT_EQ(r.tensors()[1].begin, 8u);
  EXPECT_EQ(r.tensors()[2].begin, 16u);
}

TEST(SafetensorsWriter, ReplacesExistingFileAndLeavesNoTemporary) {
  TempDir dir;
  const std::string path = dir / "atomic.safetensors";
  write_bytes(path, "old contents");
  std::vector<float> v = {4.f};
  write_safetensors(path, {view_of("v", DType::F32, {1}, v)});
  SafetensorsReader r(path);
  EXPECT_TRUE(r.contains("v"));
  int entries = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) {
    ++entries;
    EXPECT_EQ(e.path().filename(), "atomic.safetensors");
  }
  EXPECT_EQ(entries, 1);
}

TEST(SafetensorsWriter, RejectsDuplicateNames) {
  TempDir dir;
  const std::string path = dir / "dup.safetensors";
  std::vector<float> v = {1.f};
  try {
    write_safetensors(path, {view_of("same", DType::F32, {1}, v), view_of("same", DType::F32, {1}, v)});
    ADD_FAILURE() << "no error";
  } catch (const peft::InputError& e) {
    EXPECT_NE(std::string(e.what()).find("'same'"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(std::filesystem::exists(path));
}

TEST(SafetensorsWriter, RejectsByteCountThatDoesNotMatchShape) {
  TempDir dir;
  const std::string path = dir / "size.safetensors";
  std::vector<float> v = {1.f, 2.f, 3.f};
  try {
    write_safetensors(path, {view_of("w", DType::F32, {2, 2}, v)});
    ADD_FAILURE() << "no error";
  } catch (const peft::InputError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("'w'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("size.safetensors"), std::string::npos) << msg;
  }
  EXPECT_FALSE(std::filesystem::exists(path));
}

TEST(SafetensorsWriter, RejectsMetadataKeyAsTensorName) {
  TempDir dir;
  std::vector<float> v = {1.f};
  EXPECT_THROW(write_safetensors(dir / "m.safetensors", {view_of("__metadata__", DType::F32, {1}, v)}),
               peft::InputError);
}

// ---------------------------------------------------------------------------------------
// Reader API

TEST(SafetensorsReader, FindReturnsNullForAbsentTensor) {
  TempDir dir;
  const std::string path = dir / "find.safetensors";
  std::vector<float> v = {1.f};
  write_safetensors(path, {view_of("present", DType::F32, {1}, v)});
  SafetensorsReader r(path);
  EXPECT_NE(r.find("present"), nullptr);
  EXPECT_EQ(r.find("absent"), nullptr);
  EXPECT_FALSE(r.contains("absent"));
  EXPECT_EQ(r.path(), path);
}

TEST(SafetensorsReader, AtNamesFileAndTensorWhenAbsent) {
  TempDir dir;
  const std::string path = dir / "at.safetensors";
  std::vector<float> v = {1.f};
  write_safetensors(path, {view_of("present", DType::F32, {1}, v)});
  SafetensorsReader r(path);
  try {
    r.at("missing.weight");
    ADD_FAILURE() << "no error";
  } catch (const peft::InputError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("at.safetensors"), std::string::npos) << msg;
    EXPECT_NE(msg.find("missing.weight"), std::string::npos) << msg;
  }
}

TEST(SafetensorsReader, ExpectNamesExpectedAndFoundOnMismatch) {
  TempDir dir;
  const std::string path = dir / "expect.safetensors";
  std::vector<float> v(6, 0.f);
  write_safetensors(path, {view_of("w", DType::F32, {2, 3}, v)});
  SafetensorsReader r(path);
  EXPECT_NO_THROW(r.expect("w", DType::F32, {2, 3}));
  try {
    r.expect("w", DType::F16, {3, 2});
    ADD_FAILURE() << "no error";
  } catch (const peft::InputError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("expect.safetensors"), std::string::npos) << msg;
    EXPECT_NE(msg.find("'w'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("F16 [3, 2]"), std::string::npos) << msg;
    EXPECT_NE(msg.find("F32 [2, 3]"), std::string::npos) << msg;
  }
}

TEST(SafetensorsReader, MovedReaderKeepsDataValid) {
  TempDir dir;
  const std::string path = dir / "move.safetensors";
  std::vector<int32_t> v = {11, 22, 33};
  write_safetensors(path, {view_of("v", DType::I32, {3}, v)});
  SafetensorsReader a(path);
  SafetensorsReader b(std::move(a));
  auto bytes = b.data(b.at("v"));
  ASSERT_EQ(bytes.size(), 12u);
  int32_t last = 0;
  std::memcpy(&last, bytes.data() + 8, 4);
  EXPECT_EQ(last, 33);
}

TEST(SafetensorsReader, AcceptsHeaderPaddedWithTrailingSpaces) {
  TempDir dir;
  const std::string path = dir / "padded.safetensors";
  write_bytes(path, raw_file(R"({"x":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}})" "     ",
                             "\x05\x06"));
  SafetensorsReader r(path);
  auto d = r.data(r.expect("x", DType::U8, {2}));
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(std::to_integer<int>(d[1]), 6);
}

TEST(SafetensorsReader, TensorsListedInOffsetOrderNotHeaderOrder) {
  TempDir dir;
  const std::string path = dir / "offsets.safetensors";
  // "a" is stored after "b" in the buffer.
  write_bytes(path, raw_file(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]},)"
                             R"("b":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}})",
                             "\x01\x02"));
  SafetensorsReader r(path);
  ASSERT_EQ(r.tensors().size(), 2u);
  EXPECT_EQ(r.tensors()[0].name, "b");
  EXPECT_EQ(r.tensors()[1].name, "a");
  EXPECT_EQ(std::to_integer<int>(r.data(r.at("a"))[0]), 2);
}

// ---------------------------------------------------------------------------------------
// Malformed files: each is a peft::InputError naming the file (and the tensor).

TEST(SafetensorsMalformed, MissingFileIsInputError) {
  TempDir dir;
  expect_input_error(dir / "nope.safetensors", {"nope.safetensors"});
}

TEST(SafetensorsMalformed, FileShorterThanLengthPrefix) {
  TempDir dir;
  const std::string path = dir / "short.safetensors";
  write_bytes(path, "abc");
  expect_input_error(path, {"short.safetensors", "8"});
}

TEST(SafetensorsMalformed, EmptyFile) {
  TempDir dir;
  const std::string path = dir / "zero.safetensors";
  write_bytes(path, "");
  expect_input_error(path, {"zero.safetensors"});
}

TEST(SafetensorsMalformed, HeaderLengthLargerThanFile) {
  TempDir dir;
  const std::string path = dir / "hlen.safetensors";
  write_bytes(path, le_u64(1000) + R"({"x":{}})");
  expect_input_error(path, {"hlen.safetensors", "header length 1000"});
}

TEST(SafetensorsMalformed, HeaderLengthAbsurd) {
  TempDir dir;
  const std::string path = dir / "huge.safetensors";
  write_bytes(path, le_u64(UINT64_MAX) + "{}");
  expect_input_error(path, {"huge.safetensors", "header length"});
}

TEST(SafetensorsMalformed, HeaderNotJson) {
  TempDir dir;
  const std::string path = dir / "notjson.safetensors";
  write_bytes(path, raw_file(R"({"x": {"dtype": "F32", )", ""));
  expect_input_error(path, {"notjson.safetensors", "JSON"});
}

TEST(SafetensorsMalformed, HeaderNotUtf8) {
  TempDir dir;
  const std::string path = dir / "utf8.safetensors";
  write_bytes(path, raw_file("{\"\xff\xfe\":{}}", ""));
  expect_input_error(path, {"utf8.safetensors", "JSON"});
}

TEST(SafetensorsMalformed, HeaderJsonButNotObject) {
  TempDir dir;
  const std::string path = dir / "array.safetensors";
  write_bytes(path, raw_file("[1, 2]", ""));
  expect_input_error(path, {"array.safetensors", "not an object"});
}

TEST(SafetensorsMalformed, MissingDataOffsetsField) {
  TempDir dir;
  const std::string path = dir / "nofield.safetensors";
  write_bytes(path, raw_file(R"({"x.weight":{"dtype":"F32","shape":[1]}})", zeros(4)));
  expect_input_error(path, {"nofield.safetensors", "'x.weight'", "data_offsets"});
}

TEST(SafetensorsMalformed, MissingDtypeField) {
  TempDir dir;
  const std::string path = dir / "nodtype.safetensors";
  write_bytes(path, raw_file(R"({"x.weight":{"shape":[1],"data_offsets":[0,4]}})", zeros(4)));
  expect_input_error(path, {"nodtype.safetensors", "'x.weight'", "dtype"});
}

TEST(SafetensorsMalformed, ShapeOfWrongJsonType) {
  TempDir dir;
  const std::string path = dir / "shapetype.safetensors";
  write_bytes(path, raw_file(R"({"x.weight":{"dtype":"F32","shape":"1","data_offsets":[0,4]}})",
                             zeros(4)));
  expect_input_error(path, {"shapetype.safetensors", "'x.weight'", "shape"});
}

TEST(SafetensorsMalformed, TensorEntryNotAnObject) {
  TempDir dir;
  const std::string path = dir / "entry.safetensors";
  write_bytes(path, raw_file(R"({"x.weight":[0,4]})", zeros(4)));
  expect_input_error(path, {"entry.safetensors", "'x.weight'"});
}

TEST(SafetensorsMalformed, DataOffsetsNotTwoIntegers) {
  TempDir dir;
  const std::string path = dir / "offtype.safetensors";
  write_bytes(path, raw_file(R"({"x.weight":{"dtype":"F32","shape":[1],"data_offsets":[0.0,4]}})",
                             zeros(4)));
  expect_input_error(path, {"offtype.safetensors", "'x.weight'", "data_offsets"});
}

TEST(SafetensorsMalformed, UnknownDtype) {
  TempDir dir;
  const std::string path = dir / "dtype.safetensors";
  write_bytes(path, raw_file(R"({"x.weight":{"dtype":"F31","shape":[1],"data_offsets":[0,4]}})",
                             zeros(4)));
  expect_input_error(path, {"dtype.safetensors", "'x.weight'", "F31"});
}

TEST(SafetensorsMalformed, NegativeDimension) {
  TempDir dir;
  const std::string path = dir / "neg.safetensors";
  write_bytes(path, raw_file(R"({"x.weight":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})",
                             zeros(4)));
  expect_input_error(path, {"neg.safetensors", "'x.weight'", "negative"});
}

TEST(SafetensorsMalformed, BeginAfterEnd) {
  TempDir dir;
  const std::string path = dir / "order.safetensors";
  write_bytes(path, raw_file(R"({"x.weight":{"dtype":"U8","shape":[0],"data_offsets":[4,0]}})",
                             zeros(4)));
  expect_input_error(path, {"order.safetensors", "'x.weight'", "[4, 0]"});
}

TEST(SafetensorsMalformed, TruncatedFileEndBeyondDataBuffer) {
  TempDir dir;
  const std::string path = dir / "model.safetensors";
  write_bytes(path, raw_file(R"({"x.weight":{"dtype":"F32","shape":[10],"data_offsets":[0,40]}})",
                             zeros(32)));
  expect_input_error(path, {"model.safetensors", "'x.weight'", "[0, 40]", "32 bytes", "truncated"});
}

TEST(SafetensorsMalformed, OffsetsOutOfRange) {
  TempDir dir;
  const std::string path = dir / "range.safetensors";
  write_bytes(path, raw_file(R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},)"
                             R"("far":{"dtype":"U8","shape":[4],"data_offsets":[1000,1004]}})",
                             zeros(8)));
  expect_input_error(path, {"range.safetensors", "'far'", "beyond"});
}

TEST(SafetensorsMalformed, HugeOffsetsDoNotOverflow) {
  TempDir dir;
  const std::string path = dir / "wrap.safetensors";
  write_bytes(path,
              raw_file(R"({"x":{"dtype":"U8","shape":[4],)"
                       R"("data_offsets":[18446744073709551611,18446744073709551615]}})",
                       zeros(4)));
  expect_input_error(path, {"wrap.safetensors", "'x'"});
}

TEST(SafetensorsMalformed, ShapeProductOverflowIsRejected) {
  TempDir dir;
  const std::string path = dir / "ovf.safetensors";
  write_bytes(path, raw_file(R"({"x":{"dtype":"F64","shape":[4294967296,4294967296],)"
                             R"("data_offsets":[0,0]}})",
                             ""));
  expect_input_error(path, {"ovf.safetensors", "'x'"});
}

TEST(SafetensorsMalformed, OverlappingTensors) {
  TempDir dir;
  const std::string path = dir / "overlap.safetensors";
  write_bytes(path, raw_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                             R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                             zeros(12)));
  expect_input_error(path, {"overlap.safetensors", "'b'", "'a'", "overlap"});
}

TEST(SafetensorsMalformed, HoleBetweenTensors) {
  TempDir dir;
  const std::string path = dir / "hole.safetensors";
  write_bytes(path, raw_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                             R"("b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
                             zeros(12)));
  expect_input_error(path, {"hole.safetensors", "'b'", "hole"});
}

TEST(SafetensorsMalformed, TrailingBytesAfterLastTensor) {
  TempDir dir;
  const std::string path = dir / "trail.safetensors";
  write_bytes(path, raw_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", zeros(6)));
  expect_input_error(path, {"trail.safetensors", "trailing"});
}

TEST(SafetensorsMalformed, DtypeShapeMismatch) {
  TempDir dir;
  const std::string path = dir / "mismatch.safetensors";
  // F32 [3] needs 12 bytes, the offsets give 8.
  write_bytes(path, raw_file(R"({"x.weight":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})",
                             zeros(8)));
  expect_input_error(path, {"mismatch.safetensors", "'x.weight'", "12 bytes"});
}

TEST(SafetensorsMalformed, MetadataNotAnObject) {
  TempDir dir;
  const std::string path = dir / "metaobj.safetensors";
  write_bytes(path, raw_file(R"({"__metadata__":["a"]})", ""));
  expect_input_error(path, {"metaobj.safetensors", "__metadata__"});
}

TEST(SafetensorsMalformed, MetadataValueNotString) {
  TempDir dir;
  const std::string path = dir / "metaval.safetensors";
  write_bytes(path, raw_file(R"({"__metadata__":{"epochs":3}})", ""));
  expect_input_error(path, {"metaval.safetensors", "__metadata__", "'epochs'"});
}

TEST(SafetensorsMalformed, DuplicateTensorName) {
  TempDir dir;
  const std::string path = dir / "twice.safetensors";
  write_bytes(path, raw_file(R"({"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},)"
                             R"("w":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}})",
                             zeros(2)));
  expect_input_error(path, {"twice.safetensors", "'w'", "twice"});
}

// ---------------------------------------------------------------------------------------
// A real adapter written by Hugging Face PEFT.

TEST(SafetensorsRealData, ReadsPeftLoraAdapter) {
  PEFT_REQUIRE_SHARED(path, "peft-adapters/lora-sst2/adapter_model.safetensors");
  SafetensorsReader r(path);
  const TensorInfo& a = r.expect(
      "base_model.model.distilbert.transformer.layer.0.attention.q_lin.lora_A.weight", DType::F32,
      {8, 768});
  EXPECT_EQ(r.data(a).size(), 8u * 768u * 4u);
  int64_t total = 0;
  for (const auto& t : r.tensors()) total += t.numel();
  EXPECT_EQ(total, 739586);
}

}  // namespace
}  // namespace peft::st
