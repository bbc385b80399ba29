#include "nncpp/presets.h"

namespace nncpp {
namespace {

struct AttentionShape {
  uint32_t layers, hidden, heads, ff, memory, segment, streams;
  float lr, lr_floor;
};

// Transformers for an NVIDIA GPU (levels 11, 12). Level 12 is NNCP v3's enwik8/enwik9 profile: 20 layers,
// d_model 1024, 8 heads, GEGLU 3072, memory 256 + segment 64, 32 streams, with retraining. On inputs of a
// few MB they learn slower than the LSTM of level 10 (docs/architecture.md, "Choices").
constexpr AttentionShape kAttentionShapes[] = {
    {8, 512, 8, 1536, 128, 32, 32, 1e-3f, 2e-4f},    // 11
    {20, 1024, 8, 3072, 256, 64, 32, 4e-4f, 1e-4f},  // 12
};

struct LstmShape {
  uint32_t layers, hidden, streams;
  float lr;
};

// The LSTM levels. 10, the mid-size GPU level, is the strongest CPU level's LSTM (4 layers), wider: with
// CUDA graphs a step costs about as much for 4x640 as for 2x160, so the GPU affords it. Whole
// enwiki-sample.xml, H200, tf32, bpb / KB/s: 4x512 lr 4e-3 1.8000 / 141; lr 6e-3 1.7773 / 140; lr 8e-3
// 1.7878 / 140; 4x640 lr 4e-3 1.7883 / 135; 4x640 lr 6e-3 1.7752 / 138; 5x512 lr 4e-3 1.7953 / 125.
// 13, for large inputs: deeper, wider and with twice the streams (fit_to_input gives 128 from 32 MiB on and
// 256 from 512 MiB). A step's and a training step's device time grow little with the streams (the matrix
// products read the same weights), so 64 streams pay for the size. First 64 MB of bench/corpus.sh, H200, bpb
// / KB/s compressing: level 10 0.5041 / 180; 4x1024 with 64 streams 0.4782 / 264; 5x1024 with 64 streams
// 0.4740 / 227. On its first 16 MB: 4x640 with 64 streams 0.9041 / 307, 4x1024 with 32 streams 0.9086 / 144,
// with 64 0.8999 / 257 (docs/architecture.md, "Choices", GPU). Level 13 was level 12 with 128 streams
// before: 1.5299 bpb on the first 8 MB of the corpus, where level 10 gives 1.2467.
constexpr LstmShape kLstm10 = {4, 640, 32, 6e-3f};
constexpr LstmShape kLstm13 = {5, 1024, 64, 6e-3f};

}  // namespace

Settings gpu_preset(int level) {
  if (level < kMinGpuLevel || level > kMaxGpuLevel) return preset(level);  // preset() throws the usage error
  Settings s = preset(kMaxLevel);
  s.level = static_cast<uint8_t>(level);
  // The GPU levels code the tokenizer's symbols and leave the context mixer off: their inputs are large,
  // where the network carries the ratio, and with the mixer every distribution would cross to the host.
  s.mix = MixSettings();
  s.codec.long_match_order = 0;
  s.codec.max_vocab = 16384;
  if (level == kMinGpuLevel || level == kMaxGpuLevel) {
    const LstmShape& shape = level == kMinGpuLevel ? kLstm10 : kLstm13;
    s.model.layers = shape.layers;
    s.model.hidden = shape.hidden;
    s.model.streams = shape.streams;
    s.model.lr = shape.lr;
    return s;
  }
  const AttentionShape& g = kAttentionShapes[level - kMinGpuLevel - 1];
  ModelSettings& m = s.model;
  m = ModelSettings();
  m.kind = ModelKind::kTransformer;
  m.layers = g.layers;
  m.hidden = g.hidden;
  m.embed = g.hidden;
  m.heads = g.heads;
  m.ff = g.ff;
  m.memory = g.memory;
  m.segment = g.segment;
  m.streams = g.streams;
  m.lr = g.lr;
  m.lr_floor = g.lr_floor;
  m.lr_decay = 2000;
  m.beta2 = 0.9999f;  // NNCP
  m.grad_clip = 1.0f;
  if (level == 12) {  // NNCP v3 retrains on recent history
    m.retrain_period = 16;
    m.retrain_window = 256;
    m.retrain_lr = g.lr_floor;
    m.dropout = 0.1f;
  }
  return s;
}

}  // namespace nncpp
