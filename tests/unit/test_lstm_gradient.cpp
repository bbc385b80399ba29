// Numerical gradient check of LstmPredictor's hand-written backward pass (src/model/lstm.cpp).
//
// The analytic gradient is recovered from the first Adam update: with beta1 = 0 and no clipping,
//   u = -lr * g / (|g| + eps)   =>   g = -u * eps / (lr - |u|),
// and compared with central finite differences of the segment's mean cross-entropy, per parameter tensor,
// along the gradient itself and along random directions.
#include <torch/torch.h>

#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <random>
#include <vector>

#include "model/lstm.h"
#include "model/torch_backend.h"

namespace nncpp {

namespace {

std::vector<torch::Tensor>& params_of(LstmPredictor& p) {
  return p.parameters();
}

struct Problem {
  Settings settings;
  int B, T, steps;
  std::vector<uint16_t> symbols;  // [steps][B]
  std::vector<uint8_t> mask;      // [steps][B]
  std::vector<MatchHint> hints;   // [steps][B]; empty = no match model
};

Problem make_problem(uint64_t seed, int steps, bool partial_mask, bool with_hints) {
  Problem pr;
  Settings& s = pr.settings;
  s.model.vocab = 11;
  s.model.layers = 2;
  s.model.hidden = 6;
  s.model.embed = 4;
  s.model.streams = 3;
  s.model.segment = 6;
  s.model.lr = 0.5f;  // the update is read back from float parameters: keep it large
  s.model.lr_floor = 0.5f;
  s.model.adam_eps = 1.0f;
  s.model.grad_clip = 0.0f;  // clipping would hide the raw gradient
  s.model.seed = seed;
  pr.B = static_cast<int>(s.model.streams);
  pr.T = static_cast<int>(s.model.segment);
  pr.steps = steps;
  std::mt19937_64 g(seed);
  pr.symbols.resize(static_cast<size_t>(steps) * pr.B);
  for (auto& x : pr.symbols) x = static_cast<uint16_t>(g() % s.model.vocab);
  pr.mask.assign(pr.symbols.size(), 1);
  if (with_hints) {
    pr.hints.resize(pr.symbols.size());
    for (size_t i = 0; i < pr.hints.size(); ++i) {
      if (g() % 3 == 0) continue;  // no match here
      pr.hints[i].length = static_cast<uint16_t>(1 + g() % 40);
      pr.hints[i].symbol = g() % 2 ? pr.symbols[i] : static_cast<uint16_t>(g() % s.model.vocab);
    }
  }
  if (partial_mask)
    for (int b = 0; b < pr.B; ++b)
      for (int t = 0; t < steps; ++t)
        if (b == pr.B - 1 && t >= steps / 2) pr.mask[static_cast<size_t>(t) * pr.B + b] = 0;  // a stream ends
  return pr;
}

// Mean cross-entropy (nats) of the problem's first segment, from an empty state, over unmasked positions.
double segment_loss(Predictor& p, const Problem& pr) {
  const int V = static_cast<int>(pr.settings.model.vocab);
  std::vector<uint16_t> prev(pr.B, 0);
  p.reset_streams(pr.B);
  double sum = 0;
  int live = 0;
  for (int t = 0; t < pr.steps; ++t) {
    const float* probs =
        p.step(prev.data(), pr.hints.empty() ? nullptr : &pr.hints[static_cast<size_t>(t) * pr.B]);
    for (int b = 0; b < pr.B; ++b) {
      size_t k = static_cast<size_t>(t) * pr.B + b;
      if (pr.mask[k]) {
        sum -= std::log(static_cast<double>(probs[static_cast<size_t>(b) * V + pr.symbols[k]]));
        ++live;
      }
      prev[b] = pr.symbols[k];
    }
  }
  return sum / live;
}

void check_gradient(uint64_t seed, int steps, bool partial_mask, bool with_hints) {
  SCOPED_TRACE("seed " + std::to_string(seed) + ", steps " + std::to_string(steps) +
               (partial_mask ? ", partial mask" : "") + (with_hints ? ", match hints" : ""));
  Problem pr = make_problem(seed, steps, partial_mask, with_hints);
  std::unique_ptr<Backend> backend = make_torch_backend();
  backend->fingerprint(pr.settings);
  std::unique_ptr<Predictor> predictor = backend->create(pr.settings);
  auto* lstm = dynamic_cast<LstmPredictor*>(predictor.get());
  if (lstm == nullptr) GTEST_SKIP() << "the backend's predictor is not LstmPredictor";
  std::vector<torch::Tensor>& params = params_of(*lstm);
  ASSERT_FALSE(params.empty());

  std::vector<torch::Tensor> theta0;
  for (const torch::Tensor& p : params) theta0.push_back(p.detach().clone());

  // The analytic gradient, read back from one training step on the segment.
  segment_loss(*predictor, pr);
  predictor->train(pr.symbols.data(), pr.mask.data(), pr.steps, true);
  const double lr = pr.settings.model.lr, eps = pr.settings.model.adam_eps;
  std::vector<torch::Tensor> grads;
  for (size_t k = 0; k < params.size(); ++k) {
    torch::Tensor u = params[k].detach().to(torch::kFloat64) - theta0[k].to(torch::kFloat64);
    ASSERT_TRUE(u.abs().max().item<double>() < lr) << "update larger than lr: not the Adam step assumed";
    grads.push_back(-u * eps / (lr - u.abs()));
  }
  torch::NoGradGuard no_grad;
  for (size_t k = 0; k < params.size(); ++k) params[k].copy_(theta0[k]);

  torch::manual_seed(seed);
  for (size_t k = 0; k < params.size(); ++k) {
    const torch::Tensor& g = grads[k];
    double gnorm = g.norm().item<double>();
    std::vector<torch::Tensor> directions;
    if (gnorm > 0) directions.push_back(g / gnorm);
    for (int r = 0; r < 2; ++r) {
      torch::Tensor d = torch::randn(g.sizes(), torch::kFloat64);
      // The match boost's bucket 0 means "no hint": held at 0 by design (its gradient is zeroed), so
      // leave it out of the random directions.
      if (k + 1 == params.size() && g.dim() == 1 && g.size(0) == kMatchBuckets) d[0] = 0;
      directions.push_back(d / d.norm());
    }
    for (size_t j = 0; j < directions.size(); ++j) {
      const double h = 1e-2;
      torch::Tensor plus = (theta0[k].to(torch::kFloat64) + h * directions[j]).to(torch::kFloat32);
      torch::Tensor minus = (theta0[k].to(torch::kFloat64) - h * directions[j]).to(torch::kFloat32);
      params[k].copy_(plus);
      double l_plus = segment_loss(*predictor, pr);
      params[k].copy_(minus);
      double l_minus = segment_loss(*predictor, pr);
      params[k].copy_(theta0[k]);
      // The step actually taken (after rounding to float), so rounding does not count as error. Measured
      // agreement is ~1e-4 relative; a 10% error in half of any one tensor's gradient fails the bound.
      torch::Tensor step = plus.to(torch::kFloat64) - minus.to(torch::kFloat64);
      double analytic = (g * step).sum().item<double>();
      double numeric = l_plus - l_minus;
      double scale = std::max(std::abs(analytic), std::abs(numeric));
      EXPECT_NEAR(numeric, analytic, 0.005 * scale + 1e-7)
          << "parameter tensor " << k
          << " (0 = embedding, then w/b per layer, then w_out, b_out, match boost), "
          << (j == 0 && gnorm > 0 ? "along the gradient" : "random direction") << ": |g| = " << gnorm
          << ", finite difference " << numeric << " vs analytic " << analytic;
    }
  }
}

TEST(LstmGradient, MatchesFiniteDifferencesOnAFullSegment) {
  check_gradient(1, 6, false, false);
}

TEST(LstmGradient, MatchesFiniteDifferencesWithMaskAndShortSegment) {
  check_gradient(2, 4, true, false);
}

TEST(LstmGradient, MatchesFiniteDifferencesWithMatchHints) {
  check_gradient(3, 6, true, true);
}

TEST(LstmGradient, MatchesFiniteDifferencesWithHintsOnAFullSegment) {
  check_gradient(4, 6, false, true);
}

}  // namespace
}  // namespace nncpp
