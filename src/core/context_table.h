// Hashed table of next-symbol counts: for a context (a 64-bit hash of some part of the coded history), the
// few symbols that followed it most and how often. Every context model of the mixer (context_models.h) is
// one such table, read before a symbol is coded and updated after, identically on both sides.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace nncpp {

class ContextTable {
 public:
  static constexpr int kSlots = 7;
  // 32 bytes: one cache line holds two buckets, so the pair probed for a hash is one line.
  struct Bucket {
    uint16_t check;  // hash bits that tell contexts of the same index apart; 0 with total 0 = empty
    uint16_t total;  // sum of the counts (saturating), for replacement
    uint16_t symbol[kSlots];
    uint16_t count[kSlots];  // 0 = free slot
  };
  static_assert(sizeof(Bucket) == 32, "a bucket is half a cache line");

  // bits: log2 of the number of buckets; count_limit: a count above it halves the bucket's counts, so old
  // statistics fade (smaller = faster adaptation).
  ContextTable(int bits, int count_limit);

  // The bucket of this context, or nullptr if the context was not seen (or was evicted).
  const Bucket* find(uint64_t hash) const;
  // Counts `symbol` after this context, making room for the context or the symbol if needed.
  void update(uint64_t hash, uint16_t symbol);

 private:
  size_t index(uint64_t hash) const { return static_cast<size_t>(hash >> shift_) & ~size_t{1}; }
  static uint16_t check_of(uint64_t hash) { return static_cast<uint16_t>(hash) | 1; }  // never 0

  int shift_;
  uint16_t count_limit_;
  std::vector<Bucket> buckets_;
};

}  // namespace nncpp
