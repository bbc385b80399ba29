#include "core/checksum.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <iostream>
#include <random>
#include <string>
#include <vector>

namespace nncpp {
namespace {

uint32_t crc_of(const std::string& s) {
  return crc32_update(0, reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

// One bit at a time, straight from the definition.
uint32_t reference_crc(const uint8_t* p, size_t n) {
  uint32_t c = 0xFFFFFFFF;
  for (size_t i = 0; i < n; ++i) {
    c ^= p[i];
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0xEDB88320u : c >> 1;
  }
  return ~c;
}

std::vector<uint8_t> random_bytes(size_t n, uint64_t seed) {
  std::mt19937_64 g(seed);
  std::vector<uint8_t> v(n);
  for (auto& b : v) b = static_cast<uint8_t>(g() >> 56);
  return v;
}

TEST(Crc32, KnownVectors) {
  EXPECT_EQ(crc_of(""), 0x00000000u);
  EXPECT_EQ(crc_of("a"), 0xE8B7BE43u);
  EXPECT_EQ(crc_of("abc"), 0x352441C2u);
  EXPECT_EQ(crc_of("123456789"), 0xCBF43926u);
  EXPECT_EQ(crc_of("The quick brown fox jumps over the lazy dog"), 0x414FA339u);
  EXPECT_EQ(crc_of(std::string(32, '\0')), 0x190A55ADu);
  EXPECT_EQ(crc_of(std::string(32, '\xFF')), 0xFF6CAB0Bu);
  std::vector<uint8_t> all(256);
  for (int i = 0; i < 256; ++i) all[i] = static_cast<uint8_t>(i);
  EXPECT_EQ(crc32_update(0, all.data(), all.size()), 0x29058C73u);
  EXPECT_EQ(crc32_update(0, nullptr, 0), 0u);
}

TEST(Crc32, MatchesBitwiseReference) {
  const auto data = random_bytes(5000, 1);
  for (size_t n = 0; n <= 80; ++n)
    for (size_t off = 0; off < 8; ++off)
      ASSERT_EQ(crc32_update(0, data.data() + off, n), reference_crc(data.data() + off, n))
          << n << " " << off;
  EXPECT_EQ(crc32_update(0, data.data(), data.size()), reference_crc(data.data(), data.size()));
}

TEST(Crc32, IncrementalEqualsOneShot) {
  std::mt19937_64 g(7);
  for (int trial = 0; trial < 200; ++trial) {
    const size_t n = g() % 3000;
    const auto data = random_bytes(n, 100 + trial);
    const uint32_t whole = crc32_update(0, data.data(), n);
    uint32_t crc = 0;
    Crc32 obj;
    for (size_t pos = 0; pos < n;) {
      const size_t len = std::min<size_t>(n - pos, g() % 40);  // includes empty updates
      crc = crc32_update(crc, data.data() + pos, len);
      obj.update(data.data() + pos, len);
      pos += len;
    }
    ASSERT_EQ(crc, whole);
    ASSERT_EQ(obj.value(), whole);
  }
  EXPECT_EQ(Crc32().value(), 0u);
}

TEST(Crc32, Throughput) {
  const auto data = random_bytes(size_t{64} << 20, 3);
  const auto t0 = std::chrono::steady_clock::now();
  const uint32_t c = crc32_update(0, data.data(), data.size());
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double gbps = data.size() / s / 1e9;
  std::cout << "crc32: " << gbps << " GB/s (crc " << std::hex << c << std::dec << ")\n";
  RecordProperty("crc32_GBps", std::to_string(gbps));
}

}  // namespace
}  // namespace nncpp
