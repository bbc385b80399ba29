#include "pin_kernels.h"

#include <unistd.h>

#include <cstdlib>

namespace nncpp::cli {
namespace {

// Sets `name` unless the user did; true when it was set here.
bool set_default(const char* name, const char* value) {
  if (std::getenv(name) != nullptr) return false;
  setenv(name, value, 0);
  return true;
}

}  // namespace

void pin_cpu_kernels(char** argv) {
  setenv("CUBLAS_WORKSPACE_CONFIG", ":4096:8", 0);  // deterministic cuBLAS (harmless on CPU)
  // OpenMP threads (LibTorch's and OpenBLAS's) that wait for work sleep instead of spinning: with -T 2 on
  // a machine where another job holds a core, spinning made a run 40-66x slower; sleeping costs a few
  // percent (bench/threads.sh). Thread scheduling does not change the numbers, so files are the same.
  bool changed = set_default("OMP_WAIT_POLICY", "passive");
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    // Haswell's OpenBLAS kernels were within ~10% of SkylakeX's (docs/architecture.md, "Determinism").
    changed = set_default("OPENBLAS_CORETYPE", "Haswell") || changed;
    changed = set_default("ATEN_CPU_CAPABILITY", "avx2") || changed;
  }
  // The libraries read these when they are loaded, before main(): start again so they see them.
  if (changed) execv("/proc/self/exe", argv);
}

}  // namespace nncpp::cli
