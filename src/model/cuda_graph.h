// CUDA graphs for the predictors. On a GPU one step of a small model is a few hundred tiny
// kernels, and launching them one by one from the host costs far more than running them. A CapturedOps
// records such a fixed sequence of Torch ops once and replays it with one launch; the tensors it reads and
// writes keep their addresses, so inputs are copied into static buffers before a replay and outputs are
// read from the tensors the capture produced.
//
// Capture needs a non-default stream, so all of a predictor's GPU work runs on its own ModelStream: eager
// runs (which warm up cuBLAS before the first capture) and replays see the same stream, handles and
// workspaces, hence the same kernels. Only a CUDA build of LibTorch has graphs (NNCPP_CUDA_GRAPHS); without
// it, or on the CPU, graphs_available() is false and the predictors run their ops directly.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <memory>

namespace nncpp {

// True when this build can capture graphs on `device` (a CUDA device and a CUDA LibTorch).
bool graphs_available(const torch::Device& device);

// The stream a predictor's GPU work runs on; a no-op on the CPU.
class ModelStream {
 public:
  explicit ModelStream(const torch::Device& device);
  ~ModelStream();
  ModelStream(const ModelStream&) = delete;
  ModelStream& operator=(const ModelStream&) = delete;
  // Waits for the work queued on the stream.
  void synchronize();

  // Makes the stream current (and the device) for the scope; restores the previous one after.
  class Scope {
   public:
    explicit Scope(ModelStream& stream);
    ~Scope();
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
  };

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// One recorded sequence of ops. capture() must run inside a ModelStream::Scope of a CUDA device.
class CapturedOps {
 public:
  CapturedOps();
  ~CapturedOps();
  CapturedOps(CapturedOps&&) noexcept;
  CapturedOps& operator=(CapturedOps&&) noexcept;

  bool ready() const { return impl_ != nullptr; }
  // Records `ops` without running them (call replay() to run them), then keeps the tensors they allocated
  // alive in the graph's memory pool. Throws if an op cannot be captured (one that syncs with the host).
  void capture(const std::function<void()>& ops);
  void replay();
  void clear();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace nncpp
