// Fused CUDA kernels for the Transformer's one-position step (src/model/step_kernels.cu). A step of level 12
// was about 650 LibTorch kernels, 30 per layer, most of them a few microseconds of launch and tail for a few
// kilobytes of work; these replace the attention (7 kernels: cache write, two batched GEMVs, scale, bias,
// softmax, head merge), the GEGLU product (2), the residual add with the RMSNorm and the layer input's copy
// (3) and the coding table of a distribution (about 20) by one kernel each.
//
// Built only when CMake finds a CUDA compiler next to a CUDA LibTorch (NNCPP_STEP_KERNELS); the CPU build
// and its files never see them. Plain pointers and a cudaStream_t passed as void*, so this header needs
// neither Torch nor CUDA. Every kernel is deterministic (fixed reduction order, no atomics) and can be
// captured in a CUDA graph (it is launched on the given stream and does not synchronise).
#pragma once

#include <cstdint>

namespace nncpp {
namespace step_kernels {

// bfloat16 values cross this header as their bits (uint16_t), so it needs no CUDA header. The step keeps the
// residual stream in float32; its matrix products read bfloat16 copies of the weights and bfloat16 inputs,
// and the key/value cache is bfloat16: half the bytes of the two largest reads of a step
// (docs/architecture.md).

// Whether step_attention() supports a head size (dh a multiple of 8 with dh / 8 a power of two <= 32).
bool attention_supported(int64_t head_size);

// The residual update and the RMSNorm before a matrix product, in one kernel, for each of `rows` rows:
//   x     [rows, H] float32, += add [rows, H] (bfloat16; skipped when null)
//   store (when not null) receives the updated rows of x, row r at store + r * store_stride
//   out   x * gain / sqrt(mean(x^2) + eps), as bfloat16 into out_bf16 or float32 into out_f32 (one of them)
void add_rms_norm(float* x, const uint16_t* add, const float* gain, float* store, int64_t store_stride,
                  uint16_t* out_bf16, float* out_f32, int64_t rows, int64_t H, float eps, void* stream);

// One query per (stream, head) against a key/value cache, with a learnt bias by distance (bfloat16 in and
// out, float32 arithmetic):
//   qkv   [B, 3 * heads * dh] this position's queries, keys and values (row-major, as split_heads reads it)
//   cache [2, B, heads, S, dh] keys then values; this position's key and value are written to slot `slot`
//         first, then keys at slots [slot - keys + 1, slot] are attended to
//   rel   [heads, rel_cols] float32: the bias of the key `keys - 1 - j` positions back is
//         rel[h][rel_cols - 1 - j]
//   out   [B, heads * dh] softmax(q . k * scale + bias) . v, heads side by side
void step_attention(const uint16_t* qkv, uint16_t* cache, const float* rel, uint16_t* out, int64_t B,
                    int64_t heads, int64_t dh, int64_t S, int64_t slot, int64_t keys, int64_t rel_cols,
                    float scale, void* stream);

// GEGLU: u [rows, 2F] -> out [rows, F], out = gelu(u[:, :F]) * u[:, F:] (exact, erf-based gelu), bfloat16
// in and out, float32 arithmetic.
void step_geglu(const uint16_t* u, uint16_t* out, int64_t rows, int64_t F, void* stream);

// quantize.h's frequency table of each row of probs [B, V] (float): freq [B, V] and its inclusive prefix
// sums high [B, V] (int64), as DeviceCoder::set() computes them with about 20 LibTorch kernels (the sum of
// the probabilities in another order: a table may differ in the last unit from that one's).
void quantize(const float* probs, int64_t* freq, int64_t* high, int64_t B, int64_t V, int64_t total,
              void* stream);

}  // namespace step_kernels
}  // namespace nncpp
