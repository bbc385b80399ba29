# Sourced by the GPU scripts: builds nncpp against the PyTorch installation's CUDA LibTorch (headers for
# CLI11/spdlog/fmt carried in .gpu-deps, made with scripts/gpu_deps.sh .gpu-deps) into build-gpu/,
# and sets $nncpp and LD_LIBRARY_PATH. Logs go to ${OUT:-/tmp}.
out=${OUT:-/tmp}
deps=$PWD/.gpu-deps/usr
prefix=$(python3 -c 'import torch;print(torch.utils.cmake_prefix_path)')
# nvcc for the fused step kernels (src/model/step_kernels.cu), also where it is not on the PATH
if [[ -z ${CUDACXX:-} ]] && ! command -v nvcc >/dev/null && [[ -x /usr/local/cuda/bin/nvcc ]]; then
  export CUDACXX=/usr/local/cuda/bin/nvcc
fi
cmake -S . -B build-gpu -DNNCPP_BUILD_TESTS=OFF -DCMAKE_PREFIX_PATH="$prefix;$deps" >"$out/cmake.log" 2>&1
cmake --build build-gpu -j"$(nproc)" >"$out/build.log" 2>&1 || { tail -40 "$out/build.log"; exit 1; }
export LD_LIBRARY_PATH=$deps/lib/x86_64-linux-gnu:$(python3 -c 'import torch,os;print(os.path.dirname(torch.__file__)+"/lib")'):${LD_LIBRARY_PATH:-}
nncpp=$PWD/build-gpu/nncpp

# GPU memory and utilisation sampled by nvidia-smi every 0.1 s while a command runs (utilisation = share of
# time a kernel was running): gpu_watch_start FILE; COMMAND; gpu_watch_stop; gpu_watch_summary FILE prints
# "peak_MiB mean_util%".
gpu_watch_start() {
  nvidia-smi --query-gpu=memory.used,utilization.gpu --format=csv,noheader,nounits -lms 100 >"$1" &
  gpu_watch_pid=$!
}
gpu_watch_stop() { kill "$gpu_watch_pid"; }
gpu_watch_summary() {
  awk -F', *' 'NF >= 2 { if ($1 > mem) mem = $1; util += $2; n++ }
    END { printf "%d %.0f\n", mem, n ? util / n : 0 }' "$1"
}
