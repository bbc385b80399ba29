#include "nncpp/presets.h"

#include <string>

#include "nncpp/error.h"

namespace nncpp {
namespace {

struct LstmShape {
  uint32_t layers, hidden, embed;
  float lr;            // initial learning rate: larger models want a lower one
  uint32_t max_vocab;  // tokenizer bound (the adaptive tokenizer picks <= 2 sqrt(n) symbols below it)
};

// Every CPU level is an LSTM: on 1 thread it beat the Transformer and TRACE at equal speed by 4-7% on a
// 300 KB enwiki prefix (issue 7 tuning). Speed falls roughly with
// layers * hidden^2; measured on 1 thread (book1 / 1 MB of enwiki-sample.xml, bpb and KB/s of CPU time):
constexpr LstmShape kLstmShapes[kMaxLevel] = {
    {1, 96, 16, 2e-2f, 16384},   // -1 fastest: ~60 KB/s, beats xz -9e on text (book1 2.38 vs 2.72)
    {1, 128, 16, 2e-2f, 16384},  // -2
    {2, 96, 32, 2e-2f, 16384},   // -3
    {2, 128, 32, 2e-2f, 16384},  // -4
    // -5 default. The output layer costs vocab x hidden per symbol, so the default caps the vocabulary to
    // stay >= 10 KB/s on large inputs (4 MB asks for ~4000 symbols, 64 MB for 16k). Full enwiki-sample.xml,
    // compress, CPU time: uncapped 1.8892 bpb at 10.9 KB/s, cap 3072 1.8938 at 12.7 KB/s, cap 2048 1.8951
    // at 15.9 KB/s; bible.txt: uncapped 1.3649, 3072 1.3798 (16.4 KB/s), 2048 1.3995 (21.5 KB/s).
    {2, 160, 32, 2e-2f, 3072},
    // Above -5 the rate must fall with size: at 2e-2, 2x192 and 3x256 lost to -5 on book1 and 3x384 lost
    // to it on 1 MB of enwiki; with 1.5e-2 / 1.2e-2 / 1e-2, -6 < -5, -7 < -6, -8 < -7 on both files.
    {2, 192, 32, 1.5e-2f, 16384},  // -6: slightly better than -5 (0.1-0.4%), ~13 KB/s
    {2, 256, 64, 1.2e-2f, 16384},  // -7: -1.3% / -2.3% (book1 / 1 MB enwiki) against -5, ~9 KB/s
    {3, 256, 64, 1e-2f, 16384},    // -8: -1.6% / -3.0% against -5, ~6 KB/s
    // -9: strongest CPU level, ~2-3 KB/s, for inputs of many MB (on 1 MB of enwiki it is behind -8: 2.0057
    // vs 1.9972; book1 2.2684). A fourth layer paid more than width or rate; whole enwiki-sample.xml /
    // bible.txt, GPU float32 sweep (within 0.0003 of the CPU): 3x384 lr 8e-3 1.8003 / 1.3014, 4x384 lr
    // 6e-3 1.7881 / 1.2919, lr 8e-3 1.7873 / 1.2993, 3x448 lr 7e-3 1.7975, 3x512 lr 6e-3 1.7941, 4x448 1.7854
    // / 1.2918, 4x512 1.7761 (1.8x the CPU cost of 4x384). On the CPU 4x384 lr 6e-3 gives 1.7884 / 1.2918
    // (-5.6% / -6.4% against -5's 1.8938 / 1.3798).
    {4, 384, 64, 6e-3f, 16384},
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
    throw Error(ErrorCode::kUsage, "level must be 1..9 (10..13: GPU levels), got " + std::to_string(level));
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
  m.lr = shape.lr;
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
  // Online learning of small models on small inputs: NNCP's beta2 0.9999 adapts too slowly. On a 300 KB
  // enwiki prefix (level 5 shape) 5e-3 -> 1e-3 with beta2 0.99 gave 2.463 bpb, 3e-3 -> 5e-4 with 0.9999
  // 2.471, 3e-3 -> 1e-3 with 0.999 2.468; 1e-2 and 2e-2 diverge (2.80, 2.97). B = 8 streams instead of
  // 32 gains ~3% more at 0.65x the speed (worth it on a GPU, where B costs little).
  m.lr = 5e-3f;
  m.lr_floor = 1e-3f;
  m.lr_decay = 1000;
  m.beta2 = 0.99f;
  m.grad_clip = 1.0f;
  return m;
}

}  // namespace

Settings preset(int level) {
  if (level >= kMinGpuLevel && level <= kMaxGpuLevel) return gpu_preset(level);  // GPU levels
  check_level(level);
  Settings s;
  s.level = static_cast<uint8_t>(level);
  s.model = lstm_model(level);
  // Small inputs get few long streams (more training steps per symbol), large inputs B of them.
  s.codec.min_stream_symbols = 4096;
  // Order 3: order 6 cost 2.5% on 1 MB of enwiki (2.111 vs 2.059 bpb at level 5).
  s.codec.match_order = 3;
  s.codec.max_vocab = kLstmShapes[level - 1].max_vocab;
  return s;
}

Settings family_preset(ModelKind kind, int level) {
  check_level(level);  // CPU levels only; the GPU levels are Transformers by design
  Settings s = preset(level);
  s.model = kind == ModelKind::kLstm ? lstm_model(level) : attention_model(kind, level);
  return s;
}

}  // namespace nncpp
