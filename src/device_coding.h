// Quantisation and symbol lookup where the model runs (Predictor::device_ranges / device_find), so that a
// model on a GPU sends only O(B) values per position to the host instead of B x V probabilities.
//
// The table is the one quantize.h describes (freq = 1 + floor(p * (2^31 - V) / sum p), the remainder to
// the first most probable symbol), computed with Torch ops in double precision. Its sum runs in Torch's
// reduction order, so tables can differ from quantize()'s in the last unit: a file coded this way decodes
// only with this path on the same kind of device (the fingerprint's device field says which).
#pragma once

#include <torch/torch.h>

#include "nncpp/predictor.h"

namespace nncpp {

class DeviceCoder {
 public:
  // probs: [B, V] float distributions of one position, on any device.
  void set(const torch::Tensor& probs);

  // Compressor: ranges of symbols[b]; out[b] for streams with live[b] (others left as they were).
  void ranges(const uint16_t* symbols, const uint8_t* live, SymbolRange* out);
  // Decompressor: for each live stream the symbol whose range holds targets[b], and that range.
  void find(const uint32_t* targets, const uint8_t* live, uint16_t* symbols, SymbolRange* out);

 private:
  // Gathers [symbol, low, freq, prob] of the chosen symbols and copies them to the host in one transfer.
  void fetch(const torch::Tensor& chosen, const uint8_t* live, uint16_t* symbols, SymbolRange* out);

  torch::Tensor probs_;  // [B, V] float
  torch::Tensor high_;   // [B, V] int64 inclusive prefix sums of the frequencies: range = [high - freq, high)
  torch::Tensor freq_;   // [B, V] int64
};

// Base of the Torch predictors: on a device other than the CPU (or when asked) step() hands its
// distributions to a DeviceCoder and returns nullptr, and the coder's calls are answered from it.
class DeviceCodingPredictor : public Predictor {
 public:
  void device_ranges(const uint16_t* symbols, const uint8_t* live, SymbolRange* out) override {
    coder_.ranges(symbols, live, out);
  }
  void device_find(const uint32_t* targets, const uint8_t* live, uint16_t* symbols,
                   SymbolRange* out) override {
    coder_.find(targets, live, symbols, out);
  }

 protected:
  explicit DeviceCodingPredictor(bool device_coding) : device_coding_(device_coding) {}

  // The end of step(): probs [B, V] as host floats, or nullptr once the coder holds them.
  const float* finish_step(const torch::Tensor& probs) {
    if (!device_coding_) return probs.data_ptr<float>();
    coder_.set(probs);
    return nullptr;
  }

 private:
  bool device_coding_;
  DeviceCoder coder_;
};

}  // namespace nncpp
