// Little-endian serialisation into and out of memory buffers. The reader checks every bound and throws
// Error(kCorrupt), so a parser built on it cannot read past its input.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "nncpp/error.h"

namespace nncpp {

class ByteWriter {
 public:
  explicit ByteWriter(std::vector<uint8_t>* out) : out_(out) {}
  void u8(uint8_t v) { out_->push_back(v); }
  void u16(uint16_t v) { put(v, 2); }
  void u32(uint32_t v) { put(v, 4); }
  void u64(uint64_t v) { put(v, 8); }
  void f32(float v) {
    uint32_t bits;
    std::memcpy(&bits, &v, 4);
    u32(bits);
  }
  void bytes(const uint8_t* p, size_t n) { out_->insert(out_->end(), p, p + n); }
  // LEB128: 7 bits per byte, low bits first, high bit set on every byte but the last.
  void varint(uint64_t v) {
    while (v >= 0x80) {
      out_->push_back(static_cast<uint8_t>(v | 0x80));
      v >>= 7;
    }
    out_->push_back(static_cast<uint8_t>(v));
  }
  void short_string(const std::string& s);  // u8 length + bytes; throws kUsage if longer than 255

 private:
  void put(uint64_t v, int n) {
    for (int i = 0; i < n; ++i) out_->push_back(static_cast<uint8_t>(v >> (8 * i)));
  }
  std::vector<uint8_t>* out_;
};

class ByteReader {
 public:
  ByteReader(const uint8_t* data, size_t size, const char* what) : p_(data), end_(data + size), what_(what) {}
  uint8_t u8() { return static_cast<uint8_t>(get(1)); }
  uint16_t u16() { return static_cast<uint16_t>(get(2)); }
  uint32_t u32() { return static_cast<uint32_t>(get(4)); }
  uint64_t u64() { return get(8); }
  float f32() {
    uint32_t bits = u32();
    float v;
    std::memcpy(&v, &bits, 4);
    return v;
  }
  // LEB128 (ByteWriter::varint) of at most 10 bytes; a value above `max` or a non-minimal encoding (a
  // final zero byte after the first) is corrupt, so every value has exactly one encoding.
  uint64_t varint(uint64_t max = UINT64_MAX) {
    uint64_t v = 0;
    for (int shift = 0;; shift += 7) {
      const uint8_t b = u8();
      if (shift == 63 && b > 1) corrupt("value too large");
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) {
        if (b == 0 && shift > 0) corrupt("overlong number");
        break;
      }
    }
    if (v > max) corrupt("value out of range");
    return v;
  }
  const uint8_t* bytes(size_t n) {
    need(n);
    const uint8_t* p = p_;
    p_ += n;
    return p;
  }
  std::string short_string() {
    size_t n = u8();
    const uint8_t* p = bytes(n);
    return std::string(reinterpret_cast<const char*>(p), n);
  }
  size_t remaining() const { return static_cast<size_t>(end_ - p_); }
  const uint8_t* position() const { return p_; }
  [[noreturn]] void corrupt(const char* why) const {
    throw Error(ErrorCode::kCorrupt, std::string("file is corrupt (") + what_ + ": " + why + ")");
  }

 private:
  void need(size_t n) const {
    if (remaining() < n) throw Error(ErrorCode::kCorrupt, std::string(what_) + " is truncated");
  }
  uint64_t get(int n) {
    need(n);
    uint64_t v = 0;
    for (int i = 0; i < n; ++i) v |= static_cast<uint64_t>(p_[i]) << (8 * i);
    p_ += n;
    return v;
  }
  const uint8_t* p_;
  const uint8_t* end_;
  const char* what_;
};

}  // namespace nncpp
