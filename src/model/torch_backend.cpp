#include "torch_backend.h"

#include <dlfcn.h>
#include <torch/torch.h>

#include <cstdlib>
#include <string>

#include "cuda_graph.h"
#include "lstm.h"
#include "nncpp/error.h"
#include "transformer.h"

namespace nncpp {
namespace {

// ATen picks its CPU kernels (DEFAULT/AVX2/AVX512) at start-up; the choice changes float results.
// LibTorch >= 2 reports it in show_config(); 1.13 does not, so mirror its rule: the ATEN_CPU_CAPABILITY
// override, else what the CPU supports.
std::string cpu_capability() {
  std::string config = at::show_config();
  const std::string key = "CPU capability usage: ";
  size_t at = config.find(key);
  if (at != std::string::npos) {
    size_t end = config.find('\n', at);
    return config.substr(at + key.size(), end - at - key.size());
  }
  if (const char* env = std::getenv("ATEN_CPU_CAPABILITY")) {
    std::string v = env;
    for (char& ch : v) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    if (v == "DEFAULT" || v == "AVX2" || v == "AVX512") return v;
  }
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("fma"))
    return "AVX512";
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "AVX2";
  return "DEFAULT";
}

// OpenBLAS chooses its kernels per CPU model (OPENBLAS_CORETYPE overrides); other BLAS report "unknown".
std::string blas_kernel() {
  using CoreName = char* (*)();
  auto core_name = reinterpret_cast<CoreName>(dlsym(RTLD_DEFAULT, "openblas_get_corename"));
  if (core_name == nullptr) return "unknown";
  return std::string("openblas-") + core_name();
}

// GPU identity through the CUDA driver API (libcuda.so.1, a stable C ABI), so this file needs no CUDA
// headers and also builds against a CPU-only LibTorch.
Fingerprint cuda_identity(int index) {
  Fingerprint fp;
  void* lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) return {{"gpu", "unknown"}};
  using Init = int (*)(unsigned);
  using DeviceGet = int (*)(int*, int);
  using DeviceName = int (*)(char*, int, int);
  using DeviceAttribute = int (*)(int*, int, int);
  auto init = reinterpret_cast<Init>(dlsym(lib, "cuInit"));
  auto get = reinterpret_cast<DeviceGet>(dlsym(lib, "cuDeviceGet"));
  auto name = reinterpret_cast<DeviceName>(dlsym(lib, "cuDeviceGetName"));
  auto attribute = reinterpret_cast<DeviceAttribute>(dlsym(lib, "cuDeviceGetAttribute"));
  int device = 0, major = 0, minor = 0;
  char text[256] = "unknown";
  if (init && get && name && attribute && init(0) == 0 && get(&device, index) == 0) {
    name(text, sizeof text, device);
    attribute(&major, 75, device);  // CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR
    attribute(&minor, 76, device);  // CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR
  }
  fp.push_back({"gpu", text});
  fp.push_back({"compute_capability", std::to_string(major) + "." + std::to_string(minor)});
  // The CUDA runtime LibTorch was built with (cuBLAS kernels come with it).
  using RuntimeVersion = int (*)(int*);
  auto runtime = reinterpret_cast<RuntimeVersion>(dlsym(RTLD_DEFAULT, "cudaRuntimeGetVersion"));
  int version = 0;
  fp.push_back({"cuda_runtime", runtime && runtime(&version) == 0 ? std::to_string(version) : "unknown"});
  return fp;
}

torch::Device parse_device(const std::string& name) {
  try {
    torch::Device device(name);
    if (device.is_cuda() && !torch::cuda::is_available())
      throw Error(ErrorCode::kUsage, "device " + name + " requested but CUDA is not available in this build");
    if (!device.is_cpu() && !device.is_cuda()) throw Error(ErrorCode::kUsage, "unsupported device: " + name);
    return device;
  } catch (const c10::Error&) {
    throw Error(ErrorCode::kUsage, "unknown device: " + name);
  }
}

class TorchBackend : public Backend {
 public:
  explicit TorchBackend(RankGroup* ranks) : ranks_(ranks) {}

  // The device of this process: with several ranks, `cuda` without an index means one GPU per rank on
  // its host, the launcher's LOCAL_RANK (torchrun) or else the rank itself (--ranks N starts all ranks on
  // one host), modulo the GPUs this process sees.
  torch::Device device_of(const Settings& settings) const {
    torch::Device device = parse_device(settings.runtime.device);
    if (!device.is_cuda() || device.has_index() || ranks_ == nullptr || ranks_->size() == 1) return device;
    int local = ranks_->rank();
    if (const char* env = std::getenv("LOCAL_RANK")) local = std::atoi(env);
    const int gpus = static_cast<int>(torch::cuda::device_count());
    return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(gpus > 0 ? local % gpus : 0));
  }

  Fingerprint fingerprint(const Settings& settings) const override {
    const torch::Device device = device_of(settings);
    if (settings.runtime.dtype != "float32" && !device.is_cuda())
      throw Error(ErrorCode::kUsage, "--dtype " + settings.runtime.dtype + " needs --device cuda");
    // Pin the thread count: reductions inside GEMMs split differently with more threads.
    torch::set_num_threads(static_cast<int>(settings.runtime.threads));
    Fingerprint fp;
    fp.push_back({"nncpp", NNCPP_VERSION});
    fp.push_back({"libtorch", torch_version()});
    fp.push_back({"device", device.is_cpu() ? "cpu" : "cuda"});
    fp.push_back({"threads", std::to_string(settings.runtime.threads)});
    fp.push_back({"dtype", settings.runtime.dtype});
    if (device.is_cpu()) {
      fp.push_back({"cpu_kernels", cpu_capability()});
      fp.push_back({"blas", blas_kernel()});
    } else {
      // Atomics in index_add_ and friends make CUDA sums order-dependent; these switches pick
      // deterministic kernels (cuBLAS needs CUBLAS_WORKSPACE_CONFIG, set by the CLI at start-up).
      at::globalContext().setDeterministicAlgorithms(true, false);
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 1)
      // Deterministic mode also fills every new tensor with NaN (since LibTorch 2.1), to expose reads of
      // memory nothing wrote. nncpp writes every element before it reads it (the coded bytes stay the
      // same), and the fills were 80 of the 299 kernels of a level-12 step graph, 810 of its training
      // graph's 4815 and 4740 of its retraining graph's 18351 (H200, LibTorch 2.11).
      at::globalContext().setDeterministicFillUninitializedMemory(false);
#endif
      // TF32 tensor cores for float32 matrix products only when asked (they round the inputs to 10 bits).
      at::globalContext().setFloat32MatmulPrecision(settings.runtime.dtype == "tf32" ? "high" : "highest");
      for (FingerprintField& f : cuda_identity(device.has_index() ? device.index() : 0)) fp.push_back(f);
      // Replayed graphs run the same kernels as eager ops, but that is an observation, not a contract.
      const bool graphs = settings.runtime.cuda_graphs && graphs_available(device);
      fp.push_back({"cuda_graphs", graphs ? "on" : "off"});
      if (settings.model.kind != ModelKind::kLstm) {
        const bool fused = fused_step_kernels(settings.model, device, settings.runtime.dtype == "bfloat16");
        // The fused step reads bfloat16 copies of the weights and a bfloat16 key/value cache; v2: its
        // attention sums in another order than 0.6.0's (16-byte rows, step_kernels.cu).
        fp.push_back({"step_kernels", fused ? "fused bf16 v2" : "torch"});
      }
    }
    return fp;
  }

  std::unique_ptr<Predictor> create(const Settings& settings) const override {
    const torch::Device device = device_of(settings);
    const bool bf16 = settings.runtime.dtype == "bfloat16";
    if (bf16 && settings.model.kind == ModelKind::kLstm)
      throw Error(ErrorCode::kUsage,
                  "--dtype bfloat16 is implemented for the attention models only (LSTM: tf32)");
    // The context mixer works on the host: with it the distributions cross to the host every position.
    const bool device_coding = !device.is_cpu() && settings.mix.models == 0,
               graphs = settings.runtime.cuda_graphs;
    if (settings.runtime.ranks > 1 &&
        (ranks_ == nullptr || ranks_->size() != static_cast<int>(settings.runtime.ranks)))
      throw Error(ErrorCode::kUsage,
                  "these settings need " + std::to_string(settings.runtime.ranks) + " ranks");
    if (ranks_ != nullptr && ranks_->size() > 1 && graphs && device.is_cuda())
      throw Error(ErrorCode::kUsage,
                  "several ranks on CUDA need --no-cuda-graphs (the gradient sum runs on the host)");
    if (settings.model.kind == ModelKind::kLstm) {
      auto lstm = std::make_unique<LstmPredictor>(settings.model, device, device_coding, graphs);
      lstm->set_ranks(ranks_);
      return lstm;
    }
    auto transformer =
        std::make_unique<TransformerPredictor>(settings.model, device, device_coding, graphs, bf16);
    transformer->set_ranks(ranks_);
    return transformer;
  }

 private:
  RankGroup* ranks_;
};

}  // namespace

std::unique_ptr<Backend> make_torch_backend(RankGroup* ranks) {
  return std::make_unique<TorchBackend>(ranks);
}

std::string torch_version() {
  return std::to_string(TORCH_VERSION_MAJOR) + "." + std::to_string(TORCH_VERSION_MINOR) + "." +
         std::to_string(TORCH_VERSION_PATCH);
}

}  // namespace nncpp
