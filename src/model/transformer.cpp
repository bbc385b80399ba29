#include "transformer.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "autocast.h"
#include "distributed.h"
#include "nncpp/error.h"
#include "weight_init.h"

#ifdef NNCPP_STEP_KERNELS
#include <c10/cuda/CUDAStream.h>

#include "step_kernels.h"
#endif

// Design notes.
//
// Relative positions: a learnt bias per head and distance (T5 / ALiBi style) added to the attention scores,
// initialised to ALiBi's slopes (-slope_h * distance), so every head starts with a recency preference of its
// own, and "look d back" is one number per head. Chosen over rotary embeddings because (1) it costs one
// slice per step and nothing in the key/value cache depends on positions (rotary relative to the segment
// start would have to re-rotate the memory's keys every segment), (2) position patterns need no help from
// the query/key weights, (3) there are no sin/cos tables whose float rounding could differ between LibTorch
// versions. Distances are at most M + T - 1, so the table is
// [heads, M + T] per layer.
//
// Memory: each layer's inputs of the last M positions (Transformer-XL). Their keys and values are
// recomputed from those inputs with the current weights at the first step after the weights changed, and
// the training forward takes them from that cache as constants: no gradient flows into the memory, nor
// through the memory's keys and values into Wk, Wv and the first norm (only the segment's own keys and
// values train them). That is the "true" XL memory DESIGN.md section 8 asks for: it skips the memory rows
// in the forward and backward GEMMs, which were most of the training cost (M = 2T: 3x the rows).
//
// Gradient clipping (NNCP): each parameter tensor's gradient is scaled to norm <= grad_clip if larger
// (computed on the device, no host synchronisation); 0 = off.

namespace nncpp {
namespace {

constexpr float kNormEps = 1e-5f;
constexpr int64_t kSmallAttention = 1 << 17;  // key elements up to which a CPU step avoids bmm

#define NNCPP_TORCH_AT_LEAST(major, minor) \
  (TORCH_VERSION_MAJOR > (major) || (TORCH_VERSION_MAJOR == (major) && TORCH_VERSION_MINOR >= (minor)))

// x * gain / sqrt(mean(x^2) + eps) over the last dimension. On CUDA LibTorch's rms_norm (fused in recent
// versions): a step of level 12 is about 650 small kernels (B = 32 rows), and the six of each explicit
// norm cost about 20 us of its 2.8 ms (nsight compute, H200); level 12 on 300 KB of enwiki coded 16.7
// instead of 15.4 KB/s with it. The CPU keeps the explicit formula (its files' bytes stay as they were).
torch::Tensor rms_norm(const torch::Tensor& x, const torch::Tensor& gain) {
#if NNCPP_TORCH_AT_LEAST(2, 4)
  if (x.is_cuda()) return at::rms_norm(x, {x.size(-1)}, gain, static_cast<double>(kNormEps));
#endif
  return x * torch::rsqrt(x.pow(2).mean(-1, /*keepdim=*/true) + kNormEps) * gain;
}

// A bfloat16 tensor's data as the bits step_kernels.h takes (nullptr for an undefined tensor).
[[maybe_unused]] uint16_t* bf16_bits(const torch::Tensor& t) {
  return t.defined() ? reinterpret_cast<uint16_t*>(t.data_ptr<at::BFloat16>()) : nullptr;
}

void check(bool ok, const std::string& what) {
  if (!ok) throw Error(ErrorCode::kUsage, "attention model settings: " + what);
}

}  // namespace

bool fused_step_kernels(const ModelSettings& settings, const torch::Device& device, bool bf16) {
#ifdef NNCPP_STEP_KERNELS
  const int64_t head_size = settings.heads > 0 ? settings.hidden / settings.heads : 0;
  const int64_t cache_slots = static_cast<int64_t>(settings.memory) + settings.segment;
  (void)bf16;  // with --dtype bfloat16 too: the step's kernels do their own bfloat16 arithmetic
  return device.is_cuda() && step_kernels::attention_supported(head_size) &&
         cache_slots * static_cast<int64_t>(sizeof(float)) <= 32 * 1024;
#else
  (void)settings, (void)device, (void)bf16;
  return false;
#endif
}

TransformerPredictor::TransformerPredictor(const ModelSettings& settings, torch::Device device)
    : TransformerPredictor(settings, device, !device.is_cpu()) {}

TransformerPredictor::TransformerPredictor(const ModelSettings& settings, torch::Device device,
                                           bool device_coding, bool cuda_graphs, bool bf16)
    : DeviceCodingPredictor(device, device_coding),
      s_(settings),
      device_(device),
      opts_(torch::TensorOptions().dtype(torch::kFloat32).device(device)),
      rng_(settings.seed),
      graphs_(cuda_graphs && graphs_available(device) && device_coding),
      bf16_(bf16),
      fused_step_(fused_step_kernels(settings, device, bf16)) {
  ModelStream::Scope scope(stream());
  const bool trace = s_.kind == ModelKind::kTrace;
  check(s_.kind == ModelKind::kTransformer || trace, "kind must be transformer or trace");
  check(s_.vocab >= 2 && s_.vocab <= 65536, "vocab must be in [2, 65536]");
  check(s_.layers >= 1 && s_.hidden >= 1 && s_.ff >= 1, "layers, hidden and ff must be positive");
  check(s_.heads >= 1 && s_.hidden % s_.heads == 0, "hidden must be a multiple of heads");
  check(s_.streams >= 1 && s_.segment >= 1, "streams and segment must be positive");
  check(!trace || (s_.embed >= 1 && s_.group >= 1), "trace needs embed and group >= 1");
  check(s_.dropout >= 0.0f && s_.dropout < 1.0f, "dropout must be in [0, 1)");
  check(s_.lr_decay >= 1, "lr_decay must be positive");

  V_ = s_.vocab;
  H_ = s_.hidden;
  E_ = trace ? s_.embed : s_.hidden;  // the Transformer's embedding is the residual stream itself
  F_ = s_.ff;
  heads_ = s_.heads;
  dh_ = H_ / heads_;
  M_ = s_.memory;
  T_ = s_.segment;
  group_ = trace ? s_.group : 1;
  ff_repeat_ = trace ? 2 : 1;
  const int64_t D = M_ + T_;

  // params_ order: see parameters() in the header.
  emb_ = param({V_, E_}, 1.0f);
  params_.push_back(emb_);
  if (group_ * E_ != H_) {
    in_w_ = param({H_, group_ * E_}, 1.0f / std::sqrt(static_cast<float>(group_ * E_)));
    in_b_ = torch::zeros({H_}, opts_);
    params_.push_back(in_w_);
    params_.push_back(in_b_);
  }
  const float h_scale = 1.0f / std::sqrt(static_cast<float>(H_));
  for (uint32_t l = 0; l < s_.layers; ++l) {
    Layer layer;
    layer.norm1 = torch::ones({H_}, opts_);
    layer.wqkv = param({3 * H_, H_}, h_scale);
    layer.wo = param({H_, H_}, h_scale);
    // ALiBi start: head h prefers recent keys with slope 2^(-8 (h + 1) / heads).
    torch::Tensor rel = torch::empty({heads_, D}, torch::kFloat32);
    auto r = rel.accessor<float, 2>();
    for (int64_t h = 0; h < heads_; ++h) {
      const double slope = std::pow(2.0, -8.0 * static_cast<double>(h + 1) / static_cast<double>(heads_));
      for (int64_t c = 0; c < D; ++c) r[h][c] = static_cast<float>(-slope * static_cast<double>(D - 1 - c));
    }
    layer.rel = rel.to(device_);
    layer.norm2 = torch::ones({H_}, opts_);
    layer.w1 = param({2 * F_, H_}, h_scale);
    layer.w2 = param({H_, F_}, 1.0f / std::sqrt(static_cast<float>(F_)));
    for (torch::Tensor* p :
         {&layer.norm1, &layer.wqkv, &layer.wo, &layer.rel, &layer.norm2, &layer.w1, &layer.w2})
      params_.push_back(*p);
    layers_.push_back(std::move(layer));
  }
  norm_out_ = torch::ones({H_}, opts_);
  w_out_ = param({V_, H_}, h_scale);
  b_out_ = torch::zeros({V_}, opts_);
  match_boost_ = torch::zeros({kMatchBuckets}, opts_);
  for (torch::Tensor* p : {&norm_out_, &w_out_, &b_out_, &match_boost_}) params_.push_back(*p);
  for (torch::Tensor& p : params_) {
    p.requires_grad_(true);
    adam_v_.push_back(torch::zeros_like(p).detach());
  }

  // Query t sits in slot M + t; key slot j is at distance M + t - j, i.e. column T - 1 - t + j of rel.
  torch::Tensor index = torch::empty({T_, D}, torch::kInt64);
  torch::Tensor causal = torch::zeros({T_, D}, torch::kFloat32);
  auto ix = index.accessor<int64_t, 2>();
  auto cm = causal.accessor<float, 2>();
  for (int64_t t = 0; t < T_; ++t) {
    for (int64_t j = 0; j < D; ++j) {
      const bool future = j > M_ + t;
      ix[t][j] = future ? D - 1 : T_ - 1 - t + j;
      if (future) cm[t][j] = -std::numeric_limits<float>::infinity();
    }
  }
  if (fused_step_) {
    coder().use_kernel(true);
    refresh_step_weights();
  }
  rel_index_ = index.to(device_);
  causal_ = causal.to(device_);
  adam_scalars_ = torch::zeros({2}, opts_);
  dropout_seed_ = torch::zeros({1}, torch::TensorOptions().dtype(torch::kInt64).device(device_));
}

torch::Tensor TransformerPredictor::param(std::vector<int64_t> shape, float scale) {
  return uniform_weights(shape, scale, &rng_, device_);
}

void TransformerPredictor::reset_streams(int active) {
  ModelStream::Scope scope(stream());
  if (active < 1 || active > static_cast<int>(s_.streams))
    throw Error(ErrorCode::kUsage, "reset_streams: active streams out of range");
  const int64_t B = active, S = M_ + T_;
  active_ = active;
  t_ = 0;
  mem_len_ = 0;
  kv_stale_ = false;
  clear_step_graphs(static_cast<int>(T_));  // they hold the addresses of the buffers below
  refresh_graph_.clear();
  segments_ = 0;
  for (Layer& layer : layers_) {
    layer.x = torch::zeros({B, S, H_}, opts_);
    layer.kv = torch::zeros({2, B, heads_, S, dh_}, fused_step_ ? opts_.dtype(torch::kBFloat16) : opts_);
    layer.k = layer.kv[0];
    layer.v = layer.kv[1];
  }
  auto int64 = torch::TensorOptions().dtype(torch::kInt64).device(device_);
  history_ = torch::zeros({B, group_ - 1 + T_}, int64);
  match_symbol_ = torch::zeros({B, T_}, int64);
  match_bucket_ = torch::zeros({B, T_}, int64);
  logits_ = torch::empty({B, V_}, opts_);
  probs_ = torch::empty({B, V_}, opts_);
  step_in_ = torch::zeros({3, B}, int64);
  loss_target_ = torch::zeros({B, T_}, int64);
  loss_weight_ = torch::zeros({B, T_}, opts_);
  window_history_ = window_target_ = window_weight_ = torch::Tensor();
  train_graph_.clear();
  retrain_graph_.clear();
  train_warm_ = retrain_warm_ = false;
}

// history [B, group - 1 + n] int64 -> position inputs [B, n, H]: the embeddings of each position's group,
// oldest first, concatenated (and projected when group * E != H).
torch::Tensor TransformerPredictor::embed(const torch::Tensor& history) const {
  const int64_t B = history.size(0), n = history.size(1) - (group_ - 1);
  torch::Tensor idx = group_ == 1 ? history : history.unfold(1, group_, 1);  // [B, n(, group)]
  torch::Tensor x = emb_.index_select(0, idx.reshape({-1})).view({B, n, group_ * E_});
  return in_w_.defined() ? torch::linear(x, in_w_, in_b_) : x;
}

// [B, n, c * H] -> [c, B, heads, n, dh] (c = 1: queries, 2: keys and values, 3: all).
torch::Tensor TransformerPredictor::split_heads(const torch::Tensor& t) const {
  const int64_t B = t.size(0), n = t.size(1), c = t.size(2) / H_;
  return t.view({B, n, c, heads_, dh_}).permute({2, 0, 3, 1, 4});
}

// q [B, heads, n, dh], k and v [B, heads, S, dh], bias [heads, n, S] (-inf = masked) -> [B, n, H].
torch::Tensor TransformerPredictor::attention(const torch::Tensor& q, const torch::Tensor& k,
                                              const torch::Tensor& v, const torch::Tensor& bias) const {
  const double scale = 1.0 / std::sqrt(static_cast<double>(dh_));
  const int64_t B = q.size(0), n = q.size(2);
  if (n == 1 && device_.is_cpu() && k.numel() <= kSmallAttention) {
    // One query (a step) on the CPU: bmm makes one BLAS call per (stream, head), ~2 us each; while the
    // keys are few, products and sums are cheaper (B 16, heads 4, 48 keys, dh 32: 67 instead of 302 us).
    torch::Tensor scores = (k * q).sum(-1).unsqueeze(2) * scale + bias;           // [B, heads, 1, S]
    torch::Tensor out = (torch::softmax(scores, -1).transpose(2, 3) * v).sum(2);  // [B, heads, dh]
    return out.view({B, 1, H_});
  }
  torch::Tensor scores = torch::matmul(q, k.transpose(2, 3)) * scale + bias;  // [B, heads, n, S]
  torch::Tensor out = torch::matmul(torch::softmax(scores, -1), v);           // [B, heads, n, dh]
  return out.permute({0, 2, 1, 3}).reshape({B, n, H_});
}

// x [B, n, H] -> x after the GEGLU block, applied ff_repeat_ times with the same weights (TRACE: twice).
torch::Tensor TransformerPredictor::feed_forward(const Layer& layer, torch::Tensor x,
                                                 DropoutMasks* dropout) const {
  for (int64_t r = 0; r < ff_repeat_; ++r) {
    std::vector<torch::Tensor> u =
        torch::linear(rms_norm(x, layer.norm2), layer.w1).chunk(2, 2);  // 2 x [B, n, F]
    torch::Tensor y = torch::linear(torch::gelu(u[0]) * u[1], layer.w2);
    if (dropout != nullptr) y = y * dropout->mask({x.size(0), x.size(1), H_});
    x = x + y;
  }
  return x;
}

// The batch forward shared by train(), retrain() and segment_logprobs().
// history [B, group - 1 + n] int64; memory_k[l], memory_v[l] [B, heads, m, dh] layer l's keys and values of
// the m earlier positions (constants); match_symbol, match_bucket [B, n] int64. Returns logits [B, n, V];
// kv (optional) receives each layer's keys and values [B, heads, m + n, dh], detached, as {k, v}.
torch::Tensor TransformerPredictor::forward(const torch::Tensor& history,
                                            const std::vector<torch::Tensor>& memory_k,
                                            const std::vector<torch::Tensor>& memory_v,
                                            const torch::Tensor& match_symbol,
                                            const torch::Tensor& match_bucket, DropoutMasks* dropout,
                                            std::vector<torch::Tensor>* kv) const {
  const int64_t B = history.size(0), n = history.size(1) - (group_ - 1), m = memory_k[0].size(2);
  torch::Tensor bias_index = rel_index_.narrow(0, 0, n).narrow(1, M_ - m, m + n).reshape({-1});
  torch::Tensor causal = causal_.narrow(0, 0, n).narrow(1, M_ - m, m + n);  // [n, m + n]
  torch::Tensor x = embed(history);                                         // [B, n, H]
  for (size_t l = 0; l < layers_.size(); ++l) {
    const Layer& layer = layers_[l];
    std::vector<torch::Tensor> qkv =
        split_heads(torch::linear(rms_norm(x, layer.norm1), layer.wqkv)).unbind(0);  // 3 x [B, heads, n, dh]
    // [B, heads, m + n, dh]; the memory comes in the cache's dtype (bfloat16 with the fused step) and takes
    // the new keys' dtype
    const auto type = qkv[1].scalar_type();
    torch::Tensor k = m > 0 ? torch::cat({memory_k[l].to(type), qkv[1]}, 2) : qkv[1];
    torch::Tensor v = m > 0 ? torch::cat({memory_v[l].to(type), qkv[2]}, 2) : qkv[2];
    if (kv != nullptr) {
      (*kv)[2 * l] = k.detach();
      (*kv)[2 * l + 1] = v.detach();
    }
    torch::Tensor bias = layer.rel.index_select(1, bias_index).view({heads_, n, m + n}) + causal;
    torch::Tensor y = torch::linear(attention(qkv[0], k, v, bias), layer.wo);
    if (dropout != nullptr) y = y * dropout->mask({B, n, H_});
    x = feed_forward(layer, x + y, dropout);
  }
  // [B, n, V]; float32 also under bf16 autocast (the boost is float, and the loss wants float)
  torch::Tensor logits = torch::linear(rms_norm(x, norm_out_), w_out_, b_out_).to(torch::kFloat32);
  torch::Tensor boost = match_boost_.index_select(0, match_bucket.reshape({-1})).view({B, n, 1});
  return logits.scatter_add(2, match_symbol.unsqueeze(2), boost);
}

// Keys and values [2, B, heads, m, dh] of layer inputs x [B, m, H] with the current weights.
torch::Tensor TransformerPredictor::memory_kv(const Layer& layer, const torch::Tensor& x) const {
  return split_heads(torch::linear(rms_norm(x, layer.norm1), layer.wqkv.narrow(0, H_, 2 * H_)));
}

// Recomputes the memory slots of the key/value cache from the stored layer inputs.
void TransformerPredictor::refresh_memory_kv() {
  const int64_t m = mem_len_;
  if (m == 0) return;
  for (Layer& layer : layers_) {
    layer.kv.narrow(3, M_ - m, m).copy_(memory_kv(layer, layer.x.narrow(1, M_ - m, m)));
  }
}

const float* TransformerPredictor::step(const uint16_t* prev, const MatchHint* hints) {
  ModelStream::Scope scope(stream());
  Bf16Autocast autocast(bf16_);
  torch::NoGradGuard no_grad;
  if (t_ >= T_) throw Error(ErrorCode::kUsage, "step: the segment is full, call train() first");
  const int t = t_++;
  // Graphs once the memory is full (fixed shapes) and one segment has warmed up cuBLAS eagerly.
  const bool replay =
      replay_steps(graphs_ && segments_ > 0 && mem_len_ == M_, hints != nullptr, static_cast<int>(T_));
  if (t == 0 && kv_stale_) {
    if (replay && !refresh_graph_.ready()) refresh_graph_.capture([&] { refresh_memory_kv(); });
    replay ? refresh_graph_.replay() : refresh_memory_kv();
    kv_stale_ = false;
  }

  load_step_inputs(prev, hints, step_in_);
  run_step(replay, t, [&] { step_ops(t, hints != nullptr); });
  if (device_coding()) return nullptr;
  if (device_.is_cpu()) return probs_.data_ptr<float>();
  probs_host_ = probs_.to(torch::kCPU);  // e.g. for the context mixer, which works on the host
  return probs_host_.data_ptr<float>();
}

void TransformerPredictor::step_ops(int t, bool hints) {
  const int64_t B = active_;
  history_.select(1, group_ - 1 + t).copy_(step_in_[0]);
  match_symbol_.select(1, t).copy_(step_in_[1]);
  match_bucket_.select(1, t).copy_(step_in_[2]);

  const int64_t slot = M_ + t, lo = M_ - mem_len_, keys = slot + 1 - lo;
  torch::Tensor x = embed(history_.narrow(1, t, group_));  // [B, 1, H]
  torch::Tensor h;                                         // [B, H] the output layer's input
  if (fused_step_) {
    x = x.view({B, H_});
    torch::Tensor pending;
    for (Layer& layer : layers_) fused_step_layer(layer, x, &pending, slot, keys);
    h = torch::empty({B, H_}, opts_);
#ifdef NNCPP_STEP_KERNELS
    step_kernels::add_rms_norm(x.data_ptr<float>(), bf16_bits(pending), norm_out_.data_ptr<float>(), nullptr,
                               0, nullptr, h.data_ptr<float>(), B, H_, kNormEps,
                               c10::cuda::getCurrentCUDAStream().stream());
#endif
  } else {
    for (Layer& layer : layers_) {
      layer.x.narrow(1, slot, 1).copy_(x);
      torch::Tensor qkv =
          split_heads(torch::linear(rms_norm(x, layer.norm1), layer.wqkv));  // [3, B, heads, 1, dh]
      layer.kv.narrow(3, slot, 1).copy_(qkv.narrow(0, 1, 2));
      // Keys at distances keys-1 .. 0: consecutive columns of rel, no mask needed.
      torch::Tensor bias = layer.rel.narrow(1, M_ + T_ - keys, keys).unsqueeze(1);  // [heads, 1, keys]
      torch::Tensor a = attention(qkv[0], layer.k.narrow(2, lo, keys), layer.v.narrow(2, lo, keys), bias);
      x = feed_forward(layer, x + torch::linear(a, layer.wo), nullptr);
    }
    h = rms_norm(x, norm_out_).view({B, H_});
  }
  torch::addmm_out(logits_, b_out_, h, w_out_.t());  // [B, V]
  if (hints) {  // logit of each hinted symbol += boost[bucket] (one symbol per row: gather + scatter_)
    torch::Tensor col = match_symbol_.narrow(1, t, 1);  // [B, 1]
    logits_.scatter_(
        1, col,
        logits_.gather(1, col) + match_boost_.index_select(0, match_bucket_.select(1, t)).unsqueeze(1));
  }
  torch::softmax_out(probs_, logits_, 1);
  if (device_coding()) coder().set(probs_);
}

// The same arithmetic as a step_ops() layer in 4 matrix products (bfloat16 weights and inputs) and 4 kernels
// of ours (the residual add with the RMSNorm twice, attention, GEGLU), instead of about 30 kernels.
void TransformerPredictor::fused_step_layer(Layer& layer, torch::Tensor& x, torch::Tensor* pending,
                                            int64_t slot, int64_t keys) {
#ifdef NNCPP_STEP_KERNELS
  const int64_t B = x.size(0);
  void* stream = c10::cuda::getCurrentCUDAStream().stream();
  const torch::TensorOptions bf16 = opts_.dtype(torch::kBFloat16);
  // x += pending; the layer's input x to its slot of layer.x ([B, M + T, H]); xn = RMSNorm(x) [B, H]
  torch::Tensor xn = torch::empty({B, H_}, bf16);
  step_kernels::add_rms_norm(x.data_ptr<float>(), bf16_bits(*pending), layer.norm1.data_ptr<float>(),
                             layer.x.data_ptr<float>() + slot * H_, (M_ + T_) * H_, bf16_bits(xn), nullptr, B,
                             H_, kNormEps, stream);
  torch::Tensor qkv = torch::linear(xn, layer.wqkv16);  // [B, 3H]
  torch::Tensor a = torch::empty({B, H_}, bf16);
  step_kernels::step_attention(bf16_bits(qkv), bf16_bits(layer.kv), layer.rel.data_ptr<float>(), bf16_bits(a),
                               B, heads_, dh_, M_ + T_, slot, keys, M_ + T_,
                               static_cast<float>(1.0 / std::sqrt(static_cast<double>(dh_))), stream);
  torch::Tensor y = torch::linear(a, layer.wo16);  // [B, H]
  for (int64_t r = 0; r < ff_repeat_; ++r) {
    step_kernels::add_rms_norm(x.data_ptr<float>(), bf16_bits(y), layer.norm2.data_ptr<float>(), nullptr, 0,
                               bf16_bits(xn), nullptr, B, H_, kNormEps, stream);
    torch::Tensor u = torch::linear(xn, layer.w1_16);  // [B, 2F]
    torch::Tensor g = torch::empty({B, F_}, bf16);
    step_kernels::step_geglu(bf16_bits(u), bf16_bits(g), B, F_, stream);
    y = torch::linear(g, layer.w2_16);  // [B, H]
  }
  *pending = y;
#else
  (void)layer, (void)x, (void)pending, (void)slot, (void)keys;
  throw std::logic_error("fused step kernels are not in this build");
#endif
}

void TransformerPredictor::refresh_step_weights() {
  torch::NoGradGuard no_grad;
  for (Layer& layer : layers_) {
    const std::pair<torch::Tensor*, const torch::Tensor*> copies[] = {{&layer.wqkv16, &layer.wqkv},
                                                                      {&layer.wo16, &layer.wo},
                                                                      {&layer.w1_16, &layer.w1},
                                                                      {&layer.w2_16, &layer.w2}};
    for (const auto& [copy, weight] : copies) {
      if (!copy->defined()) *copy = torch::empty(weight->sizes(), opts_.dtype(torch::kBFloat16));
      copy->copy_(*weight);
    }
  }
}

void TransformerPredictor::load_loss_inputs(const uint16_t* targets, const uint8_t* mask, int steps,
                                            int64_t live, const torch::Tensor& target,
                                            const torch::Tensor& weight) const {
  const int64_t B = target.size(0), n = steps;
  torch::Tensor target_cpu = torch::empty({B, n}, torch::kInt64);
  torch::Tensor weight_cpu = torch::empty({B, n}, torch::kFloat32);
  for (int64_t t = 0; t < n; ++t) {
    for (int64_t b = 0; b < B; ++b) {  // [n][B] -> [B][n], the logits' order
      target_cpu.data_ptr<int64_t>()[b * n + t] = targets[t * B + b];
      weight_cpu.data_ptr<float>()[b * n + t] = mask[t * B + b] != 0 ? 1.0f / static_cast<float>(live) : 0.0f;
    }
  }
  target.copy_(target_cpu);
  weight.copy_(weight_cpu);
}

// Sum of weight * cross-entropy (the weights make it the mean over the live positions).
torch::Tensor TransformerPredictor::loss(const torch::Tensor& logits, const torch::Tensor& target,
                                         const torch::Tensor& weight) const {
  const int64_t B = logits.size(0), n = logits.size(1);
  // nll_loss per row: a deterministic backward on CUDA (gather's would need atomics).
  torch::Tensor nll = torch::nll_loss(torch::log_softmax(logits.reshape({B * n, V_}), -1),
                                      target.reshape({-1}), {}, at::Reduction::None);
  return (nll * weight.reshape({-1})).sum();
}

void TransformerPredictor::run_captured(bool capture, CapturedOps* graph, bool* failed,
                                        const std::function<void()>& ops) {
  if (capture && !*failed && !graph->ready()) {
    try {
      graph->capture(ops);
    } catch (const std::exception&) {  // e.g. an op that synchronises with the host
      graph->clear();
      *failed = true;
    }
  }
  if (capture && graph->ready())
    graph->replay();
  else
    ops();
}

void TransformerPredictor::train_ops(int64_t n) {
  std::vector<torch::Tensor> mk, mv;  // the cached memory keys and values (current unless kv_stale_)
  for (const Layer& layer : layers_) {
    mk.push_back(layer.k.narrow(2, M_ - mem_len_, mem_len_));
    mv.push_back(layer.v.narrow(2, M_ - mem_len_, mem_len_));
  }
  torch::Tensor logits = forward(history_.narrow(1, 0, group_ - 1 + n), mk, mv, match_symbol_.narrow(1, 0, n),
                                 match_bucket_.narrow(1, 0, n), nullptr, nullptr);
  torch::Tensor l = loss(logits, loss_target_.narrow(1, 0, n), loss_weight_.narrow(1, 0, n));
  std::vector<torch::Tensor> grads = torch::autograd::grad({l}, params_, {}, false, false, true);
  adam_update(grads);
}

void TransformerPredictor::train(const uint16_t* targets, const uint8_t* mask, int steps, bool update) {
  ModelStream::Scope scope(stream());
  Bf16Autocast autocast(bf16_);
  if (steps != t_) throw Error(ErrorCode::kUsage, "train: steps differ from the positions stepped");
  if (steps == 0) return;
  const int64_t B = active_, n = steps;
  int64_t live = 0;
  for (int64_t i = 0; i < n * B; ++i) live += mask[i] != 0;
  if (update) live = sum_count(ranks_, live);

  bool changed = false;
  if (update && live > 0) {
    load_loss_inputs(targets, mask, steps, live, loss_target_.narrow(1, 0, n), loss_weight_.narrow(1, 0, n));
    ++train_steps_;
    double lr = s_.lr / std::sqrt(1.0 + static_cast<double>(train_steps_) / s_.lr_decay);
    prepare_adam(std::max<double>(lr, s_.lr_floor));
    // The graph's shape: a full segment over a full memory (every segment of a block but the first few
    // and the last).
    const bool fixed = graphs_ && n == T_ && mem_len_ == M_;
    run_captured(fixed && train_warm_, &train_graph_, &train_graph_failed_, [&] { train_ops(n); });
    train_warm_ = train_warm_ || fixed;
    changed = true;
  }

  // Move past the segment: the last M positions of [memory, segment] become the memory (right-aligned).
  torch::NoGradGuard no_grad;
  const int64_t m = std::min(M_, mem_len_ + n);
  kv_stale_ = kv_stale_ || changed;
  for (Layer& layer : layers_) {
    if (m > 0) {
      layer.x.narrow(1, M_ - m, m).copy_(layer.x.narrow(1, M_ + n - m, m).clone());
      if (!kv_stale_)  // same weights: the cached keys and values are still the right ones
        layer.kv.narrow(3, M_ - m, m).copy_(layer.kv.narrow(3, M_ + n - m, m).clone());
    }
  }
  if (group_ > 1) history_.narrow(1, 0, group_ - 1).copy_(history_.narrow(1, n, group_ - 1).clone());
  mem_len_ = m;
  t_ = 0;
  ++segments_;
}

void TransformerPredictor::retrain_ops(int64_t length) {
  const int64_t B = active_;
  // Masks drawn where the model runs, bit-identical to the host's (dropout.h).
  DropoutMasks dropout = device_.is_cpu() ? DropoutMasks(s_.dropout, retrain_seed_, device_)
                                          : DropoutMasks(s_.dropout, dropout_seed_);
  DropoutMasks* drop = s_.dropout > 0.0f ? &dropout : nullptr;
  // Chunks of T positions, each attending to the previous ones' last M as memory (as in stepping), from an
  // empty memory; gradients of all chunks add up to one step's.
  std::vector<torch::Tensor> mk(layers_.size(), torch::zeros({B, heads_, 0, dh_}, opts_)), mv = mk;
  std::vector<torch::Tensor> kv(2 * layers_.size());
  std::vector<torch::Tensor> total;
  auto int64 = torch::TensorOptions().dtype(torch::kInt64).device(device_);
  for (int64_t start = 0; start < length; start += T_) {
    const int64_t n = std::min<int64_t>(T_, length - start);
    torch::Tensor none = torch::zeros({B, n}, int64);  // no match hints when retraining
    torch::Tensor logits =
        forward(window_history_.narrow(1, start, group_ - 1 + n), mk, mv, none, none, drop, &kv);
    torch::Tensor l = loss(logits, window_target_.narrow(1, start, n), window_weight_.narrow(1, start, n));
    std::vector<torch::Tensor> grads = torch::autograd::grad({l}, params_, {}, false, false, true);
    if (total.empty()) {
      total = grads;
    } else {
      for (size_t k = 0; k < grads.size(); ++k) {
        if (!total[k].defined())
          total[k] = grads[k];
        else if (grads[k].defined())
          total[k] = total[k] + grads[k];
      }
    }
    const int64_t m = std::min(M_, mk[0].size(2) + n);  // the next chunk's memory: the last m keys, values
    for (size_t l2 = 0; l2 < layers_.size(); ++l2) {
      mk[l2] = kv[2 * l2].narrow(2, kv[2 * l2].size(2) - m, m);
      mv[l2] = kv[2 * l2 + 1].narrow(2, kv[2 * l2 + 1].size(2) - m, m);
    }
  }
  adam_update(total);
}

void TransformerPredictor::retrain(const uint16_t* inputs, const uint16_t* targets, const uint8_t* mask,
                                   int length) {
  ModelStream::Scope scope(stream());
  Bf16Autocast autocast(bf16_);
  if (length <= 0) return;
  const int64_t B = active_;
  int64_t live = 0;
  for (int64_t i = 0; i < length * B; ++i) live += mask[i] != 0;
  live = sum_count(ranks_, live);
  ++retrain_steps_;
  if (live == 0) return;

  // The window into static buffers: history [B, group - 1 + length], inputs before it count as 0 (like a
  // stream's start); targets and loss weights [B, length].
  if (!window_target_.defined() || window_target_.size(1) != length) {
    auto int64 = torch::TensorOptions().dtype(torch::kInt64).device(device_);
    window_history_ = torch::zeros({B, group_ - 1 + length}, int64);
    window_target_ = torch::zeros({B, length}, int64);
    window_weight_ = torch::zeros({B, length}, opts_);
    retrain_graph_.clear();  // it holds the old buffers' addresses
    retrain_warm_ = false;
  }
  torch::Tensor history = torch::empty({B, group_ - 1 + length}, torch::kInt64);
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t j = 0; j < group_ - 1 + length; ++j) {
      const int64_t pos = j - (group_ - 1);
      history.data_ptr<int64_t>()[b * (group_ - 1 + length) + j] = pos >= 0 ? inputs[pos * B + b] : 0;
    }
  }
  window_history_.copy_(history);
  load_loss_inputs(targets, mask, length, live, window_target_, window_weight_);
  retrain_seed_ = s_.seed ^ (0xd1b54a32d192ed03ull * static_cast<uint64_t>(retrain_steps_));
  dropout_seed_.fill_(static_cast<int64_t>(retrain_seed_));
  prepare_adam(s_.retrain_lr / std::sqrt(1.0 + static_cast<double>(retrain_steps_) / s_.lr_decay));
  // Every pass of a block has the same shape once the window is full.
  const bool fixed = graphs_ && length == static_cast<int>(s_.retrain_window);
  run_captured(fixed && retrain_warm_, &retrain_graph_, &retrain_graph_failed_, [&] { retrain_ops(length); });
  retrain_warm_ = retrain_warm_ || fixed;
  kv_stale_ =
      true;  // the stepping state itself is untouched; only its memory keys/values need the new weights
}

void TransformerPredictor::prepare_adam(double lr) {
  ++adam_steps_;
  lr_ = lr;
  correction_ = 1.0 - std::pow(static_cast<double>(s_.beta2), static_cast<double>(adam_steps_));
  if (graphs_) {  // a replayed update reads them from the device
    torch::Tensor host = torch::empty({2}, torch::kFloat32);
    host.data_ptr<float>()[0] = static_cast<float>(-lr);
    host.data_ptr<float>()[1] = static_cast<float>(1.0 / correction_);
    adam_scalars_.copy_(host);
  }
}

void TransformerPredictor::adam_update(std::vector<torch::Tensor>& grads) {
  torch::NoGradGuard no_grad;
  const double beta2 = s_.beta2;
  sum_gradients(ranks_, params_, &grads);
  for (size_t k = 0; k < params_.size(); ++k) {
    if (!grads[k].defined()) grads[k] = torch::zeros_like(params_[k]);
    if (k + 1 == params_.size()) grads[k][0] = 0;  // match boost of bucket 0 (no hint) stays 0
    torch::Tensor g = grads[k];
    if (s_.grad_clip > 0) {  // per-tensor norm clipping: g *= min(1, clip / |g|)
      g.mul_((g.norm() + 1e-12).reciprocal_().mul_(s_.grad_clip).clamp_max_(1.0));
    }
    torch::Tensor& v = adam_v_[k];
    v.mul_(beta2).addcmul_(g, g, 1.0 - beta2);
    // Adam with beta1 = 0: p -= lr * g / (sqrt(v / (1 - beta2^t)) + eps)
    if (graphs_) {  // the scalars from the device, so a graph replays with the current ones
      torch::Tensor denom = (v * adam_scalars_[1]).sqrt_().add_(s_.adam_eps);
      params_[k].addcmul_(g / denom, adam_scalars_[0]);
    } else {
      torch::Tensor denom = (v / correction_).sqrt_().add_(s_.adam_eps);
      params_[k].addcdiv_(g, denom, -lr_);
    }
  }
  if (fused_step_) refresh_step_weights();
}

torch::Tensor TransformerPredictor::segment_logprobs() {
  ModelStream::Scope scope(stream());
  Bf16Autocast autocast(bf16_);
  torch::NoGradGuard no_grad;
  if (t_ == 0) return torch::empty({0, active_, V_});
  const int64_t n = t_;
  // Memory keys and values recomputed from the stored layer inputs: checks the cache's refresh and slides.
  std::vector<torch::Tensor> mk, mv;
  for (const Layer& layer : layers_) {
    torch::Tensor kv = memory_kv(layer, layer.x.narrow(1, M_ - mem_len_, mem_len_));
    mk.push_back(kv[0]);
    mv.push_back(kv[1]);
  }
  torch::Tensor logits = forward(history_.narrow(1, 0, group_ - 1 + n), mk, mv, match_symbol_.narrow(1, 0, n),
                                 match_bucket_.narrow(1, 0, n), nullptr, nullptr);
  return torch::log_softmax(logits, -1).transpose(0, 1).contiguous().cpu();
}

}  // namespace nncpp
