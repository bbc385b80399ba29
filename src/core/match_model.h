// Match model: for each stream, finds the latest earlier place in the block (any stream, already coded)
// where the last `order` symbols occurred, and predicts the symbol that followed them there. The
// predictor turns the hint into a learnt logit boost that depends on the match length, which lets a small
// network copy long repeats (the strength of LZ-style coders) at O(1) cost per symbol.
// Both sides see the same coded symbols, so they compute the same hints.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "nncpp/predictor.h"  // MatchHint

namespace nncpp {

class MatchModel {
 public:
  // order: context length in symbols (>= 1); hash_bits: log2 of the table size.
  MatchModel(int order, int hash_bits);

  // Starts a block: symbols[b * stream_len + p] is position p of stream b (filled in as coding goes).
  void reset(const uint16_t* symbols, size_t n, size_t stream_len, int streams);
  // Hints for position p of every stream (all positions < p are coded). hints: [streams].
  void predict(size_t p, MatchHint* hints);
  // Position p is now coded in every stream: remember the contexts that led to it.
  void update(size_t p);

 private:
  uint32_t hash_at(size_t end) const;  // hash of symbols[end - order, end)
  size_t verify(size_t candidate, size_t at) const;

  int order_;
  int hash_bits_;
  std::vector<uint32_t> table_;  // hash → global index of the symbol that followed + 1; 0 = empty
  const uint16_t* symbols_ = nullptr;
  size_t n_ = 0;
  size_t stream_len_ = 0;
  int streams_ = 0;
  std::vector<size_t> ptr_;       // per stream: global index of the predicted symbol
  std::vector<uint16_t> length_;  // per stream: current match length (0 = none)
};

}  // namespace nncpp
