// Float probabilities -> integer cumulative frequencies for the range coder (range_coder.h).
// This is part of the file format: the compressor and the decompressor must build bit-identical tables
// from the same floats, so the arithmetic is plain IEEE double in a fixed order (see quantize.cpp).
#pragma once

#include <cstdint>

namespace nncpp {

constexpr int kFreqBits = 31;
constexpr uint32_t kFreqTotal = 1u << kFreqBits;
constexpr int kMaxVocab = 65536;

// Builds cum[0..vocab] (vocab + 1 entries) with cum[0] = 0, cum[vocab] = kFreqTotal and every frequency
// cum[i+1] - cum[i] >= 1, for 1 <= vocab <= kMaxVocab:
//   freq_i = 1 + floor(p_i * (kFreqTotal - vocab) / sum(p)); the rounding remainder goes to the first
//   symbol of largest freq_i (the first most probable one).
// Inputs that are not finite, negative or below FLT_MIN (denormals) count as 0, so a broken model cannot
// break the table and the result does not depend on the denormals-are-zero flag; all zero -> uniform.
void quantize(const float* probs, int vocab, uint32_t* cum);

// The symbol s with cum[s] <= target < cum[s+1]; targets >= cum[vocab] give vocab - 1.
inline uint32_t find_symbol(const uint32_t* cum, int vocab, uint32_t target) {
  // Branchless lower bound: the answer stays in [base, base + n).
  const uint32_t* base = cum;
  uint32_t n = static_cast<uint32_t>(vocab);
  while (n > 1) {
    const uint32_t half = n / 2;
    base = base[half] <= target ? base + half : base;
    n -= half;
  }
  return static_cast<uint32_t>(base - cum);
}

}  // namespace nncpp
