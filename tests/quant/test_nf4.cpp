// NF4 + double quantization: code books, bitsandbytes' nearest-code and packing rules, the
// double quantization, the bitsandbytes state-dict layout, nf4_linear's autograd and the CUDA
// kernel against the CPU reference.
//
// Bit-identity with bitsandbytes is checked against tests/fixtures/nf4/*.bin, written by
// tests/fixtures/nf4/make_golden.py: an independent Python model of bitsandbytes'
// quantize_4bit(nf4, blocksize=64, compress_statistics=True), derived by reading bitsandbytes'
// code (functional.py, csrc/kernels.cu), since bitsandbytes itself cannot run here.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <set>

#include "core/error.h"
#include "quant/nf4.h"
#include "quant/nf4_dequant_cpu.h"
#include "quant/nf4_tables.h"
#include "test_util.h"

using namespace peft::quant;
namespace nq = peft::quant;

namespace {

uint32_t bits_of(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

torch::Tensor floats(const std::vector<float>& v) {
  return torch::from_blob(const_cast<float*>(v.data()), {static_cast<int64_t>(v.size())},
                          torch::kFloat32).clone();
}

std::vector<uint8_t> bytes_of(const torch::Tensor& t) {
  const torch::Tensor c = t.to(torch::kCPU).contiguous();
  const auto* p = c.data_ptr<uint8_t>();
  return {p, p + c.numel()};
}

std::vector<float> floats_of(const torch::Tensor& t) {
  const torch::Tensor c = t.to(torch::kCPU, torch::kFloat32).contiguous();
  const auto* p = c.data_ptr<float>();
  return {p, p + c.numel()};
}

// Bitwise equality of two float tensors (so -0.0 != 0.0 and NaN == NaN of the same bits).
::testing::AssertionResult same_bits(const torch::Tensor& a, const torch::Tensor& b) {
  const auto va = floats_of(a), vb = floats_of(b);
  if (va.size() != vb.size())
    return ::testing::AssertionFailure() << "sizes " << va.size() << " vs " << vb.size();
  for (size_t i = 0; i < va.size(); ++i)
    if (bits_of(va[i]) != bits_of(vb[i]))
      return ::testing::AssertionFailure()
             << "element " << i << ": " << va[i] << " vs " << vb[i];
  return ::testing::AssertionSuccess();
}

// The plain dequantization the fast paths are compared against: unpack nibble by nibble.
torch::Tensor naive_dequantize(const NF4Weight& w) {
  const auto packed = bytes_of(w.packed);
  const auto scale = floats_of(nq::detail::dequantize_absmax(w));
  std::vector<float> out(static_cast<size_t>(w.numel()));
  for (size_t i = 0; i < out.size(); ++i) {
    const uint8_t byte = packed[i / 2];
    const int code = i % 2 == 0 ? byte >> 4 : byte & 0xF;
    out[i] = kNF4Code[code] * scale[i / w.blocksize];
  }
  return floats(out).reshape(w.shape);
}

struct Golden {
  uint32_t numel = 0, n_blocks = 0, n_nested = 0;
  float offset = 0;
  std::vector<float> map, input, nested_absmax, absmax_fp32, dequant;
  std::vector<uint8_t> packed, absmax_q;
};

Golden load_golden(const std::string& name) {
  const std::string path = std::string(PEFT_FIXTURES) + "/nf4/" + name;
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("cannot open " + path);
  char magic[8];
  f.read(magic, 8);
  if (std::memcmp(magic, "PEFTNF4\0", 8) != 0) throw std::runtime_error("bad magic in " + path);
  uint32_t version = 0;
  Golden g;
  f.read(reinterpret_cast<char*>(&version), 4);
  f.read(reinterpret_cast<char*>(&g.numel), 4);
  f.read(reinterpret_cast<char*>(&g.n_blocks), 4);
  f.read(reinterpret_cast<char*>(&g.n_nested), 4);
  f.read(reinterpret_cast<char*>(&g.offset), 4);
  auto read_f = [&](std::vector<float>& v, size_t n) {
    v.resize(n);
    f.read(reinterpret_cast<char*>(v.data()), static_cast<std::streamsize>(n * 4));
  };
  auto read_u8 = [&](std::vector<uint8_t>& v, size_t n) {
    v.resize(n);
    f.read(reinterpret_cast<char*>(v.data()), static_cast<std::streamsize>(n));
  };
  read_f(g.map, 256);
  read_f(g.input, g.numel);
  read_u8(g.packed, (g.numel + 1) / 2);
  read_u8(g.absmax_q, g.n_blocks);
  read_f(g.nested_absmax, g.n_nested);
  read_f(g.absmax_fp32, g.n_blocks);
  read_f(g.dequant, g.numel);
  if (!f || version != 1) throw std::runtime_error("truncated or unknown fixture " + path);
  return g;
}

NF4Weight quantize_values(const std::vector<float>& v) { return quantize_nf4(floats(v)); }

template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const peft::InputError& e) {
    return e.what();
  } catch (const std::exception& e) {
    return std::string("wrong exception type: ") + e.what();
  }
  return "no exception";
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Code books and nearest-code rules

TEST(Nf4Code, MatchesBitsandbytesTableExactly) {
  // bitsandbytes functional.py get_4bit_type("nf4"), stored as fp32.
  const double expected[16] = {-1.0, -0.6961928009986877, -0.5250730514526367,
                               -0.39491748809814453, -0.28444138169288635, -0.18477343022823334,
                               -0.09105003625154495, 0.0, 0.07958029955625534,
                               0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
                               0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0};
  for (int c = 0; c < 16; ++c) {
    EXPECT_EQ(bits_of(nf4_code()[c]), bits_of(static_cast<float>(expected[c]))) << "code " << c;
    if (c > 0) {
      EXPECT_LT(nf4_code()[c - 1], nf4_code()[c]);
    }
  }
  EXPECT_EQ(bits_of(nf4_code()[7]), bits_of(0.0f));
  const NF4Weight w = quantize_values({0.5f, -0.25f});
  EXPECT_TRUE(same_bits(w.quant_map, floats({nf4_code().begin(), nf4_code().end()})));
}

TEST(Nf4Code, ThresholdsAreMidpointsAndTiesGoToTheLowerCode) {
  for (int c = 0; c < 15; ++c) {
    const float t = kNF4Thresholds[c];
    const double midpoint = (static_cast<double>(kNF4Code[c]) + kNF4Code[c + 1]) / 2;
    EXPECT_NEAR(t, midpoint, 1e-7) << "threshold " << c;
    EXPECT_EQ(nf4_nearest_code(t), c) << "x exactly on threshold " << c;
    EXPECT_EQ(nf4_nearest_code(std::nextafter(t, 2.0f)), c + 1) << "just above threshold " << c;
  }
  for (int c = 0; c < 16; ++c) EXPECT_EQ(nf4_nearest_code(kNF4Code[c]), c);
  EXPECT_EQ(nf4_nearest_code(std::numeric_limits<float>::quiet_NaN()), 0);
  EXPECT_EQ(nf4_nearest_code(-0.0f), 7);
  // Away from the thresholds the tree is the nearest code.
  torch::manual_seed(1);
  for (float x : floats_of(torch::rand({5000}) * 2 - 1)) {
    int best = 0;
    for (int c = 1; c < 16; ++c)
      if (std::fabs(x - kNF4Code[c]) < std::fabs(x - kNF4Code[best])) best = c;
    EXPECT_EQ(nf4_nearest_code(x), best) << x;
  }
}

TEST(DynamicMap, IsBitsandbytesSignedDynamicMap) {
  const auto& m = dynamic_map_signed();
  for (int i = 1; i < 256; ++i) EXPECT_LT(m[i - 1], m[i]) << i;
  EXPECT_EQ(m[127], 0.0f);
  EXPECT_EQ(m[255], 1.0f);
  for (int i = 0; i < 127; ++i) EXPECT_EQ(m[i], -m[254 - i]) << i;
  // Values as printed from bitsandbytes' create_dynamic_map() (double reprs of fp32 values).
  EXPECT_EQ(m[0], -0.992968738079071f);
  EXPECT_EQ(m[128], 5.500000384017767e-07f);
  EXPECT_EQ(m[142], 0.0009437500848434865f);
  EXPECT_EQ(m[234], 0.7117187976837158f);
  EXPECT_EQ(m[236], 0.7398437261581421f);
}

TEST(DynamicMap, RederivedFromTorchLinspaceWithFusedMultiplyAdd) {
  // create_dynamic_map(signed=True): torch.linspace(0.1, 1, 2**i + 1) in fp32 as PyTorch's CPU
  // kernel computes it (start + step*idx below halfway, end - step*(steps-idx-1) above, fused),
  // means of neighbours, times ±10**(i-6) (the Python scalar becomes fp32), plus 0 and 1.
  auto build = [](bool fused) {
    std::vector<float> data;
    for (int i = 0; i < 7; ++i) {
      const int steps = (1 << i) + 1;
      const float start = 0.1f, end = 1.0f;
      const float step = (end - start) / static_cast<float>(steps - 1);
      std::vector<float> b(steps);
      for (int idx = 0; idx < steps; ++idx) {
        const float k = static_cast<float>(idx < steps / 2 ? idx : steps - idx - 1);
        if (fused) {
          b[idx] = idx < steps / 2 ? std::fmaf(step, k, start) : std::fmaf(-step, k, end);
        } else {
          volatile float p = step * k;
          b[idx] = idx < steps / 2 ? start + p : end - p;
        }
      }
      const float scale = static_cast<float>(std::pow(10.0, i - 6));
      for (int j = 0; j + 1 < steps; ++j) {
        const float mean = (b[j] + b[j + 1]) / 2.0f;
        data.push_back(scale * mean);
        data.push_back(-scale * mean);
      }
    }
    data.push_back(0.0f);
    data.push_back(1.0f);
    std::sort(data.begin(), data.end());
    return data;
  };
  const auto fused = build(true), plain = build(false);
  ASSERT_EQ(fused.size(), 256u);
  int differ = 0;
  for (int i = 0; i < 256; ++i) {
    EXPECT_EQ(bits_of(fused[i]), bits_of(dynamic_map_signed()[i])) << i;
    differ += bits_of(plain[i]) != bits_of(dynamic_map_signed()[i]);
  }
  EXPECT_GT(differ, 0) << "the unfused construction is expected to differ in the last bits";
}

TEST(DynamicMap, NearestCodeRuleOfDQuantize) {
  const float* m = dynamic_map_signed().data();
  for (int k = 0; k < 256; ++k) EXPECT_EQ(nq::detail::dynamic8_nearest_code(m, m[k]), k);
  EXPECT_EQ(nq::detail::dynamic8_nearest_code(m, 1.0f), 255);
  EXPECT_EQ(nq::detail::dynamic8_nearest_code(m, -1.0f), 0);
  EXPECT_EQ(nq::detail::dynamic8_nearest_code(m, std::numeric_limits<float>::quiet_NaN()), 0);
  torch::manual_seed(2);
  for (float x : floats_of(torch::rand({5000}) * 2 - 1)) {
    const int q = nq::detail::dynamic8_nearest_code(m, x);
    // The nearest entry, up to a tie at the midpoint (which the search breaks by its path).
    for (int k = 0; k < 256; ++k) EXPECT_LE(std::fabs(x - m[q]), std::fabs(x - m[k]) + 1e-7f) << x;
  }
}

// ---------------------------------------------------------------------------------------------
// Hand-computed vectors

TEST(Nf4Quantize, PacksFirstElementInTheHighNibble) {
  NF4Weight w = quantize_values({1.0f, -1.0f});
  EXPECT_EQ(w.packed.sizes(), (std::vector<int64_t>{1, 1}));
  EXPECT_EQ(bytes_of(w.packed), (std::vector<uint8_t>{0xF0}));
  w = quantize_values({-1.0f, 1.0f, 0.0f, 0.08f});
  EXPECT_EQ(bytes_of(w.packed), (std::vector<uint8_t>{0x0F, 0x78}));
}

TEST(Nf4Quantize, OddLengthPadsTheLastLowNibbleWithTheCodeOfZero) {
  // 0.5 lies between 0.4407 and 0.5626 below their midpoint 0.5017: code 12.
  NF4Weight w = quantize_values({1.0f, 0.5f, -1.0f});
  EXPECT_EQ(w.packed.sizes(), (std::vector<int64_t>{2, 1}));
  EXPECT_EQ(bytes_of(w.packed), (std::vector<uint8_t>{0xFC, 0x07}));
  // With absmax 0 the padding is 0 * inf = NaN, which takes code 0, like every value.
  w = quantize_values({0.0f, 0.0f, 0.0f});
  EXPECT_EQ(bytes_of(w.packed), (std::vector<uint8_t>{0x00, 0x00}));
}

TEST(Nf4Quantize, ZeroBlockTakesCodeZeroAndDequantizesToZero) {
  const NF4Weight w = quantize_values(std::vector<float>(64, 0.0f));
  EXPECT_EQ(bytes_of(w.packed), std::vector<uint8_t>(32, 0x00));
  for (float v : floats_of(dequantize_nf4(w))) EXPECT_EQ(v, 0.0f);
}

TEST(Nf4Quantize, ConstantBlockTakesTheEndCodeAndRoundTripsExactly) {
  NF4Weight w = quantize_values(std::vector<float>(64, 0.75f));
  EXPECT_EQ(bytes_of(w.packed), std::vector<uint8_t>(32, 0xFF));
  for (float v : floats_of(dequantize_nf4(w))) EXPECT_EQ(v, 0.75f);
  w = quantize_values(std::vector<float>(64, -0.75f));
  EXPECT_EQ(bytes_of(w.packed), std::vector<uint8_t>(32, 0x00));
  for (float v : floats_of(dequantize_nf4(w))) EXPECT_EQ(v, -0.75f);
}

TEST(Nf4Quantize, ValueExactlyBetweenTwoCodesTakesTheLowerCode) {
  // absmax 1, so x / absmax is x itself: the threshold between code 7 (0.0) and code 8
  // (0.0796), and the one between code 6 (-0.0911) and code 7.
  const float t78 = kNF4Thresholds[7], t67 = kNF4Thresholds[6];
  const NF4Weight w =
      quantize_values({1.0f, t78, std::nextafter(t78, 1.0f), t67, std::nextafter(t67, 1.0f)});
  EXPECT_EQ(bytes_of(w.packed), (std::vector<uint8_t>{0xF7, 0x86, 0x77}));
}

TEST(Nf4Quantize, SubnormalInputsReadAsZeroLikeTheFastMathKernel) {
  const float tiny = std::numeric_limits<float>::denorm_min() * 7;
  NF4Weight w = quantize_values({1.0f, tiny, -tiny, 0.0f});
  EXPECT_EQ(bytes_of(w.packed), (std::vector<uint8_t>{0xF7, 0x77}));
  w = quantize_values({tiny, tiny});  // absmax flushes to 0: every code 0
  EXPECT_EQ(bytes_of(w.packed), (std::vector<uint8_t>{0x00}));
}

TEST(Nf4Quantize, RejectsUnsupportedInputs) {
  EXPECT_NE(error_of([] { quantize_nf4(torch::ones({4}, torch::kInt32)); }).find("Int"),
            std::string::npos);
  EXPECT_NE(error_of([] { quantize_nf4(torch::ones({0})); }).find("empty"), std::string::npos);
  EXPECT_NE(error_of([] { quantize_nf4(torch::Tensor()); }).find("undefined"), std::string::npos);
}

// ---------------------------------------------------------------------------------------------
// Double quantization and bit-identity with the Python model of bitsandbytes

TEST(Nf4DoubleQuant, AbsmaxRoundTripsWithinTheDynamicMapResolution) {
  torch::manual_seed(3);
  const int64_t blocks = 700;  // three 256-blocks of absmax, the last partial
  const torch::Tensor scales = torch::exp(torch::randn({blocks, 1}) * 0.7) * 0.02;
  const torch::Tensor x = (torch::randn({blocks, 64}) * scales).reshape({-1});
  const NF4Weight w = quantize_nf4(x);
  ASSERT_EQ(w.nested_absmax.numel(), 3);
  const auto truth = floats_of(std::get<0>(x.abs().reshape({blocks, 64}).max(1)));
  const auto deq = floats_of(nq::detail::dequantize_absmax(w));
  const auto nested = floats_of(w.nested_absmax);
  double mean = 0;
  for (float v : truth) mean += v;
  EXPECT_NEAR(w.offset, mean / blocks, 1e-6 * std::fabs(mean / blocks));
  for (int64_t b = 0; b < blocks; ++b) {
    // Largest gap of the dynamic map is 0.0140625 (near ±1): half of it, relative to the
    // 256-block's absmax of (absmax - offset).
    EXPECT_LE(std::fabs(deq[b] - truth[b]), 0.00704f * nested[b / 256] + 1e-7f) << b;
  }
}

class Nf4Golden : public ::testing::TestWithParam<const char*> {};

TEST_P(Nf4Golden, BitIdenticalToThePythonModelOfBitsandbytes) {
  const Golden g = load_golden(GetParam());
  for (int i = 0; i < 256; ++i)
    ASSERT_EQ(bits_of(g.map[i]), bits_of(dynamic_map_signed()[i])) << "dynamic map entry " << i;
  EXPECT_EQ(bits_of(nq::detail::absmax_mean(g.absmax_fp32.data(), g.n_blocks)), bits_of(g.offset));

  const NF4Weight w = quantize_values(g.input);
  ASSERT_EQ(w.numel(), g.numel);
  EXPECT_EQ(bytes_of(w.packed), g.packed);
  EXPECT_EQ(bytes_of(w.absmax_q), g.absmax_q);
  EXPECT_TRUE(same_bits(w.nested_absmax, floats(g.nested_absmax)));
  EXPECT_EQ(bits_of(w.offset), bits_of(g.offset));
  EXPECT_TRUE(same_bits(dequantize_nf4(w), floats(g.dequant)));
}

INSTANTIATE_TEST_SUITE_P(Fixtures, Nf4Golden, ::testing::Values("small_333.bin", "large_19237.bin"));

// ---------------------------------------------------------------------------------------------
// Round trips and dequantization paths

TEST(Nf4RoundTrip, GaussianMeanAbsErrorIsAboutSevenPercentOfStd) {
  torch::manual_seed(4);
  const torch::Tensor x = torch::randn({768, 768}) * 0.05;
  const torch::Tensor y = dequantize_nf4(quantize_nf4(x));
  ASSERT_EQ(y.sizes(), x.sizes());
  const double rel = (x - y).abs().mean().item<double>() / x.std().item<double>();
  std::printf("NF4 mean |x - dequant(quant(x))| = %.4f std\n", rel);
  EXPECT_GT(rel, 0.06);
  EXPECT_LT(rel, 0.085);
}

TEST(Nf4RoundTrip, NumelNotAMultipleOf64MatchesThePlainReference) {
  torch::manual_seed(5);
  for (const std::vector<int64_t>& shape :
       std::vector<std::vector<int64_t>>{{7, 13}, {3, 100}, {1}, {65}, {2, 64 * 257 + 3}}) {
    const torch::Tensor x = torch::randn(shape);
    const NF4Weight w = quantize_nf4(x);
    EXPECT_EQ(w.shape, shape);
    const torch::Tensor y = dequantize_nf4(w);
    EXPECT_EQ(y.sizes(), x.sizes());
    EXPECT_TRUE(same_bits(y, naive_dequantize(w))) << c10::str(x.sizes());
    // Within the largest half-gap of the code book (0.1385) of the block's absmax, plus the
    // error of the quantized absmax.
    EXPECT_LE((x - y).abs().max().item<float>(), 0.16f * x.abs().max().item<float>());
  }
}

TEST(Nf4Dequant, HalfAndBFloat16OutputsAreTheFp32ResultRoundedOnce) {
  torch::manual_seed(6);
  const NF4Weight w = quantize_nf4(torch::randn({33, 77}));
  const torch::Tensor f32 = dequantize_nf4(w, torch::kFloat32);
  for (auto dt : {torch::kFloat16, torch::kBFloat16}) {
    const torch::Tensor y = dequantize_nf4(w, dt);
    EXPECT_EQ(y.scalar_type(), dt);
    EXPECT_TRUE(torch::equal(y, f32.to(dt))) << c10::toString(dt);
  }
  EXPECT_NE(error_of([&] { dequantize_nf4(w, torch::kFloat64); }).find("Double"), std::string::npos);
}

// A weight of any block size, with random codes and scales (bitsandbytes checkpoints may use
// 32..4096; quantize_nf4 writes 64 only).
NF4Weight random_weight(std::vector<int64_t> shape, int blocksize, uint64_t seed) {
  torch::manual_seed(seed);
  NF4Weight w;
  w.shape = shape;
  w.blocksize = blocksize;
  const int64_t n = w.numel();
  w.packed = torch::randint(0, 256, {(n + 1) / 2, 1}, torch::kUInt8);
  w.absmax_q = torch::randint(0, 256, {w.n_blocks()}, torch::kUInt8);
  w.nested_absmax = torch::rand({(w.n_blocks() + w.nested_blocksize - 1) / w.nested_blocksize}) + 0.5;
  w.nested_quant_map = floats(std::vector<float>(dynamic_map_signed().begin(), dynamic_map_signed().end()));
  w.quant_map = floats(std::vector<float>(kNF4Code.begin(), kNF4Code.end()));
  w.offset = 0.03125f;
  return w;
}

// Restores the automatic choice when a test ends, failed or not.
struct IsaGuard {
  ~IsaGuard() { force_nf4_cpu_isa(Nf4CpuIsa::kAuto); }
};

TEST(Nf4Dequant, EveryInstructionSetOfThisCpuGivesTheSameBitsAsThePlainReference) {
  const IsaGuard guard;
  const Nf4CpuIsa best = nf4_cpu_isa_available();
  std::printf("NF4 CPU dequantization: best instruction set here %s\n", nf4_cpu_isa_name(best));
  struct Case { std::vector<int64_t> shape; int blocksize; };
  // Odd lengths, blocks shorter than one vector, blocks that are not a multiple of the vector,
  // a partial last block, and more blocks than one parallel task takes.
  const std::vector<Case> cases = {{{1}, 64},         {{7, 13}, 64},   {{3, 100}, 2},  {{5, 37}, 18},
                                   {{4, 1000}, 128},  {{9, 511}, 32},  {{3, 4097}, 4096},
                                   {{2, 64 * 1300 + 5}, 64}};
  for (int level = 0; level <= static_cast<int>(best); ++level) {
    const auto isa = static_cast<Nf4CpuIsa>(level);
    force_nf4_cpu_isa(isa);
    EXPECT_EQ(nf4_cpu_isa(), isa);
    for (size_t i = 0; i < cases.size(); ++i) {
      const NF4Weight w = random_weight(cases[i].shape, cases[i].blocksize, 100 + i);
      const torch::Tensor ref = naive_dequantize(w);
      const torch::Tensor f32 = dequantize_nf4(w, torch::kFloat32);
      EXPECT_TRUE(same_bits(f32, ref)) << nf4_cpu_isa_name(isa) << " case " << i;
      for (auto dt : {torch::kFloat16, torch::kBFloat16})
        EXPECT_TRUE(torch::equal(dequantize_nf4(w, dt), ref.to(dt)))
            << nf4_cpu_isa_name(isa) << " case " << i << " " << c10::toString(dt);
    }
  }
  if (best != Nf4CpuIsa::kAvx512)
    std::printf("(this CPU lacks AVX-512%s: those paths were not run)\n", best == Nf4CpuIsa::kScalar ? " and AVX2" : "");
}

TEST(Nf4Dequant, ForcingAnInstructionSetTheCpuLacksIsAnError) {
  const IsaGuard guard;
  const auto beyond = static_cast<Nf4CpuIsa>(static_cast<int>(nf4_cpu_isa_available()) + 1);
  EXPECT_NE(error_of([&] { force_nf4_cpu_isa(beyond); }).find("not available"), std::string::npos);
  EXPECT_EQ(nf4_cpu_isa(), nf4_cpu_isa_available());
}

TEST(Nf4Quantize, HalfPrecisionWeightsQuantizeAsTheirFp32Values) {
  torch::manual_seed(7);
  const torch::Tensor x = torch::randn({40, 50});
  for (auto dt : {torch::kFloat16, torch::kBFloat16}) {
    const NF4Weight a = quantize_nf4(x.to(dt));
    const NF4Weight b = quantize_nf4(x.to(dt).to(torch::kFloat32));
    EXPECT_EQ(a.dtype, dt);
    EXPECT_EQ(bytes_of(a.packed), bytes_of(b.packed));
    EXPECT_EQ(bytes_of(a.absmax_q), bytes_of(b.absmax_q));
    EXPECT_EQ(bits_of(a.offset), bits_of(b.offset));
  }
}

// ---------------------------------------------------------------------------------------------
// bitsandbytes state dict

TEST(Nf4StateDict, KeysDtypesShapesAndQuantStateFollowBitsandbytes) {
  torch::manual_seed(8);
  const NF4Weight w = quantize_nf4(torch::randn({96, 80}).to(torch::kBFloat16));
  const auto sd = to_bnb_state_dict(w, "distilbert.transformer.layer.0.attention.q_lin");
  const std::string k = "distilbert.transformer.layer.0.attention.q_lin.weight";
  std::set<std::string> keys;
  for (const auto& [name, t] : sd) keys.insert(name);
  EXPECT_EQ(keys, (std::set<std::string>{k, k + ".absmax", k + ".quant_map", k + ".nested_absmax",
                                         k + ".nested_quant_map",
                                         k + ".quant_state.bitsandbytes__nf4"}));
  EXPECT_EQ(sd.at(k).scalar_type(), torch::kUInt8);
  EXPECT_EQ(sd.at(k).sizes(), (std::vector<int64_t>{96 * 80 / 2, 1}));
  EXPECT_EQ(sd.at(k + ".absmax").scalar_type(), torch::kUInt8);
  EXPECT_EQ(sd.at(k + ".absmax").sizes(), (std::vector<int64_t>{120}));
  EXPECT_EQ(sd.at(k + ".quant_map").sizes(), (std::vector<int64_t>{16}));
  EXPECT_EQ(sd.at(k + ".nested_absmax").scalar_type(), torch::kFloat32);
  EXPECT_EQ(sd.at(k + ".nested_absmax").sizes(), (std::vector<int64_t>{1}));
  EXPECT_EQ(sd.at(k + ".nested_quant_map").sizes(), (std::vector<int64_t>{256}));
  const auto qs = bytes_of(sd.at(k + ".quant_state.bitsandbytes__nf4"));
  // Exactly what json.dumps(non_tensor_dict) writes in QuantState.as_dict(packed=True).
  const std::string expected =
      R"({"quant_type": "nf4", "blocksize": 64, "dtype": "bfloat16", "shape": [96, 80], )"
      R"("nested_blocksize": 256, "nested_dtype": "float32", "nested_offset": )" +
      nq::detail::python_float_repr(w.offset) + "}";
  EXPECT_EQ(std::string(qs.begin(), qs.end()), expected);
  EXPECT_EQ(to_bnb_state_dict(w, "").count("weight.absmax"), 1u);
}

TEST(Nf4StateDict, OffsetIsWrittenAsPythonReprOfTheDouble) {
  EXPECT_EQ(nq::detail::python_float_repr(0.0), "0.0");
  EXPECT_EQ(nq::detail::python_float_repr(1.0), "1.0");
  EXPECT_EQ(nq::detail::python_float_repr(-2.0), "-2.0");
  EXPECT_EQ(nq::detail::python_float_repr(0.1), "0.1");
  EXPECT_EQ(nq::detail::python_float_repr(0.0001), "0.0001");
  EXPECT_EQ(nq::detail::python_float_repr(1e-05), "1e-05");
  EXPECT_EQ(nq::detail::python_float_repr(1.5e-05), "1.5e-05");
  EXPECT_EQ(nq::detail::python_float_repr(123456789.0), "123456789.0");
  EXPECT_EQ(nq::detail::python_float_repr(1e16), "1e+16");
  EXPECT_EQ(nq::detail::python_float_repr(static_cast<double>(0.1f)), "0.10000000149011612");
  EXPECT_EQ(nq::detail::python_float_repr(static_cast<double>(0.05317417159676552f)), "0.05317417159676552");
}

TEST(Nf4StateDict, RoundTripRestoresTheWeight) {
  torch::manual_seed(9);
  const NF4Weight w = quantize_nf4(torch::randn({3, 7, 11}).to(torch::kFloat16));
  const NF4Weight r = from_bnb_state_dict(to_bnb_state_dict(w, "m"), "m");
  EXPECT_EQ(r.shape, w.shape);
  EXPECT_EQ(r.dtype, torch::kFloat16);
  EXPECT_EQ(r.blocksize, 64);
  EXPECT_EQ(r.nested_blocksize, 256);
  EXPECT_EQ(bits_of(r.offset), bits_of(w.offset));
  EXPECT_EQ(bytes_of(r.packed), bytes_of(w.packed));
  EXPECT_EQ(bytes_of(r.absmax_q), bytes_of(w.absmax_q));
  EXPECT_TRUE(same_bits(r.nested_absmax, w.nested_absmax));
  EXPECT_TRUE(same_bits(r.nested_quant_map, w.nested_quant_map));
  EXPECT_TRUE(same_bits(dequantize_nf4(r), dequantize_nf4(w)));
}

TEST(Nf4StateDict, AcceptsAnyJsonSpellingOfTheQuantState) {
  const NF4Weight w = quantize_values({0.5f, -0.25f, 0.125f});
  auto sd = to_bnb_state_dict(w, "x");
  const std::string json =
      R"({"nested_offset":0.5,"shape":[3],"dtype":"float32","blocksize":64,"quant_type":"nf4",)"
      R"("nested_dtype":"float32","nested_blocksize":256})";
  torch::Tensor t = torch::empty({static_cast<int64_t>(json.size())}, torch::kUInt8);
  std::memcpy(t.data_ptr<uint8_t>(), json.data(), json.size());
  sd["x.weight.quant_state.bitsandbytes__nf4"] = t;
  EXPECT_EQ(from_bnb_state_dict(sd, "x").offset, 0.5f);
}

TEST(Nf4StateDict, FromBnbStateDictNamesTheMissingOrMalformedKey) {
  const NF4Weight w = quantize_values(std::vector<float>(100, 0.5f));
  const auto good = to_bnb_state_dict(w, "lin");
  auto with = [&](const std::string& key, const torch::Tensor& t) {
    auto sd = good;
    if (t.defined()) sd[key] = t; else sd.erase(key);
    return sd;
  };
  auto json_tensor = [](const std::string& s) {
    torch::Tensor t = torch::empty({static_cast<int64_t>(s.size())}, torch::kUInt8);
    std::memcpy(t.data_ptr<uint8_t>(), s.data(), s.size());
    return t;
  };
  for (const auto& [key, t] : good) {
    const std::string msg = error_of([&] { from_bnb_state_dict(with(key, torch::Tensor()), "lin"); });
    EXPECT_NE(msg.find("missing key '" + key + "'"), std::string::npos) << msg;
  }
  const std::string qs = "lin.weight.quant_state.bitsandbytes__nf4";
  struct Case {
    std::string key;
    torch::Tensor value;
    std::string expect;
  };
  const std::vector<Case> cases = {
      {"lin.weight.absmax", torch::zeros({2}), "'lin.weight.absmax' must be Byte"},
      {"lin.weight", torch::zeros({50, 1}, torch::kUInt8).to(torch::kInt8), "'lin.weight' must be Byte"},
      {"lin.weight", torch::zeros({49, 1}, torch::kUInt8), "'lin.weight' has 49 bytes"},
      {"lin.weight.absmax", torch::zeros({3}, torch::kUInt8), "'lin.weight.absmax' has 3 entries"},
      {"lin.weight.nested_absmax", torch::zeros({2}), "'lin.weight.nested_absmax' has 2 entries"},
      {"lin.weight.nested_quant_map", torch::zeros({16}), "'lin.weight.nested_quant_map' has 16"},
      {"lin.weight.quant_map", torch::zeros({16}), "'lin.weight.quant_map' is not the NF4 code book"},
      {qs, json_tensor("{not json"), "'" + qs + "' does not hold valid JSON"},
      {qs, json_tensor(R"({"quant_type": "fp4"})"), "quant_type \"fp4\""},
      {qs, json_tensor(R"({"quant_type": "nf4"})"), "lacks the field \"blocksize\""},
      {qs, json_tensor(R"({"quant_type": "nf4", "blocksize": 63})"), "\"blocksize\" must be even"},
      {qs, json_tensor(R"({"quant_type": "nf4", "blocksize": 64, "dtype": "int8", "shape": [100]})"),
       "\"dtype\" is \"int8\""},
      {qs, json_tensor(R"({"quant_type": "nf4", "blocksize": 64, "dtype": "float32", "shape": "x"})"),
       "\"shape\" must be a list"},
  };
  for (const Case& c : cases) {
    const std::string msg = error_of([&] { from_bnb_state_dict(with(c.key, c.value), "lin"); });
    EXPECT_NE(msg.find(c.expect), std::string::npos) << "expected '" << c.expect << "' in: " << msg;
  }
  auto fp4 = good;
  fp4.erase(qs);
  fp4["lin.weight.quant_state.bitsandbytes__fp4"] = json_tensor("{}");
  EXPECT_NE(error_of([&] { from_bnb_state_dict(fp4, "lin"); }).find("bitsandbytes__fp4' is FP4"),
            std::string::npos);
  EXPECT_NE(error_of([&] { from_bnb_state_dict(good, "other"); }).find("'other.weight'"),
            std::string::npos);
}

// ---------------------------------------------------------------------------------------------
// nf4_linear

TEST(Nf4Linear, ForwardEqualsXTimesDequantizedWeightTransposedPlusBias) {
  torch::manual_seed(10);
  const NF4Weight w = quantize_nf4(torch::randn({48, 96}) * 0.05);
  const torch::Tensor x = torch::randn({4, 5, 96});
  const torch::Tensor b = torch::randn({48});
  const torch::Tensor y = nf4_linear(x, w, b);
  const torch::Tensor expected = x.matmul(dequantize_nf4(w).t()) + b;
  EXPECT_EQ(y.sizes(), (std::vector<int64_t>{4, 5, 48}));
  EXPECT_TRUE(torch::allclose(y, expected, 1e-5, 1e-6));
}

TEST(Nf4Linear, GradientsMatchAutogradOnThePlainFormula) {
  torch::manual_seed(11);
  const NF4Weight w = quantize_nf4(torch::randn({32, 40}) * 0.05);
  const torch::Tensor x0 = torch::randn({6, 40});
  const torch::Tensor b0 = torch::randn({32});
  const torch::Tensor g = torch::randn({6, 32});

  torch::Tensor x = x0.clone().requires_grad_(true), b = b0.clone().requires_grad_(true);
  (nf4_linear(x, w, b) * g).sum().backward();

  torch::Tensor x2 = x0.clone().requires_grad_(true), b2 = b0.clone().requires_grad_(true);
  const torch::Tensor W = dequantize_nf4(w);  // frozen: no gradient
  (torch::addmm(b2, x2, W.t()) * g).sum().backward();

  EXPECT_TRUE(torch::allclose(x.grad(), x2.grad(), 1e-5, 1e-6));
  EXPECT_TRUE(torch::allclose(b.grad(), b2.grad(), 1e-5, 1e-6));
  EXPECT_FALSE(w.packed.requires_grad());
}

TEST(Nf4Linear, RunsInBFloat16WithoutBias) {
  torch::manual_seed(12);
  const NF4Weight w = quantize_nf4(torch::randn({16, 64}));
  const torch::Tensor x = torch::randn({3, 64}).to(torch::kBFloat16).requires_grad_(true);
  const torch::Tensor y = nf4_linear(x, w, torch::Tensor());
  EXPECT_EQ(y.scalar_type(), torch::kBFloat16);
  const torch::Tensor ref = x.detach().to(torch::kFloat32).matmul(dequantize_nf4(w).t());
  EXPECT_TRUE(torch::allclose(y.to(torch::kFloat32), ref, 2e-2, 5e-2));
  y.sum().backward();
  EXPECT_EQ(x.grad().scalar_type(), torch::kBFloat16);
  EXPECT_EQ(x.grad().sizes(), x.sizes());
  EXPECT_NE(error_of([&] { nf4_linear(torch::randn({2, 63}), w, torch::Tensor()); }).find("in_features=64"),
            std::string::npos);
}

// ---------------------------------------------------------------------------------------------
// Storage, CUDA, speed

TEST(Nf4Storage, BitsPerParameterOf768x768IsAbout4Point127) {
  const NF4Weight w = quantize_nf4(torch::randn({768, 768}));
  const double n = 768.0 * 768.0;
  const int64_t fixed = 16 * 4 + 256 * 4 + 4;  // quant_map, nested_quant_map, offset
  EXPECT_EQ(w.storage_bytes(), 768 * 768 / 2 + 9216 + 36 * 4 + fixed);
  const double per_param = (w.storage_bytes() - fixed) * 8 / n;
  EXPECT_NEAR(per_param, 4.0 + 8.0 / 64 + 32.0 / (64 * 256), 1e-3);  // 4.127
  EXPECT_LT(w.storage_bytes() * 8 / n, 4.15);
}

TEST(Nf4Cuda, DequantizationMatchesTheCpuReferenceBitForBit) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  torch::manual_seed(13);
  const NF4Weight cpu = quantize_nf4(torch::randn({333, 517}));  // odd numel, partial blocks
  const NF4Weight gpu = cpu.to(torch::Device(torch::kCUDA));
#ifdef PEFT_WITH_CUDA
  for (auto dt : {torch::kFloat32, torch::kFloat16, torch::kBFloat16}) {
    const torch::Tensor a = dequantize_nf4(gpu, dt).cpu(), b = dequantize_nf4(cpu, dt);
    EXPECT_TRUE(torch::equal(a, b)) << c10::toString(dt);
  }
#else
  try {
    dequantize_nf4(gpu);
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("peft-sweep was not compiled with CUDA"), std::string::npos);
  }
#endif
}

TEST(Nf4Benchmark, CpuDequantThroughputOf768x3072) {
  torch::manual_seed(14);
  const NF4Weight w = quantize_nf4(torch::randn({768, 3072}));
  for (auto dt : {torch::kFloat32, torch::kBFloat16}) {
    dequantize_nf4(w, dt);  // warm up
    double s = 1e9;  // best of several: the machine is shared
    for (int i = 0; i < 20; ++i) {
      const auto t0 = std::chrono::steady_clock::now();
      dequantize_nf4(w, dt);
      s = std::min(s, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    const double bytes = static_cast<double>(w.storage_bytes()) +
                         static_cast<double>(w.numel()) * c10::elementSize(dt);
    std::printf("CPU NF4 dequant 768x3072 -> %s: %.3f ms, %.2f GB/s (read + written), %d threads\n",
                c10::toString(dt), s * 1e3, bytes / s / 1e9, at::get_num_threads());
  }
}
