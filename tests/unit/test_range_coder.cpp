// Quantizer and range coder: table invariants, round trips, coding precision against the ideal
// -sum log2 p of the float probabilities (DESIGN.md section 5), garbage input, carry propagation.
#include "core/range_coder.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "core/checksum.h"
#include "core/quantize.h"

namespace nncpp {
namespace {

using Dist = std::vector<float>;
using Table = std::vector<uint32_t>;

// Portable randomness: std::mt19937_64 is specified exactly, the std distributions are not.
class Rng {
 public:
  explicit Rng(uint64_t seed) : g_(seed) {}
  uint64_t next() { return g_(); }
  double uniform() { return static_cast<double>(g_() >> 11) * 0x1.0p-53; }               // [0, 1)
  double open_uniform() { return (static_cast<double>(g_() >> 11) + 0.5) * 0x1.0p-53; }  // (0, 1)
  uint64_t below(uint64_t n) { return g_() % n; }  // bias is irrelevant here
  double gauss() {
    return std::sqrt(-2 * std::log(open_uniform())) * std::cos(6.283185307179586 * uniform());
  }

 private:
  std::mt19937_64 g_;
};

void shuffle(std::vector<double>* w, Rng& rng) {
  for (size_t i = w->size(); i > 1; --i) std::swap((*w)[i - 1], (*w)[rng.below(i)]);
}

Dist normalize(const std::vector<double>& w) {
  double s = 0;
  for (double x : w) s += x;
  Dist p(w.size());
  for (size_t i = 0; i < w.size(); ++i) p[i] = static_cast<float>(w[i] / s);
  return p;
}

std::vector<double> zipf_weights(int v, double s) {
  std::vector<double> w(v);
  for (int i = 0; i < v; ++i) w[i] = 1 / std::pow(i + 1.0, s);
  return w;
}

// The distribution families. Each call draws a fresh member.
enum class Family { kUniformRandom, kDirichlet, kZipf, kPeaked90, kPeaked99, kPeaked999999, kRealistic };

const char* family_name(Family f) {
  switch (f) {
    case Family::kUniformRandom:
      return "uniform-random";
    case Family::kDirichlet:
      return "dirichlet(0.1)";
    case Family::kZipf:
      return "zipf(1.1)";
    case Family::kPeaked90:
      return "peaked-0.9+zipf";
    case Family::kPeaked99:
      return "peaked-0.99+zipf";
    case Family::kPeaked999999:
      return "peaked-0.999999+zipf";
    case Family::kRealistic:
      return "realistic(zipf1.4*noise)";
  }
  return "?";
}

Dist make_dist(Family f, int v, Rng& rng) {
  std::vector<double> w(v);
  switch (f) {
    case Family::kUniformRandom:
      for (auto& x : w) x = rng.uniform();
      break;
    case Family::kDirichlet:  // Gamma(0.1) ~ Exp(1) * U^(1/0.1): most mass on a few symbols
      for (auto& x : w) x = -std::log(rng.open_uniform()) * std::pow(rng.open_uniform(), 10.0);
      break;
    case Family::kZipf:
      w = zipf_weights(v, 1.1);
      shuffle(&w, rng);
      break;
    case Family::kPeaked90:
    case Family::kPeaked99:
    case Family::kPeaked999999: {
      const double top = f == Family::kPeaked90 ? 0.9 : f == Family::kPeaked99 ? 0.99 : 0.999999;
      std::vector<double> tail = zipf_weights(v - 1, 1.0);
      double s = 0;
      for (double x : tail) s += x;
      shuffle(&tail, rng);
      const int at = static_cast<int>(rng.below(v));
      for (int i = 0, j = 0; i < v; ++i) w[i] = i == at ? top : (1 - top) * tail[j++] / s;
      break;
    }
    case Family::kRealistic:  // about 5 bits of entropy at 16k symbols, like a language model
      w = zipf_weights(v, 1.4);
      for (auto& x : w) x *= std::exp(0.5 * rng.gauss());
      shuffle(&w, rng);
      break;
  }
  return normalize(w);
}

// Samples from the float probabilities themselves (double cumulative, binary search).
class Sampler {
 public:
  explicit Sampler(const Dist& p) : cum_(p.size() + 1, 0.0) {
    for (size_t i = 0; i < p.size(); ++i) cum_[i + 1] = cum_[i] + p[i];
  }
  int sample(Rng& rng) const {
    const double u = rng.uniform() * cum_.back();
    int s = static_cast<int>(std::upper_bound(cum_.begin(), cum_.end(), u) - cum_.begin()) - 1;
    s = std::clamp(s, 0, static_cast<int>(cum_.size()) - 2);
    while (cum_[s + 1] == cum_[s]) s = s > 0 ? s - 1 : s + 1;  // never a zero-probability symbol
    return s;
  }

 private:
  std::vector<double> cum_;
};

Table quantized(const Dist& p) {
  Table cum(p.size() + 1);
  quantize(p.data(), static_cast<int>(p.size()), cum.data());
  return cum;
}

void expect_valid_table(const Table& cum) {
  ASSERT_EQ(cum.front(), 0u);
  ASSERT_EQ(cum.back(), kFreqTotal);
  for (size_t i = 0; i + 1 < cum.size(); ++i) ASSERT_GE(cum[i + 1], cum[i] + 1) << "symbol " << i;
}

void encode(RangeEncoder& enc, const Table& cum, int s) {
  enc.encode(cum[s], cum[s + 1] - cum[s]);
}

int decode(RangeDecoder& dec, const Table& cum) {
  const int v = static_cast<int>(cum.size()) - 1;
  const uint32_t s = find_symbol(cum.data(), v, dec.target());
  EXPECT_LT(s, static_cast<uint32_t>(v));
  dec.consume(cum[s], cum[s + 1] - cum[s]);
  return static_cast<int>(s);
}

// A coded sequence: symbol i was coded with table tables[which[i]].
struct Sequence {
  std::vector<Table> tables;
  std::vector<int> which, symbols;
};

std::vector<uint8_t> encode_all(const Sequence& seq) {
  RangeEncoder enc;
  for (size_t i = 0; i < seq.symbols.size(); ++i) encode(enc, seq.tables[seq.which[i]], seq.symbols[i]);
  enc.finish();
  return enc.take();
}

void expect_round_trip(const Sequence& seq, const std::vector<uint8_t>& bytes) {
  RangeDecoder dec(bytes.data(), bytes.size());
  for (size_t i = 0; i < seq.symbols.size(); ++i)
    ASSERT_EQ(decode(dec, seq.tables[seq.which[i]]), seq.symbols[i]) << "at " << i;
  EXPECT_LE(dec.overrun_bytes(), RangeDecoder::kMaxValidOverrun);
}

// ---- quantize ----

TEST(Quantize, Golden) {
  const float p[3] = {0.5f, 0.25f, 0.25f};
  uint32_t cum[4];
  quantize(p, 3, cum);
  // freq = 1 + floor(p * (2^31 - 3)) = 1073741823, 536870912, 536870912; the missing 1 goes to symbol 0.
  EXPECT_EQ(cum[1], 1073741824u);
  EXPECT_EQ(cum[2], 1610612736u);
  EXPECT_EQ(cum[3], kFreqTotal);
}

// The table is part of the format: a fixed input must give the same table on every build and platform.
// The input is made with integer arithmetic and IEEE division only (no libm), so it is fixed too.
TEST(Quantize, GoldenChecksum) {
  std::mt19937_64 g(2024);
  const int v = 16384;
  std::vector<double> w(v);
  double sum = 0;
  for (auto& x : w) sum += x = static_cast<double>(g() >> (40 + g() % 24));  // heavy tailed, some zeros
  w[g() % v] = 9 * sum;
  sum *= 10;
  Dist p(v);
  for (int i = 0; i < v; ++i) p[i] = static_cast<float>(w[i] / sum);
  p[17] = std::numeric_limits<float>::quiet_NaN();
  p[18] = std::numeric_limits<float>::denorm_min();
  p[19] = -0.25f;
  const uint32_t in_crc = crc32_update(0, reinterpret_cast<const uint8_t*>(p.data()), p.size() * 4);
  const Table cum = quantized(p);
  const uint32_t out_crc = crc32_update(0, reinterpret_cast<const uint8_t*>(cum.data()), cum.size() * 4);
  EXPECT_EQ(in_crc, 0x497B8669u) << std::hex << in_crc;
  EXPECT_EQ(out_crc, 0x47BCD0F6u) << std::hex << out_crc;
}

TEST(Quantize, InvariantsOnRandomDistributions) {
  Rng rng(1);
  for (int v : {1, 2, 3, 255, 256, 1000, 16384, 65536}) {
    for (Family f : {Family::kUniformRandom, Family::kDirichlet, Family::kZipf, Family::kPeaked99}) {
      if (v < 2 && f != Family::kUniformRandom) continue;
      const Dist p = make_dist(f, v, rng);
      const Table cum = quantized(p);
      expect_valid_table(cum);
      // The remainder went to the first most probable symbol.
      const int top = static_cast<int>(std::max_element(p.begin(), p.end()) - p.begin());
      double sum = 0;
      for (float x : p) sum += x;
      const double scale = (kFreqTotal - static_cast<double>(v)) / sum;
      for (int i = 0; i < v; ++i) {
        const uint32_t floor_freq = 1 + static_cast<uint32_t>(std::floor(p[i] * scale));
        if (i != top) {
          ASSERT_NEAR(cum[i + 1] - cum[i], floor_freq, 1) << "v " << v << " i " << i;
        }
      }
    }
  }
}

TEST(Quantize, RobustToBrokenInput) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  const float denorm = std::numeric_limits<float>::denorm_min();
  const std::vector<Dist> cases = {
      {0, 0, 0, 0},
      {nan, nan, nan, nan},
      {inf, 1, 0, 0},
      {-inf, -1, 0.5f, 0.5f},
      {nan, 0.25f, inf, 0.75f},
      {denorm, denorm, denorm, denorm},
      {denorm, 0, 1e-38f, 0},
      {std::numeric_limits<float>::max(), std::numeric_limits<float>::max(), 0, 1},
      {1e-30f, 3e-30f, 0, 0},
      {0, 0, 0, 1},
      {1, 1, 1, 1},
  };
  for (const Dist& p : cases) {
    const Table cum = quantized(p);
    expect_valid_table(cum);
  }
  // All zero (after sanitizing) -> uniform.
  for (const Dist& p : {cases[0], cases[1], cases[5]}) {
    const Table cum = quantized(p);
    for (int i = 0; i <= 4; ++i) EXPECT_EQ(cum[i], static_cast<uint32_t>(i) * (kFreqTotal / 4));
  }
  // Non-finite values count as 0: {inf, 1, 0, 0} puts nearly everything on symbol 1.
  const Table t = quantized(cases[2]);
  EXPECT_EQ(t[1] - t[0], 1u);
  EXPECT_EQ(t[2] - t[1], kFreqTotal - 3);

  // Large vocabularies of garbage.
  Rng rng(5);
  for (int v : {16384, 65536}) {
    Dist p(v);
    for (auto& x : p) {
      uint32_t bits = static_cast<uint32_t>(rng.next());
      std::memcpy(&x, &bits, 4);
    }
    expect_valid_table(quantized(p));
    std::fill(p.begin(), p.end(), 0.0f);
    p[v - 1] = 1;
    const Table cum = quantized(p);
    expect_valid_table(cum);
    EXPECT_EQ(cum[v - 1], static_cast<uint32_t>(v - 1));  // every other symbol has frequency 1
  }
}

TEST(FindSymbol, Boundaries) {
  Rng rng(9);
  for (int v : {1, 2, 3, 7, 256, 16384}) {
    Dist p(v, 0.0f);
    for (int i = 0; i < v; i += 3) p[i] = static_cast<float>(rng.uniform());  // many frequency-1 symbols
    p[v - 1] = 0;
    const Table cum = quantized(p);
    for (int s = 0; s < v; ++s) {
      ASSERT_EQ(find_symbol(cum.data(), v, cum[s]), static_cast<uint32_t>(s));
      ASSERT_EQ(find_symbol(cum.data(), v, cum[s + 1] - 1), static_cast<uint32_t>(s));
    }
    EXPECT_EQ(find_symbol(cum.data(), v, kFreqTotal), static_cast<uint32_t>(v - 1));
    EXPECT_EQ(find_symbol(cum.data(), v, 0xFFFFFFFFu), static_cast<uint32_t>(v - 1));
  }
}

// ---- range coder ----

TEST(RangeCoder, EmptyStream) {
  RangeEncoder enc;
  enc.finish();
  EXPECT_TRUE(enc.bytes().empty());
  RangeDecoder dec(nullptr, 0);
  EXPECT_LE(dec.overrun_bytes(), RangeDecoder::kMaxValidOverrun);
}

TEST(RangeCoder, RoundTripSampled) {
  const Family families[] = {Family::kUniformRandom, Family::kDirichlet, Family::kZipf,
                             Family::kPeaked90,      Family::kPeaked99,  Family::kRealistic};
  Rng rng(11);
  for (int v : {2, 256, 16384}) {
    for (Family f : families) {
      Sequence seq;
      std::vector<Sampler> samplers;
      for (int k = 0; k < 8; ++k) {
        const Dist p = make_dist(f, v, rng);
        seq.tables.push_back(quantized(p));
        samplers.emplace_back(p);
      }
      for (int i = 0; i < 4000; ++i) {
        seq.which.push_back(static_cast<int>(rng.below(8)));
        seq.symbols.push_back(samplers[seq.which.back()].sample(rng));
      }
      SCOPED_TRACE(std::string(family_name(f)) + " v=" + std::to_string(v));
      expect_round_trip(seq, encode_all(seq));
    }
  }
}

// Symbols at the extremes: frequency-1 symbols, the last symbol (cum_low = 2^31 - 1), the huge top one,
// and uniformly chosen symbols regardless of their probability.
TEST(RangeCoder, RoundTripExtremes) {
  Rng rng(12);
  for (int v : {2, 3, 256, 16384, 65536}) {
    Sequence seq;
    Dist p(v, 0.0f);
    p[0] = 1;
    seq.tables.push_back(quantized(p));  // symbol 0: 2^31 - v + 1, all others 1
    std::fill(p.begin(), p.end(), 0.0f);
    p[v - 1] = 1;
    seq.tables.push_back(quantized(p));  // the top symbol holds nearly everything
    seq.tables.push_back(quantized(make_dist(Family::kDirichlet, v, rng)));
    for (int i = 0; i < 6000; ++i) {
      const int t = static_cast<int>(rng.below(3));
      int s;
      switch (rng.below(4)) {
        case 0:
          s = 0;
          break;
        case 1:
          s = v - 1;
          break;
        case 2:
          s = static_cast<int>(rng.below(std::min(v, 3)));
          break;
        default:
          s = static_cast<int>(rng.below(v));
          break;
      }
      seq.which.push_back(t);
      seq.symbols.push_back(s);
    }
    SCOPED_TRACE("v=" + std::to_string(v));
    expect_round_trip(seq, encode_all(seq));
  }
}

// Raw (cum_low, freq) pairs at the edges, with no table at all.
TEST(RangeCoder, RoundTripRawIntervals) {
  Rng rng(13);
  std::vector<std::pair<uint32_t, uint32_t>> syms;
  for (int i = 0; i < 20000; ++i) {
    uint32_t lo, f;
    switch (rng.below(5)) {
      case 0:
        lo = kFreqTotal - 1, f = 1;
        break;
      case 1:
        lo = 0, f = 1;
        break;
      case 2:
        lo = 0, f = kFreqTotal;
        break;
      case 3:
        lo = 1, f = kFreqTotal - 1;
        break;
      default:
        lo = static_cast<uint32_t>(rng.below(kFreqTotal));
        f = 1 + static_cast<uint32_t>(rng.below(kFreqTotal - lo));
    }
    syms.push_back({lo, f});
  }
  RangeEncoder enc;
  for (auto [lo, f] : syms) enc.encode(lo, f);
  enc.finish();
  RangeDecoder dec(enc.bytes().data(), enc.bytes().size());
  for (size_t i = 0; i < syms.size(); ++i) {
    const uint32_t t = dec.target();
    ASSERT_GE(t, syms[i].first) << i;
    ASSERT_LT(t, syms[i].first + syms[i].second) << i;
    dec.consume(syms[i].first, syms[i].second);
  }
  EXPECT_LE(dec.overrun_bytes(), RangeDecoder::kMaxValidOverrun);
}

// Keeps the encoder's interval straddling the point where its pending output would carry, so it writes
// long runs of one bits (0xFF bytes), then codes a symbol above that point: the carry has to ripple back
// through the whole run. The encoder state is mirrored here with the same arithmetic.
TEST(RangeCoder, LongCarryRuns) {
  const int v = 256;
  Rng rng(14);
  const Table cum = quantized(make_dist(Family::kUniformRandom, v, rng));  // not powers of two
  uint64_t low = 0;
  uint32_t range = 0xFFFFFFFF;
  int shifted = 0;
  auto mirror = [&](int s) {
    const uint64_t lo = (uint64_t{range} * cum[s]) >> kFreqBits;
    const uint64_t hi = (uint64_t{range} * cum[s + 1]) >> kFreqBits;
    low += lo;
    range = static_cast<uint32_t>(hi - lo);
    const bool carried = low >> 32;
    low &= 0xFFFFFFFF;
    const int n = __builtin_clz(range);
    shifted += n;
    low = (low << n) & 0xFFFFFFFF;
    range <<= n;
    return carried;
  };
  Sequence seq;
  seq.tables.push_back(cum);
  int carries = 0;
  size_t shortest_carried = SIZE_MAX;
  for (int round = 0; round < 20; ++round) {
    for (int i = 0; i < 50; ++i) {  // some ordinary symbols
      const int s = static_cast<int>(rng.below(v));
      carries += mirror(s);
      seq.symbols.push_back(s);
    }
    // Code random symbols until the interval contains 2^32 - 1 and 2^32 (the carry point).
    while (low + range <= (uint64_t{1} << 32)) {
      const int s = static_cast<int>(rng.below(v));
      carries += mirror(s);
      seq.symbols.push_back(s);
    }
    // Symbols containing the point 2^32 - 1: each shifts out only one bits.
    shifted = 0;
    for (int i = 0; i < (round % 2 ? 1000 : 3000); ++i) {
      const uint32_t value = static_cast<uint32_t>((uint64_t{1} << 32) - 1 - low);
      const uint32_t t = static_cast<uint32_t>((((uint64_t{value} + 1) << kFreqBits) - 1) / range);
      const int s = static_cast<int>(find_symbol(cum.data(), v, t));
      ASSERT_FALSE(mirror(s));
      seq.symbols.push_back(s);
    }
    if (round == 19) {  // leave the last run as 0xFF bytes: go below the carry point with symbol 0
      const int run_bits = shifted;
      for (bool below = false; !below;) {
        below = low + ((uint64_t{range} * cum[1]) >> kFreqBits) <= (uint64_t{1} << 32);
        ASSERT_FALSE(mirror(0));
        seq.symbols.push_back(0);
      }
      for (int i = 0; i < 10; ++i) {
        ASSERT_FALSE(mirror(0));
        seq.symbols.push_back(0);
      }
      shifted = run_bits;
      break;
    }
    // Release the run with a carry: the first symbol lying wholly above the carry point.
    int s = static_cast<int>(find_symbol(
        cum.data(), v, static_cast<uint32_t>(((((uint64_t{1} << 32) - low) << kFreqBits) - 1) / range)));
    if (s + 1 < v) ++s;
    ASSERT_TRUE(mirror(s)) << round;
    ++carries;
    seq.symbols.push_back(s);
    shortest_carried = std::min<size_t>(shortest_carried, shifted / 8);
  }
  seq.which.assign(seq.symbols.size(), 0);
  const std::vector<uint8_t> bytes = encode_all(seq);
  size_t longest_zero = 0, longest_ff = 0;
  for (size_t i = 0, z = 0, f = 0; i < bytes.size(); ++i) {
    z = bytes[i] == 0 ? z + 1 : 0;
    f = bytes[i] == 0xFF ? f + 1 : 0;
    longest_zero = std::max(longest_zero, z);
    longest_ff = std::max(longest_ff, f);
  }
  std::printf("carry test: %d carries, %zu bytes, longest 0x00 run %zu, longest 0xFF run %zu\n", carries,
              bytes.size(), longest_zero, longest_ff);
  EXPECT_GE(longest_zero + 2, shortest_carried);  // a run of one bits turned into zeros by one carry
  EXPECT_GE(longest_ff + 2, static_cast<size_t>(shifted / 8));  // the last run, never carried
  EXPECT_GT(shortest_carried, 500u);
  expect_round_trip(seq, bytes);
}

// Decoding garbage must stay in bounds, terminate and produce valid symbols.
TEST(RangeCoder, GarbageInput) {
  Rng rng(15);
  std::vector<Table> tables;
  tables.push_back(quantized(make_dist(Family::kZipf, 256, rng)));
  tables.push_back(quantized(make_dist(Family::kPeaked99, 16384, rng)));
  Dist p(16384, 0.0f);
  p[7] = 1;
  tables.push_back(quantized(p));
  for (int trial = 0; trial < 60; ++trial) {
    size_t size = trial < 3 ? trial : rng.below(trial < 40 ? 64 : 5000);
    std::vector<uint8_t> data(size);
    for (auto& b : data) b = static_cast<uint8_t>(trial % 3 == 0 ? 0xFF : rng.next());
    RangeDecoder dec(size ? data.data() : nullptr, size);
    for (int i = 0; i < 5000; ++i) decode(dec, tables[rng.below(tables.size())]);
    if (size < 100) {
      EXPECT_GT(dec.overrun_bytes(), 0u);
    }
  }
}

// Truncation shows up as overrun (or as a wrong symbol, which the container CRC catches).
TEST(RangeCoder, TruncationIsVisible) {
  Rng rng(16);
  const Table cum = quantized(make_dist(Family::kRealistic, 16384, rng));
  const Sampler sampler([&] {
    Rng r(16);
    return make_dist(Family::kRealistic, 16384, r);
  }());
  Sequence seq;
  seq.tables.push_back(cum);
  for (int i = 0; i < 3000; ++i) seq.symbols.push_back(sampler.sample(rng));
  seq.which.assign(seq.symbols.size(), 0);
  const auto bytes = encode_all(seq);
  for (size_t cut : {size_t{8}, size_t{100}, bytes.size() / 2}) {
    RangeDecoder dec(bytes.data(), bytes.size() - cut);
    bool same = true;
    for (int s : seq.symbols) same &= decode(dec, cum) == s;
    EXPECT_TRUE(!same || dec.overrun_bytes() > RangeDecoder::kMaxValidOverrun) << cut;
  }
}

// DESIGN.md section 5: coded size within 0.1% (+ 64 bits) of -sum log2 p_float(symbol).
TEST(RangeCoder, PrecisionAgainstIdeal) {
  struct Case {
    Family family;
    int vocab;
  };
  const Case cases[] = {
      {Family::kUniformRandom, 2}, {Family::kPeaked99, 2},     {Family::kZipf, 256},
      {Family::kDirichlet, 256},   {Family::kPeaked99, 256},   {Family::kUniformRandom, 16384},
      {Family::kDirichlet, 16384}, {Family::kZipf, 16384},     {Family::kRealistic, 16384},
      {Family::kPeaked90, 16384},  {Family::kPeaked99, 16384}, {Family::kPeaked999999, 16384},
  };
  const int n = 100000;
  const int pool = 16;
  Rng rng(17);
  for (const Case& c : cases) {
    Sequence seq;
    std::vector<Sampler> samplers;
    std::vector<Dist> dists;
    for (int k = 0; k < pool; ++k) {
      dists.push_back(make_dist(c.family, c.vocab, rng));
      seq.tables.push_back(quantized(dists.back()));
      samplers.emplace_back(dists.back());
    }
    double ideal = 0, quant = 0;  // -log2 of the float p, and of the quantized q
    for (int i = 0; i < n; ++i) {
      const int k = static_cast<int>(rng.below(pool));
      const int s = samplers[k].sample(rng);
      seq.which.push_back(k);
      seq.symbols.push_back(s);
      ideal -= std::log2(static_cast<double>(dists[k][s]));
      quant -= std::log2((seq.tables[k][s + 1] - seq.tables[k][s]) / static_cast<double>(kFreqTotal));
    }
    const auto bytes = encode_all(seq);
    const double coded = 8.0 * bytes.size();
    const std::string name = std::string(family_name(c.family)) + " v=" + std::to_string(c.vocab);
    std::printf(
        "precision %-34s %7.4f bits/sym  ideal %10.1f  quantized %+6.2f  coded %+6.2f bits  (%+.5f%%)\n",
        name.c_str(), ideal / n, ideal, quant - ideal, coded - ideal, 100 * (coded - ideal) / ideal);
    RecordProperty("overhead_pct " + name, std::to_string(100 * (coded - ideal) / ideal));
    EXPECT_LE(coded, ideal * 1.001 + 64) << name;
    expect_round_trip(seq, bytes);
  }
}

// Encode + decode symbols/s including quantize() on both sides, as the engine runs them.
TEST(RangeCoder, Throughput) {
  for (int v : {256, 16384}) {
    Rng rng(18);
    std::vector<Dist> dists;
    std::vector<Sampler> samplers;
    for (int k = 0; k < 16; ++k) {
      dists.push_back(make_dist(Family::kRealistic, v, rng));
      samplers.emplace_back(dists.back());
    }
    const int n = v > 1000 ? 20000 : 200000;
    std::vector<int> which(n), symbols(n);
    for (int i = 0; i < n; ++i)
      which[i] = static_cast<int>(rng.below(16)), symbols[i] = samplers[which[i]].sample(rng);
    Table cum(v + 1);
    using Clock = std::chrono::steady_clock;
    const auto t0 = Clock::now();
    RangeEncoder enc;
    for (int i = 0; i < n; ++i) {
      quantize(dists[which[i]].data(), v, cum.data());
      encode(enc, cum, symbols[i]);
    }
    enc.finish();
    const auto t1 = Clock::now();
    RangeDecoder dec(enc.bytes().data(), enc.bytes().size());
    int errors = 0;
    for (int i = 0; i < n; ++i) {
      quantize(dists[which[i]].data(), v, cum.data());
      errors += decode(dec, cum) != symbols[i];
    }
    const auto t2 = Clock::now();
    EXPECT_EQ(errors, 0);
    // The coder alone, tables precomputed.
    std::vector<Table> tables;
    for (const Dist& p : dists) tables.push_back(quantized(p));
    const auto t3 = Clock::now();
    RangeEncoder enc2;
    for (int i = 0; i < n; ++i) encode(enc2, tables[which[i]], symbols[i]);
    enc2.finish();
    RangeDecoder dec2(enc2.bytes().data(), enc2.bytes().size());
    for (int i = 0; i < n; ++i) errors += decode(dec2, tables[which[i]]) != symbols[i];
    const auto t4 = Clock::now();
    EXPECT_EQ(errors, 0);
    auto sec = [](auto a, auto b) { return std::chrono::duration<double>(b - a).count(); };
    const double total = n / sec(t0, t2), coder = n / sec(t3, t4);
    std::printf(
        "throughput v=%5d: encode %.3g sym/s, decode %.3g sym/s (both with quantize); "
        "encode+decode %.3g sym/s; coder alone (encode+decode) %.3g sym/s; quantize %.2f us\n",
        v, n / sec(t0, t1), n / sec(t1, t2), total, coder, 1e6 * (sec(t0, t2) - sec(t3, t4)) / (2.0 * n));
    RecordProperty("encode_decode_sym_per_s_v" + std::to_string(v), std::to_string(total));
  }
}

}  // namespace
}  // namespace nncpp
