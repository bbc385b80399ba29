#include "core/range_coder.h"

namespace nncpp {

// low_ passed 2^32: add 1 at the last bit shifted out. The carry ripples over trailing one bits; it never
// runs off the front because the code interval stays inside [0, 1). Amortized O(1): every 0xFF byte it
// crosses becomes 0x00, and 0xFF bytes are only created one per byte written or per carry.
void RangeEncoder::carry() {
  ++acc_;
  if ((acc_ >> nacc_) == 0) return;
  acc_ &= (uint64_t{1} << nacc_) - 1;
  for (size_t i = out_.size(); i-- > 0;)
    if (++out_[i] != 0) return;
}

void RangeEncoder::flush_word() {
  nacc_ -= 32;
  const uint32_t w = static_cast<uint32_t>(acc_ >> nacc_);
  out_.insert(out_.end(), {static_cast<uint8_t>(w >> 24), static_cast<uint8_t>(w >> 16),
                           static_cast<uint8_t>(w >> 8), static_cast<uint8_t>(w)});
  acc_ &= (uint64_t{1} << nacc_) - 1;
}

// Any code value in [low, low + range) decodes correctly, and range >= 2^31 so that interval holds 0,
// 2^31 or 2^32. Pick the one needing the fewest bits: 0 and 2^32 (a carry) need none, 2^31 needs a '1'.
// The zero bits after it are implicit: the decoder reads zeros past the end.
void RangeEncoder::finish() {
  if (low_ != 0) {
    if (low_ + range_ > (uint64_t{1} << 32)) {
      carry();
    } else {
      acc_ = (acc_ << 1) | 1;
      ++nacc_;
    }
  }
  while (nacc_ >= 8) {
    nacc_ -= 8;
    out_.push_back(static_cast<uint8_t>(acc_ >> nacc_));
  }
  if (nacc_ > 0) out_.push_back(static_cast<uint8_t>(acc_ << (8 - nacc_)));
  acc_ = 0;
  nacc_ = 0;
  low_ = 0;
  range_ = 0xFFFFFFFF;
}

RangeDecoder::RangeDecoder(const uint8_t* data, size_t size) : data_(data), size_(size) {
  value_ = static_cast<uint32_t>(read_bits(32));
}

// Called with nbuf_ < 32; leaves at least 32 bits and at most 56 so that shifts stay below 64.
void RangeDecoder::refill() {
  if (pos_ < size_ && size_ - pos_ >= 4) {
    const uint8_t* p = data_ + pos_;
    const uint32_t w = uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3];
    buf_ = (buf_ << 32) | w;
    nbuf_ += 32;
    pos_ += 4;
    return;
  }
  while (nbuf_ <= 48) {
    const uint8_t b = pos_ < size_ ? data_[pos_] : 0;
    ++pos_;
    buf_ = (buf_ << 8) | b;
    nbuf_ += 8;
  }
}

}  // namespace nncpp
