# Sourced by the GPU scripts: builds nncpp against the PyTorch installation's CUDA LibTorch (headers for
# CLI11/spdlog/fmt carried in .gpu-deps, made with ../shared/tools/gpu-deps.sh .gpu-deps) into build-gpu/,
# and sets $nncpp and LD_LIBRARY_PATH. Logs go to ${OUT:-/tmp}.
out=${OUT:-/tmp}
deps=$PWD/.gpu-deps/usr
prefix=$(python3 -c 'import torch;print(torch.utils.cmake_prefix_path)')
cmake -S . -B build-gpu -DNNCPP_BUILD_TESTS=OFF -DCMAKE_PREFIX_PATH="$prefix;$deps" >"$out/cmake.log" 2>&1
cmake --build build-gpu -j"$(nproc)" >"$out/build.log" 2>&1 || { tail -40 "$out/build.log"; exit 1; }
export LD_LIBRARY_PATH=$deps/lib/x86_64-linux-gnu:$(python3 -c 'import torch,os;print(os.path.dirname(torch.__file__)+"/lib")'):${LD_LIBRARY_PATH:-}
nncpp=$PWD/build-gpu/nncpp
