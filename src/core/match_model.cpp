#include "core/match_model.h"

#include <algorithm>

namespace nncpp {
namespace {

constexpr size_t kMaxVerify = 64;  // longer matches are not worth verifying further
constexpr uint16_t kMaxLength = 0xFFFF;

}  // namespace

MatchModel::MatchModel(int order, int hash_bits)
    : order_(order), hash_bits_(hash_bits), table_(size_t{1} << hash_bits) {}

void MatchModel::reset(const uint16_t* symbols, size_t n, size_t stream_len, int streams) {
  std::fill(table_.begin(), table_.end(), 0u);
  symbols_ = symbols;
  n_ = n;
  stream_len_ = stream_len;
  streams_ = streams;
  ptr_.assign(streams, 0);
  length_.assign(streams, 0);
}

uint32_t MatchModel::hash_at(size_t end) const {
  uint32_t h = 0;
  for (size_t i = end - order_; i < end; ++i) h = (h + symbols_[i] + 1) * 0x2f0b4f27u;
  return h >> (32 - hash_bits_);
}

// Length of the common history ending just before `candidate` and just before `at` (global indices),
// staying inside each one's stream.
size_t MatchModel::verify(size_t candidate, size_t at) const {
  size_t cand_start = candidate / stream_len_ * stream_len_;
  size_t at_start = at / stream_len_ * stream_len_;
  size_t len = 0;
  while (len < kMaxVerify && candidate - len > cand_start && at - len > at_start &&
         symbols_[candidate - len - 1] == symbols_[at - len - 1])
    ++len;
  return len;
}

void MatchModel::predict(size_t p, MatchHint* hints) {
  for (int b = 0; b < streams_; ++b) {
    size_t at = b * stream_len_ + p;  // the position being predicted
    hints[b] = MatchHint{};
    if (p < static_cast<size_t>(order_) || at >= n_) {
      length_[b] = 0;
      continue;
    }
    // Continue the current match if it predicted the last symbol right and has not run off its stream.
    // The match advances in lockstep with p, so its next symbol is always coded already.
    if (length_[b] > 0) {
      size_t next = ptr_[b] + 1;
      bool hit = symbols_[ptr_[b]] == symbols_[at - 1];
      if (hit && next % stream_len_ != 0 && next < n_) {
        ptr_[b] = next;
        length_[b] = static_cast<uint16_t>(std::min<size_t>(length_[b] + 1u, kMaxLength));
      } else {
        length_[b] = 0;
      }
    }
    if (length_[b] == 0) {
      uint32_t entry = table_[hash_at(at)];
      if (entry != 0) {
        size_t candidate = entry - 1;
        size_t len = verify(candidate, at);
        if (len >= static_cast<size_t>(order_)) {
          ptr_[b] = candidate;
          length_[b] = static_cast<uint16_t>(len);
        }
      }
    }
    if (length_[b] > 0) hints[b] = MatchHint{symbols_[ptr_[b]], length_[b]};
  }
}

void MatchModel::update(size_t p) {
  if (p < static_cast<size_t>(order_)) return;
  for (int b = 0; b < streams_; ++b) {
    size_t at = b * stream_len_ + p;
    if (at >= n_ || p >= stream_len_) continue;
    table_[hash_at(at)] = static_cast<uint32_t>(at + 1);
  }
}

}  // namespace nncpp
