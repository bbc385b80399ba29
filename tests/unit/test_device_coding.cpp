// Quantisation and lookup on the model's device (src/model/device_coding.h), run here on CPU tensors: the tables
// are valid range-coder tables that agree with quantize() up to rounding, lookups invert them, and the
// engine round-trips through an LSTM that codes this way.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <sstream>
#include <vector>

#include "model/cuda_graph.h"
#include "model/device_coding.h"
#include "model/lstm.h"
#include "nncpp/engine.h"
#include "core/quantize.h"
#include "model/torch_backend.h"

namespace nncpp {
namespace {

// [B, V] distributions: uniform, peaked, random softmax, one with zeros and a NaN.
torch::Tensor distributions(int64_t V, uint64_t seed) {
  std::mt19937_64 g(seed);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  torch::Tensor p = torch::empty({4, V}, torch::kFloat32);
  float* x = p.data_ptr<float>();
  for (int64_t i = 0; i < V; ++i) x[i] = 1.0f / static_cast<float>(V);
  for (int64_t i = 0; i < V; ++i) x[V + i] = i == V / 3 ? 0.999f : 0.001f / static_cast<float>(V - 1);
  for (int64_t i = 0; i < V; ++i) x[2 * V + i] = normal(g);
  p[2] = torch::softmax(p[2], 0);
  for (int64_t i = 0; i < V; ++i) x[3 * V + i] = i % 3 == 0 ? 0.0f : 1.0f;
  x[3 * V + 1] = NAN;
  return p;
}

class DeviceCoding : public ::testing::TestWithParam<int64_t> {};

TEST_P(DeviceCoding, RangesTileTheTotalAndFollowQuantize) {
  const int64_t V = GetParam(), B = 4;
  torch::Tensor p = distributions(V, 1);
  DeviceCoder coder;
  coder.set(p);
  std::vector<uint32_t> cum(V + 1);
  std::vector<uint8_t> live(B, 1);
  std::vector<uint16_t> symbols(B);
  std::vector<SymbolRange> ranges(B);
  std::vector<uint32_t> next_low(B, 0);
  for (int64_t s = 0; s < V; ++s) {
    for (int64_t b = 0; b < B; ++b) symbols[b] = static_cast<uint16_t>(s);
    coder.ranges(symbols.data(), live.data(), ranges.data());
    for (int64_t b = 0; b < B; ++b) {
      ASSERT_EQ(ranges[b].low, next_low[b]) << "row " << b << " symbol " << s;  // ranges tile [0, 2^31)
      ASSERT_GE(ranges[b].freq, 1u);
      next_low[b] += ranges[b].freq;
      quantize(p[b].data_ptr<float>(), static_cast<int>(V), cum.data());
      // Torch sums in another order than quantize(): frequencies may differ by a unit, except where the
      // rounding remainder lands (the most probable symbol).
      const int64_t host = cum[s + 1] - cum[s];
      if (std::llabs(host - static_cast<int64_t>(ranges[b].freq)) > 1) {
        EXPECT_GT(host, static_cast<int64_t>(kFreqTotal / V)) << "row " << b << " symbol " << s;
      }
    }
  }
  for (int64_t b = 0; b < B; ++b) EXPECT_EQ(next_low[b], kFreqTotal) << "row " << b;
}

TEST_P(DeviceCoding, FindInvertsRanges) {
  const int64_t V = GetParam(), B = 4;
  torch::Tensor p = distributions(V, 2);
  DeviceCoder coder;
  coder.set(p);
  std::mt19937_64 g(3);
  std::vector<uint8_t> live = {1, 1, 0, 1};  // a dead stream's slot is left alone
  std::vector<uint16_t> symbols(B, 7), found(B, 9);
  std::vector<SymbolRange> ranges(B), again(B);
  for (int i = 0; i < 300; ++i) {
    for (int64_t b = 0; b < B; ++b) symbols[b] = static_cast<uint16_t>(g() % V);
    coder.ranges(symbols.data(), live.data(), ranges.data());
    for (uint32_t edge : {0u, 1u, 2u}) {
      std::vector<uint32_t> targets(B);
      for (int64_t b = 0; b < B; ++b)
        targets[b] = edge == 0   ? ranges[b].low
                     : edge == 1 ? ranges[b].low + ranges[b].freq - 1
                                 : ranges[b].low + ranges[b].freq / 2;
      coder.find(targets.data(), live.data(), found.data(), again.data());
      for (int64_t b = 0; b < B; ++b) {
        if (!live[b]) {
          EXPECT_EQ(found[b], 9);
          continue;
        }
        ASSERT_EQ(found[b], symbols[b]);
        EXPECT_EQ(again[b].low, ranges[b].low);
        EXPECT_EQ(again[b].freq, ranges[b].freq);
        const float expected = p[b][symbols[b]].item<float>();  // the model's float, NaN included
        if (std::isnan(expected))
          EXPECT_TRUE(std::isnan(again[b].prob));
        else
          EXPECT_EQ(again[b].prob, expected);
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Vocab, DeviceCoding, ::testing::Values(2, 256, 16384));

// A backend whose LSTMs code through DeviceCoder on the CPU, as they do on a GPU.
class DeviceCodingBackend : public Backend {
 public:
  Fingerprint fingerprint(const Settings& s) const override { return torch_->fingerprint(s); }
  std::unique_ptr<Predictor> create(const Settings& s) const override {
    return std::make_unique<LstmPredictor>(s.model, torch::kCPU, /*device_coding=*/true);
  }

 private:
  std::unique_ptr<Backend> torch_ = make_torch_backend();
};

std::string compress_with(const std::string& data, const Backend& backend, Stats* stats) {
  Settings s;
  s.model.layers = 1;
  s.model.hidden = 16;
  s.model.embed = 8;
  s.model.streams = 4;
  s.codec.min_stream_symbols = 256;
  CompressJob job;
  job.settings = s;
  job.backend = &backend;
  job.size_hint = data.size();
  job.tokenizer.max_vocab = 0;
  std::istringstream in(data);
  std::ostringstream out;
  *stats = compress(in, out, job);
  return out.str();
}

TEST(DeviceCodingEngine, RoundTripsAndCostsWhatHostCodingCosts) {
  std::string data;
  for (int i = 0; data.size() < 6000; ++i) data += "line " + std::to_string(i * 7919 % 1000) + " of text\n";
  DeviceCodingBackend device;
  std::unique_ptr<Backend> host = make_torch_backend();
  Stats on_device, on_host;
  const std::string file = compress_with(data, device, &on_device);
  const std::string host_file = compress_with(data, *host, &on_host);
  // Same model, same floats: the tables differ by rounding only.
  EXPECT_NEAR(on_device.coded_bits, on_host.coded_bits, 0.001 * on_host.coded_bits + 64);
  EXPECT_EQ(on_device.model_bits, on_host.model_bits);

  DecompressJob job;
  job.backend = &device;
  std::istringstream in(file);
  std::ostringstream out;
  decompress(in, out, job);
  EXPECT_TRUE(out.str() == data);
}

// CUDA graphs exist only for CUDA devices; asking for them elsewhere runs the ops directly, with the
// same results (so CPU files do not depend on the flag).
TEST(CudaGraphs, CpuRunsEagerlyWhateverTheFlag) {
  EXPECT_FALSE(graphs_available(torch::kCPU));
  ModelStream stream(torch::kCPU);
  stream.synchronize();  // a no-op on the CPU
  CapturedOps ops;
  EXPECT_FALSE(ops.ready());

  ModelSettings s;
  s.vocab = 40;
  s.layers = 1;
  s.hidden = 16;
  s.embed = 8;
  s.streams = 2;
  s.segment = 3;
  LstmPredictor with(s, torch::kCPU, /*device_coding=*/true, /*cuda_graphs=*/true);
  LstmPredictor without(s, torch::kCPU, /*device_coding=*/true, /*cuda_graphs=*/false);
  with.reset_streams(2);
  without.reset_streams(2);
  const uint8_t live[2] = {1, 1};
  for (int segment = 0; segment < 3; ++segment) {
    std::vector<uint16_t> targets;
    for (int t = 0; t < 3; ++t) {
      const uint16_t prev[2] = {static_cast<uint16_t>(t * 7 % 40), static_cast<uint16_t>((t + segment) % 40)};
      EXPECT_EQ(with.step(prev, nullptr), nullptr);
      EXPECT_EQ(without.step(prev, nullptr), nullptr);
      const uint16_t next[2] = {static_cast<uint16_t>((t * 5 + 1) % 40),
                                static_cast<uint16_t>(segment * 3 % 40)};
      SymbolRange a[2], b[2];
      with.device_ranges(next, live, a);
      without.device_ranges(next, live, b);
      for (int i = 0; i < 2; ++i) {
        EXPECT_EQ(a[i].low, b[i].low);
        EXPECT_EQ(a[i].freq, b[i].freq);
      }
      targets.insert(targets.end(), next, next + 2);
    }
    const std::vector<uint8_t> mask(targets.size(), 1);
    with.train(targets.data(), mask.data(), 3, true);
    without.train(targets.data(), mask.data(), 3, true);
  }
}

}  // namespace
}  // namespace nncpp
