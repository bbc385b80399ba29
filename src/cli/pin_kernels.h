// Pins what LibTorch, OpenBLAS and OpenMP choose at load time: the CPU kernels, so results (and files) do
// not depend on which x86-64 model runs nncpp (any CPU with AVX2 and FMA gets the same kernels), and
// OpenMP's passive wait, so model threads never spin.
#pragma once

namespace nncpp::cli {

// Sets OMP_WAIT_POLICY=passive and, if the CPU has AVX2+FMA, OPENBLAS_CORETYPE=Haswell and
// ATEN_CPU_CAPABILITY=avx2, each unless already set, and re-executes the program when it set any, so the
// libraries see them at load time. Returns when nothing had to change or the re-exec failed (then the run
// goes on with the libraries' own choice, which the fingerprint records). Values the user set are kept.
void pin_cpu_kernels(char** argv);

}  // namespace nncpp::cli
