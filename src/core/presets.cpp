#include "nncpp/presets.h"

#include <algorithm>
#include <string>
#include <vector>

#include "core/context_models.h"
#include "nncpp/error.h"
#include "nncpp/format.h"

namespace nncpp {
namespace {

struct LstmShape {
  uint32_t layers, hidden, embed;
  float lr;            // initial learning rate: larger models want a lower one
  uint32_t max_vocab;  // tokenizer bound (the adaptive tokenizer picks <= 2 sqrt(n) symbols below it)
};

// Every CPU level is an LSTM over bytes mixed with the context models (core/mixer.h). On 1 thread the LSTM
// beat the Transformer and TRACE at equal speed by 4-7% on a 300 KB enwiki prefix. With the mixer, bytes
// beat the tokenizer's symbols: 2 x 96 on the first 1 MB of enwiki-sample.xml 1.8925 bpb (bytes) against
// 1.9102 (symbols); paper1 2.2757 against 2.5060 (docs/architecture.md, "Context mixing"). The count models
// carry small inputs, so the network's size matters little below a few hundred KB (paper1 at 1 x 64 /
// 2 x 96 / 2 x 192 / 3 x 256: 15378 / 15051 / 15170 / 15116 bytes) and more above (300 KB of enwiki: 77543 /
// 75313 / 75010 / 74113). Speed falls roughly with layers * hidden^2.
constexpr LstmShape kLstmShapes[kMaxLevel] = {
    {1, 64, 16, 2e-2f, 0},  // -1 fastest
    {1, 96, 16, 2e-2f, 0},  // -2
    // -3: at 2e-2 bible.txt came out 0.11% larger than with -2; at 1.5e-2 the six files of 1 MiB and more
    // -0.12% in total (bible.txt -0.48%, xml-freedesktop-mime.xml +0.36%), each between -2 and -4.
    {1, 128, 16, 1.5e-2f, 0},
    {2, 80, 32, 2e-2f, 0},     // -4
    {2, 96, 32, 2e-2f, 0},     // -5 default: book1 2.195 bpb at ~28 KB/s (CPU time, 1 thread)
    {2, 128, 32, 2e-2f, 0},    // -6
    {2, 192, 32, 1.5e-2f, 0},  // -7
    {3, 256, 64, 1e-2f, 0},    // -8
    // -9: strongest CPU level. Without the mixer, over the tokenizer's symbols, a fourth layer paid more
    // than width or rate (whole enwiki-sample.xml / bible.txt: 3x384 lr 8e-3 1.8003 / 1.3014, 4x384 lr
    // 6e-3 1.7881 / 1.2919).
    {4, 384, 64, 6e-3f, 0},
};

// The network (kLstmShapes' level) each level takes for inputs below 256 KiB and below 1 MiB: fit_to_input.
constexpr int kShapeBelow256KiB[kMaxLevel] = {1, 1, 1, 5, 5, 5, 5, 5, 5};
constexpr int kShapeBelow1MiB[kMaxLevel] = {1, 2, 2, 5, 5, 5, 7, 7, 7};

// The 4-stream trials of levels 8 and 9 (model_trials): positions per training step, and level 9's network.
constexpr uint32_t kFewStreamsSegment = 30;
constexpr LstmShape kFewStreamsNetwork = {5, 160, 64, 6e-3f, 0};

// Attention models sized per level, for --model transformer|trace.
struct AttentionShape {
  uint32_t layers, hidden, heads, ff, memory;
};
constexpr AttentionShape kAttentionShapes[kMaxLevel] = {
    {1, 64, 4, 128, 16},  {1, 96, 4, 192, 16},  {2, 96, 4, 192, 32},
    {2, 128, 4, 256, 32}, {2, 160, 4, 320, 32}, {3, 192, 4, 384, 32},
    {4, 256, 8, 512, 48}, {6, 256, 8, 768, 64}, {8, 384, 8, 1024, 64},
};

// The context models of every CPU level: orders 1, 2, 3, 4 and 6, sparse, word, column, record, word
// prefix, bytes 1+3, 2+4 and 4+8, indirect and record bits. On paper1, progc, obj1 and 160 KB of book1 and
// a CSV the word prefix gained 1.4% (85978 against 87226 bytes); orders 5 and 8 gained nothing (89244
// against 89254); the 2-byte model duplicates order 2 over bytes. The binary models and record bits:
// docs/architecture.md, "Context mixing" (8 files 122807 -> 120126 bytes with the starting weights).
MixSettings level_mix() {
  MixSettings m;
  m.models = 0x5FF | 1u << kSparse13 | 1u << kSparse24 | 1u << kStride4 | 1u << kIndirect | 1u << kRecordBits;
  m.table_bits = 20;
  m.binary = true;
  m.count_limit = 1023;     // docs/architecture.md, "Context mixing": 255 +0.3%, 30 +0.9%
  m.lr = 7e-4f;             // with 6 weight sets; 1e-3 about equal, 1.5e-3 +0.4% (docs/architecture.md)
  m.initial_weight = 0.1f;  // binary: 0.15 +0.1%, 0 (no start) +0.3%
  m.escape = 0.5f;          // the symbol domain's (--mix-domain symbol): 0.5 gained 0.2% over PPM's 1
  return m;
}

// fit_to_content: the tokenizer only for inputs whose first MiB is at least 15% spaces.
constexpr size_t kContentSampleBytes = size_t{1} << 20;
constexpr size_t kTokenizerMinSpacePercent = 15;

void check_level(int level) {
  if (level < kMinLevel || level > kMaxLevel)
    throw Error(ErrorCode::kUsage, "level must be 1..9 (10..13: GPU levels), got " + std::to_string(level));
}

// An LSTM model with the shape's depth, width, embedding and the learning rate that suits them.
ModelSettings with_shape(ModelSettings m, const LstmShape& shape) {
  m.layers = shape.layers;
  m.hidden = shape.hidden;
  m.embed = shape.embed;
  m.lr = shape.lr;
  return m;
}

ModelSettings lstm_model(int level) {
  ModelSettings m;
  m.kind = ModelKind::kLstm;
  m.streams = 32;
  m.segment = 10;
  // Tuned on book1/world192 prefixes (docs/architecture.md, "Tuning"): a high rate that decays fast to a
  // floor learns small inputs quickly; beta2 0.99 adapts faster than 0.999.
  m.lr_decay = 1000;
  m.lr_floor = 2e-3f;
  m.beta2 = 0.99f;
  return with_shape(m, kLstmShapes[level - 1]);
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
  // Order 3: order 6 cost 2.5% on 1 MB of enwiki (2.111 vs 2.059 bpb at level 5, symbols, no mixer).
  s.codec.match_order = 3;
  // A second match model over the last 12 symbols for the binary mixer: the order-3 model follows the
  // latest occurrence of 3 symbols, often a short match where an older, longer one would predict better
  // (1 MB of enwiki-sample.xml -0.71%, news -0.34%, 10 files -0.33%; order 8 / 16: -0.32% / -0.26%).
  s.codec.long_match_order = 12;
  s.codec.max_vocab = kLstmShapes[level - 1].max_vocab;
  s.mix = level_mix();
  return s;
}

void fit_to_input(Settings* settings, uint64_t input_bytes) {
  const int level = settings->level;
  if (level == kMaxGpuLevel && input_bytes != kUnknownSize) {
    // More streams learn slower at first and better later, and run faster. First 64 MB of bench/corpus.sh,
    // H200: 64 / 128 / 256 streams 0.4740 / 0.4666 / 0.4793 bpb at 227 / 403 / 570 KB/s; 128 streams catch
    // up with 64 at about 40 MB, 256 gain 0.002-0.004 bpb a block on 128 from the fifth 8 MB block on, which
    // repays their start after about 400 MB (docs/architecture.md, GPU).
    const uint64_t mib = uint64_t{1} << 20;
    settings->model.streams = input_bytes < 32 * mib ? 64 : (input_bytes < 512 * mib ? 128 : 256);
    settings->model.streams = std::max(settings->model.streams, settings->runtime.ranks);
  }
  if (level < kMinLevel || level > kMaxLevel || input_bytes == kUnknownSize) return;
  // A larger network learns more slowly, and below 1 MiB the context models carry most of the ratio: there
  // the networks' order by size is partly chance (levels 1..7 on the 25 files of 32 KB to 1 MiB of
  // ../shared/data: 1 x 96 lost to 1 x 64 on bib by 0.18%, 1 x 128 to 1 x 96 on progl, pic and kennedy.xls,
  // 2 x 96 to 2 x 80 on sum, trans, alice29.txt and c-gnulib-vasnprintf.c, 2 x 80 to 1 x 96 on kennedy.xls
  // by 0.75%, 2 x 128 to 2 x 96 on news, csv-ieee-mam.csv and kennedy.xls). So small inputs take the
  // network of a lower level that lost to none below it there, and no level writes a larger file than the
  // one below it on any of those files (README, level by file).
  int shape = level;
  if (input_bytes < (uint64_t{256} << 10))
    shape = kShapeBelow256KiB[level - 1];
  else if (input_bytes < (uint64_t{1} << 20))
    shape = kShapeBelow1MiB[level - 1];
  if (shape != level && settings->model.kind == ModelKind::kLstm) settings->model = lstm_model(shape);
  // From 2 MiB on, the tokenizer's symbols carry the network further than bytes: bible.txt (4 MB) 1.3064
  // bpb against 1.4893 over bytes (default level, mixer on both); on the first 1 MB of enwiki-sample.xml
  // bytes were still ahead (1.8925 against 1.9102).
  if (input_bytes >= (uint64_t{2} << 20) && settings->codec.max_vocab == 0) settings->codec.max_vocab = 16384;
  // Over the tokenizer's symbols the symbol domain mixes better: world192.txt 354623 bytes against 380510
  // in the binary domain, whose trees over token numbers have no structure to learn from.
  if (settings->codec.max_vocab != 0) {
    settings->mix.binary = false;
    settings->mix.initial_weight = 0.15f;  // the symbol domain's tuned start
  }
  // Tables of about as many buckets as input bytes (32 bytes each), at most 2^20: small inputs stay small.
  // A quarter of that cost 0.4% on paper1, progc, obj1 and 160 KB of book1 and a CSV.
  uint32_t bits = 12;
  while (bits < 20 && (uint64_t{1} << bits) < input_bytes) ++bits;
  settings->mix.table_bits = bits;
}

std::vector<ModelSettings> model_trials(const Settings& fitted, uint64_t input_bytes) {
  const int level = fitted.level;
  if (level < 8 || level > kMaxLevel || input_bytes >= (uint64_t{1} << 20) ||
      fitted.model.kind != ModelKind::kLstm || fitted.runtime.ranks != 1)
    return {};
  const auto with_streams = [](ModelSettings model, uint32_t streams, uint32_t segment) {
    model.streams = streams;
    model.segment = segment;
    return model;
  };
  // Level 5's network with one stream against 32: paper1 -1.3% at 3.7 KB/s (docs/architecture.md,
  // "Context mixing", tuning table). Level 8 below 256 KiB tries nothing: level 9 would then need a third
  // pass to stay at least as good, below 2 KB/s.
  if (input_bytes < (uint64_t{256} << 10)) {
    if (level == 8) return {};
    return {with_streams(fitted.model, 1, fitted.model.segment)};
  }
  // Level 7's network with 4 streams against 32: book1 -0.61% at 0.6x the speed, pic -5.3%, json -7.8%,
  // but csv-ieee-mam.csv +0.26%; with 30 positions a training step instead of 10 book1 193801 -> 193468
  // bytes in 0.8x the time (20: 193682, 50: 193847, 80: 194053; with 32 streams (level 5) 30 was 0.15%
  // larger on 12 files). 4 streams take 4 times the training steps of 32, which a deeper network turns into
  // ratio: level 9's trial, book1 (`-7 --streams 4 --segment 30`, bytes at CPU seconds): 2 x 192 193468 at
  // 99 s, 4 x 192 192317 at 206, 3 x 256 192505 at 235, 4 x 256 192034 at 305, 6 x 128 192255 at 195,
  // 8 x 128 191364 at 268, 5 x 160 191566 at 216 (lr 8e-3; 6e-3 191355, 4.5e-3 191459, 1.1e-2 192372).
  // Level 9 does not also try level 8's trial: its deeper one was smaller on each of the 12 files of 256 KiB
  // to 1 MiB in ../shared/data (-0.78% in total, kennedy.xls -3.0%, pic -0.04%; README, level table).
  if (level == 8) return {with_streams(fitted.model, 4, kFewStreamsSegment)};
  return {with_shape(with_streams(fitted.model, 4, kFewStreamsSegment), kFewStreamsNetwork)};
}

void fit_to_content(Settings* settings, const uint8_t* sample, size_t size) {
  const int level = settings->level;
  if (level < kMinLevel || level > kMaxLevel || settings->codec.max_vocab == 0 || settings->mix.binary)
    return;
  // Whole files of 2.4 to 4 MB, bytes (binary domain) against the tokenizer (symbol domain), and their share
  // of spaces: the tokenizer was smaller on JSON (0.234 spaces, 12.6% smaller), bible.txt (0.189, 9.6%),
  // C++ headers (0.188, 2.7%), world192.txt (0.173, 1.5%) and (wrongly, by 0.35%) Python (0.287); bytes on
  // HTML (0.133, 0.7%), man pages (0.135, 2.2%), enwiki-sample.xml (0.120, 3.7%), xml-freedesktop-mime.xml
  // (0.116, 12%) and an x86-64 library (0.004, 1.9%) (docs/architecture.md, "Bytes or the tokenizer").
  const size_t n = std::min<size_t>(size, kContentSampleBytes);
  const size_t spaces = static_cast<size_t>(std::count(sample, sample + n, uint8_t{' '}));
  if (n == 0 || spaces * 100 >= n * kTokenizerMinSpacePercent) return;
  const uint32_t table_bits = settings->mix.table_bits;  // fitted to the size
  settings->codec.max_vocab = 0;
  settings->mix = level_mix();
  settings->mix.table_bits = table_bits;
}

Settings family_preset(ModelKind kind, int level) {
  check_level(level);  // CPU levels only; the GPU levels are Transformers by design
  Settings s = preset(level);
  s.model = kind == ModelKind::kLstm ? lstm_model(level) : attention_model(kind, level);
  return s;
}

}  // namespace nncpp
