// Context mixing around the network (cmix, paq8): count-based context models and the match model are
// mixed with the network's distribution in the symbol domain. The mixed distribution is
//
//   p(s) ∝ p_net(s) · 2^B(s),   B(s) = Σ_i w_i[g_i] · φ_i(s)
//
// where φ_i(s) is nonzero only for the few symbols model i has seen after its context: with w = 1 a count
// model alone turns p into its own PPM-style estimate (its counts for the symbols it has seen, the
// network's shape for the rest), so the weights learn, per model and per confidence gate g_i (how often
// the context was seen, whether it was deterministic; the match length), how far to trust each model
// over the network. Every step costs O(models · slots) plus one pass over the vocabulary to normalise.
// All arithmetic is float in a fixed order with our own exp2/log2, so both sides compute the same bits.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "core/context_models.h"
#include "core/context_table.h"
#include "nncpp/predictor.h"
#include "nncpp/settings.h"

namespace nncpp {

class ContextMixer {
 public:
  // symbol_bytes[s]: the bytes of symbol s (context_models.h); must outlive the mixer.
  ContextMixer(const MixSettings& settings, int vocab, const std::vector<std::vector<uint8_t>>* symbol_bytes);

  // Starts a block of `streams` streams (empty histories); tables and weights persist.
  void reset_streams(int streams);
  // Stream b's mixed next-symbol distribution from the network's: out[vocab], normalised.
  void predict(int b, const float* net, const MatchHint& hint, float* out);
  // Stream b's symbol was `symbol`: learn from it, count it, move the history on.
  void update(int b, uint16_t symbol);

 private:
  static constexpr int kInputs = kNumContextModels + 1;  // the count models and the match model
  static constexpr int kMatchInput = kNumContextModels;
  static constexpr int kGates = 16;
  static constexpr int kFeatures = 3;  // per seen symbol: 1, log2 of its share of the counts, -log2 p_net
  static constexpr int kMaxCandidates = kInputs * ContextTable::kSlots;

  struct Input {
    int gate = -1;  // -1 = no prediction this step
    int n = 0;
    uint8_t candidate[ContextTable::kSlots];  // index into the stream's candidate list
    float phi[ContextTable::kSlots][kFeatures];
  };
  struct StreamState {
    ContextHistory history;
    uint64_t hashes[kNumContextModels];
    Input inputs[kInputs];
    int candidates = 0;
    uint16_t symbol[kMaxCandidates];
    float prob[kMaxCandidates];  // mixed probability
    StreamState(const std::vector<std::vector<uint8_t>>* bytes, RecordFinder* records)
        : history(bytes, records) {}
  };

  int candidate_index(StreamState& st, uint16_t symbol);

  MixSettings settings_;
  int vocab_;
  const std::vector<std::vector<uint8_t>>* symbol_bytes_;
  std::vector<std::unique_ptr<ContextTable>> tables_;  // [kNumContextModels], null = model off
  std::vector<float> weights_;                         // [kInputs][kGates][kFeatures]
  std::vector<float> grad_power_;                      // running mean of each weight's squared gradient
  RecordFinder records_{kSharedRecordMinHits};         // shared by the streams, kept across blocks
  std::vector<StreamState> streams_;
  std::vector<float> boost_;  // per candidate, scratch
};

}  // namespace nncpp
