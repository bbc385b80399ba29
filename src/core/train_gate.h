// Adaptive training (the idea of TRACE): skip optimizer steps while they do not pay. The decision uses only
// the coded loss of finished segments, which compressor and decompressor compute identically, so both make
// the same choices.
#pragma once

#include <cstdint>

#include "nncpp/settings.h"

namespace nncpp {

class TrainGate {
 public:
  explicit TrainGate(const ModelSettings& settings)
      : max_skip_(settings.train_max_skip), margin_(settings.train_margin) {}

  // Called once per segment with the model bits of its coded symbols; true = take the optimizer step.
  // A segment the model already predicts well (loss per symbol at most (1 - margin) times the running
  // average) yields small gradients and may skip, at most max_skip segments in a row; a segment at or
  // above the average always trains.
  bool should_update(double bits, int64_t symbols);

  uint64_t skipped_total() const { return skipped_total_; }

 private:
  uint32_t max_skip_;
  double margin_;
  double average_ = -1.0;  // running average of bits per symbol; < 0 until the first segment
  uint32_t skipped_in_row_ = 0;
  uint64_t skipped_total_ = 0;
};

}  // namespace nncpp
