#include "nncpp/presets.h"

namespace nncpp {
namespace {

struct AttentionShape {
  uint32_t layers, hidden, heads, ff, memory, segment, streams;
  float lr, lr_floor;
};

// Transformers for an NVIDIA GPU (levels 11..13). Level 12 is NNCP v3's enwik8/enwik9 profile: 20 layers,
// d_model 1024, 8 heads, GEGLU 3072, memory 256 + segment 64, 32 streams, with retraining. On inputs of a
// few MB they learn slower than the LSTM of level 10 (docs/architecture.md, "Choices"); they are meant for
// large inputs. Level 13 is level 12 with up to 128 streams, for inputs of 64 MB and more: a step reads all
// weights once whatever the number of streams, so 4x the streams code about 3x the symbols per second, at the
// cost of 4x fewer optimizer steps per symbol, which a large input can afford. Its streams follow the input
// size (below).
constexpr AttentionShape kAttentionShapes[] = {
    {8, 512, 8, 1536, 128, 32, 32, 1e-3f, 2e-4f},     // 11
    {20, 1024, 8, 3072, 256, 64, 32, 4e-4f, 1e-4f},   // 12
    {20, 1024, 8, 3072, 256, 64, 128, 4e-4f, 1e-4f},  // 13
};
// Level 13: at least this many symbols per stream, so a block gets 128 streams only from about 2M symbols
// (a full 8 MB block of text) and a 1 MB input about 20 (engine.h, streams_for_block).
constexpr uint32_t kLargeInputMinStreamSymbols = 16384;

}  // namespace

Settings gpu_preset(int level) {
  if (level < kMinGpuLevel || level > kMaxGpuLevel) return preset(level);  // preset() throws the usage error
  // Level 10, the mid-size GPU level: the strongest CPU level's LSTM (4 layers), wider. With CUDA
  // graphs a step costs about as much for 4x640 as for 2x160, so the GPU affords it. Whole
  // enwiki-sample.xml, H200, tf32, bpb / KB/s: 4x512 lr 4e-3 1.8000 / 141; lr 6e-3 1.7773 / 140; lr 8e-3
  // 1.7878 / 140; 4x640 lr 4e-3 1.7883 / 135; 4x640 lr 6e-3 1.7752 / 138; 5x512 lr 4e-3 1.7953 / 125.
  Settings s = preset(kMaxLevel);
  s.level = static_cast<uint8_t>(level);
  // The GPU levels code the tokenizer's symbols and leave the context mixer off: their inputs are large,
  // where the network carries the ratio, and with the mixer every distribution would cross to the host.
  s.mix = MixSettings();
  s.codec.max_vocab = 16384;
  if (level == kMinGpuLevel) {
    s.model.layers = 4;
    s.model.hidden = 640;
    s.model.lr = 6e-3f;
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
  if (level >= 12) {  // NNCP v3 retrains on recent history
    m.retrain_period = 16;
    m.retrain_window = 256;
    m.retrain_lr = g.lr_floor;
    m.dropout = 0.1f;
  }
  if (level == 13) s.codec.min_stream_symbols = kLargeInputMinStreamSymbols;
  return s;
}

}  // namespace nncpp
