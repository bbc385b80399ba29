// Context mixing in the binary domain (paq8, cmix): each symbol is coded as its index's bits, most
// significant first. For every bit the network's distribution gives P(bit = 1) by summing the subtree of
// symbols that agree with the bits so far; the context models give their own adaptive bit probabilities for
// the same node; a gated logistic mixer combines them and an adaptive probability map (APM/SSE) refines the
// result, which the range coder codes as a binary decision. Everything after the network's floats is integer
// arithmetic, so both sides compute the same bits on any machine.
#pragma once

#include <cstdint>
#include <vector>

#include "core/context_models.h"
#include "nncpp/predictor.h"
#include "nncpp/settings.h"

namespace nncpp {

// The logistic domain in fixed point: x = 256·log2(p1 / p0), clamped to ±kMaxLogit; probabilities in
// units of 1/65536, in [1, 65535].
class Logistic {
 public:
  static constexpr int kMaxLogit = 4095;
  Logistic();
  static int clamp(int x) { return x < -kMaxLogit ? -kMaxLogit : (x > kMaxLogit ? kMaxLogit : x); }
  int squash(int x) const { return squash_[clamp(x) + kMaxLogit]; }
  int stretch(int p16) const { return stretch_[p16]; }

 private:
  std::vector<uint16_t> squash_;  // [2·kMaxLogit + 1]
  std::vector<int16_t> stretch_;  // [65536], the inverse of squash_
};

// Hashed table of bit predictors for one context model: a bucket holds the 15 nodes of the binary tree of
// one 4-bit group of a symbol's bits (a nibble of a byte) under one context.
class BitTable {
 public:
  struct Bucket {
    uint32_t check;     // hash bits that tell contexts of the same index apart (never 0 when used)
    uint32_t node[15];  // counters (bit_mixer.cpp): probability of a 1 and how often the node was seen
  };
  static_assert(sizeof(Bucket) == 64, "a bucket is one cache line");

  explicit BitTable(int bits);
  // The bucket of this context, claimed (and cleared) if it was not there.
  Bucket* find(uint64_t hash);

 private:
  int shift_;
  std::vector<Bucket> buckets_;
};

class BitMixer {
 public:
  // symbol_bytes[s]: the bytes of symbol s (context_models.h); must outlive the mixer.
  BitMixer(const MixSettings& settings, int vocab, const std::vector<std::vector<uint8_t>>* symbol_bytes);

  // Memory beside the context tables, at most (weight sets, APMs of 33 points, the record bits tables),
  // for the memory estimate (settings.cpp).
  static constexpr uint64_t fixed_bytes() {
    const uint64_t weight_sets = uint64_t{4096} + kSelectB + 256 + kSelectD + 4 * uint64_t{65536};
    return weight_sets * kInputs * sizeof(int32_t) +
           (uint64_t{kApmContexts} + kPixelApmContexts) * 33 * sizeof(uint16_t) +
           ((uint64_t{kRecordBitsTables} << kRecordBitsTableBits) +
            (uint64_t{kWideTables} << kWideTableBits)) *
               sizeof(uint32_t);
  }

  // Bits per symbol: ceil(log2(vocab)), at least 1.
  int bits() const { return bits_; }
  // Starts a block of `streams` streams (empty histories); tables and weights persist.
  void reset_streams(int streams);
  // Starts stream b's next symbol: the network's distribution net[vocab], the match model's hint and the
  // long match model's (length 0: none).
  void begin(int b, const float* net, const MatchHint& hint, const MatchHint& long_hint = MatchHint{});
  // P(next bit of stream b's symbol = 1) in 1/65536, in [1, 65535]; 0 when no symbol has that bit (the bit
  // is 0 and is not coded).
  uint32_t p1(int b);
  // The bit was `bit`: learn from it and move on; after the last bit the symbol joins the history.
  void update(int b, int bit);

 private:
  // Inputs: the network, order 0, the hashed models, the match models, a bias, the record bits model's
  // tables (the hashed models' slot kRecordBits stays 0).
  static constexpr int kNetInput = 0, kOrder0Input = 1, kModelInput = 2;
  static constexpr int kMatchInput = kModelInput + kNumContextModels, kLongMatchInput = kMatchInput + 1;
  static constexpr int kBiasInput = kLongMatchInput + 1;
  // The record bits model: direct tables of contexts up to 18 bits, and hashed tables of wider ones.
  static constexpr int kRecordBitsTables = 8;
  static constexpr int kRecordBitsTableBits = 18;
  static constexpr int kWideTables = 4;
  static constexpr int kWideTableBits = 20;
  static constexpr int kRecordBitsInput = kBiasInput + 1;
  static constexpr int kRecordInputs = kRecordBitsTables + kWideTables;
  static constexpr int kInputs = kRecordBitsInput + kRecordInputs;
  static constexpr int kSelectD = 64;  // weight sets by the 3 bits above and the 3 to the left
  static constexpr int kApmContexts = 1 << 16;
  static constexpr int kPixelApmContexts = 1 << 18;  // 6 bits to the left, 7 above, 5 two rows above
  static constexpr int kSelectB =
      128;  // weight sets chosen by match state, how many orders know the node, long match on

  // A match model's say on the current bit: its expected bit (-1 = none: its symbol left the bits so far)
  // and the counter, by length and expected bit, that learns whether that bit was right.
  struct MatchSay {
    int expected = -1;
    uint32_t* counter = nullptr;
  };

  struct StreamState {
    ContextHistory history;
    uint64_t hashes[kNumContextModels];
    std::vector<float> tree;  // [2^(bits+1)]: node k = the network's probability of the prefix k
    uint32_t c0 = 1;          // 1 followed by the bits coded so far
    int done = 0;             // bits coded so far
    int nibble_node = 1;      // node within the current 4-bit group's tree, 1..15
    BitTable::Bucket* bucket[kNumContextModels] = {};
    MatchHint hint;
    MatchHint long_hint;  // the long match model's (length 0: none)
    uint16_t last_symbol = 0;
    // Record bits model: on while a record length is known; the bytes around this byte's column in the
    // rows above, up to three (24 bits each: left neighbour, above, right neighbour) and the last 2.
    bool record_bits = false;
    uint32_t rows[3] = {};
    uint32_t left_bytes = 0;
    uint32_t* record_counter[kRecordInputs] = {};
    // The current bit's prediction, kept for update().
    bool forced = false;
    int x[kInputs] = {};
    uint32_t* counter[kNumContextModels + 1] = {};    // order 0 and the models' counters for this node
    int set_a = 0, set_b = 0, set_c = 0, set_d = -1;  // set_d -1: record bits model off
    int set_e = 0, set_f = 0, set_g = 0, set_h = 0;
    uint16_t prev_symbol = 0;    // the symbol before last_symbol
    MatchSay match, long_match;  // the match models' say on the current bit
    int p_mix = 32768, apm_index = 0;
    int pixel_context = 0, pixel_apm_index = 0;  // used while set_d >= 0 (record bits model on)
    StreamState(const std::vector<std::vector<uint8_t>>* bytes, RecordFinder* records)
        : history(bytes, records) {}
  };

  // The APM of `table` (kApmBuckets points per context): P(1) for the mixer output x; *index = the point
  // nearer x, for the update.
  int apm(const std::vector<uint16_t>& table, int context, int x, int* index) const;
  void update_apm(const StreamState& st, int bit);
  // A match model's input for the current bit: ±stretch of counters[bucket · 2 + its expected bit] while its
  // symbol's first bits equal the bits so far (+ for a 1), else 0; *say records it for the update.
  int match_input(const StreamState& st, int rest, const MatchHint& hint, uint32_t* counters, int bucket,
                  MatchSay* say) const;
  // group: the counter's group in first_agree_ (its first update's rate), -1 for the match counters.
  void update_counter(uint32_t* counter, int bit, int group);
  // The record bits model's inputs for the current bit; returns its weight set.
  int record_bits_inputs(StreamState& st);
  // Allocates the record bits model's tables and its weight sets and APM (deterministic: fresh state).
  void start_record_bits();

  MixSettings settings_;
  int vocab_;
  int bits_;
  const std::vector<std::vector<uint8_t>>* symbol_bytes_;
  Logistic logistic_;
  std::vector<int> reciprocal_;                // [1024]: 65536 / (n + 1.5), the counters' step after n visits
  std::vector<BitTable> tables_;               // one per model that is on
  int table_of_[kNumContextModels];            // index into tables_, -1 = model off
  std::vector<uint32_t> order0_;               // [2^bits] counters by prefix
  std::vector<uint32_t> match_counters_;       // [32][2]: by match length and expected bit
  std::vector<uint32_t> long_match_counters_;  // [32][2]: by long match length / 2 and expected bit
  std::vector<int32_t> weights_a_;             // [sets_a][kInputs], 16 fraction bits
  std::vector<int32_t> weights_b_;             // [kSelectB][kInputs]
  std::vector<int32_t> weights_c_;             // [256][kInputs] by the last symbol's low byte
  std::vector<int32_t> weights_d_;             // [kSelectD][kInputs] by pixels around (record bits model on)
  std::vector<int32_t> weights_e_;             // [65536][kInputs] by the last two symbols' low bytes
  std::vector<int32_t> weights_f_;             // [65536][kInputs] by the last three symbols (hashed)
  std::vector<int32_t> weights_g_;             // [65536][kInputs] by the current and previous word (hashed)
  std::vector<int32_t> weights_h_;             // [65536][kInputs] by the symbols 2 and 3 back (hashed)
  // The record bits model's tables, allocated when a record length is first found (most inputs have none).
  std::vector<uint32_t> record_tables_;  // [kRecordBitsTables][2^kRecordBitsTableBits] counters
  std::vector<uint32_t> wide_tables_;    // [kWideTables][2^kWideTableBits] counters, hashed contexts
  std::vector<uint16_t> apm_;        // [kApmContexts][33]: refined probability by context and mixer output
  std::vector<uint16_t> pixel_apm_;  // [kPixelApmContexts][33]: the same by the pixels around
  // Per counter group (order 0, each context model, the record bits tables): how often a node's second
  // visit saw the same bit as its first, in 1/65536; a node's first update moves by this fraction.
  int first_agree_[kNumContextModels + 2];
  RecordFinder records_{kSharedRecordMinHits};  // shared by the streams, kept across blocks
  // The mixer's learning rate in units of 2^-24: at the start and its limit (bit_mixer.cpp, kLateRate).
  int64_t first_rate_ = 0, late_rate_ = 0;
  int64_t mixer_updates_ = 0;  // bits the mixer has learnt from, all streams and blocks together
  std::vector<StreamState> streams_;
};

}  // namespace nncpp
