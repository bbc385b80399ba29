// splitmix64's finaliser: every input bit moves every output bit. The context models hash their contexts
// with it and the binary mixer its buckets and APM contexts; the exact bits are part of the format.
#pragma once

#include <cstdint>

namespace nncpp {

inline uint64_t mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  x ^= x >> 31;
  return x;
}

}  // namespace nncpp
