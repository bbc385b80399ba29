#include "core/x86_filter.h"

namespace nncpp {
namespace {

uint32_t load32(const uint8_t* p) {
  return uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 | uint32_t{p[3]} << 24;
}

void store32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}

uint32_t load16(const uint8_t* p) {
  return uint32_t{p[0]} | uint32_t{p[1]} << 8;
}

// An operand with top byte 00 or FF is a 25-bit two's complement value; the filter adds (or subtracts)
// the position modulo 2^25, a bijection on those values, and writes it back with the same top-byte rule.
constexpr uint32_t kMask25 = (1u << 25) - 1;

uint32_t from25(uint32_t v) {  // 25-bit value -> operand bytes: bit 24 set = top byte FF
  return v & (1u << 24) ? (v | 0xFF000000u) : v;
}

template <bool kEncode>
void filter(uint8_t* data, size_t n) {
  if (n < 5) return;
  // The opcode bytes are never changed and each operand is skipped, so both directions stop at the same
  // places.
  for (size_t i = 0; i + 5 <= n;) {
    if (data[i] != 0xE8 && data[i] != 0xE9) {
      ++i;
      continue;
    }
    const uint32_t operand = load32(data + i + 1);
    const uint32_t top = operand >> 24;
    if (top == 0x00 || top == 0xFF) {
      const uint32_t here = static_cast<uint32_t>(i + 5);  // the address after the instruction
      const uint32_t v = operand & kMask25;
      store32(data + i + 1, from25((kEncode ? v + here : v - here) & kMask25));
    }
    i += 5;
  }
}

}  // namespace

void x86_filter_encode(uint8_t* data, size_t n) {
  filter<true>(data, n);
}

void x86_filter_decode(uint8_t* data, size_t n) {
  filter<false>(data, n);
}

bool looks_like_x86(const uint8_t* d, size_t n) {
  if (n >= 20 && d[0] == 0x7F && d[1] == 'E' && d[2] == 'L' && d[3] == 'F') {
    const uint32_t machine =
        d[5] == 2 ? uint32_t{d[18]} << 8 | d[19] : load16(d + 18);  // EI_DATA 2: big endian
    return machine == 3 || machine == 62;                           // EM_386, EM_X86_64
  }
  if (n >= 64 && d[0] == 'M' && d[1] == 'Z') {
    const uint32_t pe = load32(d + 0x3C);
    if (pe > n - 6 || n < 6) return false;
    if (d[pe] != 'P' || d[pe + 1] != 'E' || d[pe + 2] != 0 || d[pe + 3] != 0) return false;
    const uint32_t machine = load16(d + pe + 4);
    return machine == 0x14C || machine == 0x8664;  // i386, AMD64
  }
  if (n >= 8 && (load32(d) == 0xFEEDFACEu || load32(d) == 0xFEEDFACFu)) {
    const uint32_t cpu = load32(d + 4);
    return cpu == 7 || cpu == 0x01000007u;  // CPU_TYPE_X86, CPU_TYPE_X86_64
  }
  return false;
}

}  // namespace nncpp
