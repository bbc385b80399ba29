#include "device_coding.h"

#include <algorithm>
#include <cfloat>
#include <vector>

#include "core/quantize.h"

#ifdef NNCPP_STEP_KERNELS
#include <c10/cuda/CUDAStream.h>

#include "step_kernels.h"
#endif

namespace nncpp {

void DeviceCoder::set(const torch::Tensor& probs) {
  torch::NoGradGuard no_grad;
  const int64_t V = probs.size(1);
  probs_ = probs;
  capture_ = false;
  lookups_ = std::make_shared<Lookups>();
  lookups_->query = torch::zeros({probs.size(0)}, probs.options().dtype(torch::kInt64));
#ifdef NNCPP_STEP_KERNELS
  if (kernel_ && probs.is_cuda() && probs.scalar_type() == torch::kFloat32 && probs.is_contiguous()) {
    freq_ = torch::empty(probs.sizes(), lookups_->query.options());
    high_ = torch::empty(probs.sizes(), lookups_->query.options());
    step_kernels::quantize(probs.data_ptr<float>(), freq_.data_ptr<int64_t>(), high_.data_ptr<int64_t>(),
                           probs.size(0), V, kFreqTotal, c10::cuda::getCurrentCUDAStream().stream());
    return;
  }
#endif
  // Only positive, normal, finite probabilities count (as in quantize()); all-zero rows become uniform.
  torch::Tensor p = probs.to(torch::kFloat64);
  p = torch::where(torch::isfinite(p) & (p >= static_cast<double>(FLT_MIN)), p, torch::zeros_like(p));
  torch::Tensor sum = p.sum(1, /*keepdim=*/true);  // [B, 1]
  torch::Tensor usable = sum > 0;
  const double spare = static_cast<double>(kFreqTotal - static_cast<uint32_t>(V));
  torch::Tensor scale = torch::where(usable, spare / sum, torch::zeros_like(sum));
  torch::Tensor freq = (p * scale).floor_().to(torch::kInt64).add_(1);  // [B, V], p * scale < 2^31
  freq = torch::where(usable, freq, torch::full_like(freq, 1 + static_cast<int64_t>(spare) / V));
  // The remainder goes to the first most probable symbol (argmax returns the first maximum).
  // (gather + scatter_ rather than scatter_add_: no atomics, so CUDA graphs can capture it.)
  torch::Tensor top = freq.argmax(1, /*keepdim=*/true);  // [B, 1]
  torch::Tensor rest = static_cast<int64_t>(kFreqTotal) - freq.sum(1, /*keepdim=*/true);
  freq.scatter_(1, top, freq.gather(1, top) + rest);
  freq_ = freq;
  high_ = freq.cumsum(1);
}

torch::Tensor DeviceCoder::gather(const torch::Tensor& chosen) const {
  torch::Tensor index = chosen.unsqueeze(1);  // [B, 1]
  torch::Tensor freq = freq_.gather(1, index).squeeze(1);
  torch::Tensor low = high_.gather(1, index).squeeze(1) - freq;
  torch::Tensor prob = probs_.gather(1, index).squeeze(1);
  return torch::stack({chosen.to(torch::kFloat64), low.to(torch::kFloat64), freq.to(torch::kFloat64),
                       prob.to(torch::kFloat64)});
}

torch::Tensor DeviceCoder::run(CapturedOps* graph, torch::Tensor* out,
                               const std::function<torch::Tensor()>& ops) {
  if (!capture_) return ops();
  if (!graph->ready()) graph->capture([&] { *out = ops(); });
  graph->replay();
  return *out;
}

void DeviceCoder::unpack(const torch::Tensor& packed, const uint8_t* live, uint16_t* symbols,
                         SymbolRange* out) {
  torch::Tensor host = packed.to(torch::kCPU);
  const int64_t B = host.size(1);
  const double* h = host.data_ptr<double>();
  for (int64_t b = 0; b < B; ++b) {
    if (!live[b]) continue;
    if (symbols != nullptr) symbols[b] = static_cast<uint16_t>(h[b]);
    out[b] = SymbolRange{static_cast<uint32_t>(h[B + b]), static_cast<uint32_t>(h[2 * B + b]),
                         static_cast<float>(h[3 * B + b])};
  }
}

// An int64 host tensor, pinned where `like` is on CUDA (so copies from it can go without waiting).
static torch::Tensor pinned_if_cuda(const torch::Tensor& like, std::vector<int64_t> shape) {
  return torch::empty(shape, torch::TensorOptions().dtype(torch::kInt64).pinned_memory(like.is_cuda()));
}

void DeviceCoder::load_query(const int64_t* values, torch::Tensor* staging) {
  const torch::Tensor& query = lookups_->query;
  const int64_t B = query.size(0);
  if (staging == nullptr) {
    query.copy_(torch::from_blob(const_cast<int64_t*>(values), {B}, torch::kInt64));
    return;
  }
  if (!staging->defined() || staging->size(0) != B) *staging = pinned_if_cuda(query, {B});
  std::copy(values, values + B, staging->data_ptr<int64_t>());
  query.copy_(*staging, /*non_blocking=*/true);
}

void DeviceCoder::ranges(const uint16_t* symbols, const uint8_t* live, SymbolRange* out,
                         torch::Tensor* staging) {
  torch::NoGradGuard no_grad;
  Lookups& l = *lookups_;
  const int64_t B = l.query.size(0);
  std::vector<int64_t> chosen(static_cast<size_t>(B));
  for (int64_t b = 0; b < B; ++b) chosen[b] = live[b] ? symbols[b] : 0;
  load_query(chosen.data(), staging);
  unpack(run(&l.ranges_graph, &l.ranges_out, [&] { return gather(l.query); }), live, nullptr, out);
}

void DeviceCoder::find(const uint32_t* targets, const uint8_t* live, uint16_t* symbols, SymbolRange* out,
                       torch::Tensor* staging) {
  torch::NoGradGuard no_grad;
  Lookups& l = *lookups_;
  const int64_t B = l.query.size(0), V = probs_.size(1);
  std::vector<int64_t> t(static_cast<size_t>(B));
  for (int64_t b = 0; b < B; ++b) t[b] = live[b] ? targets[b] : 0;
  load_query(t.data(), staging);
  // The symbol s with high[s - 1] <= target < high[s]: the first s whose high exceeds the target.
  auto ops = [&] {
    torch::Tensor chosen =
        torch::searchsorted(high_, l.query.unsqueeze(1), /*out_int32=*/false, /*right=*/true)
            .squeeze(1)
            .clamp_max_(V - 1);
    return gather(chosen);
  };
  unpack(run(&l.find_graph, &l.find_out, ops), live, symbols, out);
}

void DeviceCodingPredictor::load_step_inputs(const uint16_t* prev, const MatchHint* hints,
                                             const torch::Tensor& step_in) {
  const int64_t B = step_in.size(1);
  if (!step_staging_.defined() || step_staging_.size(1) != B) step_staging_ = pinned_if_cuda(step_in, {3, B});
  step_staging_.zero_();
  int64_t* in = step_staging_.data_ptr<int64_t>();
  for (int64_t b = 0; b < B; ++b) {
    in[b] = prev[b];
    if (hints != nullptr && hints[b].length > 0) {
      in[B + b] = hints[b].symbol;
      in[2 * B + b] = match_bucket(hints[b].length);
    }
  }
  step_in.copy_(step_staging_, /*non_blocking=*/true);
}

bool DeviceCodingPredictor::replay_steps(bool ready, bool hints, int slots) {
  if (!ready) return false;
  if (hints != graph_hints_) {  // a different op sequence: capture again
    clear_step_graphs(slots);
    graph_hints_ = hints;
  }
  return true;
}

void DeviceCodingPredictor::run_step(bool replay, int slot, const std::function<void()>& ops) {
  if (!replay) {
    ops();
    return;
  }
  StepGraph& graph = step_graphs_[slot];
  if (!graph.ops.ready()) {
    graph.ops.capture(ops);
    coder_.capture_lookups();
    graph.coder = coder_;
  }
  graph.ops.replay();
  coder_ = graph.coder;
}

void DeviceCodingPredictor::clear_step_graphs(int slots) {
  step_graphs_.clear();
  step_graphs_.resize(slots);
}

}  // namespace nncpp
