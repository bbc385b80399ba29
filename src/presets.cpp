#include "nncpp/presets.h"

#include <string>

#include "nncpp/error.h"

namespace nncpp {
namespace {

struct Shape {
  uint32_t layers, hidden, embed, streams, segment;
  float lr;
};

// Measured on the reference machine (README, "Levels"): speed falls roughly with layers * hidden^2.
constexpr Shape kShapes[kMaxLevel] = {
    {1, 64, 16, 32, 20, 4e-3f},    // -1
    {1, 96, 16, 32, 20, 4e-3f},    // -2
    {1, 128, 32, 32, 20, 4e-3f},   // -3
    {2, 96, 32, 32, 20, 3e-3f},    // -4
    {2, 128, 32, 32, 20, 3e-3f},   // -5 (default)
    {2, 192, 32, 32, 20, 3e-3f},   // -6
    {2, 256, 64, 32, 20, 2e-3f},   // -7
    {3, 256, 64, 32, 20, 2e-3f},   // -8
    {3, 384, 64, 32, 20, 1.5e-3f}, // -9
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
  s.model.lr = shape.lr;
  s.model.lr_floor = shape.lr / 10;
  return s;
}

}  // namespace nncpp
