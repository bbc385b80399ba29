#include "nncpp/presets.h"

#include <string>

#include "nncpp/error.h"

namespace nncpp {
namespace {

struct LstmShape {
  uint32_t layers, hidden, embed;
};

// Speed falls roughly with layers * hidden^2; measured bpb and KB/s per level are in the README.
constexpr LstmShape kLstmShapes[kMaxLevel] = {
    {1, 96, 16},   // -1
    {1, 128, 16},  // -2
    {2, 96, 32},   // -3
    {2, 128, 32},  // -4
    {2, 160, 32},  // -5 (default)
    {2, 192, 32},  // -6
    {2, 256, 64},  // -7
    {3, 256, 64},  // -8
    {3, 384, 64},  // -9
};

// Attention models sized per level, for --model transformer|trace.
struct AttentionShape {
  uint32_t layers, hidden, heads, ff, memory;
};
constexpr AttentionShape kAttentionShapes[kMaxLevel] = {
    {1, 64, 4, 128, 16},  {1, 96, 4, 192, 16},  {2, 96, 4, 192, 32},
    {2, 128, 4, 256, 32}, {2, 160, 4, 320, 32}, {3, 192, 4, 384, 32},
    {4, 256, 8, 512, 48}, {6, 256, 8, 768, 64}, {8, 384, 8, 1024, 64},
};

void check_level(int level) {
  if (level < kMinLevel || level > kMaxLevel)
    throw Error(ErrorCode::kUsage, "level must be 1..9, got " + std::to_string(level));
}

ModelSettings lstm_model(int level) {
  const LstmShape& shape = kLstmShapes[level - 1];
  ModelSettings m;
  m.kind = ModelKind::kLstm;
  m.layers = shape.layers;
  m.hidden = shape.hidden;
  m.embed = shape.embed;
  m.streams = 32;
  m.segment = 10;
  // Tuned on book1/world192 prefixes (docs/architecture.md, "Tuning"): a high rate that decays fast to a
  // floor learns small inputs quickly; beta2 0.99 adapts faster than 0.999.
  m.lr = 2e-2f;
  m.lr_decay = 1000;
  m.lr_floor = 2e-3f;
  m.beta2 = 0.99f;
  return m;
}

ModelSettings attention_model(ModelKind kind, int level) {
  const AttentionShape& a = kAttentionShapes[level - 1];
  const bool trace = kind == ModelKind::kTrace;
  ModelSettings m;
  m.kind = kind;
  m.layers = trace ? 1 : a.layers;  // TRACE: one attention layer, its feed-forward block applied twice
  m.hidden = a.hidden;
  m.heads = a.heads;
  m.ff = a.ff;
  m.memory = a.memory;
  m.group = trace ? 4 : 1;
  m.embed = trace ? a.hidden / 4 : a.hidden;
  m.streams = 32;
  m.segment = 16;
  // NNCP's Transformer recipe scaled to online learning of small models: beta2 0.9999 and a rate decaying
  // as 1/sqrt(t) to a floor.
  m.lr = 3e-3f;
  m.lr_floor = 5e-4f;
  m.lr_decay = 2000;
  m.beta2 = 0.9999f;
  m.grad_clip = 1.0f;
  return m;
}

}  // namespace

Settings preset(int level) {
  check_level(level);
  Settings s;
  s.level = static_cast<uint8_t>(level);
  s.model = lstm_model(level);
  // Small inputs get few long streams (more training steps per symbol), large inputs B of them.
  s.codec.min_stream_symbols = 4096;
  s.codec.match_order = 3;
  return s;
}

Settings family_preset(ModelKind kind, int level) {
  Settings s = preset(level);
  s.model = kind == ModelKind::kLstm ? lstm_model(level) : attention_model(kind, level);
  return s;
}

}  // namespace nncpp
