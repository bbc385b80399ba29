// Every setting that shapes the coded bytes. All of it is written into the file header, so decompression
// needs no flags; see docs/format.md for the field order.
#pragma once

#include <cstdint>
#include <string>

namespace nncpp {

// Predictor families (docs/architecture.md, "Models").
enum class ModelKind : uint8_t { kLstm = 1, kTransformer = 2, kTrace = 3 };

const char* model_kind_name(ModelKind kind);

// The predictor's hyper-parameters and its online-training schedule. Fields marked (attention) are used by
// the Transformer and TRACE models only; they must keep their defaults for the LSTM.
struct ModelSettings {
  ModelKind kind = ModelKind::kLstm;
  uint32_t vocab = 256;      // symbols the model predicts (256 = bytes)
  uint32_t layers = 2;       // LSTM layers / attention layers
  uint32_t hidden = 128;     // LSTM cell width / d_model
  uint32_t embed = 32;       // LSTM: symbol embedding width (fed to every layer); TRACE: width per symbol
                             // of a position's concatenated embeddings; Transformer: unused (= hidden)
  uint32_t heads = 4;        // (attention) heads; hidden % heads == 0
  uint32_t ff = 512;         // (attention) feed-forward inner width (GEGLU)
  uint32_t memory = 0;       // (attention) Transformer-XL memory: positions of earlier segments attended to
  uint32_t group = 1;        // (attention) TRACE: symbols whose embeddings are concatenated per position
  uint32_t streams = 32;     // B: streams advanced in lockstep (one batch)
  uint32_t segment = 10;     // T: positions per training step
  float lr = 2e-2f;          // learning rate at step 0
  float lr_floor = 2e-3f;    // learning rate never decays below this
  uint32_t lr_decay = 1000;  // lr(t) = max(lr_floor, lr / sqrt(1 + t / lr_decay)), t = training step
  float beta2 = 0.99f;       // Adam second-moment decay (beta1 is 0, as in NNCP)
  float adam_eps = 1e-6f;
  float grad_clip = 1.0f;           // each gradient element is clamped to [-grad_clip, grad_clip]; 0 = off
  uint64_t seed = 0x6e6e637070ull;  // weight initialisation
  // Retraining (NNCP v3, attention models only): every retrain_period training steps, one extra optimizer
  // step over the last retrain_window positions of every stream, from an empty state, with dropout.
  uint32_t retrain_period = 0;  // 0 = off
  uint32_t retrain_window = 0;  // positions per stream
  float retrain_lr = 1e-3f;     // learning rate of retraining steps: retrain_lr / sqrt(1 + k / lr_decay)
  float dropout = 0.0f;         // dropout probability, active in retraining steps only
  // Adaptive training (TRACE): after a segment whose coded loss is within train_margin (relative) of the
  // running average, the optimizer step may be skipped, at most train_max_skip times in a row; the state
  // still moves on. 0 = every segment trains.
  uint32_t train_max_skip = 0;
  float train_margin = 0.0f;
};

// How the input is cut up for coding.
struct CodecSettings {
  uint32_t block_bytes = 8u << 20;     // input bytes per block; blocks bound memory and carry checksums
  uint32_t min_stream_symbols = 4096;  // a block uses at most symbols/min_stream_symbols streams
  uint32_t match_order = 3;            // match model context in symbols; 0 = no match model
  uint32_t match_hash_bits = 22;       // match model table: 2^bits entries of 4 bytes
  // A second match model with a longer context, for the binary-domain mixer only (the network and the symbol
  // domain do not see it); its table has 2^match_hash_bits entries too. 0 = none.
  uint32_t long_match_order = 0;
  // Compression only (the header stores the dictionary itself): the tokenizer's vocabulary bound;
  // 0 = bytes only.
  uint32_t max_vocab = 16384;
  // Reversible transform of every block before it is tokenized: 0 none, 1 x86 branch targets
  // (core/x86_filter.h; chosen for x86 executables unless CompressJob::detect_filter is off).
  uint32_t filter = 0;
};

// Context mixing (docs/architecture.md, "Context mixing"): count-based context models and the match
// model mixed with the network's distribution on the host. models = 0: the network alone.
struct MixSettings {
  uint32_t models = 0;          // bit i = context model i (core/context_models.h, ContextModelId)
  uint32_t table_bits = 20;     // log2 buckets per context table (32 bytes each)
  uint32_t count_limit = 30;    // a count above this halves its context's counts (adaptivity)
  float lr = 2e-3f;             // mixer learning rate
  float initial_weight = 0.3f;  // starting weight of each count model
  float escape = 1.0f;          // escape count per distinct symbol seen in a context (PPM method C: 1)
  // false: mix whole distributions (core/mixer.h); true: code each symbol as bits and mix bit predictions
  // (core/bit_mixer.h). count_limit is then the visits after which a bit counter's step stops shrinking.
  bool binary = false;
};

// The run-time environment that can change floating-point results (docs/format.md, "Fingerprint").
struct RuntimeSettings {
  uint32_t threads = 1;
  std::string device = "cpu";
  // float32; tf32 (CUDA only: float32 tensors, matrix products on TF32 tensor cores, ~10 mantissa bits);
  // bfloat16 (CUDA, attention models: matrix products in bf16 through autocast, float32 weights)
  std::string dtype = "float32";
  // CUDA only: replay each step and training step as a CUDA graph. An execution choice, not a header field:
  // the fingerprint records it ("cuda_graphs") and the decoder does as the file says.
  bool cuda_graphs = true;
  // Processes that coded the file together (include/nncpp/ranks.h), each its share of every block's
  // streams; the decoder needs as many. Their collectives' library: "gloo" (empty with one rank).
  uint32_t ranks = 1;
  std::string rank_backend;
};

struct Settings {
  uint8_t level = 0;  // preset the settings came from (0 = custom); informational
  ModelSettings model;
  CodecSettings codec;
  MixSettings mix;
  RuntimeSettings runtime;
};

// Most threads a file may ask for: a hostile header must not start hundreds of threads.
constexpr uint32_t kMaxThreads = 64;
// Most ranks a file may ask for.
constexpr uint32_t kMaxRanks = 1024;

// Throws Error(kUsage) naming the first setting outside its valid range.
void validate(const Settings& settings);

// Estimated memory of the model: parameters with their optimizer state and one segment's activations, in
// bytes (validate() caps it at 32 GiB; the decoder compares it with the memory it may use).
uint64_t model_memory_bytes(const Settings& settings);

}  // namespace nncpp
