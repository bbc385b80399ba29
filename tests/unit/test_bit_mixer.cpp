// The binary-domain mixer (src/core/bit_mixer.h): its logistic tables, its tables of bit counters, and a
// round trip through the range coder in which the decoder's mixer rebuilds every symbol from the bits.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "core/bit_mixer.h"
#include "core/quantize.h"
#include "core/range_coder.h"

namespace nncpp {
namespace {

std::vector<std::vector<uint8_t>> symbols_as_bytes(int vocab) {
  std::vector<std::vector<uint8_t>> bytes(vocab);
  for (int s = 0; s < vocab; ++s)
    bytes[s] = s < 256 ? std::vector<uint8_t>{static_cast<uint8_t>(s)}
                       : std::vector<uint8_t>{static_cast<uint8_t>(s & 255), static_cast<uint8_t>(s >> 8)};
  return bytes;
}

MixSettings all_models() {
  MixSettings m;
  m.models = (1u << kNumContextModels) - 1;
  m.table_bits = 12;
  m.binary = true;
  m.count_limit = 255;
  m.lr = 3e-3f;
  m.initial_weight = 0.15f;
  return m;
}

// A fixed, uneven network distribution over the vocabulary.
std::vector<float> network(int vocab) {
  std::vector<float> net(vocab);
  float sum = 0;
  for (int s = 0; s < vocab; ++s) sum += net[s] = 1.0f + static_cast<float>(s % 7);
  for (float& p : net) p /= sum;
  return net;
}

TEST(Logistic, SquashIsMonotoneAndStretchInvertsIt) {
  Logistic f;
  EXPECT_EQ(f.squash(0), 32768);
  EXPECT_NEAR(f.squash(256), 43691, 2) << "256 = one bit of odds: p = 2/3";
  int previous = 0;
  for (int x = -Logistic::kMaxLogit; x <= Logistic::kMaxLogit; ++x) {
    const int p = f.squash(x);
    ASSERT_GE(p, previous);
    ASSERT_GE(p, 1);
    ASSERT_LE(p, 65535);
    previous = p;
  }
  for (int x = -2000; x <= 2000; x += 7) EXPECT_NEAR(f.stretch(f.squash(x)), x, 2) << x;
  EXPECT_EQ(f.squash(1 << 20), f.squash(Logistic::kMaxLogit)) << "clamped";
}

TEST(BitTable, KeepsAContextsBucketAndClearsANewOne) {
  BitTable table(10);
  BitTable::Bucket* a = table.find(0x1234567890abcdefull);
  a->node[0] = (1u << 31) | 5;  // seen 5 times: the pair's other bucket is the one to replace
  EXPECT_EQ(table.find(0x1234567890abcdefull), a);
  EXPECT_EQ(table.find(0x1234567890abcdefull)->node[0], (1u << 31) | 5);
  BitTable::Bucket* b = table.find(0x1234567890abcdefull ^ 0xff);  // same index, another check
  EXPECT_NE(b, a) << "the pair's other bucket takes the second context";
  for (uint32_t node : b->node) EXPECT_EQ(node, b->node[0]) << "a claimed bucket starts even";
}

// Codes `data` (symbols < vocab) through a mixer and a range coder, `streams` streams interleaved (or, if
// chunked, stream b coding the b-th of `streams` equal parts, in lockstep as the engine does); returns the
// payloads' total bytes. Then decodes with a fresh mixer and checks every symbol.
// long_hint_at(i): the long match model's hint for the symbol at index i of data (none by default).
size_t round_trip(
    const std::vector<uint16_t>& data, int vocab, const MixSettings& settings, int streams = 2,
    bool chunked = false,
    const std::function<MatchHint(size_t)>& long_hint_at = [](size_t) { return MatchHint{}; }) {
  const auto bytes = symbols_as_bytes(vocab);
  const std::vector<float> net = network(vocab);
  auto hint_at = [&](size_t i) {
    return i >= 3 ? MatchHint{data[i - 3], static_cast<uint16_t>(i % 5)} : MatchHint{};
  };
  // The i-th symbol coded: its stream and its index in data.
  const size_t part = data.size() / streams;
  auto stream_of = [&](size_t i) { return static_cast<int>(i % streams); };
  auto index_of = [&](size_t i) { return chunked ? (i % streams) * part + i / streams : i; };
  const size_t count = chunked ? part * streams : data.size();
  BitMixer encoder_mixer(settings, vocab, &bytes);
  encoder_mixer.reset_streams(streams);
  std::vector<RangeEncoder> encoders(streams);
  for (size_t i = 0; i < count; ++i) {
    const int b = stream_of(i);
    encoder_mixer.begin(b, net.data(), hint_at(index_of(i)), long_hint_at(index_of(i)));
    for (int k = encoder_mixer.bits() - 1; k >= 0; --k) {
      const int bit = data[index_of(i)] >> k & 1;
      const uint32_t p1 = encoder_mixer.p1(b);
      if (p1 == 0) {
        EXPECT_EQ(bit, 0) << "a bit no symbol has is never coded";
      } else {
        EXPECT_LE(p1, 65535u);
        const uint32_t one = p1 << (kFreqBits - 16);
        if (bit)
          encoders[b].encode(0, one);
        else
          encoders[b].encode(one, kFreqTotal - one);
      }
      encoder_mixer.update(b, bit);
    }
  }
  size_t coded = 0;
  std::vector<RangeDecoder> decoders;
  for (RangeEncoder& e : encoders) {
    e.finish();
    coded += e.bytes().size();
  }
  for (RangeEncoder& e : encoders) decoders.emplace_back(e.bytes().data(), e.bytes().size());

  BitMixer decoder_mixer(settings, vocab, &bytes);
  decoder_mixer.reset_streams(streams);
  for (size_t i = 0; i < count; ++i) {
    const int b = stream_of(i);
    decoder_mixer.begin(b, net.data(), hint_at(index_of(i)), long_hint_at(index_of(i)));
    uint32_t symbol = 0;
    for (int k = decoder_mixer.bits() - 1; k >= 0; --k) {
      const uint32_t p1 = decoder_mixer.p1(b);
      int bit = 0;
      if (p1 != 0) {
        const uint32_t one = p1 << (kFreqBits - 16);
        bit = decoders[b].target() < one;
        if (bit)
          decoders[b].consume(0, one);
        else
          decoders[b].consume(one, kFreqTotal - one);
      }
      symbol = symbol << 1 | bit;
      decoder_mixer.update(b, bit);
    }
    if (symbol != data[index_of(i)]) {
      ADD_FAILURE() << "symbol " << i << " decoded as " << symbol << ", coded " << data[index_of(i)];
      break;
    }
  }
  return coded;
}

std::vector<uint16_t> text(const std::string& s) {
  return std::vector<uint16_t>(s.begin(), s.end());
}

TEST(BitMixer, RoundTripsArbitraryBytes) {
  std::mt19937 g(11);
  std::vector<uint16_t> data(6000);
  for (uint16_t& s : data) s = static_cast<uint16_t>(g() & 255);
  const size_t coded = round_trip(data, 256, all_models());
  EXPECT_LT(coded, data.size() * 1.05) << "random bytes may cost little more than 8 bits each";
}

TEST(BitMixer, LearnsWhatTheContextsPredict) {
  std::string s;
  for (int i = 0; i < 4000; ++i) s += "abracadabra, "[i % 13];
  MixSettings off = all_models();
  off.models = 0;  // network, order 0 and match model only
  const size_t with_models = round_trip(text(s), 256, all_models());
  EXPECT_LT(with_models, s.size() / 20) << "a periodic text is nearly free once counted";
  EXPECT_LT(with_models, round_trip(text(s), 256, off));
}

// A bitmap of 32-byte rows (a marker byte, then 248 pixels) drawn by rule 90: each pixel is the XOR of the
// two pixels above it on either side. Three bits above tell every pixel; whole bytes above do not.
std::vector<uint16_t> rule90_bitmap(int rows) {
  constexpr int kPixels = 248;
  std::mt19937 g(3);
  std::vector<int> row(kPixels);
  for (int& p : row) p = g() & 1;
  std::vector<uint16_t> data;
  for (int r = 0; r < rows; ++r) {
    data.push_back(0xFF);
    for (int byte = 0; byte < kPixels / 8; ++byte) {
      int v = 0;
      for (int k = 0; k < 8; ++k) v = v << 1 | row[byte * 8 + k];
      data.push_back(static_cast<uint16_t>(v));
    }
    std::vector<int> next(kPixels);
    for (int x = 0; x < kPixels; ++x) next[x] = (x > 0 ? row[x - 1] : 0) ^ (x + 1 < kPixels ? row[x + 1] : 0);
    row = next;
  }
  return data;
}

TEST(BitMixer, LearnsToTrustALongMatchThatIsUsuallyRight) {
  // Random bytes no context predicts; the long match model names the right byte 7 times in 10 (and a wrong
  // one otherwise): the mixer learns its trust, both sides alike.
  std::mt19937 g(5);
  std::vector<uint16_t> data(6000);
  for (auto& v : data) v = static_cast<uint16_t>(g() & 255);
  const auto long_hint = [&](size_t i) {
    const uint16_t right = data[i];
    return MatchHint{i % 10 < 7 ? right : static_cast<uint16_t>((right + 1) & 255), 20};
  };
  const size_t with_hint = round_trip(data, 256, all_models(), 2, false, long_hint);
  const size_t without = round_trip(data, 256, all_models());
  EXPECT_LT(with_hint, without * 6 / 10);
}

TEST(BitMixer, RecordBitsModelSeesPixelsAboveAcrossByteBoundaries) {
  const std::vector<uint16_t> bitmap = rule90_bitmap(200);
  MixSettings without = all_models();
  without.models &= ~(1u << kRecordBits);
  const size_t with_bits = round_trip(bitmap, 256, all_models(), /*streams=*/1);
  const size_t bytes_only = round_trip(bitmap, 256, without, /*streams=*/1);
  EXPECT_LT(with_bits * 2, bytes_only) << "the rule is three bits wide: the bits model learns it";
}

TEST(BitMixer, StreamsCodingPartsOfABitmapShareItsRowsAndDecode) {
  // 8 streams, 40 rows each, as the engine cuts an input: the record length they find together, the
  // pixel tables (wide ones included, allocated on the first row found) and the falling learning rate
  // must be the same on both sides.
  const std::vector<uint16_t> bitmap = rule90_bitmap(320);
  MixSettings without = all_models();
  without.models &= ~(1u << kRecordBits);
  const size_t with_bits = round_trip(bitmap, 256, all_models(), /*streams=*/8, /*chunked=*/true);
  const size_t bytes_only = round_trip(bitmap, 256, without, /*streams=*/8, /*chunked=*/true);
  EXPECT_LT(with_bits * 2, bytes_only);
}

TEST(BitMixer, NeverCodesASymbolOutsideAVocabularyOfOddSize) {
  // 300 symbols need 9 bits; prefixes leading to 300..511 must be impossible on both sides.
  std::mt19937 g(5);
  std::vector<uint16_t> data(3000);
  for (size_t i = 0; i < data.size(); ++i)
    data[i] = static_cast<uint16_t>(g() % 3 ? 256 + g() % 44 : g() % 300);
  round_trip(data, 300, all_models());
}

TEST(BitMixer, SameInputSameProbabilities) {
  const auto bytes = symbols_as_bytes(256);
  const std::vector<float> net = network(256);
  std::vector<uint32_t> trace[2];
  for (auto& t : trace) {
    BitMixer mixer(all_models(), 256, &bytes);
    mixer.reset_streams(1);
    for (int i = 0; i < 2000; ++i) {
      const uint16_t symbol = static_cast<uint16_t>("the cat sat on the mat "[i % 23]);
      mixer.begin(0, net.data(), MatchHint{});
      for (int k = 7; k >= 0; --k) {
        t.push_back(mixer.p1(0));
        mixer.update(0, symbol >> k & 1);
      }
    }
  }
  EXPECT_EQ(trace[0], trace[1]);
}

}  // namespace
}  // namespace nncpp
