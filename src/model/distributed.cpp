// Gloo process groups (LibTorch c10d) for include/nncpp/ranks.h, and the gradient sum of the predictors.
//
// The sum is an all-gather followed by additions in rank order on every rank: an all-reduce would add in
// an order that depends on the algorithm and the world size's factorisation, and every replica must take
// exactly the same optimizer step, in every run, for the decoder to follow the compressor.
#include "distributed.h"

#include <algorithm>
#include <chrono>
#include <string>

#include "nncpp/error.h"

#ifdef NNCPP_GLOO
#include <torch/csrc/distributed/c10d/FileStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#endif

namespace nncpp {
namespace {

// One process: every collective is the identity.
class SoloGroup : public RankGroup {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::string backend() const override { return ""; }
  void broadcast(std::vector<uint8_t>*) override {}
  std::vector<std::vector<uint8_t>> gather(const std::vector<uint8_t>& bytes) override { return {bytes}; }
  void sum(float*, size_t) override {}
  void sum(double*, size_t) override {}
};

bool solo(const RankSetup& setup) {
  if (setup.size < 1 || setup.rank < 0 || setup.rank >= setup.size)
    throw Error(ErrorCode::kUsage, "rank " + std::to_string(setup.rank) + " of " +
                                       std::to_string(setup.size) + " is not a rank of the group");
  return setup.size == 1;
}

}  // namespace

void sum_gradients(RankGroup* ranks, const std::vector<torch::Tensor>& params,
                   std::vector<torch::Tensor>* grads) {
  if (ranks == nullptr || ranks->size() == 1) return;
  int64_t total = 0;
  for (size_t k = 0; k < grads->size(); ++k) {
    torch::Tensor& g = (*grads)[k];
    if (!g.defined()) g = torch::zeros_like(params[k]);
    total += g.numel();
  }
  // One flat host buffer for one collective: [sum of numel] float32, the gradients in parameter order.
  std::vector<float> flat(static_cast<size_t>(total));
  int64_t at = 0;
  for (const torch::Tensor& g : *grads) {
    torch::Tensor host = g.detach().to(torch::kCPU, torch::kFloat32).contiguous();
    std::copy(host.data_ptr<float>(), host.data_ptr<float>() + host.numel(), flat.data() + at);
    at += host.numel();
  }
  ranks->sum(flat.data(), flat.size());
  at = 0;
  for (torch::Tensor& g : *grads) {
    torch::Tensor host = torch::from_blob(flat.data() + at, g.sizes(), torch::kFloat32);
    g = host.to(g.device(), g.scalar_type()).clone();
    at += g.numel();
  }
}

int64_t sum_count(RankGroup* ranks, int64_t count) {
  if (ranks == nullptr || ranks->size() == 1) return count;
  double value = static_cast<double>(count);  // exact below 2^53
  ranks->sum(&value, 1);
  return static_cast<int64_t>(value);
}

#ifdef NNCPP_GLOO
namespace {

class GlooGroup : public RankGroup {
 public:
  explicit GlooGroup(const RankSetup& setup) : rank_(setup.rank), size_(setup.size) {
    const auto timeout = std::chrono::milliseconds(static_cast<int64_t>(setup.timeout_seconds * 1000));
    try {
      c10::intrusive_ptr<c10d::Store> store;
      std::shared_ptr<::gloo::transport::Device> device;
      if (!setup.store_file.empty()) {
        store = c10::make_intrusive<c10d::FileStore>(setup.store_file, setup.size);
        device = c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1");
      } else {
        c10d::TCPStoreOptions options;
        options.port = setup.master_port;
        options.isServer = setup.serve_store;
        options.numWorkers = setup.size;
        options.timeout = timeout;
        store = c10::make_intrusive<c10d::TCPStore>(setup.master_addr, options);
        device = c10d::ProcessGroupGloo::createDefaultDevice();
      }
      store->setTimeout(timeout);
      auto options = c10d::ProcessGroupGloo::Options::create(timeout);
      options->devices.push_back(device);
      options->threads = 1;
      group_ = c10::make_intrusive<c10d::ProcessGroupGloo>(store, setup.rank, setup.size, options);
    } catch (const std::exception& e) {
      throw Error(ErrorCode::kIo, "the ranks could not meet: " + first_line(e.what()));
    }
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string backend() const override { return "gloo"; }

  void broadcast(std::vector<uint8_t>* bytes) override {
    std::vector<at::Tensor> length{torch::tensor({static_cast<int64_t>(bytes->size())}, torch::kInt64)};
    run("broadcast", [&] { return group_->broadcast(length); });
    bytes->resize(static_cast<size_t>(length[0].item<int64_t>()));
    if (bytes->empty()) return;
    std::vector<at::Tensor> data{
        torch::from_blob(bytes->data(), {static_cast<int64_t>(bytes->size())}, torch::kUInt8)};
    run("broadcast", [&] { return group_->broadcast(data); });
  }

  std::vector<std::vector<uint8_t>> gather(const std::vector<uint8_t>& bytes) override {
    // The sizes to everyone (so all ranks pad to the same length), then the padded bytes to rank 0.
    std::vector<int64_t> lengths = all_gather_lengths(static_cast<int64_t>(bytes.size()));
    const int64_t longest = std::max<int64_t>(1, *std::max_element(lengths.begin(), lengths.end()));
    torch::Tensor mine = torch::zeros({longest}, torch::kUInt8);
    std::copy(bytes.begin(), bytes.end(), mine.data_ptr<uint8_t>());
    std::vector<at::Tensor> input{mine};
    std::vector<std::vector<at::Tensor>> output;
    if (rank_ == 0) {
      output.resize(1);
      for (int r = 0; r < size_; ++r) output[0].push_back(torch::empty({longest}, torch::kUInt8));
    }
    c10d::GatherOptions options;
    options.rootRank = 0;
    run("gather", [&] { return group_->gather(output, input, options); });
    std::vector<std::vector<uint8_t>> out;
    if (rank_ != 0) return out;
    for (int r = 0; r < size_; ++r) {
      const uint8_t* p = output[0][r].data_ptr<uint8_t>();
      out.emplace_back(p, p + lengths[r]);
    }
    return out;
  }

  void sum(float* values, size_t count) override { sum_in_rank_order(values, count, torch::kFloat32); }
  void sum(double* values, size_t count) override { sum_in_rank_order(values, count, torch::kFloat64); }

 private:
  static std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }

  // Runs one collective and waits for it; a peer that died or timed out becomes Error(kIo).
  template <typename Start>
  void run(const char* what, Start start) {
    try {
      start()->wait();
    } catch (const std::exception& e) {
      throw Error(ErrorCode::kIo, std::string(what) +
                                      " between the ranks failed (another rank stopped or timed out): " +
                                      first_line(e.what()));
    }
  }

  std::vector<int64_t> all_gather_lengths(int64_t length) {
    std::vector<at::Tensor> input{torch::tensor({length}, torch::kInt64)};
    std::vector<std::vector<at::Tensor>> output(1);
    for (int r = 0; r < size_; ++r) output[0].push_back(torch::empty({1}, torch::kInt64));
    run("all-gather", [&] { return group_->allgather(output, input); });
    std::vector<int64_t> lengths;
    for (const at::Tensor& t : output[0]) lengths.push_back(t.item<int64_t>());
    return lengths;
  }

  template <typename T>
  void sum_in_rank_order(T* values, size_t count, torch::Dtype dtype) {
    if (count == 0) return;
    const int64_t n = static_cast<int64_t>(count);
    std::vector<at::Tensor> input{torch::from_blob(values, {n}, dtype)};
    std::vector<std::vector<at::Tensor>> output(1);
    for (int r = 0; r < size_; ++r) output[0].push_back(torch::empty({n}, dtype));
    run("all-gather", [&] { return group_->allgather(output, input); });
    // Element-wise additions in rank order.
    const T* first = output[0][0].data_ptr<T>();
    std::copy(first, first + n, values);
    for (int r = 1; r < size_; ++r) {
      const T* other = output[0][r].data_ptr<T>();
      for (int64_t i = 0; i < n; ++i) values[i] += other[i];
    }
  }

  int rank_, size_;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> group_;
};

}  // namespace

std::unique_ptr<RankGroup> make_gloo_group(const RankSetup& setup) {
  if (solo(setup)) return std::make_unique<SoloGroup>();
  return std::make_unique<GlooGroup>(setup);
}

#else

std::unique_ptr<RankGroup> make_gloo_group(const RankSetup& setup) {
  if (solo(setup)) return std::make_unique<SoloGroup>();
  throw Error(ErrorCode::kUsage, "this nncpp was built without Gloo (LibTorch's c10d and the gloo headers)");
}

#endif

}  // namespace nncpp
