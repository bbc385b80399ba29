#include "step_kernels.h"

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <stdexcept>
#include <string>

namespace nncpp {
namespace step_kernels {
namespace {

constexpr int kThreads = 256;  // per block
constexpr int kWarps = kThreads / 32;

void check_launch(const char* what) {
  const cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(e));
}

__device__ float warp_sum(float v) {
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

__device__ float warp_max(float v) {
  for (int offset = 16; offset > 0; offset >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
  return v;
}

// Sum or maximum over the block, the same on every thread: per warp, then the warps' results in order.
template <bool kMax>
__device__ float block_reduce(float v, float* scratch) {
  v = kMax ? warp_max(v) : warp_sum(v);
  __syncthreads();  // scratch may still be read by an earlier reduction
  if (threadIdx.x % 32 == 0) scratch[threadIdx.x / 32] = v;
  __syncthreads();
  float r = scratch[0];
  for (int w = 1; w < kWarps; ++w) r = kMax ? fmaxf(r, scratch[w]) : r + scratch[w];
  return r;
}

using bf16 = __nv_bfloat16;

// One block per row: x += add; store = x; out = x * gain * rsqrt(mean(x^2) + eps). Each thread takes the
// columns c = threadIdx.x (mod kThreads); the sum of squares is reduced in a fixed order.
__global__ void add_rms_norm_kernel(float* __restrict__ x, const bf16* __restrict__ add,
                                    const float* __restrict__ gain, float* __restrict__ store,
                                    long long store_stride, bf16* __restrict__ out_bf16,
                                    float* __restrict__ out_f32, int H, float eps) {
  __shared__ float scratch[kWarps];
  const long long r = blockIdx.x;
  float* row = x + r * H;
  float squares = 0.f;
  for (int c = threadIdx.x; c < H; c += kThreads) {
    float v = row[c];
    if (add != nullptr) v += __bfloat162float(add[r * H + c]);
    row[c] = v;
    if (store != nullptr) store[r * store_stride + c] = v;
    squares += v * v;
  }
  const float inv = rsqrtf(block_reduce<false>(squares, scratch) / static_cast<float>(H) + eps);
  for (int c = threadIdx.x; c < H; c += kThreads) {  // each thread rereads its own writes
    const float v = row[c] * inv * gain[c];
    if (out_bf16 != nullptr)
      out_bf16[r * H + c] = __float2bfloat16_rn(v);
    else
      out_f32[r * H + c] = v;
  }
}

// One block per (stream b, head h). A key or value row of dh bfloat16 is read by dh8 = dh / 8 consecutive
// threads with one 16-byte load each, so the block reads kThreads / dh8 rows at once, kUnroll times before
// using them: a step's attention reads the whole key/value cache (42 MB per layer at level 12), and with
// 8-byte loads and eight keys per warp it ran at 1.45 TB/s (29 us per layer, H200).
// Phase 1: row group r takes keys r, r + groups, ...; q . k over its dh8 threads (xor shuffles inside the
// group). Phase 2: softmax over the block's scores (shared memory). Phase 3: the same groups sum p_j * v_j,
// then the groups' partial sums are added in order.
constexpr int kAttentionUnroll = 8;

__device__ __forceinline__ void unpack8(const uint4& bits, float (&v)[8]) {
  const unsigned words[4] = {bits.x, bits.y, bits.z, bits.w};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float2 f = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&words[i]));
    v[2 * i] = f.x;
    v[2 * i + 1] = f.y;
  }
}

// Rows j, j + stride, ... (kAttentionUnroll of them) of a [keys, dh] cache, 8 values each from `rows`
// (already offset to this thread's column); rows past the last key read as zeros.
__device__ __forceinline__ void load_rows(const bf16* rows, int j, int stride, int keys, int dh,
                                          uint4 (&out)[kAttentionUnroll]) {
#pragma unroll
  for (int u = 0; u < kAttentionUnroll; ++u, j += stride)
    out[u] = j < keys ? *reinterpret_cast<const uint4*>(rows + static_cast<long long>(j) * dh)
                      : make_uint4(0, 0, 0, 0);
}

__global__ void attention_kernel(const bf16* __restrict__ qkv, bf16* cache, const float* __restrict__ rel,
                                 bf16* __restrict__ out, int heads, int dh, int S, int slot, int keys,
                                 int rel_cols, float scale, long long value_offset) {
  extern __shared__ float scores[];  // [keys]
  __shared__ float partial[kThreads * 8];
  __shared__ float scratch[kWarps];
  const int bh = blockIdx.x, b = bh / heads, h = bh % heads;
  const int H = heads * dh, dh8 = dh / 8, first = slot - keys + 1;
  const int column = threadIdx.x % dh8, group = threadIdx.x / dh8, groups = kThreads / dh8;
  const bf16* row = qkv + static_cast<long long>(b) * 3 * H + h * dh;
  bf16* k_cache = cache + static_cast<long long>(bh) * S * dh;  // [S, dh]
  bf16* v_cache = k_cache + value_offset;

  for (int d = threadIdx.x; d < dh; d += kThreads) {
    k_cache[static_cast<long long>(slot) * dh + d] = row[H + d];
    v_cache[static_cast<long long>(slot) * dh + d] = row[2 * H + d];
  }
  float q[8];
  unpack8(*reinterpret_cast<const uint4*>(row + 8 * column), q);
  __syncthreads();  // the new key and value are read below

  const float* bias = rel + static_cast<long long>(h) * rel_cols + rel_cols - keys;
  const bf16* k_rows = k_cache + static_cast<long long>(first) * dh + 8 * column;
  // The same trip count on every thread (the shuffles need whole warps); j = key of this thread's group.
  for (int j0 = 0; j0 < keys; j0 += groups * kAttentionUnroll) {
    uint4 k[kAttentionUnroll];
    load_rows(k_rows, j0 + group, groups, keys, dh, k);
#pragma unroll
    for (int u = 0; u < kAttentionUnroll; ++u) {
      float kf[8];
      unpack8(k[u], kf);
      float dot = 0.f;
#pragma unroll
      for (int i = 0; i < 8; ++i) dot += q[i] * kf[i];
      for (int offset = dh8 / 2; offset > 0; offset >>= 1) dot += __shfl_xor_sync(0xffffffffu, dot, offset);
      const int j = j0 + u * groups + group;
      if (column == 0 && j < keys) scores[j] = dot * scale + bias[j];
    }
  }
  __syncthreads();

  float m = -INFINITY;
  for (int j = threadIdx.x; j < keys; j += kThreads) m = fmaxf(m, scores[j]);
  m = block_reduce<true>(m, scratch);
  float sum = 0.f;
  for (int j = threadIdx.x; j < keys; j += kThreads) {
    const float e = expf(scores[j] - m);
    scores[j] = e;
    sum += e;
  }
  sum = block_reduce<false>(sum, scratch);  // its barriers also publish the exponentials

  float acc[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
  const bf16* v_rows = v_cache + static_cast<long long>(first) * dh + 8 * column;
  for (int j0 = 0; j0 < keys; j0 += groups * kAttentionUnroll) {
    uint4 v[kAttentionUnroll];
    load_rows(v_rows, j0 + group, groups, keys, dh, v);
#pragma unroll
    for (int u = 0; u < kAttentionUnroll; ++u) {
      const int j = j0 + u * groups + group;
      if (j >= keys) continue;
      const float p = scores[j];
      float vf[8];
      unpack8(v[u], vf);
#pragma unroll
      for (int i = 0; i < 8; ++i) acc[i] += p * vf[i];
    }
  }
#pragma unroll
  for (int i = 0; i < 8; ++i) partial[threadIdx.x * 8 + i] = acc[i];
  __syncthreads();
  const float inv = 1.0f / sum;
  for (int d = threadIdx.x; d < dh; d += kThreads) {  // column d / 8 of every group, in group order
    float total = 0.f;
    for (int g = 0; g < groups; ++g) total += partial[(g * dh8 + d / 8) * 8 + d % 8];
    out[static_cast<long long>(b) * H + h * dh + d] = __float2bfloat16_rn(total * inv);
  }
}

// The same expression as LibTorch's exact gelu: x * 0.5 * (1 + erf(x / sqrt(2))).
__global__ void geglu_kernel(const bf16* __restrict__ u, bf16* __restrict__ out, long long rows,
                             long long F) {
  const long long n = rows * F;
  for (long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<long long>(gridDim.x) * blockDim.x) {
    const long long r = i / F, f = i - r * F;
    const float a = __bfloat162float(u[r * 2 * F + f]), gate = __bfloat162float(u[r * 2 * F + F + f]);
    out[i] = __float2bfloat16_rn(a * 0.5f * (1.0f + erff(a * 0.70710678118654752440f)) * gate);
  }
}

constexpr int kQuantizeThreads = 1024;

template <typename T>
__device__ T warp_sum_any(T v) {
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

// Sum over the block in a fixed order (per warp, then the warps in order), the same on every thread.
template <typename T>
__device__ T block_sum_any(T v, T* scratch) {
  v = warp_sum_any(v);
  __syncthreads();
  if (threadIdx.x % 32 == 0) scratch[threadIdx.x / 32] = v;
  __syncthreads();
  T r = scratch[0];
  for (int w = 1; w < static_cast<int>(blockDim.x / 32); ++w) r += scratch[w];
  return r;
}

// One block per row: quantize.h's table as DeviceCoder::set() computes it with Torch ops. Each thread
// takes a contiguous chunk of the row. Sums of doubles in a fixed order; frequencies and prefix sums are
// integers, exact in any order; the remainder goes to the first largest frequency.
__global__ void quantize_kernel(const float* __restrict__ probs, long long* __restrict__ freq,
                                long long* __restrict__ high, int V, long long total) {
  __shared__ double dscratch[32];
  __shared__ long long lscratch[32];
  __shared__ long long best_freq[32];
  __shared__ int best_index[32];
  __shared__ long long prefix[kQuantizeThreads];
  const long long row = blockIdx.x;
  const float* p = probs + row * V;
  long long* f = freq + row * V;
  long long* h = high + row * V;
  const int chunk = (V + blockDim.x - 1) / blockDim.x;
  const int lo = min(V, static_cast<int>(threadIdx.x) * chunk), end = min(V, lo + chunk);

  double s = 0;
  for (int i = lo; i < end; ++i) {
    const float x = p[i];
    if (isfinite(x) && x >= FLT_MIN) s += static_cast<double>(x);
  }
  const double sum = block_sum_any(s, dscratch);
  const bool usable = sum > 0;
  const double scale = usable ? static_cast<double>(total - V) / sum : 0.0;
  const long long uniform = 1 + (total - V) / V;
  long long count = 0, top_freq = -1;
  int top = 0;
  for (int i = lo; i < end; ++i) {
    const float x = p[i];
    const double d = isfinite(x) && x >= FLT_MIN ? static_cast<double>(x) : 0.0;
    const long long q = usable ? static_cast<long long>(floor(d * scale)) + 1 : uniform;
    f[i] = q;
    count += q;
    if (q > top_freq) top_freq = q, top = i;
  }
  const long long assigned = block_sum_any(count, lscratch);
  // The first largest frequency: per warp, then across warps (ties to the smaller index).
  for (int offset = 16; offset > 0; offset >>= 1) {
    const long long other_freq = __shfl_xor_sync(0xffffffffu, top_freq, offset);
    const int other = __shfl_xor_sync(0xffffffffu, top, offset);
    if (other_freq > top_freq || (other_freq == top_freq && other < top)) top_freq = other_freq, top = other;
  }
  if (threadIdx.x % 32 == 0) best_freq[threadIdx.x / 32] = top_freq, best_index[threadIdx.x / 32] = top;
  __syncthreads();
  if (threadIdx.x == 0) {
    for (int w = 1; w < static_cast<int>(blockDim.x / 32); ++w)
      if (best_freq[w] > top_freq || (best_freq[w] == top_freq && best_index[w] < top))
        top_freq = best_freq[w], top = best_index[w];
    f[top] += total - assigned;
  }
  __syncthreads();  // also publishes thread 0's write to f

  long long mine = 0;
  for (int i = lo; i < end; ++i) mine += f[i];
  prefix[threadIdx.x] = mine;
  __syncthreads();
  for (int offset = 1; offset < static_cast<int>(blockDim.x); offset <<= 1) {  // inclusive scan
    const long long add = static_cast<int>(threadIdx.x) >= offset ? prefix[threadIdx.x - offset] : 0;
    __syncthreads();
    prefix[threadIdx.x] += add;
    __syncthreads();
  }
  long long run = prefix[threadIdx.x] - mine;
  for (int i = lo; i < end; ++i) {
    run += f[i];
    h[i] = run;
  }
}

}  // namespace

bool attention_supported(int64_t head_size) {
  const int64_t dh8 = head_size / 8;
  return head_size % 8 == 0 && dh8 >= 1 && dh8 <= 32 && (dh8 & (dh8 - 1)) == 0;
}

void add_rms_norm(float* x, const uint16_t* add, const float* gain, float* store, int64_t store_stride,
                  uint16_t* out_bf16, float* out_f32, int64_t rows, int64_t H, float eps, void* stream) {
  if (rows == 0) return;
  if ((out_bf16 == nullptr) == (out_f32 == nullptr))
    throw std::invalid_argument("add_rms_norm: exactly one output");
  add_rms_norm_kernel<<<static_cast<unsigned>(rows), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(
      x, reinterpret_cast<const bf16*>(add), gain, store, static_cast<long long>(store_stride),
      reinterpret_cast<bf16*>(out_bf16), out_f32, static_cast<int>(H), eps);
  check_launch("add_rms_norm");
}

void step_attention(const uint16_t* qkv, uint16_t* cache, const float* rel, uint16_t* out, int64_t B,
                    int64_t heads, int64_t dh, int64_t S, int64_t slot, int64_t keys, int64_t rel_cols,
                    float scale, void* stream) {
  if (!attention_supported(dh) || keys < 1 || keys > slot + 1 || slot >= S || keys > rel_cols ||
      keys * sizeof(float) > 32 * 1024)
    throw std::invalid_argument("step_attention: unsupported shape");
  const long long value_offset = static_cast<long long>(B) * heads * S * dh;
  attention_kernel<<<static_cast<unsigned>(B * heads), kThreads, keys * sizeof(float),
                     static_cast<cudaStream_t>(stream)>>>(
      reinterpret_cast<const bf16*>(qkv), reinterpret_cast<bf16*>(cache), rel, reinterpret_cast<bf16*>(out),
      static_cast<int>(heads), static_cast<int>(dh), static_cast<int>(S), static_cast<int>(slot),
      static_cast<int>(keys), static_cast<int>(rel_cols), scale, value_offset);
  check_launch("step_attention");
}

void step_geglu(const uint16_t* u, uint16_t* out, int64_t rows, int64_t F, void* stream) {
  const int64_t n = rows * F;
  const int64_t blocks = std::min<int64_t>((n + kThreads - 1) / kThreads, 65535);
  if (n == 0) return;
  geglu_kernel<<<static_cast<unsigned>(blocks), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(
      reinterpret_cast<const bf16*>(u), reinterpret_cast<bf16*>(out), rows, F);
  check_launch("step_geglu");
}

void quantize(const float* probs, int64_t* freq, int64_t* high, int64_t B, int64_t V, int64_t total,
              void* stream) {
  if (B == 0) return;
  if (V < 1 || V > total) throw std::invalid_argument("quantize: unsupported shape");
  quantize_kernel<<<static_cast<unsigned>(B), kQuantizeThreads, 0, static_cast<cudaStream_t>(stream)>>>(
      probs, reinterpret_cast<long long*>(freq), reinterpret_cast<long long*>(high), static_cast<int>(V),
      static_cast<long long>(total));
  check_launch("quantize");
}

}  // namespace step_kernels
}  // namespace nncpp
