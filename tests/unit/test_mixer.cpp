// The context mixer (src/core/mixer.h), its count tables (context_table.h) and contexts (context_models.h):
// tables count and evict as documented, the record length is found, both sides of a round trip compute
// bit-identical distributions, and the mixture learns what the counts say.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/context_models.h"
#include "core/context_table.h"
#include "core/mixer.h"

namespace nncpp {
namespace {

std::vector<std::vector<uint8_t>> byte_symbols() {
  std::vector<std::vector<uint8_t>> bytes(256);
  for (int s = 0; s < 256; ++s) bytes[s] = {static_cast<uint8_t>(s)};
  return bytes;
}

int count_of(const ContextTable::Bucket* b, uint16_t symbol) {
  for (int k = 0; k < ContextTable::kSlots; ++k)
    if (b->count[k] != 0 && b->symbol[k] == symbol) return b->count[k];
  return 0;
}

TEST(ContextTable, CountsWhatFollowsAContext) {
  ContextTable table(10, 30);
  const uint64_t context = 0x123456789abcdef0ull;
  EXPECT_EQ(table.find(context), nullptr);
  for (int i = 0; i < 5; ++i) table.update(context, 'a');
  table.update(context, 'b');
  const ContextTable::Bucket* b = table.find(context);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(count_of(b, 'a'), 5);
  EXPECT_EQ(count_of(b, 'b'), 1);
  EXPECT_EQ(b->total, 6);
  EXPECT_EQ(table.find(context ^ 0xffff), nullptr) << "another check value is another context";
}

TEST(ContextTable, CountsHalveAboveTheLimitAndNewSymbolsEvictTheWeakest) {
  ContextTable table(10, 8);
  const uint64_t context = 42ull << 40;
  for (int i = 0; i < 9; ++i) table.update(context, 'x');  // the 9th passes the limit: 9 -> 4
  EXPECT_EQ(count_of(table.find(context), 'x'), 4);
  for (int s = 0; s < ContextTable::kSlots - 1; ++s) table.update(context, static_cast<uint16_t>('a' + s));
  table.update(context, 'z');  // all slots taken: replaces a count-1 symbol, keeps 'x'
  const ContextTable::Bucket* b = table.find(context);
  EXPECT_EQ(count_of(b, 'x'), 4);
  EXPECT_EQ(count_of(b, 'z'), 1);
  EXPECT_EQ(count_of(b, 'a'), 0) << "the first of the weakest slots is replaced";
}

TEST(ContextHistory, FindsTheRecordLengthOfATable) {
  const auto bytes = byte_symbols();
  ContextHistory history(&bytes);
  std::mt19937 g(7);
  std::string row(37, '\0');
  for (char& c : row) c = static_cast<char>('A' + g() % 20);
  std::vector<uint64_t> record_hash;
  for (int r = 0; r < 40; ++r)
    for (char c : row) {
      uint64_t h[kNumContextModels];
      history.contexts(h);
      record_hash.push_back(h[kRecord]);
      history.push(static_cast<uint8_t>(c));
    }
  // Once the length is found, the context of a column repeats one row later.
  const size_t late = record_hash.size() - 37;
  for (size_t i = late - 37; i < late; ++i) EXPECT_EQ(record_hash[i], record_hash[i + 37]) << i;
}

// Rows of a bitmap-like table: mostly one value, a few marks that repeat row after row.
std::string bitmap_rows(int rows, int length) {
  std::string data;
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < length; ++c) data.push_back(c % 13 == 5 ? static_cast<char>('a' + c % 7) : '\0');
  return data;
}

TEST(RecordFinder, SharedByStreamsItFindsTheLengthSoonerThanEachAlone) {
  const auto bytes = byte_symbols();
  const int length = 150;
  const std::string rows = bitmap_rows(4, length);
  RecordFinder shared(kSharedRecordMinHits);
  std::vector<ContextHistory> streams;
  for (int b = 0; b < 4; ++b) streams.emplace_back(&bytes, &shared);
  ContextHistory alone(&bytes);
  // In lockstep, as the mixers code their streams: each sees only its own 4 rows.
  for (char c : rows) {
    for (ContextHistory& h : streams) h.push(static_cast<uint8_t>(c));
    alone.push(static_cast<uint8_t>(c));
  }
  EXPECT_EQ(alone.record(), 0u) << "4 rows are too few for one stream";
  EXPECT_EQ(shared.length(), static_cast<uint32_t>(length));
  for (const ContextHistory& h : streams) EXPECT_EQ(h.record(), static_cast<uint32_t>(length));
}

TEST(RecordFinder, ALengthThatDoesNotPredictTheBytesIsNotUsed) {
  // Every gap of 20 is confirmed, but only the marks repeat: most bytes differ from the byte 20 back.
  RecordFinder finder(kSharedRecordMinHits);
  std::mt19937 g(3);
  for (int i = 0; i < 2000; ++i) {
    finder.vote(20);
    finder.observe(g() % 4 == 0);
  }
  EXPECT_EQ(finder.candidate(), 20u);
  EXPECT_EQ(finder.length(), 0u);
  for (int i = 0; i < 2000; ++i) finder.observe(true);  // now it predicts
  EXPECT_EQ(finder.length(), 20u);
  for (int i = 0; i < 2000; ++i) finder.observe(false);  // and then no longer: off again
  EXPECT_EQ(finder.length(), 0u);
}

TEST(ContextHistory, SymbolOrdersSeeOnlyTheirHistory) {
  const auto bytes = byte_symbols();
  ContextHistory a(&bytes), b(&bytes);
  for (uint8_t c : std::string("xyzabc")) a.push(c);
  for (uint8_t c : std::string("qqqabc")) b.push(c);
  uint64_t ha[kNumContextModels], hb[kNumContextModels];
  a.contexts(ha);
  b.contexts(hb);
  EXPECT_EQ(ha[kOrder1], hb[kOrder1]);
  EXPECT_EQ(ha[kOrder3], hb[kOrder3]);
  EXPECT_NE(ha[kOrder4], hb[kOrder4]);
  EXPECT_NE(ha[kOrder1], ha[kOrder2]) << "each model hashes apart";
}

MixSettings all_models() {
  MixSettings m;
  m.models = (1u << kNumContextModels) - 1;
  m.table_bits = 12;
  return m;
}

// Runs a mixer over `data` with a fixed, non-uniform network distribution; returns the total code length
// in bits and appends every distribution to *trace.
double run_mixer(const std::string& data, const MixSettings& settings, std::vector<float>* trace) {
  const auto bytes = byte_symbols();
  ContextMixer mixer(settings, 256, &bytes);
  mixer.reset_streams(2);
  std::vector<float> net(256), out(256);
  for (int s = 0; s < 256; ++s) net[s] = (1.0f + static_cast<float>(s % 7)) / 1024.0f;
  float sum = 0;
  for (float p : net) sum += p;
  for (float& p : net) p /= sum;
  double bits = 0;
  for (size_t i = 0; i < data.size(); ++i) {
    const int b = static_cast<int>(i % 2);  // two streams interleaved, sharing the tables
    MatchHint hint;
    if (i >= 3) hint = MatchHint{static_cast<uint8_t>(data[i - 3]), static_cast<uint16_t>(i % 5)};
    mixer.predict(b, net.data(), hint, out.data());
    double total = 0;
    for (float p : out) {
      EXPECT_TRUE(std::isfinite(p) && p > 0.0f);
      total += p;
    }
    EXPECT_NEAR(total, 1.0, 1e-3);
    const uint8_t symbol = static_cast<uint8_t>(data[i]);
    bits -= std::log2(out[symbol]);
    if (trace) trace->insert(trace->end(), out.begin(), out.end());
    mixer.update(b, symbol);
  }
  return bits;
}

TEST(ContextMixer, BothSidesComputeTheSameBits) {
  std::mt19937 g(3);
  std::string data;
  for (int i = 0; i < 3000; ++i) data += static_cast<char>(g() % 3 ? "the cat sat "[i % 12] : g());
  std::vector<float> first, second;
  run_mixer(data, all_models(), &first);
  run_mixer(data, all_models(), &second);
  ASSERT_EQ(first.size(), second.size());
  EXPECT_EQ(0, std::memcmp(first.data(), second.data(), first.size() * sizeof(float)));
}

TEST(ContextMixer, LearnsWhatTheContextsPredict) {
  std::string data;
  for (int i = 0; i < 4000; ++i) data += "abracadabra, "[i % 13];
  MixSettings off = all_models();
  off.models = 0;  // the match model alone
  const double with_models = run_mixer(data, all_models(), nullptr);
  const double network_only = 8.0 * data.size();  // about what the fixed distribution costs
  EXPECT_LT(with_models, 0.05 * network_only) << "a periodic text is nearly free once counted";
  EXPECT_LT(with_models, run_mixer(data, off, nullptr));
}

TEST(ContextMixer, ArbitraryBytesStayCodable) {
  std::mt19937 g(11);
  std::string data(5000, '\0');
  for (char& c : data) c = static_cast<char>(g());
  const double bits = run_mixer(data, all_models(), nullptr);
  EXPECT_LT(bits, 8.6 * data.size()) << "random data may cost little more than the network's guess";
}

}  // namespace
}  // namespace nncpp
