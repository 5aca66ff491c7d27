#pragma once
// Seeded randomness that is the same on every platform and standard library.
// std::mt19937_64's output sequence is fixed by the standard, but the std::*_distribution
// classes are not, so the bounded and real draws here are written out by hand.
#include <cstdint>
#include <random>
#include <vector>

namespace peft::data {

/// SplitMix64 finaliser (Steele, Lea & Flood, "Fast splittable pseudorandom number
/// generators", OOPSLA 2014): decorrelates nearby seeds.
inline uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

/// An independent stream for (seed, stream), e.g. (seed, epoch) or (seed, split).
inline uint64_t derive_seed(uint64_t seed, uint64_t stream) {
  return splitmix64(splitmix64(seed) ^ (stream * 0xD1B54A32D192ED03ull + 1));
}

class Rng {
 public:
  explicit Rng(uint64_t seed) : g_(splitmix64(seed)) {}
  uint64_t next() { return g_(); }
  /// Uniform in [0, n), unbiased (rejection of the short top range); n > 0.
  uint64_t below(uint64_t n) {
    const uint64_t limit = ~uint64_t{0} - (~uint64_t{0} % n);  // multiple of n
    uint64_t x;
    do x = g_(); while (x >= limit);
    return x % n;
  }
  /// Uniform in [0, 1) with 53 random bits.
  double uniform() { return static_cast<double>(g_() >> 11) * 0x1.0p-53; }
  bool chance(double p) { return uniform() < p; }
  template <typename T>
  const T& pick(const std::vector<T>& v) { return v[below(v.size())]; }
  /// Fisher–Yates.
  template <typename T>
  void shuffle(std::vector<T>& v) {
    for (std::size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[below(i)]);
  }

 private:
  std::mt19937_64 g_;
};

}  // namespace peft::data
