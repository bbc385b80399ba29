#include "core/bit_mixer.h"

#include <algorithm>
#include <cmath>

#include "core/fast_math.h"
#include "core/mix64.h"

namespace nncpp {
namespace {

// Counters: the probability of a 1 in the top 22 bits, the visits (saturating at the limit) in the low 10.
constexpr uint32_t kCounterHalf = (1u << 21) << 10;
int counter_p16(uint32_t c) {
  return static_cast<int>(c >> 16);
}
int counter_visits(uint32_t c) {
  return static_cast<int>(c & 1023);
}

constexpr int kApmBuckets = 33;  // interpolation points over the logistic domain, 256 apart
constexpr int kWeightOne = 1 << 16;
// Counter groups of first_agree_: order 0, the context models, the record bits tables.
constexpr int kOrder0Group = 0, kRecordBitsGroup = kNumContextModels + 1;
// A first update's rate is kept within [0.1, 0.95]; it starts at 5/6 (the later updates follow
// 1/(n + 1.5): 2/3 at n = 0 lost 0.1% on the 8 files of docs/architecture.md against 5/6).
constexpr int kFirstRateMin = 6554, kFirstRateMax = 62259, kFirstRateStart = 54613;
// The mixer's learning rate falls from the level's rate towards kLateRate as it learns, halfway after
// kRateHalfLife·1024 bits (128 KB): small files want the full rate early, large inputs a lower one later
// (book1 -0.48%, 1 MB of enwiki -0.36%, pic -2.3%, paper1 -0.04% against a constant 7e-4).
constexpr double kLateRate = 1e-4;
constexpr int64_t kRateHalfLife = 1024;

std::vector<uint16_t> identity_apm(const Logistic& logistic, int contexts) {
  std::vector<uint16_t> table(static_cast<size_t>(contexts) * kApmBuckets);
  for (int c = 0; c < contexts; ++c)
    for (int j = 0; j < kApmBuckets; ++j)
      table[static_cast<size_t>(c) * kApmBuckets + j] =
          static_cast<uint16_t>(logistic.squash((j - 16) * 256));
  return table;
}

// The long match model's counters: [32][2], by length / 2 and expected bit.
int long_bucket(int length) {
  return std::min(length, 63) >> 1;
}

}  // namespace

Logistic::Logistic() : squash_(2 * kMaxLogit + 1), stretch_(65536) {
  for (int x = -kMaxLogit; x <= kMaxLogit; ++x) {
    const float p = 1.0f / (1.0f + exp2_approx(static_cast<float>(-x) / 256.0f));
    const int p16 = static_cast<int>(p * 65536.0f + 0.5f);
    squash_[x + kMaxLogit] = static_cast<uint16_t>(std::clamp(p16, 1, 65535));
  }
  // stretch(p) = the x whose squash is nearest above p: monotone, and stretch(squash(x)) ≈ x.
  int p = 0;
  for (int x = -kMaxLogit; x <= kMaxLogit; ++x) {
    const int v = squash_[x + kMaxLogit];
    for (; p <= v; ++p) stretch_[p] = static_cast<int16_t>(x);
  }
  for (; p < 65536; ++p) stretch_[p] = kMaxLogit;
}

BitTable::BitTable(int bits) : shift_(64 - bits), buckets_(size_t{1} << bits) {}

BitTable::Bucket* BitTable::find(uint64_t hash) {
  const size_t i = static_cast<size_t>(hash >> shift_) & ~size_t{1};
  const uint32_t check = static_cast<uint32_t>(hash) | 1;
  Bucket* a = &buckets_[i];
  Bucket* b = &buckets_[i + 1];
  if (a->check == check) return a;
  if (b->check == check) return b;
  // Replace the one whose first node was seen less (an empty bucket has 0 visits).
  Bucket* victim = counter_visits(b->node[0]) < counter_visits(a->node[0]) ? b : a;
  victim->check = check;
  std::fill(std::begin(victim->node), std::end(victim->node), kCounterHalf);
  return victim;
}

BitMixer::BitMixer(const MixSettings& settings, int vocab,
                   const std::vector<std::vector<uint8_t>>* symbol_bytes)
    : settings_(settings), vocab_(vocab), symbol_bytes_(symbol_bytes), reciprocal_(1024) {
  bits_ = 1;
  while ((1 << bits_) < vocab_) ++bits_;
  for (int n = 0; n < 1024; ++n) reciprocal_[n] = static_cast<int>(65536.0 * 2 / (2 * n + 3));
  const int table_bits = std::max(10, static_cast<int>(settings.table_bits));
  for (int i = 0; i < kNumContextModels; ++i) {
    table_of_[i] = -1;
    if ((settings.models >> i & 1) && i != kRecordBits) {
      table_of_[i] = static_cast<int>(tables_.size());
      tables_.emplace_back(table_bits);
    }
  }
  order0_.assign(size_t{1} << bits_, kCounterHalf);
  match_counters_.assign(64, kCounterHalf);
  long_match_counters_.assign(64, kCounterHalf);
  const int sets_a = bits_ <= 12 ? 1 << bits_ : bits_;
  weights_a_.assign(static_cast<size_t>(sets_a) * kInputs, 0);
  weights_b_.assign(static_cast<size_t>(kSelectB) * kInputs, 0);
  weights_c_.assign(static_cast<size_t>(256) * kInputs, 0);
  weights_e_.assign(static_cast<size_t>(65536) * kInputs, 0);
  weights_f_.assign(static_cast<size_t>(65536) * kInputs, 0);
  weights_g_.assign(static_cast<size_t>(65536) * kInputs, 0);
  weights_h_.assign(static_cast<size_t>(65536) * kInputs, 0);
  // The first set starts as a plain average: the network at twice a count model's weight (from zero, small
  // inputs lost 0.3%).
  const int initial = static_cast<int>(settings.initial_weight * kWeightOne);
  for (size_t set = 0; set < weights_a_.size() / kInputs; ++set)
    for (int i = kNetInput; i < kMatchInput; ++i)
      weights_a_[set * kInputs + i] = i == kNetInput ? 2 * initial : initial;
  first_rate_ = std::llround(static_cast<double>(settings.lr) * (1 << 24));
  late_rate_ = std::min<int64_t>(first_rate_, std::llround(kLateRate * (1 << 24)));
  apm_ = identity_apm(logistic_, kApmContexts);
  std::fill(std::begin(first_agree_), std::end(first_agree_), kFirstRateStart);
}

void BitMixer::start_record_bits() {
  weights_d_.assign(static_cast<size_t>(kSelectD) * kInputs, 0);
  record_tables_.assign(size_t{kRecordBitsTables} << kRecordBitsTableBits, kCounterHalf);
  wide_tables_.assign(size_t{kWideTables} << kWideTableBits, kCounterHalf);
  pixel_apm_ = identity_apm(logistic_, kPixelApmContexts);
}

void BitMixer::reset_streams(int streams) {
  streams_.clear();
  streams_.reserve(streams);
  for (int b = 0; b < streams; ++b) {
    streams_.emplace_back(symbol_bytes_, &records_);
    streams_.back().tree.resize(size_t{2} << bits_);
  }
}

void BitMixer::begin(int b, const float* net, const MatchHint& hint, const MatchHint& long_hint) {
  StreamState& st = streams_[b];
  st.history.contexts(st.hashes);
  st.c0 = 1;
  st.done = 0;
  st.nibble_node = 1;
  st.hint = hint.symbol < vocab_ ? hint : MatchHint{};
  st.long_hint = long_hint.symbol < vocab_ ? long_hint : MatchHint{};
  // Order-2 and order-3 weight sets, the same for all the symbol's bits: the weights follow the local
  // statistics of text (5 text files -1.1% with the lower learning rate that more sets want).
  st.set_e = (st.prev_symbol & 255) << 8 | (st.last_symbol & 255);
  st.set_f = static_cast<int>(mix64(st.hashes[kOrder3]) >> 48);
  // And by the current and previous word, and by the symbols 2 and 3 back: text and binary fields (10
  // files -0.16% and -0.18% alone, -0.32% together; by the column or the word prefix -0.05%).
  st.set_g = static_cast<int>(mix64(st.hashes[kWord]) >> 48);
  st.set_h = static_cast<int>(mix64(st.hashes[kSparse]) >> 48);
  const uint32_t record = st.history.record();
  st.record_bits = (settings_.models >> kRecordBits & 1) && record != 0 && bits_ == 8;
  if (st.record_bits) {
    if (record_tables_.empty()) start_record_bits();
    const ContextHistory& h = st.history;
    for (uint32_t row = 0; row < 3; ++row) {
      const uint32_t above = (row + 1) * record;
      st.rows[row] =
          uint32_t{h.byte_back(above + 1)} << 16 | uint32_t{h.byte_back(above)} << 8 | h.byte_back(above - 1);
    }
    st.left_bytes = uint32_t{h.byte_back(2)} << 8 | h.byte_back(1);
  }
  // Subtree sums, leaves first, in a fixed order.
  float* tree = st.tree.data();
  const int leaves = 1 << bits_;
  for (int s = 0; s < leaves; ++s) tree[leaves + s] = s < vocab_ ? std::max(net[s], 0.0f) : 0.0f;
  for (int k = leaves - 1; k >= 1; --k) tree[k] = tree[2 * k] + tree[2 * k + 1];
}

int BitMixer::apm(const std::vector<uint16_t>& table, int context, int x, int* index) const {
  // Interpolate between the two points around x; remember the nearer one for the update.
  const int pos = (Logistic::clamp(x) + 4096) * 32;  // [32, 262112]: 13 fraction bits
  const int j = pos >> 13, w = pos & 8191;
  const size_t at = static_cast<size_t>(context) * kApmBuckets + j;
  *index = static_cast<int>(at + (w >> 12));
  return (table[at] * (8192 - w) + table[at + 1] * w) >> 13;
}

void BitMixer::update_apm(const StreamState& st, int bit) {
  const int target = bit ? 65535 : 0;
  const auto learn = [target](uint16_t& p) { p = static_cast<uint16_t>(p + ((target - p) >> 6)); };
  learn(apm_[st.apm_index]);
  if (st.set_d >= 0) learn(pixel_apm_[st.pixel_apm_index]);
}

void BitMixer::update_counter(uint32_t* counter, int bit, int group) {
  const uint32_t c = *counter;
  const int n = counter_visits(c);
  const int64_t p = c >> 10;
  int rate = reciprocal_[n];
  // A node seen once predicts its first bit as strongly as the second visits of this group's nodes
  // repeated their first bit: in text the high orders are nearly deterministic, in noisy binary data
  // (geo) they are not (a fixed first rate of 1/1.1 gained 1.3% on paper1 and lost 0.8% on geo).
  if (group >= 0) {
    int& agree = first_agree_[group];
    if (n == 0) {
      rate = std::clamp(agree, kFirstRateMin, kFirstRateMax);
    } else if (n == 1) {
      const bool repeated = (p >= (int64_t{1} << 21)) == (bit != 0);
      agree += ((repeated ? 65535 : 0) - agree) >> 8;
    }
  }
  const int64_t target = bit ? (1 << 22) - 1 : 0;
  const int64_t next = p + (((target - p) * rate) >> 16);
  const int limit = static_cast<int>(settings_.count_limit);
  *counter = static_cast<uint32_t>(next << 10) | static_cast<uint32_t>(n < limit ? n + 1 : limit);
}

int BitMixer::record_bits_inputs(StreamState& st) {
  // For bitmaps (one bit a pixel, as in fax images) the neighbours of a bit are the bits at the same column
  // in the rows above and the bits just before it; in byte tables the same windows see parts of the
  // bytes above. Bit k of a byte (0 = most significant) sits at bit 15 - k of a row's 24 bits.
  const int k = st.done;
  const uint32_t left = st.left_bytes << k | (st.c0 & ((1u << k) - 1));  // the nearest in the low bits
  const auto above = [&](int row, int half) {  // 2·half + 1 bits centred on this column
    return st.rows[row] >> (15 - k - half) & ((1u << (2 * half + 1)) - 1);
  };
  const uint32_t context[kRecordBitsTables] = {
      (left & 31) | above(0, 2) << 5 | above(1, 1) << 10,                    // 13 bits
      (left & 255) | above(0, 3) << 8,                                       // 15
      (left & 3) | above(0, 4) << 2 | above(1, 2) << 11,                     // 16
      (left & 4095) | above(0, 1) << 12,                                     // 15
      (left & 7) | above(0, 5) << 3 | above(1, 1) << 14,                     // 17
      (left & 63) | above(0, 2) << 6 | above(1, 3) << 11,                    // 18
      (left & 7) | above(0, 2) << 3 | above(1, 2) << 8 | above(2, 2) << 13,  // 18, three rows
      (left & 1) | above(0, 3) << 1 | above(1, 3) << 8 | above(2, 1) << 15,  // 18
  };
  // Wider windows, hashed (their contexts are sparse: a fax page is mostly white): the shapes of letters
  // and lines (pic -3.1%, kennedy.xls -2.1%, obj2 -0.15%).
  const uint64_t wide[kWideTables] = {
      uint64_t{left & 4095} | uint64_t{above(0, 6)} << 12 | uint64_t{above(1, 4)} << 25,
      uint64_t{left & 65535} | uint64_t{above(0, 8)} << 16 | uint64_t{above(1, 8)} << 33 |
          uint64_t{above(2, 4)} << 50,
      uint64_t{left & 63} | uint64_t{above(0, 4)} << 6 | uint64_t{above(1, 4)} << 15 |
          uint64_t{above(2, 4)} << 24,
      uint64_t{left & 1023} | uint64_t{above(0, 8)} << 10 | uint64_t{above(1, 6)} << 27 |
          uint64_t{above(2, 6)} << 40,
  };
  st.pixel_context = static_cast<int>((left & 63) | above(0, 3) << 6 | above(1, 2) << 13);
  const auto use = [&](int m, uint32_t* c) {
    st.record_counter[m] = c;
    st.x[kRecordBitsInput + m] = counter_visits(*c) > 0 ? logistic_.stretch(counter_p16(*c)) : 0;
  };
  for (int m = 0; m < kRecordBitsTables; ++m)
    use(m, &record_tables_[size_t{static_cast<size_t>(m)} << kRecordBitsTableBits | context[m]]);
  for (int w = 0; w < kWideTables; ++w) {
    const uint64_t hash = mix64(wide[w] * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(w + 1));
    use(kRecordBitsTables + w,
        &wide_tables_[size_t{static_cast<size_t>(w)} << kWideTableBits | hash >> (64 - kWideTableBits)]);
  }
  return static_cast<int>((left & 7) | above(0, 1) << 3);
}

int BitMixer::match_input(const StreamState& st, int rest, const MatchHint& hint, uint32_t* counters,
                          int bucket, MatchSay* say) const {
  *say = MatchSay{};
  if (hint.length == 0 || (static_cast<uint32_t>(hint.symbol) + (1u << bits_)) >> (rest + 1) != st.c0)
    return 0;
  say->expected = hint.symbol >> rest & 1;
  say->counter = &counters[bucket * 2 + say->expected];
  const int s = logistic_.stretch(counter_p16(*say->counter));
  return say->expected ? s : -s;
}

uint32_t BitMixer::p1(int b) {
  StreamState& st = streams_[b];
  const int rest = bits_ - st.done - 1;  // bits after this one
  if (st.done % 4 == 0) {  // a new 4-bit group: find each model's bucket for context + bits so far
    st.nibble_node = 1;
    for (int i = 0; i < kNumContextModels; ++i)
      st.bucket[i] = table_of_[i] < 0
                         ? nullptr
                         : tables_[table_of_[i]].find(mix64(st.hashes[i] + st.c0 * 0x9E3779B97F4A7C15ull));
  }
  // The smallest symbol whose prefix is c0 followed by a 1.
  const uint32_t first_with_one = ((2 * st.c0 + 1) << rest) - (1u << bits_);
  st.forced = first_with_one >= static_cast<uint32_t>(vocab_);
  if (st.forced) return 0;

  int* x = st.x;
  // The network: 256·log2 of the odds of its subtrees.
  const float one = st.tree[2 * st.c0 + 1], zero = st.tree[2 * st.c0];
  if (one <= 0.0f)
    x[kNetInput] = -Logistic::kMaxLogit;
  else if (zero <= 0.0f)
    x[kNetInput] = Logistic::kMaxLogit;
  else
    x[kNetInput] = Logistic::clamp(static_cast<int>(256.0f * (log2_approx(one) - log2_approx(zero))));
  st.counter[0] = &order0_[st.c0];
  x[kOrder0Input] = logistic_.stretch(counter_p16(order0_[st.c0]));
  int known = 0;  // symbol orders whose node has been seen
  for (int i = 0; i < kNumContextModels; ++i) {
    if (st.bucket[i] == nullptr) {
      st.counter[i + 1] = nullptr;
      x[kModelInput + i] = 0;
      continue;
    }
    uint32_t* c = &st.bucket[i]->node[st.nibble_node - 1];
    st.counter[i + 1] = c;
    const bool seen = counter_visits(*c) > 0;
    x[kModelInput + i] = seen ? logistic_.stretch(counter_p16(*c)) : 0;
    if (seen && i <= kOrder6) ++known;
  }
  // The match models: their trust learnt by length (the long one's in steps of 2: its matches start longer).
  const int length = std::min<int>(st.hint.length, 31);
  x[kMatchInput] = match_input(st, rest, st.hint, match_counters_.data(), length, &st.match);
  x[kLongMatchInput] = match_input(st, rest, st.long_hint, long_match_counters_.data(),
                                   long_bucket(st.long_hint.length), &st.long_match);
  const int match_state = st.match.expected < 0 ? 0 : (length < 8 ? 1 : (length < 16 ? 2 : 3));
  x[kBiasInput] = 256;
  st.set_d = -1;
  if (st.record_bits) {
    st.set_d = record_bits_inputs(st);
  } else {
    for (int m = 0; m < kRecordInputs; ++m) {
      st.record_counter[m] = nullptr;
      x[kRecordBitsInput + m] = 0;
    }
  }

  st.set_a = bits_ <= 12 ? static_cast<int>(st.c0) : st.done;
  // By match state, known orders, the first bit, and whether the long match model has a say (-0.02%).
  st.set_b = ((match_state * 8 + known) * 2 + (st.done == 0)) * 2 + (st.long_match.expected >= 0);
  const int32_t* wa = &weights_a_[static_cast<size_t>(st.set_a) * kInputs];
  const int32_t* wb = &weights_b_[static_cast<size_t>(st.set_b) * kInputs];
  st.set_c = st.last_symbol & 255;
  const int32_t* wc = &weights_c_[static_cast<size_t>(st.set_c) * kInputs];
  const int32_t* we = &weights_e_[static_cast<size_t>(st.set_e) * kInputs];
  const int32_t* wf = &weights_f_[static_cast<size_t>(st.set_f) * kInputs];
  const int32_t* wg = &weights_g_[static_cast<size_t>(st.set_g) * kInputs];
  const int32_t* wh = &weights_h_[static_cast<size_t>(st.set_h) * kInputs];
  int64_t dot = 0;
  if (st.set_d < 0) {
    for (int i = 0; i < kInputs; ++i)
      dot += static_cast<int64_t>(x[i]) * (wa[i] + wb[i] + wc[i] + we[i] + wf[i] + wg[i] + wh[i]);
  } else {
    const int32_t* wd = &weights_d_[static_cast<size_t>(st.set_d) * kInputs];
    for (int i = 0; i < kInputs; ++i)
      dot += static_cast<int64_t>(x[i]) * (wa[i] + wb[i] + wc[i] + wd[i] + we[i] + wf[i] + wg[i] + wh[i]);
  }
  const int mixed = Logistic::clamp(static_cast<int>(dot >> 16));
  st.p_mix = logistic_.squash(mixed);
  // The APM refines the mixer's output by the bits so far and the last symbol; averaging the two was better
  // than either alone, and a second APM by the bits alone gained nothing.
  const uint32_t h = static_cast<uint32_t>(mix64(st.c0 * 0x10001ull + st.last_symbol) >> 48);
  int p = (st.p_mix + apm(apm_, static_cast<int>(h), mixed, &st.apm_index)) >> 1;
  // While the record bits model is on, a second APM by the pixels around (pic: -0.2%), averaged in.
  if (st.set_d >= 0) p = (p + apm(pixel_apm_, st.pixel_context, mixed, &st.pixel_apm_index)) >> 1;
  return static_cast<uint32_t>(std::clamp(p, 1, 65535));
}

void BitMixer::update(int b, int bit) {
  StreamState& st = streams_[b];
  if (!st.forced) {
    const int err = (bit << 16) - st.p_mix;
    const int64_t rate =
        late_rate_ + (first_rate_ - late_rate_) * kRateHalfLife / (kRateHalfLife + (mixer_updates_++ >> 10));
    int32_t* wa = &weights_a_[static_cast<size_t>(st.set_a) * kInputs];
    int32_t* wb = &weights_b_[static_cast<size_t>(st.set_b) * kInputs];
    int32_t* wc = &weights_c_[static_cast<size_t>(st.set_c) * kInputs];
    int32_t* wd = st.set_d < 0 ? nullptr : &weights_d_[static_cast<size_t>(st.set_d) * kInputs];
    int32_t* we = &weights_e_[static_cast<size_t>(st.set_e) * kInputs];
    int32_t* wf = &weights_f_[static_cast<size_t>(st.set_f) * kInputs];
    int32_t* wg = &weights_g_[static_cast<size_t>(st.set_g) * kInputs];
    int32_t* wh = &weights_h_[static_cast<size_t>(st.set_h) * kInputs];
    const auto move = [](int32_t* w, int64_t step) {
      *w = static_cast<int32_t>(std::clamp<int64_t>(*w + step, -(kWeightOne << 4), kWeightOne << 4));
    };
    // One error moves every weight set in use: the weights in use are their sum (a two-layer mixer that
    // mixed the three sets' outputs lost 0.6%).
    for (int i = 0; i < kInputs; ++i) {
      // Rounded, not floored: a floor would pull every weight down by half a unit per update, which on
      // highly predictable data (many tiny errors) outweighs the learning (pic: 49474 -> see docs).
      const int64_t step = (static_cast<int64_t>(st.x[i]) * err * rate + (int64_t{1} << 31)) >> 32;
      move(&wa[i], step);
      move(&wb[i], step);
      move(&wc[i], step);
      move(&we[i], step);
      move(&wf[i], step);
      if (wd != nullptr) move(&wd[i], step);
      move(&wg[i], step);
      move(&wh[i], step);
    }
    for (uint32_t* c : st.record_counter)
      if (c != nullptr) update_counter(c, bit, kRecordBitsGroup);
    for (int i = 0; i <= kNumContextModels; ++i)  // counter[0] is order 0's: group i
      if (st.counter[i] != nullptr) update_counter(st.counter[i], bit, kOrder0Group + i);
    for (const MatchSay* say : {&st.match, &st.long_match})
      if (say->counter != nullptr) update_counter(say->counter, bit == say->expected, -1);
    update_apm(st, bit);
  }
  st.c0 = 2 * st.c0 + bit;
  st.nibble_node = 2 * st.nibble_node + bit;
  if (++st.done == bits_) {
    const uint16_t symbol = static_cast<uint16_t>(st.c0 - (1u << bits_));
    st.history.push(symbol);
    st.prev_symbol = st.last_symbol;
    st.last_symbol = symbol;
  }
}

}  // namespace nncpp
