// Which streams of a block each rank codes (include/nncpp/ranks.h): a block of n symbols has
// S = streams_for_block(n) streams of L = ceil(n / S) symbols (the last one shorter); rank r of R codes
// streams [r * S / R, (r + 1) * S / R), a contiguous slice of the block. With one rank: the whole block.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "nncpp/engine.h"
#include "nncpp/settings.h"

namespace nncpp {

struct StreamShare {
  size_t first_symbol = 0;  // block position of the share's first symbol
  size_t symbols = 0;       // symbols in the share (0 when its streams start past the block's end)
  int streams = 1;          // streams of the share (>= 1: ranks <= streams_for_block)
  size_t stream_len = 0;    // the block's stream length L
};

inline StreamShare stream_share(uint64_t n, const Settings& settings, int rank) {
  const int streams = streams_for_block(n, settings);
  const int ranks = static_cast<int>(settings.runtime.ranks);
  const int first = static_cast<int>(int64_t{rank} * streams / ranks);
  const int last = static_cast<int>(int64_t{rank + 1} * streams / ranks);
  StreamShare share;
  share.stream_len = static_cast<size_t>((n + streams - 1) / streams);
  share.streams = last - first;
  share.first_symbol = static_cast<size_t>(std::min<uint64_t>(n, uint64_t(first) * share.stream_len));
  share.symbols =
      static_cast<size_t>(std::min<uint64_t>(n, uint64_t(last) * share.stream_len)) - share.first_symbol;
  return share;
}

}  // namespace nncpp
