// Attention predictors: a Transformer-XL (NNCP v2/v3 style) and a TRACE-style byte model, which is the same
// machinery configured differently (ModelSettings::kind):
//
//   kTransformer: x_t = embedding(s_t) (width hidden); `layers` pre-norm blocks of
//                 x += Wo·attention(RMSNorm(x)),  x += W2·GEGLU(W1·RMSNorm(x)).
//   kTrace:       x_t = Win·[emb(s_{t-group+1}), ..., emb(s_t)] (Win only if group·embed != hidden), each
//                 block's feed-forward applied twice with the same weights; presets use one layer.
//   Both:         logits = Wout·RMSNorm(x) + b + match boost; softmax.
//
// Attention is causal over [memory, segment so far]: the memory holds each layer's inputs of the last
// `memory` positions of earlier segments (Transformer-XL); their keys and values are recomputed with the
// current weights when the weights changed, and are constants for training. Positions are relative: a learnt
// per-head bias by distance (see transformer.cpp for why). step() computes only the new position per layer
// over a preallocated key/value cache; train() recomputes the segment with autograd against the memory's
// keys and values and takes one Adam step (beta1 = 0, per-tensor gradient-norm clipping). retrain() runs
// its window in chunks of T from an empty memory, with dropout masks from our own generator (dropout.h). On
// CUDA the steps, the training step and the retraining pass are CUDA graphs once their shapes are fixed
// (see graphs_ below).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <vector>

#include "device_coding.h"
#include "dropout.h"
#include "nncpp/predictor.h"
#include "nncpp/ranks.h"

namespace nncpp {

// Whether the predictor's steps run the fused CUDA kernels of step_kernels.h: a build with them, a CUDA
// device and a head size and cache length they support (any --dtype: the step's matrix products are bfloat16
// with them; the dtype applies to training). They change float results, so the backend's fingerprint
// records it.
bool fused_step_kernels(const ModelSettings& settings, const torch::Device& device, bool bf16);

class TransformerPredictor : public DeviceCodingPredictor {
 public:
  // Throws Error(kUsage) for settings the model cannot run (kind, hidden % heads, zero sizes, ...).
  // device_coding: quantise on the model's device and return nullptr from step() (see device_coding.h);
  // the default for any device but the CPU.
  TransformerPredictor(const ModelSettings& settings, torch::Device device);
  // cuda_graphs: replay steps as CUDA graphs where the device and build allow it (cuda_graph.h).
  // bf16: matrix products in bfloat16 through autocast (CUDA only, autocast.h).
  TransformerPredictor(const ModelSettings& settings, torch::Device device, bool device_coding,
                       bool cuda_graphs = true, bool bf16 = false);

  void reset_streams(int active) override;
  const float* step(const uint16_t* prev, const MatchHint* hints) override;
  void train(const uint16_t* targets, const uint8_t* mask, int steps, bool update) override;
  void retrain(const uint16_t* inputs, const uint16_t* targets, const uint8_t* mask, int length) override;

  // For tests: every trained tensor, in a fixed order (embedding, [input projection w, b], per layer
  // (norm1, wqkv, wo, rel, norm2, w1, w2), output norm, w, b, match boost).
  std::vector<torch::Tensor>& parameters() { return params_; }
  // For tests: log-probabilities [t, B, V] (CPU) of the t positions stepped since the segment began,
  // recomputed by the batch (training) forward from the same memory and weights. Equals log(step()) up to
  // float rounding: this is what shows that the key/value-cache path and the training forward agree.
  torch::Tensor segment_logprobs();

  // Several ranks (include/nncpp/ranks.h): losses are averaged over every rank's coded positions and the
  // gradients are summed over the ranks before each optimizer step. Not with CUDA graphs.
  void set_ranks(RankGroup* ranks) { ranks_ = ranks; }

 private:
  struct Layer {
    torch::Tensor norm1;  // [H] RMSNorm gain before attention
    torch::Tensor wqkv;   // [3H, H] query, key, value projections (no bias)
    torch::Tensor wo;     // [H, H]
    torch::Tensor rel;    // [heads, D] learnt bias by distance, D = M + T; column c is distance D - 1 - c
    torch::Tensor norm2;  // [H] RMSNorm gain before the feed-forward
    torch::Tensor w1;     // [2F, H] GEGLU: gelu(first F rows) * (last F rows)
    torch::Tensor w2;     // [H, F]
    // With the fused step kernels: bfloat16 copies of wqkv, wo, w1, w2 for the step's matrix products,
    // refreshed after every optimizer step (training keeps the float32 weights).
    torch::Tensor wqkv16, wo16, w1_16, w2_16;
    // Stepping state; slots [M - m, M) hold the memory (m = mem_len_), [M, M + t) the segment so far.
    torch::Tensor x;   // [B, M + T, H] the layer's inputs
    torch::Tensor kv;  // [2, B, heads, M + T, dh] key and value cache (one copy per step writes both);
                       // bfloat16 with the fused step kernels, else float32
    torch::Tensor k;   // kv[0]
    torch::Tensor v;   // kv[1]
  };
  torch::Tensor param(std::vector<int64_t> shape, float scale);
  torch::Tensor embed(const torch::Tensor& history) const;
  torch::Tensor split_heads(const torch::Tensor& t) const;
  torch::Tensor attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                          const torch::Tensor& bias) const;
  torch::Tensor feed_forward(const Layer& layer, torch::Tensor x, DropoutMasks* dropout) const;
  torch::Tensor forward(const torch::Tensor& history, const std::vector<torch::Tensor>& memory_k,
                        const std::vector<torch::Tensor>& memory_v, const torch::Tensor& match_symbol,
                        const torch::Tensor& match_bucket, DropoutMasks* dropout,
                        std::vector<torch::Tensor>* kv) const;
  // Copies targets, mask [n][B] (host) into target [B, n] int64 and weight [B, n] float (1 / live where
  // mask != 0, else 0) on the device: the loss's inputs, in static buffers a graph can read.
  void load_loss_inputs(const uint16_t* targets, const uint8_t* mask, int steps, int64_t live,
                        const torch::Tensor& target, const torch::Tensor& weight) const;
  // Sum over positions of weight * cross-entropy: logits [B, n, V], target and weight [B, n].
  torch::Tensor loss(const torch::Tensor& logits, const torch::Tensor& target,
                     const torch::Tensor& weight) const;
  // The device work of a training step on the segment stepped so far (n positions), then Adam.
  void train_ops(int64_t n);
  // The device work of a retraining pass over window_* (length positions), then Adam.
  void retrain_ops(int64_t length);
  // Runs ops through *graph when `capture` allows (capturing it the first time), else directly. A capture
  // that fails (an op that synchronises with the host) sets *failed and runs ops directly from then on;
  // compressor and decompressor fail alike, so both take the same path.
  void run_captured(bool capture, CapturedOps* graph, bool* failed, const std::function<void()>& ops);
  torch::Tensor memory_kv(const Layer& layer, const torch::Tensor& x) const;
  void refresh_memory_kv();
  // The device work of one step, reading its inputs from step_in_ (so a CUDA graph can hold it).
  void step_ops(int t, bool hints);
  // One layer of a step with the fused kernels: x [B, H] (float32, contiguous) is updated in place, except
  // for the layer's last matrix product, returned in *pending ([B, H] bfloat16; undefined before the first
  // layer): the next RMSNorm kernel adds it.
  void fused_step_layer(Layer& layer, torch::Tensor& x, torch::Tensor* pending, int64_t slot, int64_t keys);
  // The bfloat16 copies of the step's weights (fused step kernels only).
  void refresh_step_weights();
  // Adam's step count and learning rate for the next adam_update (on the device when graphs_).
  void prepare_adam(double lr);
  void adam_update(std::vector<torch::Tensor>& grads);

  ModelSettings s_;
  torch::Device device_;
  torch::TensorOptions opts_;
  uint64_t rng_;  // splitmix64 state for weight initialisation (independent of Torch's generators)
  int64_t V_, H_, E_, F_, heads_, dh_, M_, T_, group_, ff_repeat_;

  torch::Tensor emb_;   // [V, E]
  torch::Tensor in_w_;  // [H, group * E] (TRACE, only if group * E != H)
  torch::Tensor in_b_;  // [H]
  std::vector<Layer> layers_;
  torch::Tensor norm_out_;     // [H]
  torch::Tensor w_out_;        // [V, H]
  torch::Tensor b_out_;        // [V]
  torch::Tensor match_boost_;  // [kMatchBuckets] logit added to the match model's symbol; [0] stays 0
  std::vector<torch::Tensor> params_;
  std::vector<torch::Tensor> adam_v_;
  int64_t adam_steps_ = 0;     // every optimizer step (Adam's bias correction)
  int64_t train_steps_ = 0;    // train() steps (learning-rate schedule)
  int64_t retrain_steps_ = 0;  // retrain() steps (their schedule and dropout seeds)

  torch::Tensor rel_index_;  // [T, D] int64: column of Layer::rel for query t (slot M + t) and key slot j
  torch::Tensor causal_;     // [T, D] 0 where key slot j <= M + t, -inf after

  int active_ = 0;              // B for the current block
  int t_ = 0;                   // position inside the segment
  int64_t mem_len_ = 0;         // m: memory positions filled (<= M), the same for every stream
  bool kv_stale_ = false;       // weights changed since the memory's keys/values were computed
  torch::Tensor history_;       // [B, group - 1 + T] int64: the group-1 symbols before the segment, then
                                // the symbol fed at each step
  torch::Tensor match_symbol_;  // [B, T] int64 symbol each step's hint boosted (0 if none)
  torch::Tensor match_bucket_;  // [B, T] int64 match_bucket of each step's hint (0 = none)
  torch::Tensor logits_;        // [B, V]
  torch::Tensor probs_;         // [B, V] softmax of the last step
  torch::Tensor probs_host_;    // [B, V] its copy on the host (a model off the CPU without device coding)
  torch::Tensor step_in_;       // [3, B] int64: previous symbols, hint symbols, hint buckets of a step

  // CUDA graphs (cuda_graph.h): once the memory is full the op sequence of step t no longer changes, so
  // each position of the segment and the memory's key/value refresh are captured once and replayed.
  const bool graphs_;
  const bool bf16_;        // --dtype bfloat16 (autocast.h)
  const bool fused_step_;  // step attention and GEGLU as the CUDA kernels of step_kernels.h
  int segments_ = 0;       // train() calls since reset_streams
  CapturedOps refresh_graph_;
  // Training and retraining as graphs (forward, autograd backward, Adam): captured after one eager run of
  // the same shape, which warms up cuBLAS and the autograd engine on the model's stream. Their inputs:
  torch::Tensor loss_target_, loss_weight_;      // [B, T] the segment's targets and loss weights
  torch::Tensor window_history_;                 // [B, group - 1 + W] retraining inputs (W = retrain_window)
  torch::Tensor window_target_, window_weight_;  // [B, W]
  torch::Tensor adam_scalars_;                   // [2] float: -lr, 1 / (1 - beta2^steps) (graphs_ only)
  torch::Tensor dropout_seed_;                   // [1] int64 start state of the retraining pass's masks
  double lr_ = 0, correction_ = 1;               // Adam's scalars on the host (when not graphs_)
  uint64_t retrain_seed_ = 0;                    // the retraining pass's dropout stream (host draws)
  CapturedOps train_graph_, retrain_graph_;
  bool train_warm_ = false, retrain_warm_ = false;  // one eager run at the captured shape done
  bool train_graph_failed_ = false, retrain_graph_failed_ = false;
  RankGroup* ranks_ = nullptr;
};

}  // namespace nncpp
