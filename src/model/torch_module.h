// The LibTorch backend as a loadable module (libnncpp_torch.so): the two C entry points the nncpp tool
// looks up with dlsym() after dlopen() (src/cli/torch_module_loader.cpp). The tool links no LibTorch, so
// `--version`, `l` and a damaged file never load its ~290 libraries; a model loads them once.
// Torch-free header, so the tool compiles without Torch's headers.
#pragma once

#include "nncpp/predictor.h"
#include "nncpp/ranks.h"

#define NNCPP_TORCH_MODULE_STRING2(x) #x
#define NNCPP_TORCH_MODULE_STRING(x) NNCPP_TORCH_MODULE_STRING2(x)

// Backend and Settings cross the boundary as C++ objects, so tool and module must come from one build:
// the same nncpp version, compiler and standard-library string ABI. Each side expands this in its own
// translation unit; the tool refuses a module whose tag differs.
#define NNCPP_TORCH_MODULE_ABI                     \
  "nncpp " NNCPP_VERSION ", compiler " __VERSION__ \
  ", cxx11 abi " NNCPP_TORCH_MODULE_STRING(_GLIBCXX_USE_CXX11_ABI)

// The module's file name, and the names of its entry points.
#define NNCPP_TORCH_MODULE_FILE "libnncpp_torch.so"
#define NNCPP_TORCH_MODULE_ABI_SYMBOL "nncpp_torch_module_abi"
#define NNCPP_TORCH_MODULE_CREATE_SYMBOL "nncpp_torch_module_create"
#define NNCPP_TORCH_MODULE_GLOO_SYMBOL "nncpp_torch_module_gloo_group"

extern "C" {
// NNCPP_TORCH_MODULE_ABI as the module was built.
using NncppTorchModuleAbi = const char* (*)();
// A new LibTorch backend (make_default_backend(ranks); ranks may be null), owned by the caller; nullptr
// when out of memory.
using NncppTorchModuleCreate = nncpp::Backend* (*)(nncpp::RankGroup* ranks);
// A new Gloo group (make_gloo_group()), owned by the caller. Throws nncpp::Error as make_gloo_group does:
// tool and module are one build (NNCPP_TORCH_MODULE_ABI), so C++ exceptions cross.
using NncppTorchModuleGlooGroup = nncpp::RankGroup* (*)(const nncpp::RankSetup& setup);
}
