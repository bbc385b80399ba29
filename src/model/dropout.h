// Dropout masks from our own splitmix64 stream (never Torch's RNG), so compressor and decompressor drop the
// same units. Two ways to draw the same masks:
//
//   host:   the CPU draws every 16-bit value in turn and copies the mask to the device (the CPU path);
//   device: splitmix64 is counter-based (output j of the stream that starts at state s is
//           mix(s + (j + 1) * gamma)), so Torch int64 ops compute all outputs at once where the model runs.
//           The start state is read from a [1] int64 tensor when the ops run: a CUDA graph that captured
//           them draws fresh masks on every replay from the seed written there. Retraining level 12 on the
//           host cost about a second per pass (335M draws); on the GPU it is a few small kernels.
//
// Each mask of n elements takes ceil(n / 4) outputs, four 16-bit draws each, low bits first; a draw below
// p * 65536 drops its unit (0), others keep it (1 / (1 - p)). Both ways give bit-identical masks
// (tests/unit/test_transformer.cpp).
#pragma once

#include <torch/torch.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "weight_init.h"

namespace nncpp {

class DropoutMasks {
 public:
  // Host draws from splitmix64 state `seed`; masks are copied to `device`.
  DropoutMasks(float p, uint64_t seed, torch::Device device)
      : threshold_(threshold(p)), keep_scale_(1.0f / (1.0f - p)), state_(seed), device_(device) {}
  // Device draws: seed [1] int64 holds the start state (as its two's-complement bits) on the masks' device.
  DropoutMasks(float p, torch::Tensor seed)
      : threshold_(threshold(p)), keep_scale_(1.0f / (1.0f - p)), device_(seed.device()), seed_(seed) {}

  // [shape] float32 of 0 (dropped, probability p) or 1 / (1 - p), on the device.
  torch::Tensor mask(const std::vector<int64_t>& shape) {
    return seed_.defined() ? device_mask(shape) : host_mask(shape);
  }

 private:
  static uint32_t threshold(float p) { return static_cast<uint32_t>(std::lround(p * 65536.0)); }

  torch::Tensor host_mask(const std::vector<int64_t>& shape) {
    torch::Tensor cpu = torch::empty(shape, torch::kFloat32);
    float* out = cpu.data_ptr<float>();
    uint64_t bits = 0;
    for (int64_t i = 0, n = cpu.numel(); i < n; ++i) {
      if (i % 4 == 0) bits = splitmix64(&state_);
      out[i] = (bits & 0xffff) < threshold_ ? 0.0f : keep_scale_;
      bits >>= 16;
    }
    return cpu.to(device_);
  }

  // Logical right shift of int64 values (Torch's >> is arithmetic).
  static torch::Tensor shift_right(const torch::Tensor& z, int k) {
    return z.__rshift__(k).bitwise_and_(static_cast<int64_t>((~0ull) >> k));
  }
  static torch::Scalar bits(uint64_t v) { return torch::Scalar(static_cast<int64_t>(v)); }

  torch::Tensor device_mask(const std::vector<int64_t>& shape) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    const int64_t words = (n + 3) / 4;
    auto int64 = torch::TensorOptions().dtype(torch::kInt64).device(device_);
    // state of output j: seed + (j + 1) * gamma (mod 2^64; int64 arithmetic wraps)
    torch::Tensor z = torch::arange(used_ + 1, used_ + 1 + words, int64).mul_(bits(0x9e3779b97f4a7c15ull));
    z.add_(seed_);
    used_ += words;
    z = z.bitwise_xor(shift_right(z, 30)).mul_(bits(0xbf58476d1ce4e5b9ull));
    z = z.bitwise_xor(shift_right(z, 27)).mul_(bits(0x94d049bb133111ebull));
    z = z.bitwise_xor(shift_right(z, 31));
    // [words, 4] 16-bit draws, low bits first
    torch::Tensor lanes = z.unsqueeze(1)
                              .__rshift__(torch::arange(0, 64, 16, int64))  // no host data: capturable
                              .bitwise_and_(0xffff)
                              .reshape({-1})
                              .narrow(0, 0, n);
    return lanes.ge(static_cast<int64_t>(threshold_)).to(torch::kFloat32).mul_(keep_scale_).view(shape);
  }

  uint32_t threshold_;
  float keep_scale_;
  uint64_t state_ = 0;  // host draws
  torch::Device device_;
  torch::Tensor seed_;  // device draws
  int64_t used_ = 0;    // device draws: outputs of the stream taken by earlier masks
};

}  // namespace nncpp
