// NNCP-style LSTM predictor with a hand-written backward pass.
//
// Each layer l sees [embedding(x_t), h_{l-1,t}] (layer 0 sees only the embedding) and its own h_{l,t-1};
// the output layer reads all layers' h. step() runs one position for all streams and keeps every
// activation, so train() needs no second forward: the weights do not change inside a segment, hence the
// stepped activations are exactly what a training forward would compute (and both sides compute them the
// same way). The backward is sequential in t only for the recurrent part; weight gradients are one GEMM
// over all T*B rows per layer, which is what makes it several times faster than LibTorch's LSTM backward.
//
// On CUDA each position t of a segment and the full-segment training step are CUDA graphs (cuda_graph.h),
// captured after one eager segment and replayed from then on: inputs go through static buffers (step_in_,
// train_target_, train_weight_, adam_scalars_), so a replay computes exactly what the eager ops would.
#pragma once

#include <torch/torch.h>

#include <vector>

#include "device_coding.h"
#include "nncpp/predictor.h"
#include "nncpp/ranks.h"

namespace nncpp {

class LstmPredictor : public DeviceCodingPredictor {
 public:
  // device_coding: quantise on the model's device and return nullptr from step() (see device_coding.h);
  // the default for any device but the CPU. Tests turn it on for the CPU.
  LstmPredictor(const ModelSettings& settings, torch::Device device);
  // cuda_graphs: replay steps as CUDA graphs where the device and build allow it (cuda_graph.h).
  LstmPredictor(const ModelSettings& settings, torch::Device device, bool device_coding,
                bool cuda_graphs = true);

  void reset_streams(int active) override;
  const float* step(const uint16_t* prev, const MatchHint* hints) override;
  void train(const uint16_t* targets, const uint8_t* mask, int steps, bool update) override;
  // The LSTM has no retraining pass (settings validation refuses it); throws Error(kUsage).
  void retrain(const uint16_t* inputs, const uint16_t* targets, const uint8_t* mask, int length) override;

  // Every trained tensor, in a fixed order (embedding, (w, b) per layer, output w, b, match boost); for
  // tests that check the backward against finite differences.
  std::vector<torch::Tensor>& parameters() { return params_; }

  // Several ranks (include/nncpp/ranks.h): the loss is averaged over every rank's coded positions and the
  // gradients are summed over the ranks before each optimizer step. Not with CUDA graphs.
  void set_ranks(RankGroup* ranks) { ranks_ = ranks; }

 private:
  struct Layer {
    int in = 0;           // input width: embed (+ hidden below)
    torch::Tensor w;      // [4H, in + H], gate order i, f, o, g
    torch::Tensor b;      // [4H]
    torch::Tensor xh;     // [T, B, in + H] inputs of each step: [emb, h below, own h_{t-1}]
    torch::Tensor gates;  // [T, B, 4H] after activation: sigmoid(i, f, o), tanh(g)
    torch::Tensor c;      // [T + 1, B, H] cell states; c[0] is the state carried into the segment
    torch::Tensor h0;     // [B, H] hidden state carried into the segment
  };

  torch::Tensor param(std::vector<int64_t> shape, float scale);
  // The device work of step() and train(), written against the static buffers so CUDA graphs can hold it.
  void step_ops(int t, bool hints);
  void train_ops(int steps, bool update);
  void adam_update(const std::vector<torch::Tensor>& grads);
  float learning_rate() const;

  ModelSettings s_;
  torch::Device device_;
  torch::TensorOptions opts_;
  uint64_t rng_;  // splitmix64 state for weight initialisation (independent of Torch's generators)

  torch::Tensor emb_;  // [V, E]
  std::vector<Layer> layers_;
  torch::Tensor w_out_;        // [V, L*H]
  torch::Tensor b_out_;        // [V]
  torch::Tensor match_boost_;  // [kMatchBuckets] logit added to the match model's symbol; [0] stays 0
  std::vector<torch::Tensor> params_;
  std::vector<torch::Tensor> adam_v_;
  int64_t train_steps_ = 0;

  int active_ = 0;              // B for the current block
  int t_ = 0;                   // position inside the segment
  torch::Tensor inputs_;        // [T, B] int64 symbols fed at each step
  torch::Tensor match_symbol_;  // [T, B] int64 symbol each step's hint boosted (0 if none)
  torch::Tensor match_bucket_;  // [T, B] int64 match_bucket of each step's hint (0 = none)
  torch::Tensor hcat_;          // [T, B, L*H] every layer's h (the output layer's input)
  torch::Tensor probs_;         // [T, B, V] softmax of each step
  torch::Tensor probs_host_;    // [B, V] the last step's on the host (off the CPU without device coding)

  torch::Tensor step_in_;       // [3, B] int64: previous symbols, hint symbols, hint buckets of a step
  torch::Tensor train_target_;  // [T * B] int64 symbols that followed each step
  torch::Tensor train_weight_;  // [T * B, 1] loss weight of each row: 1 / coded rows, 0 for padding
  torch::Tensor adam_scalars_;  // [2]: -learning rate, bias correction 1 - beta2^t

  const bool graphs_;        // CUDA graphs for step and train (a CUDA device and build)
  int segments_ = 0;         // segments run since reset_streams (the first one runs eagerly)
  CapturedOps train_graph_;  // a full segment's training step
  RankGroup* ranks_ = nullptr;
};

}  // namespace nncpp
