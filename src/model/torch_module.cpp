// The entry points of libnncpp_torch.so (model/torch_module.h). Everything else in the module (nncpp_model,
// nncpp_core) is linked with --exclude-libs, so only these names are exported.
#include "model/torch_module.h"

#include <new>

#include "nncpp/backend.h"

extern "C" {

__attribute__((visibility("default"))) const char* nncpp_torch_module_abi() {
  return NNCPP_TORCH_MODULE_ABI;
}

__attribute__((visibility("default"))) nncpp::Backend* nncpp_torch_module_create(nncpp::RankGroup* ranks) {
  try {
    return (ranks != nullptr ? nncpp::make_default_backend(ranks) : nncpp::make_default_backend()).release();
  } catch (const std::bad_alloc&) {
    return nullptr;
  }
}

__attribute__((visibility("default"))) nncpp::RankGroup* nncpp_torch_module_gloo_group(
    const nncpp::RankSetup& setup) {
  return nncpp::make_gloo_group(setup).release();
}

}  // extern "C"
