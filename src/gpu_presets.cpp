#include "nncpp/presets.h"

namespace nncpp {
namespace {

struct GpuShape {
  uint32_t layers, hidden, heads, ff, memory, segment, streams;
  float lr, lr_floor;
};

// Transformers for an NVIDIA GPU (levels 10..12; measured in the README, "GPU"). On a GPU the step costs
// kernel launches more than arithmetic, so these are deeper and wider than the CPU levels and train on
// longer segments (fewer, larger optimizer steps). Level 12 is NNCP v3's enwik8/enwik9 profile: 20 layers,
// d_model 1024, 8 heads, GEGLU 3072, memory 256 + segment 64, 32 streams, with retraining.
constexpr GpuShape kGpuShapes[] = {
    {4, 256, 8, 768, 64, 32, 32, 3e-3f, 5e-4f},      // 10
    {8, 512, 8, 1536, 128, 32, 32, 1e-3f, 2e-4f},    // 11
    {20, 1024, 8, 3072, 256, 64, 32, 4e-4f, 1e-4f},  // 12
};

}  // namespace

Settings gpu_preset(int level) {
  const GpuShape& g = kGpuShapes[level - kMinGpuLevel];
  Settings s = preset(kDefaultLevel);  // codec settings of the CPU levels
  s.level = static_cast<uint8_t>(level);
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
  if (level == kMaxGpuLevel) {  // NNCP v3 retrains on recent history
    m.retrain_period = 16;
    m.retrain_window = 256;
    m.retrain_lr = g.lr_floor;
    m.dropout = 0.1f;
  }
  return s;
}

}  // namespace nncpp
