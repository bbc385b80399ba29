// log2 and exp2 from float bits and fixed polynomials, so the mixers do not depend on the C library's
// versions of log and exp (both sides must compute the same bits on any machine).
#pragma once

#include <cstdint>
#include <cstring>

namespace nncpp {

inline float log2_approx(float x) {  // x > 0, absolute error < 1e-4
  uint32_t bits;
  std::memcpy(&bits, &x, 4);
  const float e = static_cast<float>(static_cast<int>((bits >> 23) & 0xFF) - 127);
  bits = (bits & 0x007FFFFFu) | 0x3F800000u;  // mantissa in [1, 2)
  float m;
  std::memcpy(&m, &bits, 4);
  const float t = (m - 1.0f) / (m + 1.0f);  // log2(m) = 2/ln2 · atanh(t), |t| < 1/3
  const float t2 = t * t;
  return e + t * (2.885390082f + t2 * (0.961796694f + t2 * (0.577078016f + t2 * 0.412198583f)));
}

inline float exp2_approx(float x) {  // |x| <= 60, relative error < 1e-5
  const float fl = static_cast<float>(static_cast<int>(x >= 0 ? x : x - 1.0f));
  const float f = x - fl;  // [0, 1)
  const float p =
      1.0f + f * (0.693147181f +
                  f * (0.240226507f + f * (0.0555041087f + f * (0.00961812911f + f * 0.00133335581f))));
  const uint32_t bits = static_cast<uint32_t>(static_cast<int>(fl) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, 4);
  return p * scale;
}

}  // namespace nncpp
