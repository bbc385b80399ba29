// The LibTorch backend, loaded from libnncpp_torch.so the first time a model is needed. Until then the
// tool runs without LibTorch: `--version`, `--help`, `l`, and `t`/`d` on a file the container check
// refuses never load it. Before loading, the environment LibTorch's libraries read at load time is set
// (pin_kernels.h), so no second start of the program is needed.
#pragma once

#include <memory>
#include <stdexcept>
#include <string>

#include "nncpp/predictor.h"
#include "nncpp/ranks.h"

namespace nncpp::cli {

// The module cannot be found or loaded (exit status 9, kExitNoBackend). Not an nncpp::Error: the engine
// turns those from Backend::fingerprint into "incompatible device", and this is no property of the file.
class BackendMissing : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A Backend that loads the module on the first fingerprint() or create(), once per process (the module
// stays loaded: LibTorch does not support unloading). Throws BackendMissing when it cannot.
class TorchModuleBackend : public Backend {
 public:
  // ranks: the group whose gradients the models sum (--ranks), or null for one process.
  explicit TorchModuleBackend(RankGroup* ranks = nullptr) : ranks_(ranks) {}
  Fingerprint fingerprint(const Settings& settings) const override { return loaded().fingerprint(settings); }
  std::unique_ptr<Predictor> create(const Settings& settings) const override {
    return loaded().create(settings);
  }
  // Loads the module now unless it is loaded (compression needs a model whatever the input).
  const Backend& loaded() const;

 private:
  RankGroup* ranks_;
  mutable std::unique_ptr<Backend> backend_;
};

// make_gloo_group() from the module (loading it): the c10d group lives with LibTorch.
std::unique_ptr<RankGroup> load_gloo_group(const RankSetup& setup);

// Where the tool looks for the module: next to the executable (the build tree), then in the install
// layout's lib/nncpp relative to it (NNCPP_MODULE_DIR_FROM_BIN, set by CMake).
std::string torch_module_search_path();

}  // namespace nncpp::cli
