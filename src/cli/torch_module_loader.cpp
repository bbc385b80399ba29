#include "torch_module_loader.h"

#include <dlfcn.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "model/torch_module.h"
#include "pin_kernels.h"

namespace nncpp::cli {
namespace {

// The folder of the running executable ("" if /proc is not there).
std::string executable_folder() {
  std::vector<char> path(4096);
  const ssize_t n = ::readlink("/proc/self/exe", path.data(), path.size());
  if (n <= 0 || static_cast<size_t>(n) >= path.size()) return "";
  std::string exe(path.data(), static_cast<size_t>(n));
  return exe.substr(0, exe.rfind('/'));
}

std::vector<std::string> candidates() {
  const std::string folder = executable_folder();
  if (folder.empty()) return {};
  return {folder + "/" NNCPP_TORCH_MODULE_FILE,
          folder + "/" NNCPP_MODULE_DIR_FROM_BIN "/" NNCPP_TORCH_MODULE_FILE};
}

// The loaded module (dlopen() of a loaded library returns the same handle), checked to be this build's.
void* open_module() {
  std::string path;
  for (const std::string& candidate : candidates()) {
    if (::access(candidate.c_str(), F_OK) == 0) {
      path = candidate;
      break;
    }
  }
  if (path.empty())
    throw BackendMissing("the LibTorch backend " NNCPP_TORCH_MODULE_FILE
                         " is needed to build the model and is not installed (looked in " +
                         torch_module_search_path() + ")");
  pin_kernel_environment();
  // RTLD_GLOBAL: the fingerprint finds OpenBLAS's and CUDA's version functions with dlsym(RTLD_DEFAULT),
  // which sees only the global scope.
  void* module = ::dlopen(path.c_str(), RTLD_NOW | RTLD_GLOBAL);
  if (module == nullptr) {
    const char* reason = ::dlerror();
    throw BackendMissing("cannot load the LibTorch backend " + path + ": " +
                         (reason ? reason : "unknown reason"));
  }
  auto abi = reinterpret_cast<NncppTorchModuleAbi>(::dlsym(module, NNCPP_TORCH_MODULE_ABI_SYMBOL));
  if (abi == nullptr || ::dlsym(module, NNCPP_TORCH_MODULE_CREATE_SYMBOL) == nullptr ||
      ::dlsym(module, NNCPP_TORCH_MODULE_GLOO_SYMBOL) == nullptr)
    throw BackendMissing(path + " is not an nncpp LibTorch backend (no " NNCPP_TORCH_MODULE_CREATE_SYMBOL
                                ")");
  if (std::strcmp(abi(), NNCPP_TORCH_MODULE_ABI) != 0)
    throw BackendMissing(path + " was built for another nncpp (" + abi() +
                         "; this tool: " NNCPP_TORCH_MODULE_ABI "): install the two together");
  return module;  // never closed: LibTorch does not support unloading
}

std::unique_ptr<Backend> load_module(RankGroup* ranks) {
  auto create =
      reinterpret_cast<NncppTorchModuleCreate>(::dlsym(open_module(), NNCPP_TORCH_MODULE_CREATE_SYMBOL));
  std::unique_ptr<Backend> backend(create(ranks));
  if (!backend) throw std::bad_alloc();
  return backend;
}

}  // namespace

const Backend& TorchModuleBackend::loaded() const {
  if (!backend_) backend_ = load_module(ranks_);
  return *backend_;
}

std::unique_ptr<RankGroup> load_gloo_group(const RankSetup& setup) {
  auto make =
      reinterpret_cast<NncppTorchModuleGlooGroup>(::dlsym(open_module(), NNCPP_TORCH_MODULE_GLOO_SYMBOL));
  return std::unique_ptr<RankGroup>(make(setup));
}

std::string torch_module_search_path() {
  std::string list;
  for (const std::string& candidate : candidates()) list += (list.empty() ? "" : ", ") + candidate;
  return list.empty() ? "nowhere: /proc/self/exe cannot be read" : list;
}

}  // namespace nncpp::cli
