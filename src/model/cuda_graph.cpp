#include "cuda_graph.h"

#ifdef NNCPP_CUDA_GRAPHS
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime_api.h>
#endif

namespace nncpp {

#ifdef NNCPP_CUDA_GRAPHS

bool graphs_available(const torch::Device& device) {
  return device.is_cuda();
}

struct ModelStream::Impl {
  c10::cuda::CUDAStream stream;
};

ModelStream::ModelStream(const torch::Device& device) {
  if (device.is_cuda())
    impl_.reset(new Impl{
        c10::cuda::getStreamFromPool(/*isHighPriority=*/false, device.index() < 0 ? 0 : device.index())});
}

void ModelStream::synchronize() {
  if (impl_) impl_->stream.synchronize();
}

struct ModelStream::Scope::Impl {
  c10::cuda::CUDAStreamGuard guard;
};

ModelStream::Scope::Scope(ModelStream& stream) {
  if (stream.impl_) impl_.reset(new Impl{c10::cuda::CUDAStreamGuard(stream.impl_->stream)});
}

struct CapturedOps::Impl {
  at::cuda::CUDAGraph graph;
};

void CapturedOps::capture(const std::function<void()>& ops) {
  auto impl = std::make_unique<Impl>();
  impl->graph.capture_begin();
  try {
    ops();
  } catch (...) {
    try {
      impl->graph.capture_end();  // ends the stream's capture so the stream stays usable
    } catch (...) {
    }
    (void)cudaGetLastError();  // the capture's error is not sticky: clear it for the ops that follow
    throw;
  }
  try {
    impl->graph.capture_end();
  } catch (...) {
    (void)cudaGetLastError();
    throw;
  }
  impl_ = std::move(impl);
}

void CapturedOps::replay() {
  impl_->graph.replay();
}

#else  // a CPU-only LibTorch: nothing to capture

bool graphs_available(const torch::Device&) {
  return false;
}

struct ModelStream::Impl {};
ModelStream::ModelStream(const torch::Device&) {}
void ModelStream::synchronize() {}
struct ModelStream::Scope::Impl {};
ModelStream::Scope::Scope(ModelStream&) {}
struct CapturedOps::Impl {};

void CapturedOps::capture(const std::function<void()>&) {
  throw std::logic_error("CUDA graphs need a CUDA build of LibTorch");
}

void CapturedOps::replay() {
  throw std::logic_error("CUDA graphs need a CUDA build of LibTorch");
}

#endif

ModelStream::~ModelStream() = default;
ModelStream::Scope::~Scope() = default;
CapturedOps::CapturedOps() = default;
CapturedOps::~CapturedOps() = default;
CapturedOps::CapturedOps(CapturedOps&&) noexcept = default;
CapturedOps& CapturedOps::operator=(CapturedOps&&) noexcept = default;

void CapturedOps::clear() {
  impl_.reset();
}

}  // namespace nncpp
