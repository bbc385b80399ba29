// The backend nncpp ships: LibTorch predictors (LSTM, Transformer, TRACE-style) on the CPU or on a CUDA
// device, as settings.runtime.device says. Part of the nncpp::nncpp CMake target (the Torch-free
// nncpp::core has the coding loop but no models: bring a Backend of your own there).
#pragma once

#include <memory>
#include <string>

#include "nncpp/predictor.h"
#include "nncpp/ranks.h"

namespace nncpp {

// The LibTorch backend, as the nncpp tool uses it. Its fingerprint pins and records the run-time (thread
// count, device, dtype, kernels), so files it makes decode with the tool and vice versa.
std::unique_ptr<Backend> make_default_backend();
// The same for one rank of several (include/nncpp/ranks.h): its predictors sum their gradients over
// `ranks`, which must outlive them.
std::unique_ptr<Backend> make_default_backend(RankGroup* ranks);

// What the default backend runs on, e.g. "LibTorch 1.13.0" (`nncpp -V` prints it).
std::string default_backend_version();

}  // namespace nncpp
