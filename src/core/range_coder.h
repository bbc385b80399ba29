// Range coder with a 32-bit range register over frequency totals of 2^31 (kFreqBits, quantize.h).
//
// Why these choices (DESIGN.md section 5: within 0.1% of -sum log2 q even at 16,384 symbols):
//  - Totals of 2^31: every symbol needs frequency >= 1, so the floor takes at most V/2^31 of the mass,
//    about V/2^31/ln2 bits per symbol (1.1e-5 bits at V = 16,384); a 2^16 total would lose 25% of the mass.
//  - Bitwise normalization: after each symbol the range is shifted left by clz(range) bits, so it stays in
//    [2^31, 2^32) instead of the usual [2^24, 2^32). Splitting the range into 2^31 parts with floors
//    misplaces each boundary by < 1 unit, costing about V/range/ln2 bits per symbol at worst; with
//    range >= 2^31 that is again ~1e-5 bits, and a freq-1 symbol still gets a sub-range >= 1 (decodable).
//  - Carries are propagated into the bytes already written (the output is in memory), so there is no
//    pending-byte state and no precision is spent on carry avoidance.
//  - finish() writes at most one bit and pads to a byte; the decoder reads zeros past the end, so a valid
//    stream decodes with overrun_bytes() <= kMaxValidOverrun (the decoder looks 32 bits ahead).
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "core/quantize.h"

namespace nncpp {

// Each symbol is coded as (cum_low, freq) with freq >= 1 and cum_low + freq <= kFreqTotal.
class RangeEncoder {
 public:
  RangeEncoder() = default;

  void encode(uint32_t cum_low, uint32_t freq) {
    const uint64_t r = range_;
    const uint64_t lo = (r * cum_low) >> kFreqBits;
    const uint64_t hi = (r * (cum_low + freq)) >> kFreqBits;
    low_ += lo;
    range_ = static_cast<uint32_t>(hi - lo);  // >= 1: r >= 2^31 and freq >= 1
    if (low_ >> 32) {
      low_ &= 0xFFFFFFFF;
      carry();
    }
    const int n = __builtin_clz(range_);
    acc_ = (acc_ << n) | (low_ >> (32 - n));
    nacc_ += n;
    low_ = (low_ << n) & 0xFFFFFFFF;
    range_ <<= n;
    if (nacc_ >= 32) flush_word();
  }

  // Terminates the stream; encode() must not be called afterwards.
  void finish();

  const std::vector<uint8_t>& bytes() const { return out_; }
  std::vector<uint8_t> take() { return std::move(out_); }

 private:
  void carry();
  void flush_word();

  uint64_t low_ = 0;             // 32 bits below the bits already shifted out (plus a carry bit briefly)
  uint32_t range_ = 0xFFFFFFFF;  // in [2^31, 2^32) between symbols
  uint64_t acc_ = 0;             // nacc_ < 32 shifted-out bits not yet in out_; the newest is bit 0
  int nacc_ = 0;
  std::vector<uint8_t> out_;
};

class RangeDecoder {
 public:
  static constexpr size_t kMaxValidOverrun = 4;

  // Reads data[0..size); bytes past the end read as zero. data may be null when size is 0.
  RangeDecoder(const uint8_t* data, size_t size);

  // A value in [0, kFreqTotal); the coded symbol is the s with cum[s] <= target() < cum[s+1].
  uint32_t target() const {
    const uint64_t t = (((static_cast<uint64_t>(value_) + 1) << kFreqBits) - 1) / range_;
    return t < kFreqTotal ? static_cast<uint32_t>(t) : kFreqTotal - 1;  // only garbage reaches the clamp
  }

  // Removes the symbol found through target(); same arithmetic as RangeEncoder::encode.
  void consume(uint32_t cum_low, uint32_t freq) {
    const uint64_t r = range_;
    const uint64_t lo = (r * cum_low) >> kFreqBits;
    const uint64_t hi = (r * (cum_low + freq)) >> kFreqBits;
    value_ -= static_cast<uint32_t>(lo);
    range_ = static_cast<uint32_t>(hi - lo);
    const int n = __builtin_clz(range_);
    value_ = static_cast<uint32_t>((static_cast<uint64_t>(value_) << n) | read_bits(n));
    range_ <<= n;
  }

  // Bytes the decoder needed past the end of the data. A valid stream decoded for exactly its own
  // symbols gives at most kMaxValidOverrun; more means truncation or a symbol count mismatch.
  size_t overrun_bytes() const {
    const size_t used = pos_ - static_cast<size_t>(nbuf_ / 8);
    return used > size_ ? used - size_ : 0;
  }

 private:
  uint64_t read_bits(int n) {  // 0 <= n <= 32
    if (nbuf_ < n) refill();
    nbuf_ -= n;
    return (buf_ >> nbuf_) & ((uint64_t{1} << n) - 1);
  }
  void refill();

  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;    // next byte to load; passes size_ when zeros are read past the end
  uint64_t buf_ = 0;  // nbuf_ loaded but unread bits in its low end, the oldest first
  int nbuf_ = 0;
  uint32_t value_ = 0;  // code - low, < range_ for a valid stream
  uint32_t range_ = 0xFFFFFFFF;
};

}  // namespace nncpp
