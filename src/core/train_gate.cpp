#include "core/train_gate.h"

#include <cmath>

namespace nncpp {

bool TrainGate::should_update(double bits, int64_t symbols) {
  if (max_skip_ == 0 || symbols <= 0) return true;
  const double loss = bits / static_cast<double>(symbols);
  bool stable = average_ >= 0.0 && loss <= (1.0 - margin_) * average_;
  // The average follows the last ~16 segments: long enough to smooth noise, short enough to track drift.
  average_ = average_ < 0.0 ? loss : average_ + (loss - average_) / 16.0;
  if (stable && skipped_in_row_ < max_skip_) {
    ++skipped_in_row_;
    ++skipped_total_;
    return false;
  }
  skipped_in_row_ = 0;
  return true;
}

}  // namespace nncpp
