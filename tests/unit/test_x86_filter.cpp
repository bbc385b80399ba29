// The x86 branch filter (src/core/x86_filter.h): any input round-trips, calls become absolute targets, and
// the detector knows x86 executables from other CPUs' and from data.
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <vector>

#include "core/x86_filter.h"

namespace nncpp {
namespace {

std::vector<uint8_t> random_code(size_t n, uint32_t seed) {
  // Random bytes with many E8/E9 opcodes, half of them followed by near operands (top byte 00 or FF).
  std::mt19937 g(seed);
  std::vector<uint8_t> d(n);
  for (uint8_t& b : d) b = static_cast<uint8_t>(g());
  for (size_t i = 0; i + 5 <= n; i += 3 + g() % 20) {
    d[i] = g() & 1 ? 0xE8 : 0xE9;
    if (g() & 1) d[i + 4] = g() & 1 ? 0x00 : 0xFF;
  }
  return d;
}

TEST(X86Filter, AnyInputRoundTrips) {
  for (size_t n : {0, 1, 4, 5, 6, 9, 10, 100, 4096, 70000}) {
    for (uint32_t seed : {1u, 2u, 3u}) {
      const std::vector<uint8_t> original = random_code(n, seed + static_cast<uint32_t>(n));
      std::vector<uint8_t> d = original;
      x86_filter_encode(d.data(), d.size());
      if (n >= 100) {
        EXPECT_NE(d, original) << "near calls are rewritten";
      }
      x86_filter_decode(d.data(), d.size());
      ASSERT_EQ(d, original) << n << " bytes, seed " << seed;
    }
  }
  std::vector<uint8_t> all_e8(1000, 0xE8);  // opcodes in operands: the scan must skip them the same way
  std::vector<uint8_t> d = all_e8;
  x86_filter_encode(d.data(), d.size());
  x86_filter_decode(d.data(), d.size());
  EXPECT_EQ(d, all_e8);
}

TEST(X86Filter, CallsToOneTargetBecomeEqual) {
  // Two calls at 16 and 1000 to the target 5000: relative operands differ, absolute ones agree.
  std::vector<uint8_t> d(2000, 0x90);
  const auto call = [&](uint32_t at, uint32_t target) {
    d[at] = 0xE8;
    const uint32_t rel = target - (at + 5);
    for (int i = 0; i < 4; ++i) d[at + 1 + i] = static_cast<uint8_t>(rel >> (8 * i));
  };
  call(16, 5000);
  call(1000, 5000);
  call(1500, 20);  // backwards: a negative operand
  x86_filter_encode(d.data(), d.size());
  EXPECT_EQ(0, std::memcmp(&d[17], &d[1001], 4));
  EXPECT_EQ(d[17] | d[18] << 8 | d[19] << 16 | d[20] << 24, 5000);
  EXPECT_EQ(d[1501] | d[1502] << 8 | d[1503] << 16 | d[1504] << 24, 20);
}

TEST(X86Filter, FarOperandsAreLeftAlone) {
  std::vector<uint8_t> d = {0xE8, 0x10, 0x20, 0x30, 0x40, 0x90, 0x90};  // top byte 0x40: not near
  const std::vector<uint8_t> original = d;
  x86_filter_encode(d.data(), d.size());
  EXPECT_EQ(d, original);
}

std::vector<uint8_t> elf_header(uint16_t machine) {
  std::vector<uint8_t> d(64, 0);
  d[0] = 0x7F, d[1] = 'E', d[2] = 'L', d[3] = 'F', d[4] = 2, d[5] = 1;  // 64-bit, little endian
  d[18] = static_cast<uint8_t>(machine), d[19] = static_cast<uint8_t>(machine >> 8);
  return d;
}

TEST(X86Filter, DetectsX86Executables) {
  EXPECT_TRUE(looks_like_x86(elf_header(62).data(), 64)) << "ELF x86-64";
  EXPECT_TRUE(looks_like_x86(elf_header(3).data(), 64)) << "ELF i386";
  EXPECT_FALSE(looks_like_x86(elf_header(183).data(), 64)) << "ELF AArch64";
  EXPECT_FALSE(looks_like_x86(elf_header(62).data(), 10)) << "too short to tell";

  std::vector<uint8_t> pe(512, 0);
  pe[0] = 'M', pe[1] = 'Z', pe[0x3C] = 0x80;
  pe[0x80] = 'P', pe[0x81] = 'E', pe[0x84] = 0x64, pe[0x85] = 0x86;  // AMD64
  EXPECT_TRUE(looks_like_x86(pe.data(), pe.size()));
  pe[0x84] = 0x64, pe[0x85] = 0xAA;  // ARM64
  EXPECT_FALSE(looks_like_x86(pe.data(), pe.size()));
  pe[0x3C] = 0xFF, pe[0x3D] = 0xFF;  // PE offset beyond the bytes seen
  EXPECT_FALSE(looks_like_x86(pe.data(), pe.size()));

  const std::vector<uint8_t> text = {'h', 'e', 'l', 'l', 'o', ' ', 'w', 'o', 'r', 'l', 'd', '\n'};
  EXPECT_FALSE(looks_like_x86(text.data(), text.size()));
  EXPECT_FALSE(looks_like_x86(nullptr, 0));
}

}  // namespace
}  // namespace nncpp
