#include "nncpp/presets.h"

#include <string>

#include "nncpp/error.h"

namespace nncpp {
namespace {

struct Shape {
  uint32_t layers, hidden, embed, streams, segment, min_stream;
};

// Speed falls roughly with layers * hidden^2; measured bpb and KB/s per level are in the README.
// min_stream: small inputs get few long streams (more training steps per symbol), large inputs B of them.
constexpr Shape kShapes[kMaxLevel] = {
    {1, 96, 16, 32, 10, 4096},   // -1
    {1, 128, 16, 32, 10, 4096},  // -2
    {2, 96, 32, 32, 10, 4096},   // -3
    {2, 128, 32, 32, 10, 4096},  // -4
    {2, 160, 32, 32, 10, 4096},  // -5 (default)
    {2, 192, 32, 32, 10, 4096},  // -6
    {2, 256, 64, 32, 10, 4096},  // -7
    {3, 256, 64, 32, 10, 4096},  // -8
    {3, 384, 64, 32, 10, 4096},  // -9
};

}  // namespace

Settings preset(int level) {
  if (level < kMinLevel || level > kMaxLevel)
    throw Error(ErrorCode::kUsage, "level must be 1..9, got " + std::to_string(level));
  const Shape& shape = kShapes[level - 1];
  Settings s;
  s.level = static_cast<uint8_t>(level);
  s.model.layers = shape.layers;
  s.model.hidden = shape.hidden;
  s.model.embed = shape.embed;
  s.model.streams = shape.streams;
  s.model.segment = shape.segment;
  s.codec.min_stream_symbols = shape.min_stream;
  // Tuned on book1/world192 prefixes (docs/architecture.md, "Tuning"): a high rate that decays fast to a
  // floor learns small inputs quickly; beta2 0.99 adapts faster than 0.999.
  s.model.lr = 2e-2f;
  s.model.lr_decay = 1000;
  s.model.lr_floor = 2e-3f;
  s.model.beta2 = 0.99f;
  s.codec.match_order = 3;
  return s;
}

}  // namespace nncpp
