// Quantisation and symbol lookup where the model runs (Predictor::device_ranges / device_find), so that a
// model on a GPU sends only O(B) values per position to the host instead of B x V probabilities.
//
// The table is the one quantize.h describes (freq = 1 + floor(p * (2^31 - V) / sum p), the remainder to
// the first most probable symbol), computed with Torch ops in double precision. Its sum runs in Torch's
// reduction order, so tables can differ from quantize()'s in the last unit: a file coded this way decodes
// only with this path on the same kind of device (the fingerprint's device field says which).
#pragma once

#include <torch/torch.h>

#include <functional>
#include <memory>
#include <vector>

#include "cuda_graph.h"
#include "nncpp/predictor.h"

namespace nncpp {

class DeviceCoder {
 public:
  // probs: [B, V] float distributions of one position, on any device. Only Torch ops, so a CUDA graph can
  // capture it; it starts a fresh lookup state (buffers, graphs) for this table.
  void set(const torch::Tensor& probs);
  // After a captured set(): the lookups on this table are captured on first use and replayed after.
  void capture_lookups() { capture_ = true; }
  // set() builds the table with one CUDA kernel (step_kernels.h) where the build has it, for float32
  // probabilities on a CUDA device; its tables may differ in the last unit from the Torch ops' ones.
  void use_kernel(bool on) { kernel_ = on; }

  // Compressor: ranges of symbols[b]; out[b] for streams with live[b] (others left as they were).
  // staging (optional): a [B] int64 host buffer, pinned on CUDA, that the caller keeps (it must outlive
  // the copy, and freeing it inside a graph capture would fail); the query then goes to the device without
  // waiting for the work before it. Each lookup ends with a copy back that waits, so it can be reused.
  void ranges(const uint16_t* symbols, const uint8_t* live, SymbolRange* out,
              torch::Tensor* staging = nullptr);
  // Decompressor: for each live stream the symbol whose range holds targets[b], and that range.
  void find(const uint32_t* targets, const uint8_t* live, uint16_t* symbols, SymbolRange* out,
            torch::Tensor* staging = nullptr);

 private:
  struct Lookups {
    torch::Tensor query;  // [B] int64 on the device: symbols (ranges) or targets (find)
    CapturedOps ranges_graph, find_graph;
    torch::Tensor ranges_out, find_out;  // [4, B] double results of the captured lookups
  };
  // [4, B] doubles on the device: symbol, low, freq, prob of the chosen symbols (all exact in double).
  torch::Tensor gather(const torch::Tensor& chosen) const;
  // Runs ops directly, or (capture_) through its graph, capturing it the first time.
  torch::Tensor run(CapturedOps* graph, torch::Tensor* out, const std::function<torch::Tensor()>& ops);
  // Copies the host query [B] (int64) to lookups_->query, through *staging when given.
  void load_query(const int64_t* values, torch::Tensor* staging);
  // Copies [4, B] to the host and unpacks the live streams.
  static void unpack(const torch::Tensor& packed, const uint8_t* live, uint16_t* symbols, SymbolRange* out);

  torch::Tensor probs_;  // [B, V] float
  torch::Tensor high_;   // [B, V] int64 inclusive prefix sums of the frequencies: range = [high - freq, high)
  torch::Tensor freq_;   // [B, V] int64
  bool capture_ = false;
  bool kernel_ = false;
  std::shared_ptr<Lookups> lookups_;  // shared by copies: a step graph's saved coder and the live one
};

// Base of the Torch predictors: on a device other than the CPU (or when asked) step() hands its
// distributions to a DeviceCoder and returns nullptr, and the coder's calls are answered from it. All GPU
// work runs on the predictor's own stream (cuda_graph.h), which each entry point makes current.
class DeviceCodingPredictor : public Predictor {
 public:
  void device_ranges(const uint16_t* symbols, const uint8_t* live, SymbolRange* out) override {
    ModelStream::Scope scope(stream_);
    coder_.ranges(symbols, live, out, &query_staging_);
  }
  void device_find(const uint32_t* targets, const uint8_t* live, uint16_t* symbols,
                   SymbolRange* out) override {
    ModelStream::Scope scope(stream_);
    coder_.find(targets, live, symbols, out, &query_staging_);
  }
  void synchronize() override { stream_.synchronize(); }

 protected:
  DeviceCodingPredictor(const torch::Device& device, bool device_coding)
      : device_coding_(device_coding), stream_(device) {}

  bool device_coding() const { return device_coding_; }
  ModelStream& stream() { return stream_; }
  // The coder's tensors; a graph replay swaps in the ones its capture wrote.
  DeviceCoder& coder() { return coder_; }

  // Copies one step's host inputs into step_in [3, B] int64 on the device: previous symbols, hint symbols,
  // hint buckets (0 where a stream has no hint). Through a pinned buffer on CUDA, without waiting: the
  // step's results are read back (a lookup or the probabilities) before the next call refills it.
  void load_step_inputs(const uint16_t* prev, const MatchHint* hints, const torch::Tensor& step_in);
  // Whether a step replays graphs: `ready` (graphs on, op sequence fixed) and captured with the same use of
  // hints; a change of it drops the graphs, to be captured again for `slots` positions.
  bool replay_steps(bool ready, bool hints, int slots);

  // One position's device work `ops` (ending in coder().set()): run directly, or with `replay` as CUDA graph
  // number `slot`, captured on first use; either way the coder then holds the position's table.
  void run_step(bool replay, int slot, const std::function<void()>& ops);
  // Drops the step graphs (their buffers are about to change) and makes room for `slots` new ones.
  void clear_step_graphs(int slots);

  // The end of step(): probs [B, V] as host floats, or nullptr once the coder holds them.
  const float* finish_step(const torch::Tensor& probs) {
    if (!device_coding_) return probs.data_ptr<float>();
    coder_.set(probs);
    return nullptr;
  }

 private:
  // A position's graph and the coder tensors its capture produced (replays write into them).
  struct StepGraph {
    CapturedOps ops;
    DeviceCoder coder;
  };

  bool device_coding_;
  torch::Tensor step_staging_;   // [3, B] int64 host buffer of load_step_inputs (pinned on CUDA)
  torch::Tensor query_staging_;  // [B] int64 host buffer of the coder's lookups (pinned on CUDA)
  bool graph_hints_ = false;     // whether the captured steps add the match boost
  ModelStream stream_;
  DeviceCoder coder_;
  std::vector<StepGraph> step_graphs_;
};

}  // namespace nncpp
