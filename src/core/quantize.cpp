#include "core/quantize.h"

#include <cstring>

namespace nncpp {
namespace {

// p if it is a positive, normal, finite float, else 0 (NaN, infinities, negatives, zeros, denormals).
// Tested on the bits so that the loops vectorize and a denormal reads as 0 whether or not the FPU treats
// denormal inputs as zero.
inline float sanitize(float p) {
  uint32_t b;
  std::memcpy(&b, &p, 4);
  b &= 0u - static_cast<uint32_t>(b - 0x00800000u < 0x7F000000u);
  std::memcpy(&p, &b, 4);
  return p;
}

}  // namespace

// Determinism: plain IEEE double arithmetic in a fixed order (compilers do not reassociate it without
// -ffast-math, and there is no a*b+c to contract into an FMA), with round-to-nearest.
void quantize(const float* probs, int vocab, uint32_t* cum) {
  const int v = vocab;
  const uint32_t spare = kFreqTotal - static_cast<uint32_t>(v);  // mass left after the floor of 1 each

  // Four fixed lanes (i mod 4) added in a fixed order: deterministic, yet not one long addition chain.
  double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  int i = 0;
  for (; i + 4 <= v; i += 4) {
    s0 += sanitize(probs[i]);
    s1 += sanitize(probs[i + 1]);
    s2 += sanitize(probs[i + 2]);
    s3 += sanitize(probs[i + 3]);
  }
  for (; i < v; ++i) s0 += sanitize(probs[i]);
  const double sum = (s0 + s1) + (s2 + s3);

  // Frequencies into cum[1..v]. Each sanitized p is <= sum (rounding is monotone), so p * scale is at most
  // spare * (1 + 2^-52) < 2^31: the int32 conversion cannot overflow and the total is <= kFreqTotal.
  uint32_t total = 0, fmax = 0;
  if (sum > 0) {
    const double scale = static_cast<double>(spare) / sum;
    for (i = 0; i < v; ++i) {
      const uint32_t f =
          1 + static_cast<uint32_t>(static_cast<int32_t>(static_cast<double>(sanitize(probs[i])) * scale));
      cum[i + 1] = f;
      total += f;
      fmax = f > fmax ? f : fmax;
    }
  } else {  // nothing usable: uniform
    const uint32_t f = 1 + spare / static_cast<uint32_t>(v);
    for (i = 0; i < v; ++i) cum[i + 1] = f;
    total = f * static_cast<uint32_t>(v);
    fmax = f;
  }

  // The rounding remainder goes to the first most probable symbol, then the prefix sums.
  int top = 0;
  while (cum[top + 1] != fmax) ++top;
  cum[top + 1] += kFreqTotal - total;
  cum[0] = 0;
  uint32_t c = 0;
  for (i = 1; i <= v; ++i) cum[i] = c += cum[i];
}

}  // namespace nncpp
