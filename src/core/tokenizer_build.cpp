// Dictionary building (pass 1): count the units of the input, then merge pairs of symbols inside units,
// best first, scored by the order-0 bits the merge saves minus a fixed cost per symbol.
//
// Merges are done on the table of distinct units with their counts (a unit occurring 10^5 times is
// rewritten once), with pair counts kept up to date incrementally and a lazy max-heap of scores: a popped
// pair is rescored with the current counts and taken only if it still beats the best key left, else it
// goes back with its new score. Scores change as other merges change the counts, so this is a greedy
// approximation of "best pair first", but a deterministic one: integer arithmetic and total orders only.
#include <algorithm>
#include <cstring>
#include <queue>
#include <string>
#include <vector>

#include "nncpp/error.h"
#include "nncpp/tokenizer.h"
#include "tokenizer_internal.h"

namespace nncpp {
namespace tokenizer_detail {

bool looks_like_text(const uint8_t* data, size_t n) {
  // Control bytes (other than white space) and bytes of invalid UTF-8 sequences count as binary. Text
  // has almost none (terminal transcripts ~9%); executables, images and tables have a quarter or more.
  size_t binary = 0;
  size_t i = 0;
  while (i < n) {
    uint8_t c = data[i];
    if (c < 0x80) {
      binary += (c < 0x20 && c != '\t' && c != '\n' && c != '\r' && c != '\f') || c == 0x7f;
      ++i;
      continue;
    }
    size_t extra = c >= 0xc2 && c <= 0xdf ? 1 : c >= 0xe0 && c <= 0xef ? 2 : c >= 0xf0 && c <= 0xf4 ? 3 : 0;
    size_t k = 1;
    while (k <= extra && i + k < n && (data[i + k] & 0xc0) == 0x80) ++k;
    if (extra == 0 || k <= extra) {
      binary += k;  // a stray continuation byte, a bad lead byte or a truncated sequence
    }
    i += k;
  }
  return binary * 8 <= n;
}

namespace {

// log2 in fixed point, from a table computed with integer arithmetic only, so the dictionary cannot
// depend on the C library's log2 rounding. 2^12 entries with linear interpolation: scores are differences
// of nearby values, where the interpolation error cancels; 2^14 entries gave identical dictionaries.
class FixedLog2 {
 public:
  static constexpr int kTableBits = 12;
  static constexpr int kFracBits = 40;      // of log2()
  static constexpr int kCostFracBits = 24;  // of xlog2x() and of scores

  FixedLog2() : table_((1 << kTableBits) + 1) {
    for (uint32_t i = 0; i <= (1u << kTableBits); ++i) table_[i] = log2_mantissa(i);
  }

  // log2(x) for x >= 1, in Q40.
  uint64_t log2(uint64_t x) const {
    int e = 63 - __builtin_clzll(x);
    uint64_t m = x << (63 - e);  // top bit set; the next kTableBits bits index the table
    uint32_t idx = static_cast<uint32_t>(m >> (63 - kTableBits)) & ((1u << kTableBits) - 1);
    uint64_t frac = (m >> (63 - kTableBits - 16)) & 0xffff;
    uint64_t lo = table_[idx], hi = table_[idx + 1];
    return (static_cast<uint64_t>(e) << kFracBits) + lo + (((hi - lo) * frac) >> 16);
  }

  // x * log2(x) in Q24 bits, for x < 2^31. Split multiply: x * l >> 16 without 128-bit arithmetic.
  int64_t xlog2x(uint64_t x) const {
    if (x <= 1) return 0;
    uint64_t l = log2(x);
    return static_cast<int64_t>(x * (l >> 16) + ((x * (l & 0xffff)) >> 16));
  }

 private:
  // log2(1 + i / 2^kTableBits) in Q40 by repeated squaring of the mantissa (Q31, 32 result bits).
  static uint64_t log2_mantissa(uint32_t i) {
    uint64_t y = (1ull << 31) + (static_cast<uint64_t>(i) << (31 - kTableBits));
    if (y >= (1ull << 32)) return 1ull << kFracBits;  // i == 2^kTableBits: log2(2) = 1
    uint64_t result = 0;
    for (int bit = 1; bit <= 32; ++bit) {
      y = (y * y) >> 31;
      if (y >= (1ull << 32)) {
        y >>= 1;
        result |= 1ull << (kFracBits - bit);
      }
    }
    return result;
  }

  std::vector<uint64_t> table_;
};

// One immutable table per process: rebuilding it for every dictionary would dominate small inputs.
const FixedLog2& fixed_log2() {
  static const FixedLog2 table;
  return table;
}

uint64_t hash_bytes(const uint8_t* p, size_t len) {
  uint64_t h = 0x9e3779b97f4a7c15ull ^ len;
  while (len >= 8) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    h = (h ^ v) * 0xff51afd7ed558ccdull;
    h ^= h >> 32;
    p += 8;
    len -= 8;
  }
  uint64_t v = 0;
  std::memcpy(&v, p, len);
  h = (h ^ v) * 0xc4ceb9fe1a85ec53ull;
  return h ^ (h >> 29);
}

// Distinct units (2..kMaxUnit bytes) with their counts. Open addressing; the bytes live in one arena.
class UnitTable {
 public:
  struct Entry {
    uint32_t offset = 0;
    uint32_t count = 0;  // 0 = free slot
    uint32_t hash = 0;
    uint32_t len = 0;
  };

  UnitTable() : slots_(1 << 12) {}

  void add(const uint8_t* p, size_t len) {
    uint32_t h = static_cast<uint32_t>(hash_bytes(p, len));
    size_t mask = slots_.size() - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
      Entry& e = slots_[i];
      if (e.count == 0) {
        e = Entry{static_cast<uint32_t>(arena_.size()), 1, h, static_cast<uint32_t>(len)};
        arena_.insert(arena_.end(), p, p + len);
        if (++used_ * 2 > slots_.size()) grow();
        return;
      }
      if (e.hash == h && e.len == len && std::memcmp(arena_.data() + e.offset, p, len) == 0) {
        ++e.count;
        return;
      }
    }
  }

  const std::vector<Entry>& slots() const { return slots_; }
  const uint8_t* bytes(const Entry& e) const { return arena_.data() + e.offset; }
  size_t size() const { return used_; }
  size_t total_bytes() const { return arena_.size(); }

 private:
  void grow() {
    std::vector<Entry> old(slots_.size() * 2);
    old.swap(slots_);
    size_t mask = slots_.size() - 1;
    for (const Entry& e : old) {
      if (e.count == 0) continue;
      size_t i = e.hash & mask;
      while (slots_[i].count != 0) i = (i + 1) & mask;
      slots_[i] = e;
    }
  }

  std::vector<Entry> slots_;
  std::vector<uint8_t> arena_;
  size_t used_ = 0;
};

// uint32 -> uint32 map (pair key -> pair index), open addressing, no deletion.
class PairIndex {
 public:
  static constexpr uint32_t kNone = 0xffffffffu;

  PairIndex() : keys_(1 << 12, kEmpty), values_(1 << 12) {}

  uint32_t find(uint32_t key) const {
    size_t mask = keys_.size() - 1;
    for (size_t i = mix(key) & mask;; i = (i + 1) & mask) {
      if (keys_[i] == key) return values_[i];
      if (keys_[i] == kEmpty) return kNone;
    }
  }

  void insert(uint32_t key, uint32_t value) {
    if ((used_ + 1) * 2 > keys_.size()) grow();
    place(key, value);
    ++used_;
  }

 private:
  // Symbol ids stay below 0xffff (see Merger::run), so the key of pair (0xffff, 0xffff) marks free slots.
  static constexpr uint32_t kEmpty = 0xffffffffu;

  static uint32_t mix(uint32_t key) {
    uint64_t h = key * 0x9e3779b97f4a7c15ull;
    return static_cast<uint32_t>(h >> 32);
  }

  void place(uint32_t key, uint32_t value) {
    size_t mask = keys_.size() - 1;
    size_t i = mix(key) & mask;
    while (keys_[i] != kEmpty) i = (i + 1) & mask;
    keys_[i] = key;
    values_[i] = value;
  }

  void grow() {
    std::vector<uint32_t> old_keys(keys_.size() * 2, kEmpty);
    std::vector<uint32_t> old_values(values_.size() * 2);
    old_keys.swap(keys_);
    old_values.swap(values_);
    for (size_t i = 0; i < old_keys.size(); ++i) {
      if (old_keys[i] != kEmpty) place(old_keys[i], old_values[i]);
    }
  }

  std::vector<uint32_t> keys_;
  std::vector<uint32_t> values_;
  size_t used_ = 0;
};

struct BuildParams {
  int target_learnt = 0;    // number of learnt symbols wanted
  int64_t min_freq = 2;     // in the sample
  int64_t symbol_cost = 0;  // Q24 bits, in the sample
  int64_t step_cost = 0;    // Q24 bits per coded symbol
};

// The merge state: distinct units as symbol sequences, symbol and pair counts, the score heap.
class Merger {
 public:
  Merger(const UnitTable& units, const int64_t* base_counts, const BuildParams& params);

  // Runs merges until the target is reached or no pair pays; returns the learnt strings still in use.
  std::vector<std::vector<uint8_t>> run();

 private:
  struct Pair {
    uint32_t key;                 // first << 16 | second
    uint32_t last_word;           // last word appended to words (cheap de-duplication)
    uint32_t touched;             // merge step that last raised the count
    int64_t count;                // occurrences, weighted by unit counts
    std::vector<uint32_t> words;  // words that contain (or once contained) the pair
  };
  struct HeapEntry {
    int64_t score;
    uint32_t key;
    bool operator<(const HeapEntry& o) const { return score != o.score ? score < o.score : key > o.key; }
  };

  int64_t score(const Pair& p) const;
  uint32_t pair_of(uint32_t key);  // creates it if new
  void merge(uint32_t pair_index);
  void merge_word(uint32_t w, uint16_t a, uint16_t b, uint16_t z);
  void add_pair_count(uint32_t key, int64_t delta, uint32_t w);
  bool learnt_alive(uint32_t s) const { return s >= kFirstLearnt && count_[s] >= params_.min_freq; }

  BuildParams params_;
  const FixedLog2& log_ = fixed_log2();
  std::vector<uint16_t> syms_;              // all words' symbols
  std::vector<uint32_t> start_;             // per word
  std::vector<uint8_t> len_;                // per word, current length in symbols
  std::vector<uint32_t> freq_;              // per word
  std::vector<uint32_t> visited_;           // per word: merge step that last rewrote it
  std::vector<int64_t> count_;              // per symbol id
  std::vector<std::vector<uint8_t>> text_;  // per symbol id: its bytes
  int64_t total_ = 0;                       // sum of count_
  std::vector<Pair> pairs_;
  PairIndex index_;
  std::priority_queue<HeapEntry> heap_;
  std::vector<uint32_t> raised_;  // pairs whose count rose in the current merge step
  uint32_t step_ = 0;
  int alive_ = 0;  // learnt symbols with count >= min_freq
};

Merger::Merger(const UnitTable& units, const int64_t* base_counts, const BuildParams& params)
    : params_(params), count_(kFirstLearnt, 0), text_(kFirstLearnt) {
  for (int s = 0; s < kFirstLearnt; ++s) {
    count_[s] = base_counts[s];
    total_ += base_counts[s];
    if (s < 256) text_[s] = {static_cast<uint8_t>(s)};
  }
  // Words in hash table order. The result does not depend on it: counts are sums, the heap orders by
  // (score, pair key), and each merge rewrites every word holding the pair, in any order.
  std::vector<const UnitTable::Entry*> order;
  order.reserve(units.size());
  for (const auto& e : units.slots()) {
    if (e.count != 0) order.push_back(&e);
  }
  syms_.reserve(units.total_bytes());
  start_.reserve(order.size());
  for (const UnitTable::Entry* e : order) {
    const uint8_t* p = units.bytes(*e);
    start_.push_back(static_cast<uint32_t>(syms_.size()));
    len_.push_back(static_cast<uint8_t>(e->len));
    freq_.push_back(e->count);
    for (uint32_t i = 0; i < e->len; ++i) {
      syms_.push_back(p[i]);
      count_[p[i]] += e->count;
      total_ += e->count;
    }
  }
  visited_.assign(start_.size(), 0);
  for (uint32_t w = 0; w < start_.size(); ++w) {
    const uint16_t* s = &syms_[start_[w]];
    for (int i = 0; i + 1 < len_[w]; ++i) add_pair_count((uint32_t{s[i]} << 16) | s[i + 1], freq_[w], w);
  }
  for (const Pair& p : pairs_) {
    if (p.count < params_.min_freq) continue;
    int64_t sc = score(p);
    if (sc > 0) heap_.push({sc, p.key});
  }
  raised_.clear();
}

// Bits saved by replacing the f occurrences of (a, b) with a new symbol, under an order-0 model of the
// whole symbol stream plus a fixed cost per coded symbol: H = N log N - sum c log c + N * step_cost,
// before minus after, minus the fixed cost per dictionary symbol. Without the step cost, order-0 refuses
// to join a word to its leading space (" " is cheap, and "is" also occurs inside "this"), which leaves
// half the words in two pieces; a contextual model pays for every step it takes.
int64_t Merger::score(const Pair& p) const {
  uint32_t a = p.key >> 16, b = p.key & 0xffff;
  int64_t f = p.count, n = total_, ca = count_[a];
  int64_t gain = log_.xlog2x(n) - log_.xlog2x(n - f) + log_.xlog2x(f);
  if (a == b) {
    f = std::min(f, ca / 2);  // "aaa" counts two adjacent (a, a) but only one can merge
    gain += log_.xlog2x(ca - 2 * f) - log_.xlog2x(ca);
  } else {
    int64_t cb = count_[b];
    gain += log_.xlog2x(ca - f) - log_.xlog2x(ca) + log_.xlog2x(cb - f) - log_.xlog2x(cb);
  }
  return gain + f * params_.step_cost - params_.symbol_cost;
}

uint32_t Merger::pair_of(uint32_t key) {
  uint32_t i = index_.find(key);
  if (i != PairIndex::kNone) return i;
  i = static_cast<uint32_t>(pairs_.size());
  pairs_.push_back(Pair{key, PairIndex::kNone, 0, 0, {}});
  index_.insert(key, i);
  return i;
}

void Merger::add_pair_count(uint32_t key, int64_t delta, uint32_t w) {
  Pair& p = pairs_[pair_of(key)];
  p.count += delta;
  if (delta > 0) {
    if (p.last_word != w) {
      p.words.push_back(w);
      p.last_word = w;
    }
    if (p.touched != step_) {
      p.touched = step_;
      raised_.push_back(static_cast<uint32_t>(&p - pairs_.data()));
    }
  }
}

void Merger::merge_word(uint32_t w, uint16_t a, uint16_t b, uint16_t z) {
  uint16_t* s = &syms_[start_[w]];
  int len = len_[w];
  uint32_t before[kMaxUnit], after[kMaxUnit];
  int nb = 0, na = 0, merged = 0, j = 0;
  for (int i = 0; i + 1 < len; ++i) before[nb++] = (uint32_t{s[i]} << 16) | s[i + 1];
  for (int i = 0; i < len;) {
    if (i + 1 < len && s[i] == a && s[i + 1] == b) {
      s[j++] = z;
      i += 2;
      ++merged;
    } else {
      s[j++] = s[i++];
    }
  }
  if (merged == 0) return;  // stale entry of the pair's word list
  len_[w] = static_cast<uint8_t>(j);
  for (int i = 0; i + 1 < j; ++i) after[na++] = (uint32_t{s[i]} << 16) | s[i + 1];
  // Apply only the net change of the word's pair multiset.
  std::sort(before, before + nb);
  std::sort(after, after + na);
  int64_t f = freq_[w];
  int x = 0, y = 0;
  while (x < nb || y < na) {
    if (y == na || (x < nb && before[x] < after[y])) {
      add_pair_count(before[x++], -f, w);
    } else if (x == nb || after[y] < before[x]) {
      add_pair_count(after[y++], f, w);
    } else {
      ++x;
      ++y;
    }
  }
  int64_t m = f * merged;
  count_[z] += m;
  count_[a] -= m;
  count_[b] -= m;
  total_ -= m;
}

void Merger::merge(uint32_t pair_index) {
  uint32_t key = pairs_[pair_index].key;
  uint16_t a = static_cast<uint16_t>(key >> 16), b = static_cast<uint16_t>(key & 0xffff);
  uint16_t z = static_cast<uint16_t>(text_.size());
  std::vector<uint8_t> t = text_[a];
  t.insert(t.end(), text_[b].begin(), text_[b].end());
  text_.push_back(std::move(t));
  count_.push_back(0);
  bool a_alive = learnt_alive(a), b_alive = learnt_alive(b);

  ++step_;
  raised_.clear();
  std::vector<uint32_t> words = std::move(pairs_[pair_index].words);
  pairs_[pair_index].words = {};
  pairs_[pair_index].last_word = PairIndex::kNone;
  for (uint32_t w : words) {
    if (visited_[w] == step_) continue;
    visited_[w] = step_;
    merge_word(w, a, b, z);
  }
  for (uint32_t i : raised_) {
    const Pair& p = pairs_[i];
    if (p.count < params_.min_freq) continue;
    int64_t sc = score(p);
    if (sc > 0) heap_.push({sc, p.key});
  }
  // Learnt symbols that fell below the minimum frequency are dropped from the final vocabulary (the
  // tokenizer re-cuts their occurrences with the symbols that remain), which frees their slot.
  alive_ += learnt_alive(z) - (a_alive && !learnt_alive(a)) - (a != b && b_alive && !learnt_alive(b));
}

std::vector<std::vector<uint8_t>> Merger::run() {
  while (alive_ < params_.target_learnt && text_.size() < kMaxVocab - 1 && !heap_.empty()) {
    HeapEntry top = heap_.top();
    heap_.pop();
    uint32_t i = index_.find(top.key);
    const Pair& p = pairs_[i];
    if (p.count < params_.min_freq) continue;  // pushed again if its count rises
    int64_t sc = score(p);
    if (sc <= 0) continue;
    if (sc != top.score && !heap_.empty() && HeapEntry{sc, top.key} < heap_.top()) {
      heap_.push({sc, top.key});  // no longer the best: retry with its current score
      continue;
    }
    merge(i);
  }
  std::vector<std::vector<uint8_t>> out;
  for (uint32_t s = kFirstLearnt; s < text_.size(); ++s) {
    if (learnt_alive(s)) out.push_back(std::move(text_[s]));
  }
  return out;
}

}  // namespace
}  // namespace tokenizer_detail

namespace {

// Below this the dictionary does not pay for itself with the LSTM: canterbury/cp.html (24 KB) came out 2.6%
// larger with one than without, while calgary/progc (40 KB) gained 1%.
constexpr size_t kMinAdaptiveInput = 32 << 10;
constexpr size_t kSampleSlices = 64;
constexpr size_t kMaxSampleLimit = size_t{1} << 30;  // keeps every count below 2^31 (FixedLog2::xlog2x)
constexpr int kAutoMinFreq = 4;
constexpr int kAutoSymbolCostBits = 16;  // about what a symbol takes in the serialized dictionary
// Cost of one coded symbol beyond its order-0 bits. Measured on enwiki-sample.xml and bible.txt at 16k:
// 0 gives 1.87 / 2.9 bytes per symbol, 4 gives 2.96 / 3.97 and also the lowest order-0 and adaptive
// order-2 code lengths; larger values change nothing (the score is then almost plain pair frequency).
constexpr int kStepCostBits = 4;
constexpr int kMinLearnt = 16;  // fewer learnt symbols than this: not worth a dictionary
constexpr int64_t kMaxSymbolCostBits = int64_t{1} << 20;  // keeps the Q24 cost scaling within 64 bits

uint64_t isqrt(uint64_t x) {
  uint64_t r = 0;
  for (uint64_t bit = uint64_t{1} << 31; bit != 0; bit >>= 1) {
    if ((r + bit) * (r + bit) <= x) r += bit;
  }
  return r;
}

}  // namespace

Dictionary build_dictionary(const uint8_t* data, size_t n, const TokenizerOptions& options) {
  using namespace tokenizer_detail;
  if (options.max_vocab < 0 || options.max_vocab > kMaxVocab) {
    throw Error(ErrorCode::kUsage,
                "tokenizer: max_vocab must be in [0, 65536], got " + std::to_string(options.max_vocab));
  }
  if (options.min_freq < 0 || options.symbol_cost_bits < 0) {
    throw Error(ErrorCode::kUsage, "tokenizer: min_freq and symbol_cost_bits must be >= 0");
  }
  if (options.max_sample < kSampleSlices || options.max_sample > kMaxSampleLimit) {
    throw Error(ErrorCode::kUsage, "tokenizer: max_sample must be in [64, 2^30]");
  }
  int64_t target = options.max_vocab - kFirstLearnt;
  if (target <= 0 || n < 2) return Dictionary();
  if (options.adaptive) {
    if (n < kMinAdaptiveInput || !looks_like_text(data, n)) return Dictionary();
    // Learnt symbols up to 2 sqrt(n): 4k at 4 MB, 16k from 64 MB on. On a sweep of vocabulary sizes this
    // minimized an adaptive order-2 code length of the symbols plus the dictionary bytes within ~1% on
    // texts from 24 KB to 4 MB (the optimum moves from ~300 to ~4000 symbols).
    target = std::min<int64_t>(target, 2 * static_cast<int64_t>(isqrt(n)));
  }

  // Sample: the whole input, or evenly spaced slices of it. Units cut at slice edges are harmless.
  const bool whole = n <= options.max_sample;
  size_t slice = whole ? n : options.max_sample / kSampleSlices;
  size_t slices = whole ? 1 : kSampleSlices;
  size_t sampled = slice * slices;

  UnitTable units;
  int64_t base_counts[kFirstLearnt] = {};
  for (size_t k = 0; k < slices; ++k) {
    size_t begin = slices == 1 ? 0 : (n - slice) / (slices - 1) * k;
    split_units(
        data + begin, slice, [&](uint16_t esc) { ++base_counts[esc]; },
        [&](const uint8_t* p, size_t len) {
          if (len == 1) {
            ++base_counts[p[0]];
          } else {
            units.add(p, len);
          }
        });
  }

  // Frequencies are measured on the sample: scale the thresholds, which refer to the whole input.
  int64_t min_freq = options.min_freq != 0 ? options.min_freq : (options.adaptive ? kAutoMinFreq : 2);
  int64_t cost_bits =
      options.symbol_cost_bits != 0 ? options.symbol_cost_bits : (options.adaptive ? kAutoSymbolCostBits : 0);
  cost_bits = std::min<int64_t>(cost_bits, kMaxSymbolCostBits);
  uint64_t ratio = (static_cast<uint64_t>(sampled) << 16) / n;  // sampled / n in Q16
  BuildParams params;
  params.target_learnt = static_cast<int>(target);
  params.min_freq = std::max<int64_t>(2, static_cast<int64_t>((min_freq * ratio) >> 16));
  params.symbol_cost =
      static_cast<int64_t>(((static_cast<uint64_t>(cost_bits) << FixedLog2::kCostFracBits) * ratio) >> 16);
  params.step_cost = int64_t{kStepCostBits} << FixedLog2::kCostFracBits;

  std::vector<std::vector<uint8_t>> learnt = Merger(units, base_counts, params).run();
  if (options.adaptive && learnt.size() < kMinLearnt) return Dictionary();
  return Dictionary::from_strings(std::move(learnt));
}

}  // namespace nncpp
