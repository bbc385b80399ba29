// CRC-32 as in zlib, gzip, PNG and xz's CRC32 check (reflected polynomial 0xEDB88320).
#pragma once

#include <cstddef>
#include <cstdint>

namespace nncpp {

// Continues a CRC-32 over data[0..n). Start with crc = 0; the result is the standard CRC-32, so
// crc32_update(0, "123456789", 9) == 0xCBF43926, and updating piecewise equals one call over the whole.
uint32_t crc32_update(uint32_t crc, const uint8_t* data, size_t n);

class Crc32 {
 public:
  void update(const uint8_t* data, size_t n) { crc_ = crc32_update(crc_, data, n); }
  uint32_t value() const { return crc_; }

 private:
  uint32_t crc_ = 0;
};

}  // namespace nncpp
