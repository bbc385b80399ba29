// A small deterministic predictor and backend for tests and fuzzers that run the coding loop without
// LibTorch (tests/unit/test_engine.cpp, tests/fuzz/fuzz_container.cpp).
//
// CountingPredictor also checks that the engine keeps the contract of predictor.h: reset_streams() before
// stepping, at most `segment` steps between train() calls, train() for exactly the steps made, the symbol
// fed to a stream is the one coded just before in that stream, masks only end streams. Breaches go to
// CallLog::violations; CallLog::hash covers every call and its arguments, so a test can check that the
// compressor and the decompressor made exactly the same calls.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "nncpp/predictor.h"
#include "nncpp/settings.h"

namespace nncpp::test_support {

struct CallLog {
  uint64_t hash = 0xcbf29ce484222325ull;  // FNV-1a over every call and its arguments
  uint64_t resets = 0, steps = 0, trains = 0, updates = 0, retrains = 0, live = 0, hinted_steps = 0,
           hints = 0;
  int max_active = 0;
  std::vector<std::string> violations;

  void mix(uint64_t v) {
    for (int i = 0; i < 8; ++i) {
      hash ^= (v >> (8 * i)) & 0xFF;
      hash *= 0x100000001b3ull;
    }
  }
  void violation(const std::string& what) {
    if (violations.size() < 20) violations.push_back(what);
  }
};

// Adaptive order-1 model: per context (previous symbol, folded to 8 bits) counts of the next symbol, with
// an additive prior. The counts change only in train(), from the targets and mask it is given, so
// compressor and decompressor agree only if the engine makes identical calls on both sides.
class CountingPredictor : public Predictor {
 public:
  CountingPredictor(const Settings& s, CallLog* log, float prior)
      : vocab_(static_cast<int>(s.model.vocab)),
        max_streams_(static_cast<int>(s.model.streams)),
        segment_(static_cast<int>(s.model.segment)),
        prior_(prior),
        log_(log),
        counts_(static_cast<size_t>(256) * vocab_, 0),
        totals_(256, 0) {}

  void reset_streams(int active) override {
    if (active < 1 || active > max_streams_) log_->violation("reset_streams(" + std::to_string(active) + ")");
    if (pending_ != 0) log_->violation("reset_streams with untrained steps");
    active = std::clamp(active, 1, max_streams_);
    active_ = active;
    pending_ = 0;
    expected_.assign(active, 0);  // an empty stream starts from symbol 0 on both sides
    ended_.assign(active, 0);
    contexts_.assign(static_cast<size_t>(segment_) * active, 0);
    prevs_.assign(static_cast<size_t>(segment_) * active, 0);
    probs_.assign(static_cast<size_t>(active) * vocab_, 0.0f);
    log_->resets++;
    log_->max_active = std::max(log_->max_active, active);
    log_->mix(0x5245534554ull);
    log_->mix(static_cast<uint64_t>(active));
  }

  const float* step(const uint16_t* prev, const MatchHint* hints) override {
    if (active_ == 0) log_->violation("step before reset_streams");
    if (pending_ >= segment_) {
      log_->violation("more than `segment` steps without train()");
      pending_ = segment_ - 1;
    }
    log_->steps++;
    log_->mix(0x53544550ull);
    log_->mix(hints != nullptr);
    if (hints != nullptr) log_->hinted_steps++;
    for (int b = 0; b < active_; ++b) {
      uint16_t x = prev[b];
      log_->mix(x);
      if (x >= vocab_) log_->violation("step: prev symbol out of range");
      // The first step of a segment continues from the last symbol train() saw (steps inside a segment
      // are checked in train(), which knows the symbols coded in between).
      if (pending_ == 0 && !ended_[b] && x != expected_[b])
        log_->violation("step: stream " + std::to_string(b) + " fed " + std::to_string(x) + ", coded " +
                        std::to_string(expected_[b]) + " before");
      int ctx = x & 0xFF;
      contexts_[static_cast<size_t>(pending_) * active_ + b] = ctx;
      prevs_[static_cast<size_t>(pending_) * active_ + b] = x;
      const uint32_t* c = &counts_[static_cast<size_t>(ctx) * vocab_];
      const float denom = static_cast<float>(totals_[ctx]) + prior_ * static_cast<float>(vocab_);
      float* p = &probs_[static_cast<size_t>(b) * vocab_];
      for (int s = 0; s < vocab_; ++s) p[s] = (static_cast<float>(c[s]) + prior_) / denom;
      if (hints != nullptr) {
        const MatchHint h = hints[b];
        log_->mix(h.symbol);
        log_->mix(h.length);
        if (h.length > 0 && h.symbol >= vocab_) log_->violation("step: hinted symbol out of range");
        if (h.length > 0 && h.symbol < vocab_) {
          // Trust a long match more: the hinted symbol's probability grows with the match bucket.
          log_->hints++;
          p[h.symbol] *= 1.0f + 0.5f * static_cast<float>(match_bucket(h.length));
          float sum = 0;
          for (int s = 0; s < vocab_; ++s) sum += p[s];
          for (int s = 0; s < vocab_; ++s) p[s] /= sum;
        }
      }
    }
    ++pending_;
    return probs_.data();
  }

  void train(const uint16_t* targets, const uint8_t* mask, int steps, bool update) override {
    log_->trains++;
    log_->updates += update;
    log_->mix(0x545241494eull);
    log_->mix(static_cast<uint64_t>(steps));
    log_->mix(update);
    if (steps != pending_)
      log_->violation("train(" + std::to_string(steps) + ") after " + std::to_string(pending_) + " steps");
    steps = std::min(steps, pending_);
    for (int t = 0; t < steps; ++t) {
      for (int b = 0; b < active_; ++b) {
        size_t k = static_cast<size_t>(t) * active_ + b;
        log_->mix(mask[k]);
        if (!mask[k]) {
          ended_[b] = 1;
          continue;
        }
        if (ended_[b]) log_->violation("mask: stream " + std::to_string(b) + " live again after ending");
        uint16_t y = targets[k];
        log_->mix(y);
        if (y >= vocab_) {
          log_->violation("train: target out of range");
          continue;
        }
        log_->live++;
        expected_[b] = y;  // what the next segment's first step must feed this stream
        if (update) count(contexts_[k], y);
      }
      // Positions after t were fed targets[t]: check the contexts recorded at step t + 1.
      if (t + 1 < steps)
        for (int b = 0; b < active_; ++b) {
          size_t k = static_cast<size_t>(t) * active_ + b;
          if (mask[k] && prevs_[k + active_] != targets[k])
            log_->violation("step " + std::to_string(t + 1) + " of stream " + std::to_string(b) +
                            " was not fed the symbol coded at step " + std::to_string(t));
        }
    }
    pending_ = 0;
  }

  // Retraining counts the window's pairs once more; the window must be a consistent run of each stream.
  void retrain(const uint16_t* inputs, const uint16_t* targets, const uint8_t* mask, int length) override {
    log_->retrains++;
    log_->mix(0x5245545241ull);
    log_->mix(static_cast<uint64_t>(length));
    if (pending_ != 0) log_->violation("retrain inside a segment");
    for (int t = 0; t < length; ++t)
      for (int b = 0; b < active_; ++b) {
        size_t k = static_cast<size_t>(t) * active_ + b;
        log_->mix(mask[k]);
        if (!mask[k]) continue;
        log_->mix(inputs[k]);
        log_->mix(targets[k]);
        if (inputs[k] >= vocab_ || targets[k] >= vocab_) {
          log_->violation("retrain: symbol out of range");
          continue;
        }
        if (t > 0 && mask[k - active_] && inputs[k] != targets[k - active_])
          log_->violation("retrain: window inputs are not the previous targets");
        count(inputs[k] & 0xFF, targets[k]);
      }
  }

 private:
  void count(int ctx, uint16_t y) {
    counts_[static_cast<size_t>(ctx) * vocab_ + y] += 1;
    totals_[ctx] += 1;
  }

  int vocab_, max_streams_, segment_;
  float prior_;
  CallLog* log_;
  std::vector<uint32_t> counts_;
  std::vector<uint32_t> totals_;
  int active_ = 0;
  int pending_ = 0;
  std::vector<uint16_t> expected_;
  std::vector<uint8_t> ended_;
  std::vector<int> contexts_;
  std::vector<uint16_t> prevs_;
  std::vector<float> probs_;
};

class TestBackend : public Backend {
 public:
  explicit TestBackend(std::string version = "1", float prior = 0.05f)
      : version_(std::move(version)), prior_(prior) {}

  // Records the CUDA-graph choice as the Torch backend does, so tests see the decoder follow the file.
  Fingerprint fingerprint(const Settings& settings) const override {
    return {{"backend", "test"},
            {"version", version_},
            {"threads", std::to_string(settings.runtime.threads)},
            {"cuda_graphs", settings.runtime.cuda_graphs ? "on" : "off"}};
  }
  std::unique_ptr<Predictor> create(const Settings& settings) const override {
    ++created;
    created_with = settings.runtime;
    return std::make_unique<CountingPredictor>(settings, &log, prior_);
  }

  mutable CallLog log;
  mutable int created = 0;
  mutable RuntimeSettings created_with;  // of the last create()

 private:
  std::string version_;
  float prior_;
};

}  // namespace nncpp::test_support
