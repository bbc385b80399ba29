// Reversible x86 branch filter (as in xz's BCJ and paq8's exe model): the 32-bit relative operand of
// every call (E8) and jmp (E9) near byte becomes an absolute target, so calls to the same function read
// the same bytes wherever they are. Only operands within ±16 MiB are changed (the top byte 00 or FF),
// which keeps the mapping one-to-one; anything else is left as it is, so any input round-trips.
#pragma once

#include <cstddef>
#include <cstdint>

namespace nncpp {

// Both work in place on one block; positions count from the block's start.
void x86_filter_encode(uint8_t* data, size_t n);
void x86_filter_decode(uint8_t* data, size_t n);

// Whether the input starts like x86 or x86-64 machine code: an ELF, PE or Mach-O header for those CPUs.
bool looks_like_x86(const uint8_t* data, size_t n);

}  // namespace nncpp
