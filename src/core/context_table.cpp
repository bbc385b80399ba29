#include "core/context_table.h"

namespace nncpp {

ContextTable::ContextTable(int bits, int count_limit)
    : shift_(64 - bits), count_limit_(static_cast<uint16_t>(count_limit)), buckets_(size_t{1} << bits) {
  for (Bucket& b : buckets_) b = Bucket{};
}

const ContextTable::Bucket* ContextTable::find(uint64_t hash) const {
  const size_t i = index(hash);
  const uint16_t check = check_of(hash);
  if (buckets_[i].check == check) return &buckets_[i];
  if (buckets_[i + 1].check == check) return &buckets_[i + 1];
  return nullptr;
}

void ContextTable::update(uint64_t hash, uint16_t symbol) {
  const size_t i = index(hash);
  const uint16_t check = check_of(hash);
  Bucket* b = nullptr;
  if (buckets_[i].check == check) {
    b = &buckets_[i];
  } else if (buckets_[i + 1].check == check) {
    b = &buckets_[i + 1];
  } else {  // a new context replaces the less used of the pair
    b = buckets_[i + 1].total < buckets_[i].total ? &buckets_[i + 1] : &buckets_[i];
    *b = Bucket{};
    b->check = check;
  }
  int slot = -1, weakest = 0;
  for (int k = 0; k < kSlots; ++k) {
    if (b->count[k] != 0 && b->symbol[k] == symbol) {
      slot = k;
      break;
    }
    if (b->count[k] < b->count[weakest]) weakest = k;
  }
  if (slot < 0) {  // a new symbol takes a free slot or the least counted one
    slot = weakest;
    b->total = static_cast<uint16_t>(b->total - b->count[slot]);
    b->symbol[slot] = symbol;
    b->count[slot] = 0;
  }
  b->count[slot] = static_cast<uint16_t>(b->count[slot] + 1);
  b->total = static_cast<uint16_t>(b->total < 0xFFFF ? b->total + 1 : b->total);
  if (b->count[slot] > count_limit_) {
    uint32_t total = 0;
    for (int k = 0; k < kSlots; ++k) {
      b->count[k] = static_cast<uint16_t>(b->count[k] / 2);
      total += b->count[k];
    }
    b->total = static_cast<uint16_t>(total);
  }
}

}  // namespace nncpp
