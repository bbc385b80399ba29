// Compression levels -1..-9: complete settings from fastest to strongest (README, "Levels").
#pragma once

#include "nncpp/settings.h"

namespace nncpp {

constexpr int kMinLevel = 1;
constexpr int kMaxLevel = 9;
constexpr int kDefaultLevel = 5;

// Throws Error(kUsage) for a level outside 1..9.
Settings preset(int level);

// The level's settings with the model of another family, sized for about the same speed (--model).
Settings family_preset(ModelKind kind, int level);

}  // namespace nncpp
