// The model interface the coding loop drives. Compressor and decompressor make exactly the same calls in the
// same order, so a deterministic predictor yields identical probabilities on both sides.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "nncpp/match_model.h"
#include "nncpp/settings.h"

namespace nncpp {

class Predictor {
 public:
  virtual ~Predictor() = default;

  // Starts `active` streams (<= settings.streams) from an empty state; weights and optimizer state persist.
  virtual void reset_streams(int active) = 0;

  // Feeds each active stream its previous symbol and returns the next-symbol distributions,
  // probs[b * vocab + s], valid until the next call. prev, hints: [active]; hints may be null (no match
  // model); a hint's symbol gets a learnt logit boost that depends on match_bucket(length).
  virtual const float* step(const uint16_t* prev, const MatchHint* hints) = 0;

  // One optimizer step on the positions stepped since the last train() (or reset_streams()).
  // targets, mask: [steps][active], the symbols that followed each step; mask 0 = padding (not coded).
  virtual void train(const uint16_t* targets, const uint8_t* mask, int steps) = 0;
};

// Match lengths share learnt boosts by bucket: 0 = no match, else the length up to kMatchBuckets - 1.
constexpr int kMatchBuckets = 32;
inline int match_bucket(uint16_t length) {
  return length < kMatchBuckets ? length : kMatchBuckets - 1;
}

// A named property of the run-time that can change floating-point results; the decoder insists on equality.
struct FingerprintField {
  std::string name;
  std::string value;
};
using Fingerprint = std::vector<FingerprintField>;

// Builds predictors for one kind of hardware and says what their results depend on.
class Backend {
 public:
  virtual ~Backend() = default;
  // Pins run-time state (thread counts) and describes it. Throws Error(kUsage) for an unusable device.
  virtual Fingerprint fingerprint(const Settings& settings) const = 0;
  virtual std::unique_ptr<Predictor> create(const Settings& settings) const = 0;
};

}  // namespace nncpp
