// The model interface the coding loop drives. Compressor and decompressor make exactly the same calls in the
// same order, so a deterministic predictor yields identical probabilities on both sides.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "nncpp/error.h"
#include "nncpp/settings.h"

namespace nncpp {

// The match model's guess for a stream's next symbol (src/core/match_model.h): the symbol that followed the
// latest earlier occurrence of the current context, and how long that match is.
struct MatchHint {
  uint16_t symbol = 0;  // predicted next symbol
  uint16_t length = 0;  // verified match length in symbols; 0 = no prediction
};

// A symbol's place in the quantised distribution (quantize.h): its range [low, low + freq) of kFreqTotal,
// and the model's float probability of it (for statistics and adaptive training).
struct SymbolRange {
  uint32_t low = 0;
  uint32_t freq = 0;
  float prob = 0.0f;
};

class Predictor {
 public:
  virtual ~Predictor() = default;

  // Starts `active` streams (<= settings.streams) from an empty state; weights and optimizer state persist.
  virtual void reset_streams(int active) = 0;

  // Feeds each active stream its previous symbol and returns the next-symbol distributions,
  // probs[b * vocab + s], valid until the next call. prev, hints: [active]; hints may be null (no match
  // model); a hint's symbol gets a learnt logit boost that depends on match_bucket(length).
  // A model that keeps its distributions on an accelerator returns nullptr instead and quantises them
  // there: the coder then calls device_ranges() (compressing) or device_find() (decompressing), so only
  // O(active) values cross per position.
  virtual const float* step(const uint16_t* prev, const MatchHint* hints) = 0;

  // After a step() that returned nullptr: the ranges of symbols[b] for the streams with live[b] != 0.
  virtual void device_ranges(const uint16_t* /*symbols*/, const uint8_t* /*live*/, SymbolRange* /*out*/) {
    throw Error(ErrorCode::kUsage, "this model codes on the host");
  }
  // After a step() that returned nullptr: for each live stream, the symbol s whose range holds targets[b]
  // (< kFreqTotal), and that range.
  virtual void device_find(const uint32_t* /*targets*/, const uint8_t* /*live*/, uint16_t* /*symbols*/,
                           SymbolRange* /*out*/) {
    throw Error(ErrorCode::kUsage, "this model codes on the host");
  }

  // Ends the segment of positions stepped since the last train() (or reset_streams()): with `update`, one
  // optimizer step on it; either way the state (recurrent state, attention memory) moves past it.
  // targets, mask: [steps][active], the symbols that followed each step; mask 0 = padding (not coded).
  virtual void train(const uint16_t* targets, const uint8_t* mask, int steps, bool update) = 0;

  // Retraining (settings.retrain_period > 0): one extra optimizer step over recent history, from an empty
  // state and with dropout, leaving the stepping state as it is. inputs, targets, mask: [length][active],
  // inputs[t] the symbol before targets[t] (0 at a stream's start). Models without retraining throw.
  virtual void retrain(const uint16_t* inputs, const uint16_t* targets, const uint8_t* mask, int length) = 0;

  // Waits until the work queued on the model's device is done (profiles time each phase with it).
  virtual void synchronize() {}
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
