// Weight initialisation shared by the predictors: our own splitmix64 stream, so that weights (and dropout
// masks) do not depend on LibTorch's random generators, which differ between versions and devices.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <vector>

namespace nncpp {

inline uint64_t splitmix64(uint64_t* state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// A float32 tensor of `shape` on `device`, uniform in [-scale, scale), drawn from *rng in row-major order.
inline torch::Tensor uniform_weights(const std::vector<int64_t>& shape, float scale, uint64_t* rng,
                                     torch::Device device) {
  torch::Tensor cpu = torch::empty(shape, torch::kFloat32);
  float* p = cpu.data_ptr<float>();
  for (int64_t i = 0, n = cpu.numel(); i < n; ++i) {
    double u = static_cast<double>(splitmix64(rng) >> 11) * (1.0 / 9007199254740992.0);  // [0, 1)
    p[i] = static_cast<float>((2.0 * u - 1.0) * scale);
  }
  return cpu.to(device);
}

}  // namespace nncpp
