// Compression levels -1..-9: complete settings from fastest to strongest (README, "Levels").
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "nncpp/settings.h"

namespace nncpp {

constexpr int kMinLevel = 1;
constexpr int kMaxLevel = 9;
constexpr int kDefaultLevel = 5;
// Levels meant for an NVIDIA GPU (--level 10..13, src/core/gpu_presets.cpp); 13 is for inputs of 64 MB
// and more (enwik8, enwik9).
constexpr int kMinGpuLevel = 10;
constexpr int kMaxGpuLevel = 13;

// Throws Error(kUsage) for a level outside 1..9 or 10..13 (GPU levels).
Settings preset(int level);

// Levels 10..13 (called by preset()).
Settings gpu_preset(int level);

// Adapts a CPU level's settings to the input's size (known before compressing), as zstd picks parameters
// by source size: smaller context tables, and a smaller network where a large one would not have the data
// to learn from. Level 13 takes its stream count from the size;
// no-op for custom settings (level 0), the other GPU levels and an unknown size (kUnknownSize).
void fit_to_input(Settings* settings, uint64_t input_bytes);

// On the compress side, after fit_to_input: the models of the passes to try besides the fitted settings
// (another stream count, segment length or network); the smallest file is kept and its settings recorded in
// the header. Levels 8 and 9 below 1 MiB: fewer, longer streams learn more per symbol on most inputs but not
// on all, so each keeps the level's own pass beside them. Empty: one pass.
std::vector<ModelSettings> model_trials(const Settings& fitted, uint64_t input_bytes);

// On the compress side, after fit_to_input: where the size chose the tokenizer, the input's leading bytes
// confirm it or go back to bytes (the tokenizer pays on text of words, bytes on markup, tables and
// binaries). The header records the result, so the decoder never calls this.
void fit_to_content(Settings* settings, const uint8_t* sample, size_t size);

// The level's settings with the model of another family, sized for about the same speed (--model).
Settings family_preset(ModelKind kind, int level);

}  // namespace nncpp
