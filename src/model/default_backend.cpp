// include/nncpp/backend.h: the public way to the LibTorch backend (model/torch_backend.h stays internal).
#include "nncpp/backend.h"

#include "model/torch_backend.h"

namespace nncpp {

std::unique_ptr<Backend> make_default_backend() {
  return make_torch_backend();
}

std::unique_ptr<Backend> make_default_backend(RankGroup* ranks) {
  return make_torch_backend(ranks);
}

std::string default_backend_version() {
  return "LibTorch " + torch_version();
}

}  // namespace nncpp
