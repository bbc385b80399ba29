#include "core/mixer.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/fast_math.h"

namespace nncpp {
namespace {

// Gate of a count model's prediction: how much evidence the context has (8 buckets of its total count)
// and whether only one symbol ever followed it.
int count_gate(int total, int distinct) {
  static constexpr uint8_t kBucket[18] = {0, 0, 1, 2, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 5, 5, 5, 5};
  const int bucket = total < 18 ? kBucket[total] : (total < 34 ? 6 : 7);
  return bucket * 2 + (distinct == 1);
}

constexpr float kMinProb = 1e-9f;
constexpr float kMaxPhi = 30.0f;
constexpr float kMaxBoost = 40.0f;

}  // namespace

ContextMixer::ContextMixer(const MixSettings& settings, int vocab,
                           const std::vector<std::vector<uint8_t>>* symbol_bytes)
    : settings_(settings),
      vocab_(vocab),
      symbol_bytes_(symbol_bytes),
      tables_(kNumContextModels),
      weights_(static_cast<size_t>(kInputs) * kGates * kFeatures, 0.0f),
      grad_power_(weights_.size(), 1.0f),
      boost_(kMaxCandidates) {
  for (int i = 0; i < kNumContextModels; ++i)
    if ((settings.models >> i & 1) && i != kRecordBits)  // the bits model is the binary domain's alone
      tables_[i] = std::make_unique<ContextTable>(static_cast<int>(settings.table_bits),
                                                  static_cast<int>(settings.count_limit));
  // Start each count model as a PPM estimate at the given weight: w·(log2(n_s/E) + log2(1-P) - log2 p_net).
  for (int i = 0; i < kNumContextModels; ++i)
    for (int g = 0; g < kGates; ++g) {
      float* w = &weights_[(static_cast<size_t>(i) * kGates + g) * kFeatures];
      w[1] = settings.initial_weight;
      w[2] = settings.initial_weight;
    }
}

void ContextMixer::reset_streams(int streams) {
  streams_.clear();
  streams_.reserve(streams);
  for (int b = 0; b < streams; ++b) streams_.emplace_back(symbol_bytes_, &records_);
}

int ContextMixer::candidate_index(StreamState& st, uint16_t symbol) {
  for (int k = 0; k < st.candidates; ++k)
    if (st.symbol[k] == symbol) return k;
  st.symbol[st.candidates] = symbol;
  return st.candidates++;
}

void ContextMixer::predict(int b, const float* net, const MatchHint& hint, float* out) {
  StreamState& st = streams_[b];
  st.candidates = 0;
  st.history.contexts(st.hashes);
  for (int i = 0; i < kNumContextModels; ++i) {
    Input& in = st.inputs[i];
    in.gate = -1;
    in.n = 0;
    const ContextTable::Bucket* bucket = tables_[i] ? tables_[i]->find(st.hashes[i]) : nullptr;
    if (bucket == nullptr) continue;
    int total = 0;
    float seen = 0.0f;  // the network's probability of the symbols this context has seen
    for (int k = 0; k < ContextTable::kSlots; ++k) {
      if (bucket->count[k] == 0 || bucket->symbol[k] >= vocab_) continue;
      total += bucket->count[k];
      seen += std::max(net[bucket->symbol[k]], kMinProb);
      in.candidate[in.n++] = static_cast<uint8_t>(k);  // slot for now, candidate index below
    }
    if (in.n == 0) continue;
    in.gate = count_gate(total, in.n);
    // Features of a seen symbol s: a bias, log2(n_s / E) with E the escape count (PPM method C: the
    // distinct symbols seen), and log2(1 - P_seen) - log2 p_net(s), which with weight 1 replaces the
    // network's probability by the model's.
    const float escape = static_cast<float>(in.n) * settings_.escape;
    const float rest = log2_approx(std::max(1.0f - seen, 1e-6f));
    const float log_escape = log2_approx(escape);
    for (int j = 0; j < in.n; ++j) {
      const int k = in.candidate[j];
      const uint16_t s = bucket->symbol[k];
      in.phi[j][0] = 1.0f;
      in.phi[j][1] = log2_approx(static_cast<float>(bucket->count[k])) - log_escape;
      in.phi[j][2] = std::min(rest - log2_approx(std::max(net[s], kMinProb)), kMaxPhi);
      in.candidate[j] = static_cast<uint8_t>(candidate_index(st, s));
    }
  }
  Input& match = st.inputs[kMatchInput];
  match.gate = -1;
  match.n = 0;
  if (hint.length > 0 && hint.symbol < vocab_) {
    match.gate = std::min<int>(hint.length, kGates - 1);
    match.n = 1;
    match.phi[0][0] = 1.0f;
    match.phi[0][1] = 0.0f;
    match.phi[0][2] = std::min(-log2_approx(std::max(net[hint.symbol], kMinProb)), kMaxPhi);
    match.candidate[0] = static_cast<uint8_t>(candidate_index(st, hint.symbol));
  }

  // B per candidate, then p = p_net · 2^B / Z with Z = 1 + Σ_c p_net(c) (2^B(c) - 1).
  std::fill(boost_.begin(), boost_.begin() + st.candidates, 0.0f);
  for (int i = 0; i < kInputs; ++i) {
    const Input& in = st.inputs[i];
    if (in.gate < 0) continue;
    const float* w = &weights_[(static_cast<size_t>(i) * kGates + in.gate) * kFeatures];
    for (int j = 0; j < in.n; ++j)
      boost_[in.candidate[j]] += w[0] * in.phi[j][0] + w[1] * in.phi[j][1] + w[2] * in.phi[j][2];
  }
  float z = 1.0f;
  for (int c = 0; c < st.candidates; ++c) {
    const float p = std::max(net[st.symbol[c]], kMinProb);
    boost_[c] = exp2_approx(std::clamp(boost_[c], -kMaxBoost, kMaxBoost));
    z += p * (boost_[c] - 1.0f);
  }
  const float inv_z = 1.0f / z;
  for (int s = 0; s < vocab_; ++s) out[s] = net[s] * inv_z;
  for (int c = 0; c < st.candidates; ++c) {
    st.prob[c] = std::max(net[st.symbol[c]], kMinProb) * boost_[c] * inv_z;
    out[st.symbol[c]] = st.prob[c];
  }
}

void ContextMixer::update(int b, uint16_t symbol) {
  StreamState& st = streams_[b];
  // d log p(y) / d w_i = φ_i(y) - Σ_c p(c) φ_i(c), over the candidates model i predicted.
  const float lr = settings_.lr;
  for (int i = 0; i < kInputs; ++i) {
    const Input& in = st.inputs[i];
    if (in.gate < 0) continue;
    float grad[kFeatures] = {};
    for (int j = 0; j < in.n; ++j) {
      const int c = in.candidate[j];
      const float d = (st.symbol[c] == symbol ? 1.0f : 0.0f) - st.prob[c];
      for (int f = 0; f < kFeatures; ++f) grad[f] += d * in.phi[j][f];
    }
    // RMSprop: each weight's step is scaled by its gradient's running RMS, so rare gates and large
    // features learn at the same pace as common ones.
    const size_t at = (static_cast<size_t>(i) * kGates + in.gate) * kFeatures;
    for (int f = 0; f < kFeatures; ++f) {
      float& v = grad_power_[at + f];
      v = 0.99f * v + 0.01f * grad[f] * grad[f];
      weights_[at + f] = std::clamp(weights_[at + f] + lr * grad[f] / (std::sqrt(v) + 1e-3f), -8.0f, 8.0f);
    }
  }
  for (int i = 0; i < kNumContextModels; ++i)
    if (tables_[i]) tables_[i]->update(st.hashes[i], symbol);
  st.history.push(symbol);
}

}  // namespace nncpp
