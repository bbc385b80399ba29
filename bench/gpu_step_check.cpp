// On a CUDA machine: the Transformer's one-position step (the fused kernels of src/model/step_kernels.h when
// the build has them) against the training forward over the same memory and weights, at level 12's head
// size, memory, segment and streams (two layers and a small vocabulary, to be quick). The unit test
// CachedStepsEqualTheBatchForward checks the same on the CPU; this is its GPU counterpart, built only with
// the fused kernels (CMakeLists.txt) and run by hand or by bench/gpu_check.sh.
//
//   build-gpu/gpu_step_check   prints the worst difference per segment and how many coding-table ranges
//                              differ; exit 0 if both are small, 1 if the step differs, 3 if the tables do
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include "core/quantize.h"
#include "model/device_coding.h"
#include "model/transformer.h"
#include "nncpp/settings.h"

using nncpp::ModelSettings;

// The coding table built by one kernel against the one built by Torch ops, on random and peaked
// distributions: returns the number of (row, symbol) ranges that differ.
int64_t compare_tables(const torch::Device& cuda) {
  const int64_t B = 32, V = 16384;
  torch::manual_seed(3);
  torch::Tensor scale = torch::linspace(1, 40, B, torch::TensorOptions().device(cuda)).unsqueeze(1);
  torch::Tensor probs = torch::softmax(torch::randn({B, V}, torch::TensorOptions().device(cuda)) * scale, 1);
  probs[5].zero_();  // an all-zero row becomes uniform
  nncpp::DeviceCoder kernel, ops;
  kernel.use_kernel(true);
  kernel.set(probs);
  ops.set(probs);
  std::vector<uint16_t> symbols(B);
  std::vector<uint8_t> live(B, 1);
  std::vector<nncpp::SymbolRange> a(B), b(B);
  int64_t differ = 0;
  for (int64_t s = 0; s < V; s += 3) {
    for (int64_t r = 0; r < B; ++r) symbols[r] = static_cast<uint16_t>((s + 101 * r) % V);
    kernel.ranges(symbols.data(), live.data(), a.data());
    ops.ranges(symbols.data(), live.data(), b.data());
    for (int64_t r = 0; r < B; ++r) differ += a[r].low != b[r].low || a[r].freq != b[r].freq;
  }
  return differ;
}

int main() {
  if (!torch::cuda::is_available()) {
    std::fprintf(stderr, "gpu_step_check: no CUDA device\n");
    return 2;
  }
  ModelSettings s;
  s.kind = nncpp::ModelKind::kTransformer;
  s.vocab = 1024;
  s.layers = 2;
  s.hidden = 1024;
  s.heads = 8;
  s.ff = 1024;
  s.memory = 256;
  s.segment = 64;
  s.streams = 32;
  s.lr = 4e-4f;
  s.lr_floor = 1e-4f;
  s.lr_decay = 2000;
  s.beta2 = 0.9999f;
  s.grad_clip = 1.0f;
  const torch::Device cuda(torch::kCUDA, 0);
  const bool fused = nncpp::fused_step_kernels(s, cuda, false);
  std::printf("fused step kernels: %s\n", fused ? "yes" : "no");
  nncpp::TransformerPredictor p(s, cuda, /*device_coding=*/false, /*cuda_graphs=*/false);
  const int B = static_cast<int>(s.streams), T = static_cast<int>(s.segment), V = static_cast<int>(s.vocab);
  std::mt19937_64 rng(7);
  p.reset_streams(B);
  std::vector<uint16_t> prev(B, 0);
  double worst = 0, diff2 = 0, ref2 = 0;
  const int segments = 7;  // the memory (4 segments) fills, then slides
  for (int seg = 0; seg < segments; ++seg) {
    std::vector<uint16_t> symbols(static_cast<size_t>(T) * B);
    std::vector<float> probs;
    for (int t = 0; t < T; ++t) {
      const float* x = p.step(prev.data(), nullptr);
      probs.insert(probs.end(), x, x + static_cast<size_t>(B) * V);
      for (int b = 0; b < B; ++b) prev[b] = symbols[static_cast<size_t>(t) * B + b] = rng() % V;
    }
    torch::Tensor batch = p.segment_logprobs();  // [T, B, V]
    const float* lp = batch.data_ptr<float>();
    double worst_p = 0;
    for (size_t i = 0; i < probs.size(); ++i) {
      const double ref = std::exp(static_cast<double>(lp[i])), d = static_cast<double>(probs[i]) - ref;
      worst_p = std::max(worst_p, std::fabs(d));
      diff2 += d * d;
      ref2 += ref * ref;
    }
    std::printf("segment %d: max |p_step - p_batch| = %.3g\n", seg, worst_p);
    worst = std::max(worst, worst_p);
    std::vector<uint8_t> ones(symbols.size(), 1);
    p.train(symbols.data(), ones.data(), T, true);
  }
  const int64_t differ = fused ? compare_tables(cuda) : 0;
  std::printf("coding tables: %lld of %d ranges differ\n", static_cast<long long>(differ), 32 * 5462);
  // The fused step's matrix products and key/value cache are bfloat16 (8 significant bits), the batch
  // forward's float32: |p_step - p_batch| / |p_batch| (all probabilities as one vector) lands between 1e-3
  // and 1e-2 for bfloat16 arithmetic; the Torch ops' step, float32 throughout, is held to 1e-4 per value.
  const double relative = std::sqrt(diff2 / ref2);
  std::printf("relative difference |p_step - p_batch| / |p_batch| = %.3g\n", relative);
  const bool step_ok = fused ? relative < 2e-2 : worst < 1e-4, tables_ok = differ <= 32 * 5462 / 1000;
  std::printf("gpu_step_check: %s (worst %.3g, relative %.3g)\n", step_ok && tables_ok ? "ok" : "FAILED", worst,
              relative);
  return !step_ok ? 1 : !tables_ok ? 3 : 0;
}
