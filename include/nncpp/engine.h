// The coding loop: input blocks → symbols → B streams in lockstep → range coder, and back. Compressor and
// decompressor share one loop (code_block in engine.cpp); only "code a symbol" differs. Streams or memory
// buffers in, the same files out.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <istream>
#include <ostream>
#include <vector>

#include "nncpp/format.h"
#include "nncpp/predictor.h"
#include "nncpp/ranks.h"
#include "nncpp/settings.h"
#include "nncpp/tokenizer.h"

namespace nncpp {

struct Stats {
  uint64_t input_bytes = 0;
  uint64_t output_bytes = 0;
  uint64_t original_bytes = 0;  // uncompressed size (input when compressing, output when decompressing)
  uint64_t symbols = 0;
  uint64_t blocks = 0;
  uint64_t dictionary_bytes = 0;
  double model_bits = 0;  // sum of -log2 q(symbol) from the model's float probabilities
  double coded_bits = 0;  // range-coded payload bits
  double seconds = 0;
  Settings settings;  // what the file was (de)compressed with
  // With profile on: wall seconds in each phase of the coding loop, device work included (the loop waits
  // for the device after each phase, which costs a little speed).
  struct Phases {
    double step = 0;     // Predictor::step: the model's forward pass for one position
    double code = 0;     // range coding, device lookups of the symbols' ranges included
    double train = 0;    // Predictor::train
    double retrain = 0;  // Predictor::retrain
    double mix = 0;      // the context models and the mixer (host)
  } phases;
};

struct ProgressInfo {
  uint64_t bytes_done = 0;   // original bytes coded so far
  uint64_t bytes_total = 0;  // kUnknownSize when unknown
  double coded_bits = 0;     // model bits so far (bpb so far = coded_bits / bytes_done)
};

// One block, once coded (compressing) or decoded and verified (decompressing): for per-block logs.
struct BlockInfo {
  uint64_t index = 0;          // 0-based
  uint64_t raw_bytes = 0;      // original bytes
  uint64_t symbols = 0;        // symbols coded
  uint64_t payload_bytes = 0;  // range-coded bytes (bpb of the block = 8 * payload_bytes / raw_bytes)
  int streams = 0;             // streams the block was cut into
  double model_bits = 0;       // sum of -log2 q(symbol) over the block
  double seconds = 0;          // time spent on the block
};

struct CompressJob {
  Settings settings;  // settings.model.vocab is set from the dictionary
  const Backend* backend = nullptr;
  TokenizerOptions tokenizer;  // max_vocab 0 = bytes only
  // The dictionary is learnt from this many leading bytes of the input (bounds memory on huge inputs).
  uint64_t dictionary_sample_bytes = uint64_t{64} << 20;
  uint64_t size_hint = kUnknownSize;  // the input's size if known, stored in the header and checked
  // With settings.codec.filter 0: use the x86 filter if the input starts like an x86 executable.
  bool detect_filter = true;
  std::function<void(const ProgressInfo&)> on_progress;  // called a few times per block
  std::function<void(const BlockInfo&)> on_block;        // called after each block
  const std::atomic<bool>* cancel = nullptr;             // set → Error(kInterrupted) at the next segment
  bool profile = false;                                  // fill Stats::phases
  // Several processes (include/nncpp/ranks.h): this is rank 0, the others run serve_rank(); the backend
  // must sum its gradients over the same group (make_default_backend(ranks)). Null: one process.
  RankGroup* ranks = nullptr;
};

struct DecompressJob {
  const Backend* backend = nullptr;
  bool ignore_fingerprint = false;  // try to decode a file made elsewhere (may fail its checksums)
  // Memory decoding may use, in bytes (the model, its buffers and the compressed file, which is held in
  // memory); 0 = the machine's physical memory. A file that needs more is refused (kOutOfMemory).
  uint64_t memory_limit = 0;
  std::function<void(const ProgressInfo&)> on_progress;
  std::function<void(const BlockInfo&)> on_block;  // called after each block has matched its CRC
  const std::atomic<bool>* cancel = nullptr;
  bool profile = false;  // fill Stats::phases
  // Rank 0 of several (as CompressJob::ranks); a file needs as many ranks as made it (else kIncompatible).
  RankGroup* ranks = nullptr;
};

Stats compress(std::istream& in, std::ostream& out, const CompressJob& job);

// Reads and verifies the whole container first (all members of a concatenated file), then writes the
// original to `out` block by block, each block only after its data check matched.
Stats decompress(std::istream& in, std::ostream& out, const DecompressJob& job);

// The other ranks of a run with several (rank 1 and up): each codes its share of every block that rank 0's
// compress() or decompress() sends, with the same calls in the same order, until rank 0 calls
// finish_ranks(). Throws as those do, and Error(kIo) when a rank stops (the group's timeout).
void serve_rank(RankGroup& ranks, const Backend& backend, const std::atomic<bool>* cancel);
// Rank 0, after its last compress() or decompress(): ends the other ranks' serve_rank().
void finish_ranks(RankGroup& ranks);

// The same on memory: compresses or decompresses data[0, size) into a new buffer, with the job's settings,
// the same file format and the same errors as the stream functions above (nncpp::Error; std::bad_alloc when
// memory runs out). compress() stores `size` as the original size, whatever job.size_hint says. With
// `stats`, the run's statistics are written there.
std::vector<uint8_t> compress(const void* data, size_t size, const CompressJob& job, Stats* stats = nullptr);
std::vector<uint8_t> decompress(const void* data, size_t size, const DecompressJob& job,
                                Stats* stats = nullptr);

// Streams the block uses: as many as B, but each at least min_stream_symbols long (small inputs learn better
// from one long stream than from many short ones).
int streams_for_block(uint64_t symbols, const Settings& settings);

}  // namespace nncpp
