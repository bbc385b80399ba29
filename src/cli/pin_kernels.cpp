#include "pin_kernels.h"

#include <cstdlib>

namespace nncpp::cli {

void pin_kernel_environment() {
  setenv("CUBLAS_WORKSPACE_CONFIG", ":4096:8", 0);  // deterministic cuBLAS (harmless on CPU)
  // OpenMP threads (LibTorch's and OpenBLAS's) that wait for work sleep instead of spinning: with -T 2 on
  // a machine where another job holds a core, spinning made a run 40-66x slower; sleeping costs a few
  // percent (bench/threads.sh). Thread scheduling does not change the numbers, so files are the same.
  setenv("OMP_WAIT_POLICY", "passive", 0);
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    // Haswell's OpenBLAS kernels were within ~10% of SkylakeX's (docs/architecture.md, "Determinism").
    setenv("OPENBLAS_CORETYPE", "Haswell", 0);
    setenv("ATEN_CPU_CAPABILITY", "avx2", 0);
  }
}

}  // namespace nncpp::cli
