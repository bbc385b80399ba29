// The LibTorch LSTM predictor through its public interface (make_torch_backend()->create()): determinism,
// well-formed distributions, training that learns, and the predictor.h contract (masks, stream resets).
// Tiny sizes only: every test runs in well under a second.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <memory>
#include <random>
#include <vector>

#include "nncpp/predictor.h"
#include "nncpp/settings.h"
#include "model/torch_backend.h"

namespace nncpp {
namespace {

Settings tiny(uint32_t vocab = 256) {
  Settings s;
  s.model.vocab = vocab;
  s.model.layers = 2;
  s.model.hidden = 16;
  s.model.embed = 8;
  s.model.streams = 4;
  s.model.segment = 5;
  return s;
}

std::unique_ptr<Predictor> make(const Settings& s) {
  static std::unique_ptr<Backend> backend = make_torch_backend();
  backend->fingerprint(s);  // pins the thread count, as the engine does
  return backend->create(s);
}

// Random hints: about half with a match (length 1..40), of which half name the right symbol.
std::vector<MatchHint> random_hints(const std::vector<uint16_t>& symbols, uint32_t vocab, uint64_t seed) {
  std::mt19937_64 g(seed);
  std::vector<MatchHint> hints(symbols.size());
  for (size_t i = 0; i < hints.size(); ++i) {
    if (g() % 2) continue;
    hints[i].length = static_cast<uint16_t>(1 + g() % 40);
    hints[i].symbol = g() % 2 ? symbols[i] : static_cast<uint16_t>(g() % vocab);
  }
  return hints;
}

// symbols[t][b] for `steps` positions of `streams` streams, uniform over the vocabulary.
std::vector<uint16_t> random_symbols(int steps, int streams, uint32_t vocab, uint64_t seed) {
  std::mt19937_64 g(seed);
  std::vector<uint16_t> v(static_cast<size_t>(steps) * streams);
  for (auto& x : v) x = static_cast<uint16_t>(g() % vocab);
  return v;
}

// Drives a predictor over symbols[t][b] the way the engine does (prev = the symbol before, 0 at the start;
// train() after every `segment` steps and at the end) and calls on_probs(t, probs) after each step.
// hints (optional): [steps][streams] match hints given with each step.
template <typename F>
void drive(Predictor& p, const Settings& s, int streams, const std::vector<uint16_t>& symbols, F&& on_probs,
           const std::vector<uint8_t>* mask = nullptr, const std::vector<MatchHint>* hints = nullptr) {
  const int segment = static_cast<int>(s.model.segment);
  const int steps = static_cast<int>(symbols.size() / streams);
  std::vector<uint16_t> prev(streams, 0);
  std::vector<uint8_t> ones(symbols.size(), 1);
  const std::vector<uint8_t>& m = mask ? *mask : ones;
  p.reset_streams(streams);
  for (int start = 0; start < steps; start += segment) {
    int n = std::min(segment, steps - start);
    for (int t = 0; t < n; ++t) {
      const MatchHint* h = hints ? &(*hints)[static_cast<size_t>(start + t) * streams] : nullptr;
      on_probs(start + t, p.step(prev.data(), h));
      for (int b = 0; b < streams; ++b) prev[b] = symbols[static_cast<size_t>(start + t) * streams + b];
    }
    p.train(&symbols[static_cast<size_t>(start) * streams], &m[static_cast<size_t>(start) * streams], n, true);
  }
}

// Mean cross-entropy (nats) of the symbols under the predicted distributions, over steps [from, to).
struct LossMeter {
  int B, V;
  const std::vector<uint16_t>* symbols;
  double sum = 0;
  int count = 0;
  void add(int t, const float* p) {
    for (int b = 0; b < B; ++b) {
      sum -= std::log(p[static_cast<size_t>(b) * V + (*symbols)[static_cast<size_t>(t) * B + b]]);
      ++count;
    }
  }
  double mean() const { return sum / count; }
};

class LstmVocab : public ::testing::TestWithParam<uint32_t> {};

TEST_P(LstmVocab, TwoFreshPredictorsAreBitIdentical) {
  const Settings s = tiny(GetParam());
  const int B = static_cast<int>(s.model.streams), V = static_cast<int>(s.model.vocab), steps = 52;
  const auto symbols = random_symbols(steps, B, s.model.vocab, 1);
  std::vector<std::vector<float>> first;
  auto a = make(s);
  drive(*a, s, B, symbols,
        [&](int, const float* p) { first.emplace_back(p, p + static_cast<size_t>(B) * V); });
  auto b = make(s);
  int mismatches = 0;
  drive(*b, s, B, symbols, [&](int t, const float* p) {
    if (std::memcmp(first[t].data(), p, first[t].size() * sizeof(float)) != 0) ++mismatches;
  });
  EXPECT_EQ(mismatches, 0) << "of " << steps << " steps";
}

TEST_P(LstmVocab, InterleavedPredictorsShareNoState) {
  // Two predictors stepped alternately must give what each gives alone (no hidden global state).
  const Settings s = tiny(GetParam());
  const int B = 3, V = static_cast<int>(s.model.vocab), steps = 23;
  const auto sym_a = random_symbols(steps, B, s.model.vocab, 2);
  const auto sym_b = random_symbols(steps, B, s.model.vocab, 3);
  std::vector<std::vector<float>> alone;
  auto ref = make(s);
  drive(*ref, s, B, sym_a,
        [&](int, const float* p) { alone.emplace_back(p, p + static_cast<size_t>(B) * V); });

  auto a = make(s), b = make(s);
  std::vector<uint16_t> prev_a(B, 0), prev_b(B, 0);
  a->reset_streams(B);
  b->reset_streams(B);
  const int T = static_cast<int>(s.model.segment);
  for (int start = 0; start < steps; start += T) {
    int n = std::min(T, steps - start);
    for (int t = 0; t < n; ++t) {
      const float* pa = a->step(prev_a.data(), nullptr);
      ASSERT_EQ(0, std::memcmp(alone[start + t].data(), pa, alone[start + t].size() * sizeof(float)))
          << "step " << start + t;
      b->step(prev_b.data(), nullptr);
      for (int k = 0; k < B; ++k) {
        prev_a[k] = sym_a[static_cast<size_t>(start + t) * B + k];
        prev_b[k] = sym_b[static_cast<size_t>(start + t) * B + k];
      }
    }
    std::vector<uint8_t> ones(static_cast<size_t>(n) * B, 1);
    a->train(&sym_a[static_cast<size_t>(start) * B], ones.data(), n, true);
    b->train(&sym_b[static_cast<size_t>(start) * B], ones.data(), n, true);
  }
}

TEST_P(LstmVocab, DistributionsArePositiveAndSumToOne) {
  const Settings s = tiny(GetParam());
  const int B = static_cast<int>(s.model.streams), V = static_cast<int>(s.model.vocab);
  auto p = make(s);
  drive(*p, s, B, random_symbols(40, B, s.model.vocab, 4), [&](int t, const float* probs) {
    for (int b = 0; b < B; ++b) {
      double sum = 0;
      for (int v = 0; v < V; ++v) {
        float x = probs[static_cast<size_t>(b) * V + v];
        ASSERT_TRUE(std::isfinite(x) && x > 0.0f) << "step " << t << " stream " << b << " symbol " << v;
        sum += x;
      }
      ASSERT_NEAR(sum, 1.0, 1e-4) << "step " << t << " stream " << b;
    }
  });
}

TEST_P(LstmVocab, BitIdenticalWithMatchHints) {
  const Settings s = tiny(GetParam());
  const int B = static_cast<int>(s.model.streams), V = static_cast<int>(s.model.vocab), steps = 47;
  const auto symbols = random_symbols(steps, B, s.model.vocab, 12);
  const auto hints = random_hints(symbols, s.model.vocab, 13);
  std::vector<std::vector<float>> first;
  auto a = make(s);
  drive(
      *a, s, B, symbols, [&](int, const float* p) { first.emplace_back(p, p + static_cast<size_t>(B) * V); },
      nullptr, &hints);
  auto b = make(s);
  int mismatches = 0;
  drive(
      *b, s, B, symbols,
      [&](int t, const float* p) {
        if (std::memcmp(first[t].data(), p, first[t].size() * sizeof(float)) != 0) ++mismatches;
      },
      nullptr, &hints);
  EXPECT_EQ(mismatches, 0) << "of " << steps << " steps";
}

INSTANTIATE_TEST_SUITE_P(Vocab, LstmVocab, ::testing::Values(256u, 1000u));

TEST(LstmMatch, EmptyHintsEqualNoHints) {
  // Hints of length 0 mean "no prediction": exactly the same results as passing no hints, also after
  // training (boost[0] must stay 0).
  const Settings s = tiny(256);
  const int B = 4, V = 256, steps = 33;
  const auto symbols = random_symbols(steps, B, V, 14);
  std::vector<MatchHint> empty(symbols.size());
  std::vector<std::vector<float>> plain;
  auto a = make(s);
  drive(*a, s, B, symbols,
        [&](int, const float* p) { plain.emplace_back(p, p + static_cast<size_t>(B) * V); });
  auto b = make(s);
  int mismatches = 0;
  drive(
      *b, s, B, symbols,
      [&](int t, const float* p) {
        if (std::memcmp(plain[t].data(), p, plain[t].size() * sizeof(float)) != 0) ++mismatches;
      },
      nullptr, &empty);
  EXPECT_EQ(mismatches, 0);
}

TEST(LstmMatch, TheBoostLearnsToTrustGoodHints) {
  // Random symbols (nothing to learn from the history) with always-right hints: only the match boost can
  // lower the loss, so this checks its forward, gradient and update.
  Settings s = tiny(256);
  s.model.lr = 0.1f;
  s.model.lr_floor = 0.1f;
  const int B = 4, V = 256, steps = 300;
  const auto symbols = random_symbols(steps, B, V, 15);
  std::vector<MatchHint> hints(symbols.size());
  for (size_t i = 0; i < hints.size(); ++i) hints[i] = MatchHint{symbols[i], 20};
  LossMeter first{B, V, &symbols}, last{B, V, &symbols};
  auto p = make(s);
  drive(
      *p, s, B, symbols,
      [&](int t, const float* probs) {
        if (t < 5) first.add(t, probs);
        if (t >= steps - 20) last.add(t, probs);
      },
      nullptr, &hints);
  EXPECT_LT(last.mean(), 0.3 * first.mean()) << "first " << first.mean() << " nats, last " << last.mean();
}

TEST(Lstm, TrainingLearnsARepetitiveSequence) {
  Settings s = tiny(256);
  s.model.lr = 0.01f;
  s.model.lr_floor = 0.001f;
  const int B = static_cast<int>(s.model.streams), V = 256, steps = 200;
  std::vector<uint16_t> symbols(static_cast<size_t>(steps) * B);
  for (int t = 0; t < steps; ++t)
    for (int b = 0; b < B; ++b)
      symbols[static_cast<size_t>(t) * B + b] = static_cast<uint16_t>("abc"[(t + b) % 3]);
  LossMeter first{B, V, &symbols}, last{B, V, &symbols};
  auto p = make(s);
  drive(*p, s, B, symbols, [&](int t, const float* probs) {
    if (t < 10) first.add(t, probs);
    if (t >= steps - 10) last.add(t, probs);
  });
  EXPECT_NEAR(first.mean(), std::log(256.0), 0.5) << "an untrained model should be near uniform";
  EXPECT_LT(last.mean(), 0.5 * first.mean()) << "first " << first.mean() << " nats, last " << last.mean();
}

TEST(Lstm, TrainingUsesTheRecurrence) {
  // "aab" repeated: after 'a' comes 'a' or 'b' depending on the symbol before, so only a model that
  // carries state through h and c (and trains it through time) gets well below 1 bit on the 'a's.
  Settings s = tiny(256);
  s.model.lr = 0.01f;
  s.model.lr_floor = 0.002f;
  s.model.segment = 10;
  const int B = 4, V = 256, steps = 600;
  std::vector<uint16_t> symbols(static_cast<size_t>(steps) * B);
  for (int t = 0; t < steps; ++t)
    for (int b = 0; b < B; ++b)
      symbols[static_cast<size_t>(t) * B + b] = static_cast<uint16_t>("aab"[(t + b) % 3]);
  LossMeter last{B, V, &symbols};
  auto p = make(s);
  drive(*p, s, B, symbols, [&](int t, const float* probs) {
    if (t >= steps - 30) last.add(t, probs);
  });
  // An order-1 model cannot do better than (2/3) * ln 2 = 0.46 nats per symbol here.
  EXPECT_LT(last.mean(), 0.35) << last.mean();
}

TEST(Lstm, SmallStepLowersTheLossOfTheSegmentItTrainedOn) {
  // One training step with a small learning rate must lower the loss of the very segment it was computed
  // on (a descent direction); a sign error anywhere in the backward pass tends to break this.
  for (uint64_t seed : {5u, 6u, 7u}) {
    Settings s = tiny(64);
    s.model.lr = 1e-4f;
    s.model.lr_floor = 1e-4f;
    s.model.grad_clip = 0;
    s.model.seed = seed;
    const int B = 4, V = 64, T = static_cast<int>(s.model.segment);
    const auto symbols = random_symbols(T, B, V, seed);
    LossMeter before{B, V, &symbols}, after{B, V, &symbols};
    auto p = make(s);
    drive(*p, s, B, symbols, [&](int t, const float* probs) { before.add(t, probs); });
    drive(*p, s, B, symbols, [&](int t, const float* probs) { after.add(t, probs); });
    EXPECT_LT(after.mean(), before.mean()) << "seed " << seed;
  }
}

TEST(Lstm, MaskedPositionsDoNotTrain) {
  const Settings s = tiny(256);
  const int B = 4, V = 256, T = static_cast<int>(s.model.segment);
  const auto symbols = random_symbols(T, B, V, 8);
  const auto probe = random_symbols(2 * T, B, V, 9);
  auto probs_after = [&](const std::vector<uint16_t>* targets, const std::vector<uint8_t>* mask) {
    auto p = make(s);
    if (targets != nullptr)
      drive(
          *p, s, B, *targets, [](int, const float*) {}, mask);
    std::vector<float> out;
    drive(*p, s, B, probe,
          [&](int, const float* x) { out.insert(out.end(), x, x + static_cast<size_t>(B) * V); });
    return out;
  };
  // All positions masked: the weights must not move.
  std::vector<uint8_t> none(symbols.size(), 0);
  EXPECT_EQ(probs_after(nullptr, nullptr), probs_after(&symbols, &none));

  // The targets at masked positions must not matter. drive() feeds each target as the next input too, so
  // mask (and change) only targets of the segment's last step, which are never fed.
  std::vector<uint8_t> last_masked(symbols.size(), 1);
  auto other_last = symbols;
  for (int b = 0; b < B; ++b) {
    last_masked[static_cast<size_t>(T - 1) * B + b] = b % 2;
    if (b % 2 == 0) other_last[static_cast<size_t>(T - 1) * B + b] ^= 1;
  }
  EXPECT_EQ(probs_after(&symbols, &last_masked), probs_after(&other_last, &last_masked));
  EXPECT_NE(probs_after(&symbols, &last_masked), probs_after(&symbols, nullptr));
}

TEST(Lstm, ResetStreamsStartsFromAnEmptyStateAndAllowsAnyActiveCount) {
  const Settings s = tiny(256);
  const int V = 256;
  auto p = make(s);
  // Different active counts in a row (blocks of different sizes).
  for (int active : {4, 1, 3, 4, 2}) {
    auto symbols = random_symbols(12, active, V, 10 + active);
    drive(*p, s, active, symbols, [&](int, const float* probs) {
      for (int b = 0; b < active; ++b) ASSERT_TRUE(std::isfinite(probs[static_cast<size_t>(b) * V]));
    });
  }
  // After a reset every stream starts from the same state: equal inputs give equal distributions.
  p->reset_streams(4);
  std::vector<uint16_t> prev(4, 65);
  const float* probs = p->step(prev.data(), nullptr);
  for (int b = 1; b < 4; ++b)
    EXPECT_EQ(0, std::memcmp(probs, probs + static_cast<size_t>(b) * V, V * sizeof(float))) << b;
  std::vector<uint16_t> targets(4, 66);
  std::vector<uint8_t> mask(4, 1);
  p->train(targets.data(), mask.data(), 1, true);
}

TEST(Lstm, StreamsAreIndependentWithinAStep) {
  // A stream's distribution depends only on its own history, not on what the other streams are fed.
  const Settings s = tiny(256);
  const int B = 4, V = 256, steps = 4;  // inside one segment: no training in between
  auto a_sym = random_symbols(steps, B, V, 11);
  auto b_sym = a_sym;
  for (int t = 0; t < steps; ++t) b_sym[static_cast<size_t>(t) * B + 2] = static_cast<uint16_t>(t * 7);
  std::vector<std::vector<float>> pa;
  auto a = make(s);
  drive(*a, s, B, a_sym, [&](int, const float* x) { pa.emplace_back(x, x + static_cast<size_t>(B) * V); });
  auto b = make(s);
  drive(*b, s, B, b_sym, [&](int t, const float* x) {
    for (int k : {0, 1, 3})
      EXPECT_EQ(0, std::memcmp(&pa[t][static_cast<size_t>(k) * V], x + static_cast<size_t>(k) * V,
                               V * sizeof(float)))
          << "step " << t << " stream " << k;
  });
}

}  // namespace
}  // namespace nncpp
