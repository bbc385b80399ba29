// Several processes coding one file together (data parallelism over streams, docs/architecture.md,
// "Ranks"): rank r codes its share of every block's streams with its own replica of the model; after each
// segment the replicas' gradients are summed and every replica takes the same optimizer step. Rank 0 reads
// the input and writes the file; the other ranks get what they need from it through the group.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace nncpp {

// The processes of one run and the collectives the coding loop needs. Every rank makes the same calls in
// the same order. A rank that dies or stops answering makes the others' next call throw Error(kIo) within
// the group's timeout.
class RankGroup {
 public:
  virtual ~RankGroup() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual std::string backend() const = 0;  // "gloo"

  // Rank 0's *bytes to every rank (the others' *bytes is replaced).
  virtual void broadcast(std::vector<uint8_t>* bytes) = 0;
  // Every rank's bytes, in rank order, on rank 0; an empty list on the others.
  virtual std::vector<std::vector<uint8_t>> gather(const std::vector<uint8_t>& bytes) = 0;
  // Element-wise sums over the ranks, in place, added in rank order ((v0 + v1) + v2 ...): the same bits on
  // every rank and in every run.
  virtual void sum(float* values, size_t count) = 0;
  virtual void sum(double* values, size_t count) = 0;
};

// How a process finds the others.
struct RankSetup {
  int rank = 0;
  int size = 1;
  // One host: a file both can open (c10d FileStore), e.g. in a fresh temporary folder. Else empty and ...
  std::string store_file;
  // ... several hosts (torchrun's MASTER_ADDR, MASTER_PORT): a c10d TCPStore there, served by the rank
  // with serve_store (rank 0, unless the launcher serves it).
  std::string master_addr;
  uint16_t master_port = 0;
  bool serve_store = false;
  double timeout_seconds = 600;  // the longest any collective (and the rendezvous) may wait
};

// A Gloo process group (LibTorch c10d) over TCP; a group of one needs no store. Throws Error(kUsage) where
// LibTorch was built without Gloo, Error(kIo) when the rendezvous fails or times out.
std::unique_ptr<RankGroup> make_gloo_group(const RankSetup& setup);

}  // namespace nncpp
