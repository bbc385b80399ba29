// Pins the CPU kernels that LibTorch and OpenBLAS pick at load time, so results (and files) do not depend
// on which x86-64 model runs nncpp: any CPU with AVX2 and FMA gets the same kernels.
#pragma once

namespace nncpp::cli {

// If OPENBLAS_CORETYPE or ATEN_CPU_CAPABILITY is unset and the CPU has AVX2+FMA, sets them (Haswell, avx2)
// and re-executes the program so the libraries see them at load time. Returns when nothing had to change
// or the re-exec failed (then the run goes on with the libraries' own choice, which the fingerprint
// records). Values the user set are kept.
void pin_cpu_kernels(char** argv);

}  // namespace nncpp::cli
