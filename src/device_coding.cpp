#include "device_coding.h"

#include <cfloat>

#include "nncpp/quantize.h"

namespace nncpp {

void DeviceCoder::set(const torch::Tensor& probs) {
  torch::NoGradGuard no_grad;
  const int64_t V = probs.size(1);
  probs_ = probs;
  // Only positive, normal, finite probabilities count (as in quantize()); all-zero rows become uniform.
  torch::Tensor p = probs.to(torch::kFloat64);
  p = torch::where(torch::isfinite(p) & (p >= static_cast<double>(FLT_MIN)), p, torch::zeros_like(p));
  torch::Tensor sum = p.sum(1, /*keepdim=*/true);  // [B, 1]
  torch::Tensor usable = sum > 0;
  const double spare = static_cast<double>(kFreqTotal - static_cast<uint32_t>(V));
  torch::Tensor scale = torch::where(usable, spare / sum, torch::zeros_like(sum));
  torch::Tensor freq = (p * scale).floor_().to(torch::kInt64).add_(1);  // [B, V], p * scale < 2^31
  freq = torch::where(usable, freq, torch::full_like(freq, 1 + static_cast<int64_t>(spare) / V));
  // The remainder goes to the first most probable symbol (argmax returns the first maximum).
  torch::Tensor top = freq.argmax(1, /*keepdim=*/true);  // [B, 1]
  torch::Tensor rest = static_cast<int64_t>(kFreqTotal) - freq.sum(1, /*keepdim=*/true);
  freq.scatter_add_(1, top, rest);
  freq_ = freq;
  high_ = freq.cumsum(1);
}

void DeviceCoder::fetch(const torch::Tensor& chosen, const uint8_t* live, uint16_t* symbols,
                        SymbolRange* out) {
  // [4, B] doubles: symbol, low, freq, prob (all exact in double: < 2^31 or a float).
  torch::Tensor index = chosen.unsqueeze(1);  // [B, 1]
  torch::Tensor freq = freq_.gather(1, index).squeeze(1);
  torch::Tensor low = high_.gather(1, index).squeeze(1) - freq;
  torch::Tensor prob = probs_.gather(1, index).squeeze(1);
  torch::Tensor host = torch::stack({chosen.to(torch::kFloat64), low.to(torch::kFloat64),
                                     freq.to(torch::kFloat64), prob.to(torch::kFloat64)})
                           .to(torch::kCPU);
  const int64_t B = chosen.size(0);
  const double* h = host.data_ptr<double>();
  for (int64_t b = 0; b < B; ++b) {
    if (!live[b]) continue;
    if (symbols != nullptr) symbols[b] = static_cast<uint16_t>(h[b]);
    out[b] = SymbolRange{static_cast<uint32_t>(h[B + b]), static_cast<uint32_t>(h[2 * B + b]),
                         static_cast<float>(h[3 * B + b])};
  }
}

void DeviceCoder::ranges(const uint16_t* symbols, const uint8_t* live, SymbolRange* out) {
  torch::NoGradGuard no_grad;
  const int64_t B = probs_.size(0);
  torch::Tensor chosen = torch::empty({B}, torch::kInt64);
  for (int64_t b = 0; b < B; ++b) chosen.data_ptr<int64_t>()[b] = live[b] ? symbols[b] : 0;
  fetch(chosen.to(probs_.device()), live, nullptr, out);
}

void DeviceCoder::find(const uint32_t* targets, const uint8_t* live, uint16_t* symbols, SymbolRange* out) {
  torch::NoGradGuard no_grad;
  const int64_t B = probs_.size(0), V = probs_.size(1);
  torch::Tensor t = torch::empty({B, 1}, torch::kInt64);
  for (int64_t b = 0; b < B; ++b) t.data_ptr<int64_t>()[b] = live[b] ? targets[b] : 0;
  // The symbol s with high[s - 1] <= target < high[s]: the first s whose high exceeds the target.
  torch::Tensor chosen =
      torch::searchsorted(high_, t.to(probs_.device()), /*out_int32=*/false, /*right=*/true)
          .squeeze(1)
          .clamp_max_(V - 1);
  fetch(chosen, live, symbols, out);
}

}  // namespace nncpp
