#include "core/context_models.h"

#include "core/mix64.h"

namespace nncpp {
namespace {

uint64_t combine(uint64_t h, uint64_t v) {
  return mix64(h + v + 0x9e3779b97f4a7c15ull);
}

bool is_letter(uint8_t c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80;
}

}  // namespace

void RecordFinder::vote(uint32_t gap) {
  if (gap == candidate_) {
    if (votes_ < kMaxVotes) ++votes_;
  } else if (--votes_ < 0) {
    candidate_ = gap;
    votes_ = 0;
    hits_ = 0;
  }
  decide();
}

void RecordFinder::observe(bool hit) {
  if (candidate_ == 0) return;
  hits_ += ((hit ? 65536 : 0) - hits_) >> 8;
  decide();
}

void RecordFinder::decide() {
  if (votes_ >= kMinVotes && hits_ >= (length_ == candidate_ ? min_hits_ / 2 : min_hits_))
    length_ = candidate_;
  else if (length_ == candidate_ && hits_ < min_hits_ / 2)  // the length stopped predicting: off
    length_ = 0;
}

ContextHistory::ContextHistory(const std::vector<std::vector<uint8_t>>* symbol_bytes, RecordFinder* records)
    : symbol_bytes_(symbol_bytes), ring_(kRing), shared_records_(records) {}

void ContextHistory::contexts(uint64_t* h) const {
  uint64_t s = 0;
  // Symbol orders: each hash starts from its model's id, so equal histories in two models differ.
  s = combine(kOrder1, last_[0]);
  h[kOrder1] = s;
  s = combine(s, last_[1]);
  h[kOrder2] = combine(s, kOrder2);
  s = combine(s, last_[2]);
  h[kOrder3] = combine(s, kOrder3);
  s = combine(s, last_[3]);
  h[kOrder4] = combine(s, kOrder4);
  s = combine(combine(s, last_[4]), last_[5]);
  h[kOrder6] = combine(s, kOrder6);
  s = combine(combine(s, last_[6]), last_[7]);
  h[kOrder8] = combine(s, kOrder8);
  h[kSparse] = combine(combine(kSparse, last_[1]), last_[2]);
  h[kWord] = combine(combine(combine(kWord, word_), prev_word_), is_letter(byte_back(1)));
  const uint32_t column = bytes_seen_ - line_start_;
  const uint32_t line_len = line_start_ - prev_line_start_;
  const uint8_t above = column < line_len ? byte_back(line_len) : 0;  // same column, previous line
  h[kWordPrefix] = combine(combine(kWordPrefix, word_), word_ == 0 ? byte_back(1) : 0);
  h[kColumn] = combine(combine(combine(kColumn, above), byte_back(1)), column < 64 ? column : 64);
  const uint32_t record = this->record();
  if (record != 0) {
    h[kRecord] = combine(combine(combine(combine(kRecord, record), byte_back(record)), byte_back(record - 1)),
                         byte_back(1));
  } else {
    h[kRecord] = combine(combine(kRecord, byte_back(1)), byte_back(2) >> 4);
  }
  h[kSparse13] = combine(combine(kSparse13, byte_back(1)), byte_back(3));
  h[kSparse24] = combine(combine(kSparse24, byte_back(2)), byte_back(4));
  h[kStride4] = combine(combine(combine(kStride4, byte_back(4)), byte_back(8)), bytes_seen_ & 3);
  h[kIndirect] = combine(combine(kIndirect, byte_back(1)), followed_[byte_back(1)]);
  h[kRecordBits] = 0;
  h[kOrder2Bytes] = combine(combine(kOrder2Bytes, byte_back(1)), byte_back(2));
}

void ContextHistory::push_byte(uint8_t c) {
  if (shared_records_ != nullptr && shared_records_->candidate() != 0)
    shared_records_->observe(c == byte_back(shared_records_->candidate()));
  uint16_t& followed = followed_[byte_back(1)];
  followed = static_cast<uint16_t>(followed << 8 | c);
  ring_[bytes_seen_ & (kRing - 1)] = c;
  ++bytes_seen_;
  if (c == '\n') {
    prev_line_start_ = line_start_;
    line_start_ = bytes_seen_;
  }
  if (is_letter(c)) {
    word_ = combine(word_, static_cast<uint8_t>(c >= 'A' && c <= 'Z' ? c + 32 : c));
  } else if (word_ != 0) {
    prev_word_ = word_;
    word_ = 0;
  }
  // Record length: the distance between two occurrences of a byte, confirmed when the same byte
  // recurs at the same distance again.
  const uint32_t gap = bytes_seen_ - last_at_[c];
  if (last_at_[c] != 0 && gap > 2 && gap < kRing / 2 && gap == last_gap_[c]) {
    own_records_.vote(gap);
    if (shared_records_ != nullptr) shared_records_->vote(gap);
  }
  last_gap_[c] = gap;
  last_at_[c] = bytes_seen_;
}

void ContextHistory::push(uint16_t symbol) {
  for (int k = 7; k > 0; --k) last_[k] = last_[k - 1];
  last_[0] = static_cast<uint16_t>(symbol + 1);  // 0 = before the start
  for (uint8_t c : (*symbol_bytes_)[symbol]) push_byte(c);
}

}  // namespace nncpp
