#include "lstm.h"

#include <cmath>

#include "distributed.h"
#include "index_sum.h"
#include "nncpp/error.h"
#include "weight_init.h"

namespace nncpp {

using torch::indexing::Slice;

LstmPredictor::LstmPredictor(const ModelSettings& settings, torch::Device device)
    : LstmPredictor(settings, device, !device.is_cpu()) {}

LstmPredictor::LstmPredictor(const ModelSettings& settings, torch::Device device, bool device_coding,
                             bool cuda_graphs)
    : DeviceCodingPredictor(device, device_coding),
      s_(settings),
      device_(device),
      opts_(torch::TensorOptions().dtype(torch::kFloat32).device(device)),
      rng_(settings.seed),
      graphs_(cuda_graphs && graphs_available(device) && device_coding) {
  ModelStream::Scope scope(stream());
  const int64_t V = s_.vocab, E = s_.embed, H = s_.hidden, L = s_.layers;
  emb_ = param({V, E}, 1.0f);
  params_.push_back(emb_);  // params_ order: emb, (w, b) per layer, w_out, b_out, match_boost
  for (int64_t l = 0; l < L; ++l) {
    Layer layer;
    layer.in = static_cast<int>(l == 0 ? E : E + H);
    layer.w = param({4 * H, layer.in + H}, 1.0f / std::sqrt(static_cast<float>(layer.in + H)));
    layer.b = torch::zeros({4 * H}, opts_);
    layer.b.index({Slice(H, 2 * H)}).fill_(1.0f);  // forget gate starts open
    params_.push_back(layer.w);
    params_.push_back(layer.b);
    layers_.push_back(std::move(layer));
  }
  w_out_ = param({V, L * H}, 1.0f / std::sqrt(static_cast<float>(L * H)));
  b_out_ = torch::zeros({V}, opts_);
  match_boost_ = torch::zeros({kMatchBuckets}, opts_);
  params_.push_back(w_out_);
  params_.push_back(b_out_);
  params_.push_back(match_boost_);
  for (const torch::Tensor& p : params_) adam_v_.push_back(torch::zeros_like(p));
}

torch::Tensor LstmPredictor::param(std::vector<int64_t> shape, float scale) {
  return uniform_weights(shape, scale, &rng_, device_);
}

void LstmPredictor::reset_streams(int active) {
  ModelStream::Scope scope(stream());
  const int64_t B = active, T = s_.segment, H = s_.hidden, L = s_.layers;
  active_ = active;
  t_ = 0;
  // The graphs hold the addresses of the buffers below: drop them before the buffers go.
  clear_step_graphs(static_cast<int>(T));
  train_graph_.clear();
  segments_ = 0;
  for (Layer& layer : layers_) {
    layer.xh = torch::zeros({T, B, layer.in + H}, opts_);
    layer.gates = torch::empty({T, B, 4 * H}, opts_);
    layer.c = torch::zeros({T + 1, B, H}, opts_);
    layer.h0 = torch::zeros({B, H}, opts_);
  }
  auto int64 = torch::TensorOptions().dtype(torch::kInt64).device(device_);
  inputs_ = torch::zeros({T, B}, int64);
  match_symbol_ = torch::zeros({T, B}, int64);
  match_bucket_ = torch::zeros({T, B}, int64);
  hcat_ = torch::empty({T, B, L * H}, opts_);
  probs_ = torch::empty({T, B, static_cast<int64_t>(s_.vocab)}, opts_);
  step_in_ = torch::zeros({3, B}, int64);
  train_target_ = torch::zeros({T * B}, int64);
  train_weight_ = torch::zeros({T * B, 1}, opts_);
  adam_scalars_ = torch::zeros({2}, opts_);
}

const float* LstmPredictor::step(const uint16_t* prev, const MatchHint* hints) {
  ModelStream::Scope scope(stream());
  torch::NoGradGuard no_grad;
  const int t = t_++;

  load_step_inputs(prev, hints, step_in_);
  // The first segment after reset_streams runs eagerly: it warms up cuBLAS on the model's stream.
  const bool replay = replay_steps(graphs_ && segments_ > 0, hints != nullptr, static_cast<int>(s_.segment));
  run_step(replay, t, [&] { step_ops(t, hints != nullptr); });
  if (device_coding()) return nullptr;
  if (device_.is_cpu()) return probs_[t].data_ptr<float>();
  // On a GPU without device coding (the context mixer's levels): the host reads them, so copy them there.
  probs_host_ = probs_[t].to(torch::kCPU);
  return probs_host_.data_ptr<float>();
}

void LstmPredictor::step_ops(int t, bool hints) {
  const int64_t E = s_.embed, H = s_.hidden;
  inputs_[t].copy_(step_in_[0]);
  match_symbol_[t].copy_(step_in_[1]);
  match_bucket_[t].copy_(step_in_[2]);
  torch::Tensor x = emb_.index_select(0, inputs_[t]);  // [B, E]
  torch::Tensor hcat = hcat_[t];                       // [B, L*H]

  for (size_t l = 0; l < layers_.size(); ++l) {
    Layer& layer = layers_[l];
    torch::Tensor xh = layer.xh[t];  // [B, in + H]
    xh.narrow(1, 0, E).copy_(x);
    if (l > 0) xh.narrow(1, E, H).copy_(hcat.narrow(1, (l - 1) * H, H));
    xh.narrow(1, layer.in, H).copy_(t == 0 ? layer.h0 : hcat_[t - 1].narrow(1, l * H, H));

    torch::Tensor g = layer.gates[t];  // [B, 4H]
    torch::addmm_out(g, layer.b, xh, layer.w.t());
    g.narrow(1, 0, 3 * H).sigmoid_();
    g.narrow(1, 3 * H, H).tanh_();
    torch::Tensor c = layer.c[t + 1];
    // c = f * c_prev + i * g
    torch::mul_out(c, g.narrow(1, H, H), layer.c[t]);
    c.addcmul_(g.narrow(1, 0, H), g.narrow(1, 3 * H, H));
    // h = o * tanh(c)
    torch::Tensor h = hcat.narrow(1, l * H, H);
    torch::tanh_out(h, c);
    h.mul_(g.narrow(1, 2 * H, H));
  }

  torch::Tensor p = probs_[t];  // [B, V]
  torch::addmm_out(p, b_out_, hcat, w_out_.t());
  if (hints) {  // logit of each hinted symbol += boost[bucket] (one symbol per row: gather + scatter_)
    torch::Tensor col = match_symbol_[t].unsqueeze(1);  // [B, 1]
    p.scatter_(1, col, p.gather(1, col) + match_boost_.index_select(0, match_bucket_[t]).unsqueeze(1));
  }
  torch::softmax_out(p, p.clone(), 1);
  if (device_coding()) coder().set(p);
}

float LstmPredictor::learning_rate() const {
  double lr = s_.lr / std::sqrt(1.0 + static_cast<double>(train_steps_) / s_.lr_decay);
  return static_cast<float>(std::max<double>(lr, s_.lr_floor));
}

void LstmPredictor::retrain(const uint16_t*, const uint16_t*, const uint8_t*, int) {
  throw Error(ErrorCode::kUsage, "the LSTM model has no retraining pass");
}

void LstmPredictor::train(const uint16_t* targets, const uint8_t* mask, int steps, bool update) {
  ModelStream::Scope scope(stream());
  torch::NoGradGuard no_grad;
  const int64_t rows = steps * active_;
  t_ = 0;

  int64_t live = 0;
  for (int64_t i = 0; update && i < rows; ++i) live += mask[i] != 0;
  if (update) live = sum_count(ranks_, live);
  if (live > 0) {
    // Targets and loss weights: mean cross-entropy over the coded (unmasked) positions.
    torch::Tensor target = torch::empty({rows}, torch::kInt64);
    torch::Tensor weight = torch::empty({rows, 1}, torch::kFloat32);
    for (int64_t i = 0; i < rows; ++i) {
      target.data_ptr<int64_t>()[i] = targets[i];
      weight.data_ptr<float>()[i] = mask[i] != 0 ? 1.0f / static_cast<float>(live) : 0.0f;
    }
    train_target_.narrow(0, 0, rows).copy_(target);
    train_weight_.narrow(0, 0, rows).copy_(weight);
    ++train_steps_;
    const double correction =
        1.0 - std::pow(static_cast<double>(s_.beta2), static_cast<double>(train_steps_));
    adam_scalars_.copy_(torch::tensor({-learning_rate(), static_cast<float>(correction)}));
  }

  if (live > 0 && steps == static_cast<int>(s_.segment) && graphs_ && segments_ > 0) {
    if (!train_graph_.ready()) train_graph_.capture([&] { train_ops(steps, true); });
    train_graph_.replay();
  } else {
    train_ops(steps, live > 0);
  }
  ++segments_;
}

void LstmPredictor::train_ops(int steps, bool update) {
  const int64_t B = active_, E = s_.embed, H = s_.hidden, L = s_.layers, V = s_.vocab;
  const int64_t rows = steps * B;
  if (update) {
    torch::Tensor target = train_target_.narrow(0, 0, rows).unsqueeze(1);  // [rows, 1]
    // d loss / d logits = (softmax - onehot) * weight.  [rows, V]
    torch::Tensor dlogits = probs_.narrow(0, 0, steps).reshape({rows, V}).clone();
    dlogits.scatter_(1, target, dlogits.gather(1, target) - 1.0f);
    dlogits.mul_(train_weight_.narrow(0, 0, rows));

    torch::Tensor hcat = hcat_.narrow(0, 0, steps).reshape({rows, L * H});
    std::vector<torch::Tensor> grads(params_.size());
    const size_t out = params_.size() - 3;
    grads[out] = torch::mm(dlogits.t(), hcat);  // [V, L*H]
    grads[out + 1] = dlogits.sum(0);
    // d loss / d boost[k] = sum of dlogits at the hinted symbol over the rows in bucket k; bucket 0 = none.
    torch::Tensor bucket = match_bucket_.narrow(0, 0, steps).reshape({rows});
    torch::Tensor hinted =
        dlogits.gather(1, match_symbol_.narrow(0, 0, steps).reshape({rows, 1})).view({rows});
    grads[out + 2] = index_sum(bucket, hinted, kMatchBuckets);
    grads[out + 2][0] = 0;
    torch::Tensor dhcat = torch::mm(dlogits, w_out_).view({steps, B, L * H});  // [T, B, L*H]
    torch::Tensor demb = torch::zeros({rows, E}, opts_);

    for (int64_t l = L - 1; l >= 0; --l) {
      Layer& layer = layers_[l];
      torch::Tensor w_rec = layer.w.narrow(1, layer.in, H);  // [4H, H]
      torch::Tensor dgates = torch::empty({steps, B, 4 * H}, opts_);
      torch::Tensor dh_next = torch::zeros({B, H}, opts_);
      torch::Tensor dc = torch::zeros({B, H}, opts_);
      for (int t = steps - 1; t >= 0; --t) {
        torch::Tensor g = layer.gates[t];
        torch::Tensor i = g.narrow(1, 0, H), f = g.narrow(1, H, H), o = g.narrow(1, 2 * H, H),
                      gg = g.narrow(1, 3 * H, H);
        torch::Tensor c = layer.c[t + 1], c_prev = layer.c[t];
        torch::Tensor tc = torch::tanh(c);
        torch::Tensor dh = dhcat[t].narrow(1, l * H, H) + dh_next;
        // dc += dh * o * (1 - tanh(c)^2)
        dc.addcmul_(dh * o, 1 - tc * tc);
        torch::Tensor da = dgates[t];
        da.narrow(1, 0, H).copy_(dc * gg * i * (1 - i));
        da.narrow(1, H, H).copy_(dc * c_prev * f * (1 - f));
        da.narrow(1, 2 * H, H).copy_(dh * tc * o * (1 - o));
        da.narrow(1, 3 * H, H).copy_(dc * i * (1 - gg * gg));
        dc.mul_(f);
        if (t > 0) torch::mm_out(dh_next, da, w_rec);
      }
      torch::Tensor dflat = dgates.view({rows, 4 * H});
      torch::Tensor xh = layer.xh.narrow(0, 0, steps).reshape({rows, layer.in + H});
      grads[1 + 2 * l] = torch::mm(dflat.t(), xh);  // [4H, in + H]: one GEMM over all T*B rows
      grads[2 + 2 * l] = dflat.sum(0);
      torch::Tensor dx = torch::mm(dflat, layer.w.narrow(1, 0, layer.in));  // [rows, in]
      demb.add_(dx.narrow(1, 0, E));
      if (l > 0) dhcat.view({rows, L * H}).narrow(1, (l - 1) * H, H).add_(dx.narrow(1, E, H));
    }
    grads[0] = index_sum(inputs_.narrow(0, 0, steps).reshape({rows}), demb, V);
    sum_gradients(ranks_, params_, &grads);
    adam_update(grads);
  }

  // Carry the recurrent state into the next segment.
  for (size_t l = 0; l < layers_.size(); ++l) {
    Layer& layer = layers_[l];
    layer.h0.copy_(hcat_[steps - 1].narrow(1, l * H, H));
    layer.c[0].copy_(layer.c[steps]);
  }
}

// Adam with beta1 = 0: p -= lr * g / (sqrt(v / (1 - beta2^t)) + eps). The learning rate and the bias
// correction come from adam_scalars_, so a captured update reads each step's values.
void LstmPredictor::adam_update(const std::vector<torch::Tensor>& grads) {
  const double beta2 = s_.beta2;
  torch::Tensor neg_lr = adam_scalars_[0], correction = adam_scalars_[1];
  for (size_t k = 0; k < params_.size(); ++k) {
    torch::Tensor g = grads[k];
    if (s_.grad_clip > 0) g.clamp_(-s_.grad_clip, s_.grad_clip);
    torch::Tensor& v = adam_v_[k];
    v.mul_(beta2).addcmul_(g, g, 1.0 - beta2);
    torch::Tensor denom = (v / correction).sqrt_().add_(s_.adam_eps);
    params_[k].addcdiv_(g * neg_lr, denom);
  }
}

}  // namespace nncpp
