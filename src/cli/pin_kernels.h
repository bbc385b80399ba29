// Pins what LibTorch, OpenBLAS and OpenMP choose when they are loaded: the CPU kernels, so results (and
// files) do not depend on which x86-64 model runs nncpp (any CPU with AVX2 and FMA gets the same kernels),
// and OpenMP's passive wait, so model threads never spin.
#pragma once

namespace nncpp::cli {

// Sets OMP_WAIT_POLICY=passive and, if the CPU has AVX2+FMA, OPENBLAS_CORETYPE=Haswell and
// ATEN_CPU_CAPABILITY=avx2, each unless already set (values the user set are kept; the fingerprint records
// the kernels in use). The libraries read them when they are loaded, so this must run before the LibTorch
// backend is (torch_module_loader.cpp), and the tool links none of them.
void pin_kernel_environment();

}  // namespace nncpp::cli
