// The LibTorch backend: builds the predictors (lstm.cpp) on a CPU or CUDA device and fingerprints the
// run-time they depend on. Torch-free header, so the CLI compiles without Torch's headers.
#pragma once

#include <memory>
#include <string>

#include "nncpp/predictor.h"
#include "nncpp/ranks.h"

namespace nncpp {

// ranks: the predictors sum their gradients over these ranks (null: one process).
std::unique_ptr<Backend> make_torch_backend(RankGroup* ranks = nullptr);

// LibTorch's version, for `nncpp -V`.
std::string torch_version();

}  // namespace nncpp
