// libFuzzer target for the quantizer and the range coder (src/core/quantize.cpp, src/core/range_coder.cpp). The input
// is read as a few parameters, then frequency tables and symbols, then a payload. From each input it checks:
//   - quantize() of floats taken from the input (any bit pattern: NaN, infinities, denormals, negatives) and
//     of steeply skewed distributions gives a valid table: cum[0] = 0, cum[V] = 2^31, every frequency >= 1;
//     find_symbol() agrees with a linear search at the table's edges;
//   - the payload decoded with those tables: every target and symbol is in range and the decoder reads
//     nothing outside the payload (ASan);
//   - round trip: the decoded symbols and symbols taken from the input, encoded with the tables, decode to
//     the same symbols with overrun_bytes() <= kMaxValidOverrun, in at most the bits that range_coder.h
//     promises: sum over symbols of log2(2^31 / f) + log2(1 + 1 / f), plus 8 for the flush.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "core/quantize.h"
#include "core/range_coder.h"

namespace {

using nncpp::kFreqTotal;

void check(bool ok) {
  if (!ok) std::abort();
}

// Reads the input front to back; past the end it gives zeros.
class Input {
 public:
  Input(const uint8_t* data, size_t size) : p_(data), end_(data + size) {}
  uint8_t u8() { return p_ < end_ ? *p_++ : 0; }
  uint32_t u32() {
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(u8()) << (8 * i);
    return v;
  }
  // The next n bytes (fewer at the end).
  const uint8_t* take(size_t n, size_t* got) {
    *got = std::min(n, remaining());
    const uint8_t* p = p_;
    p_ += *got;
    return p;
  }
  size_t remaining() const { return static_cast<size_t>(end_ - p_); }

 private:
  const uint8_t* p_;
  const uint8_t* end_;
};

struct Table {
  int vocab;
  std::vector<uint32_t> cum;  // vocab + 1 entries
};

void check_table(const Table& t) {
  check(t.cum[0] == 0 && t.cum[t.vocab] == kFreqTotal);
  for (int i = 0; i < t.vocab; ++i) check(t.cum[i + 1] > t.cum[i]);
  // find_symbol at both edges of a few symbols' ranges, and past the end.
  for (int s : {0, t.vocab / 2, t.vocab - 1}) {
    check(nncpp::find_symbol(t.cum.data(), t.vocab, t.cum[s]) == static_cast<uint32_t>(s));
    check(nncpp::find_symbol(t.cum.data(), t.vocab, t.cum[s + 1] - 1) == static_cast<uint32_t>(s));
  }
  check(nncpp::find_symbol(t.cum.data(), t.vocab, kFreqTotal) == static_cast<uint32_t>(t.vocab - 1));
}

// One table, in one of four ways chosen by the input.
Table make_table(Input& in) {
  const uint8_t mode = in.u8();
  Table t;
  // Mostly small vocabularies (fast, many symbols per input), sometimes up to the format's 65536.
  const uint32_t v = in.u32();
  t.vocab = (mode & 0x80) ? 1 + static_cast<int>(v % nncpp::kMaxVocab) : 1 + static_cast<int>(v % 300);
  t.cum.resize(t.vocab + 1);
  std::vector<float> p(t.vocab);
  switch (mode & 3) {
    case 0:  // raw float bit patterns, the input repeated over the vocabulary
      for (int i = 0; i < t.vocab; ++i) {
        uint32_t bits = in.remaining() >= 4 ? in.u32() : 0x3f800000u ^ static_cast<uint32_t>(i * 2654435761u);
        std::memcpy(&p[i], &bits, 4);
      }
      nncpp::quantize(p.data(), t.vocab, t.cum.data());
      break;
    case 1:  // steep: p_i = 2^-(byte), down to 2^-255 (zero and denormal included)
      for (int i = 0; i < t.vocab; ++i) p[i] = std::ldexp(1.0f, -static_cast<int>(in.u8()));
      nncpp::quantize(p.data(), t.vocab, t.cum.data());
      break;
    case 2: {  // one symbol takes all but the floor of 1 for the others
      std::fill(p.begin(), p.end(), 0.0f);
      p[in.u32() % t.vocab] = 1.0f;
      nncpp::quantize(p.data(), t.vocab, t.cum.data());
      break;
    }
    default: {  // any table: distinct cut points in (0, 2^31), unlike anything quantize() makes
      std::vector<uint32_t> cuts;
      for (int i = 0; i + 1 < t.vocab; ++i) cuts.push_back(1 + in.u32() % (kFreqTotal - 1));
      std::sort(cuts.begin(), cuts.end());
      cuts.erase(std::unique(cuts.begin(), cuts.end()), cuts.end());
      t.vocab = static_cast<int>(cuts.size()) + 1;
      t.cum.assign(1, 0);
      t.cum.insert(t.cum.end(), cuts.begin(), cuts.end());
      t.cum.push_back(kFreqTotal);
      break;
    }
  }
  check_table(t);
  return t;
}

// Encodes symbols[i] with tables[i % k] and checks that they decode back within the promised size.
void round_trip(const std::vector<Table>& tables, const std::vector<uint32_t>& symbols) {
  nncpp::RangeEncoder enc;
  double bound = 8;
  for (size_t i = 0; i < symbols.size(); ++i) {
    const Table& t = tables[i % tables.size()];
    const uint32_t s = symbols[i];
    const uint32_t f = t.cum[s + 1] - t.cum[s];
    enc.encode(t.cum[s], f);
    bound += std::log2(static_cast<double>(kFreqTotal) / f) + std::log2(1.0 + 1.0 / f);
  }
  enc.finish();
  const std::vector<uint8_t>& bytes = enc.bytes();
  check(8.0 * bytes.size() <= bound * (1 + 1e-12) + 1e-6);

  nncpp::RangeDecoder dec(bytes.data(), bytes.size());
  for (size_t i = 0; i < symbols.size(); ++i) {
    const Table& t = tables[i % tables.size()];
    const uint32_t target = dec.target();
    check(target < kFreqTotal);
    const uint32_t s = nncpp::find_symbol(t.cum.data(), t.vocab, target);
    check(s == symbols[i]);
    dec.consume(t.cum[s], t.cum[s + 1] - t.cum[s]);
  }
  check(dec.overrun_bytes() <= nncpp::RangeDecoder::kMaxValidOverrun);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Input in(data, size);
  std::vector<Table> tables(1 + in.u8() % 4);
  for (Table& t : tables) t = make_table(in);
  const size_t count = in.u8() * 16u + in.u8() % 16;  // symbols to decode and to round-trip: 0..4095

  // Symbols from the input, each in its table's range (the round trip of arbitrary sequences).
  std::vector<uint32_t> chosen(std::min(count, in.remaining() / 2));
  for (size_t i = 0; i < chosen.size(); ++i) {
    const uint32_t r = in.u8() | uint32_t{in.u8()} << 8;
    chosen[i] = r % static_cast<uint32_t>(tables[i % tables.size()].vocab);
  }

  // The rest is a payload: decode `count` symbols from it, garbage or not.
  size_t n = 0;
  const uint8_t* payload = in.take(in.remaining(), &n);
  std::vector<uint8_t> copy(payload, payload + n);  // exactly n bytes, so ASan sees any overread
  nncpp::RangeDecoder dec(copy.empty() ? nullptr : copy.data(), copy.size());
  std::vector<uint32_t> decoded(count);
  size_t last_overrun = dec.overrun_bytes();  // the first 32 bits are read at construction
  for (size_t i = 0; i < count; ++i) {
    const Table& t = tables[i % tables.size()];
    const uint32_t target = dec.target();
    check(target < kFreqTotal);
    const uint32_t s = nncpp::find_symbol(t.cum.data(), t.vocab, target);
    check(s < static_cast<uint32_t>(t.vocab) && t.cum[s] <= target && (target < t.cum[s + 1]));
    dec.consume(t.cum[s], t.cum[s + 1] - t.cum[s]);
    decoded[i] = s;
    // A symbol takes at most 31 bits (range >= 2^31, freq >= 1 of 2^31), so the overrun grows by <= 4.
    check(dec.overrun_bytes() <= last_overrun + 4);
    last_overrun = dec.overrun_bytes();
  }

  round_trip(tables, decoded);
  round_trip(tables, chosen);
  return 0;
}
