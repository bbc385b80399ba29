#include "nncpp/engine.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <sys/resource.h>
#include <unistd.h>

#include "core/bit_mixer.h"
#include "core/byte_io.h"
#include "core/checksum.h"
#include "core/match_model.h"
#include "core/mixer.h"
#include "core/quantize.h"
#include "core/range_coder.h"
#include "core/rank_share.h"
#include "core/train_gate.h"
#include "core/x86_filter.h"
#include "nncpp/error.h"
#include "nncpp/presets.h"
#include "nncpp/ranks.h"

namespace nncpp {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// The memory this process can have: the machine's, or less under an address-space or data limit (ulimit).
uint64_t available_memory_bytes() {
  const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGESIZE);
  uint64_t bytes =
      pages > 0 && page > 0 ? static_cast<uint64_t>(pages) * static_cast<uint64_t>(page) : UINT64_MAX;
  for (int resource : {RLIMIT_AS, RLIMIT_DATA}) {
    struct rlimit limit;
    if (::getrlimit(resource, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY)
      bytes = std::min<uint64_t>(bytes, limit.rlim_cur);
  }
  return bytes;
}

std::string mebibytes(uint64_t bytes) {
  return std::to_string((bytes + (1u << 20) - 1) >> 20) + " MiB";
}

void check_cancel(const std::atomic<bool>* cancel) {
  if (cancel != nullptr && cancel->load(std::memory_order_relaxed))
    throw Error(ErrorCode::kInterrupted, "interrupted");
}

// Each stream of a block has its own range coder, so a decoder can ask a model on an accelerator for all
// streams' symbols at once (Predictor::device_find). The block payload is the streams' sizes (varints, the
// last one implied), then their bytes in stream order (docs/format.md, "Streams and the payload").

// Range of symbol s in the host distribution p (vocab floats), through the quantised table cum.
SymbolRange host_range(const float* p, int vocab, uint32_t s, uint32_t* cum) {
  quantize(p, vocab, cum);
  return SymbolRange{cum[s], cum[s + 1] - cum[s], p[s]};
}

// Compressor side of code_block: the symbols are known, code them. With coding off it only feeds the model
// (the decoder's replay of a stored block, which the model must still learn from to stay in step).
class EncodeSide {
 public:
  EncodeSide(const uint16_t* symbols, int streams, bool coding = true)
      : symbols_(symbols), encoders_(coding ? streams : 0), streams_(streams) {}

  // Codes position `at` of every live stream; pos[b] is its index in the block. Fills coded[b].
  void code(Predictor& predictor, const float* probs, int vocab, const uint8_t* live, const size_t* pos,
            uint32_t* cum, uint16_t* coded, SymbolRange* ranges) {
    const bool coding = !encoders_.empty();
    for (int b = 0; b < streams_; ++b) coded[b] = live[b] ? symbols_[pos[b]] : 0;
    if (probs == nullptr) predictor.device_ranges(coded, live, ranges);
    for (int b = 0; b < streams_; ++b) {
      if (!live[b]) continue;
      if (probs != nullptr) {  // else device_ranges() filled ranges[b]
        const float* p = probs + static_cast<size_t>(b) * vocab;
        // A replay needs only the probability (statistics, train gate), not the quantised table.
        ranges[b] = coding ? host_range(p, vocab, coded[b], cum) : SymbolRange{0, 0, p[coded[b]]};
      }
      if (coding) encoders_[b].encode(ranges[b].low, ranges[b].freq);
    }
  }
  // Codes stream b's symbol at pos as bits through the binary mixer; returns it and sets *prob to the
  // product of its bits' probabilities.
  uint16_t code_bits(int b, size_t pos, BitMixer& mixer, float* prob) {
    const uint16_t symbol = symbols_[pos];
    float p = 1.0f;
    for (int k = mixer.bits() - 1; k >= 0; --k) {
      const int bit = symbol >> k & 1;
      const uint32_t p1 = mixer.p1(b);
      if (p1 != 0) {
        const uint32_t one = p1 << (kFreqBits - 16);
        if (!encoders_.empty()) {
          if (bit)
            encoders_[b].encode(0, one);
          else
            encoders_[b].encode(one, kFreqTotal - one);
        }
        p *= bit ? static_cast<float>(p1) / 65536.0f : static_cast<float>(65536 - p1) / 65536.0f;
      }
      mixer.update(b, bit);
    }
    *prob = p;
    return symbol;
  }
  void check_payload() const {}

  // Finishes every stream and returns the block payload (docs/format.md, "Streams and the payload").
  std::vector<uint8_t> finish() {
    std::vector<std::vector<uint8_t>> streams;
    for (RangeEncoder& e : encoders_) {
      e.finish();
      streams.push_back(e.bytes());
    }
    return write_stream_table(streams);
  }

 private:
  const uint16_t* symbols_;
  std::vector<RangeEncoder> encoders_;
  int streams_;
};

// Decompressor side: the coders tell which symbols they were.
class DecodeSide {
 public:
  DecodeSide(const uint8_t* payload, size_t size, int streams) {
    for (const auto& [at, n] : parse_stream_table(payload, size, streams))
      decoders_.emplace_back(payload + at, n);
    targets_.resize(streams);
  }

  void code(Predictor& predictor, const float* probs, int vocab, const uint8_t* live, const size_t* /*pos*/,
            uint32_t* cum, uint16_t* coded, SymbolRange* ranges) {
    const int streams = static_cast<int>(decoders_.size());
    if (probs == nullptr) {
      for (int b = 0; b < streams; ++b) targets_[b] = live[b] ? decoders_[b].target() : 0;
      predictor.device_find(targets_.data(), live, coded, ranges);
    }
    for (int b = 0; b < streams; ++b) {
      if (!live[b]) {
        coded[b] = 0;
        continue;
      }
      if (probs != nullptr) {
        const float* p = probs + static_cast<size_t>(b) * vocab;
        quantize(p, vocab, cum);
        coded[b] = static_cast<uint16_t>(find_symbol(cum, vocab, decoders_[b].target()));
        ranges[b] = SymbolRange{cum[coded[b]], cum[coded[b] + 1] - cum[coded[b]], p[coded[b]]};
      } else if (coded[b] >= vocab || ranges[b].freq == 0) {
        throw Error(ErrorCode::kCorrupt, "file is corrupt (the model found no symbol)");
      }
      decoders_[b].consume(ranges[b].low, ranges[b].freq);
    }
  }

  uint16_t code_bits(int b, size_t /*pos*/, BitMixer& mixer, float* prob) {
    uint32_t symbol = 0;
    float p = 1.0f;
    for (int k = mixer.bits() - 1; k >= 0; --k) {
      const uint32_t p1 = mixer.p1(b);
      int bit = 0;
      if (p1 != 0) {
        const uint32_t one = p1 << (kFreqBits - 16);
        bit = decoders_[b].target() < one;
        if (bit)
          decoders_[b].consume(0, one);
        else
          decoders_[b].consume(one, kFreqTotal - one);
        p *= bit ? static_cast<float>(p1) / 65536.0f : static_cast<float>(65536 - p1) / 65536.0f;
      }
      symbol = symbol << 1 | bit;
      mixer.update(b, bit);
    }
    *prob = p;
    return static_cast<uint16_t>(symbol);
  }

  // A valid payload never needs more than kMaxValidOverrun bytes past a stream's end, at any point: reading
  // further means damage or a hostile symbol count, so stop now instead of running the model to the end.
  void check_payload() const {
    for (const RangeDecoder& d : decoders_)
      if (d.overrun_bytes() > RangeDecoder::kMaxValidOverrun)
        throw Error(ErrorCode::kCorrupt, "file is corrupt (block payload ends before its symbols)");
  }

 private:
  std::vector<RangeDecoder> decoders_;
  std::vector<uint32_t> targets_;
};

struct BlockProgress {
  const std::function<void(const ProgressInfo&)>* callback;
  ProgressInfo base;     // totals before this block
  uint64_t block_bytes;  // original bytes in this block (progress is reported pro rata)
};

// Retraining window (NNCP v3): for every stream the last `window` positions before `end` (fewer at the
// stream's start), as inputs/targets/mask [length][streams] for Predictor::retrain. Returns the length.
int gather_window(const uint16_t* symbols, size_t n, size_t stream_len, int streams, size_t end, int window,
                  std::vector<uint16_t>* inputs, std::vector<uint16_t>* targets, std::vector<uint8_t>* mask) {
  const int length = static_cast<int>(std::min<size_t>(window, end));
  const size_t first = end - length;
  inputs->assign(static_cast<size_t>(length) * streams, 0);
  targets->assign(inputs->size(), 0);
  mask->assign(inputs->size(), 0);
  for (int t = 0; t < length; ++t) {
    for (int b = 0; b < streams; ++b) {
      const size_t q = first + t, pos = b * stream_len + q, k = static_cast<size_t>(t) * streams + b;
      if (pos >= n) continue;
      (*targets)[k] = symbols[pos];
      (*inputs)[k] = q == 0 ? 0 : symbols[pos - 1];
      (*mask)[k] = 1;
    }
  }
  return length;
}

// Codes one block of n symbols as B contiguous streams, T positions per segment, one training step after
// each segment (unless the train gate skips it) and a retraining pass every retrain_period segments.
// symbols[] is read (compress) or written (decompress) through side.code().
// Adds the wall time of a phase to a profile (when there is one), after the device finished its work.
class PhaseTimer {
 public:
  PhaseTimer(Predictor& predictor, double* total) : predictor_(predictor), total_(total) {
    if (total_ != nullptr) start_ = Clock::now();
  }
  ~PhaseTimer() {
    if (total_ == nullptr) return;
    predictor_.synchronize();
    *total_ += seconds_since(start_);
  }
  PhaseTimer(const PhaseTimer&) = delete;
  PhaseTimer& operator=(const PhaseTimer&) = delete;

 private:
  Predictor& predictor_;
  double* total_;
  Clock::time_point start_;
};

// With several ranks this is one rank's share of the block (rank_share.h): symbols, n and the positions
// are the share's; the train gate then decides on every rank's coded loss.
// The context mixer of a block, in the symbol or the binary domain (at most one of them).
struct Mixers {
  std::unique_ptr<ContextMixer> symbol;
  std::unique_ptr<BitMixer> binary;
};

template <typename Side>
double code_block(Predictor& predictor, Mixers& mixers, const Settings& settings, const StreamShare& share,
                  Side& side, uint16_t* symbols, const BlockProgress& progress,
                  const std::atomic<bool>* cancel, Stats::Phases* profile, RankGroup* ranks) {
  // Each phase's share of the profile (nullptr when off).
  auto phase = [profile](double Stats::Phases::*field) { return profile ? &(profile->*field) : nullptr; };
  const int vocab = static_cast<int>(settings.model.vocab);
  const size_t n = share.symbols;
  const int streams = share.streams;
  const size_t stream_len = share.stream_len;
  const int segment = static_cast<int>(settings.model.segment);

  std::vector<uint16_t> prev(streams, 0);
  std::vector<uint16_t> targets(static_cast<size_t>(segment) * streams);
  std::vector<uint8_t> mask(targets.size());
  std::vector<uint32_t> cum(vocab + 1);
  std::vector<uint8_t> live(streams);
  std::vector<size_t> pos(streams);
  std::vector<uint16_t> coded(streams);
  std::vector<SymbolRange> ranges(streams);
  double model_bits = 0;
  std::vector<MatchHint> hints(streams);
  TrainGate gate(settings.model);
  const uint32_t retrain_period = settings.model.retrain_period;
  std::vector<uint16_t> window_inputs, window_targets;
  std::vector<uint8_t> window_mask;
  uint64_t segments = 0;
  std::unique_ptr<MatchModel> matches;
  if (settings.codec.match_order > 0) {
    matches = std::make_unique<MatchModel>(settings.codec.match_order, settings.codec.match_hash_bits);
    matches->reset(symbols, n, stream_len, streams);
  }
  std::unique_ptr<MatchModel> long_matches;
  std::vector<MatchHint> long_hints(streams);
  if (settings.codec.long_match_order > 0 && mixers.binary) {
    long_matches =
        std::make_unique<MatchModel>(settings.codec.long_match_order, settings.codec.match_hash_bits);
    long_matches->reset(symbols, n, stream_len, streams);
  }

  ContextMixer* mixer = mixers.symbol.get();
  BitMixer* bit_mixer = mixers.binary.get();
  if (bit_mixer != nullptr) bit_mixer->reset_streams(streams);
  std::vector<float> mixed;  // [streams][vocab]: the mixer's distributions
  if (mixer != nullptr) {
    mixed.resize(static_cast<size_t>(streams) * vocab);
    mixer->reset_streams(streams);
  }
  const MatchHint no_hint;

  predictor.reset_streams(streams);
  for (size_t start = 0; start < stream_len; start += segment) {
    check_cancel(cancel);
    int steps = static_cast<int>(std::min<size_t>(segment, stream_len - start));
    double segment_bits = 0;
    int64_t segment_symbols = 0;
    for (int t = 0; t < steps; ++t) {
      if (matches) matches->predict(start + t, hints.data());
      if (long_matches) long_matches->predict(start + t, long_hints.data());
      const float* probs = nullptr;
      {
        PhaseTimer timer(predictor, phase(&Stats::Phases::step));
        probs = predictor.step(prev.data(), matches ? hints.data() : nullptr);
      }
      for (int b = 0; b < streams; ++b) {
        pos[b] = b * stream_len + start + t;
        live[b] = start + t < stream_len && pos[b] < n;
      }
      if (mixer != nullptr) {
        PhaseTimer timer(predictor, phase(&Stats::Phases::mix));
        if (probs == nullptr)
          throw Error(ErrorCode::kUsage, "context mixing needs the model's distributions on the host");
        for (int b = 0; b < streams; ++b) {
          if (!live[b]) continue;
          const size_t at = static_cast<size_t>(b) * vocab;
          mixer->predict(b, probs + at, matches ? hints[b] : no_hint, mixed.data() + at);
        }
        probs = mixed.data();
      }
      if (bit_mixer != nullptr) {
        PhaseTimer timer(predictor, phase(&Stats::Phases::mix));
        if (probs == nullptr)
          throw Error(ErrorCode::kUsage, "context mixing needs the model's distributions on the host");
        for (int b = 0; b < streams; ++b) {
          if (!live[b]) continue;
          bit_mixer->begin(b, probs + static_cast<size_t>(b) * vocab, matches ? hints[b] : no_hint,
                           long_matches ? long_hints[b] : no_hint);
          coded[b] = side.code_bits(b, pos[b], *bit_mixer, &ranges[b].prob);
        }
      } else {
        PhaseTimer timer(predictor, phase(&Stats::Phases::code));
        side.code(predictor, probs, vocab, live.data(), pos.data(), cum.data(), coded.data(), ranges.data());
      }
      for (int b = 0; b < streams; ++b) {
        const size_t k = static_cast<size_t>(t) * streams + b;
        mask[k] = live[b];
        targets[k] = coded[b];
        if (!live[b]) continue;
        symbols[pos[b]] = coded[b];
        prev[b] = coded[b];
        segment_bits -= std::log2(std::max(ranges[b].prob, 1e-30f));
        ++segment_symbols;
      }
      if (mixer != nullptr) {
        PhaseTimer timer(predictor, phase(&Stats::Phases::mix));
        for (int b = 0; b < streams; ++b)
          if (live[b]) mixer->update(b, coded[b]);
      }
      if (matches) matches->update(start + t);
      if (long_matches) long_matches->update(start + t);
    }
    side.check_payload();
    model_bits += segment_bits;
    if (ranks != nullptr && ranks->size() > 1 && settings.model.train_max_skip > 0) {
      double loss[2] = {segment_bits, static_cast<double>(segment_symbols)};  // every rank's
      ranks->sum(loss, 2);
      segment_bits = loss[0];
      segment_symbols = static_cast<int64_t>(loss[1]);
    }
    {
      PhaseTimer timer(predictor, phase(&Stats::Phases::train));
      predictor.train(targets.data(), mask.data(), steps, gate.should_update(segment_bits, segment_symbols));
    }
    if (retrain_period > 0 && ++segments % retrain_period == 0) {
      PhaseTimer timer(predictor, phase(&Stats::Phases::retrain));
      int length = gather_window(symbols, n, stream_len, streams, start + steps,
                                 static_cast<int>(settings.model.retrain_window), &window_inputs,
                                 &window_targets, &window_mask);
      predictor.retrain(window_inputs.data(), window_targets.data(), window_mask.data(), length);
    }
    if (*progress.callback) {
      ProgressInfo info = progress.base;
      info.bytes_done += static_cast<uint64_t>(static_cast<double>(progress.block_bytes) *
                                               std::min<size_t>(start + steps, stream_len) / stream_len);
      info.coded_bits += model_bits;
      (*progress.callback)(info);
    }
  }
  return model_bits;
}

// Reads up to `limit` bytes and appends them to *buf; fewer only at the end of the input. Grows the buffer
// as data arrives, so a small input never costs a large allocation.
size_t read_more(std::istream& in, std::vector<uint8_t>* buf, size_t limit) {
  constexpr size_t kChunk = size_t{1} << 20;
  size_t start = buf->size();
  while (buf->size() - start < limit) {
    size_t old = buf->size();
    size_t want = std::min(kChunk, limit - (old - start));
    buf->resize(old + want);
    in.read(reinterpret_cast<char*>(buf->data() + old), static_cast<std::streamsize>(want));
    if (in.bad()) throw Error(ErrorCode::kIo, "cannot read the input");
    buf->resize(old + static_cast<size_t>(in.gcount()));
    if (static_cast<size_t>(in.gcount()) < want) break;
  }
  return buf->size() - start;
}

// The input as blocks: first the bytes read ahead for the dictionary, then the rest of the stream.
class BlockReader {
 public:
  BlockReader(std::istream& in, std::vector<uint8_t> ahead, size_t block_bytes)
      : in_(in), ahead_(std::move(ahead)), block_bytes_(block_bytes) {}
  // Fills *block with the next block; false at the end of the input.
  bool next(std::vector<uint8_t>* block) {
    block->clear();
    if (offset_ < ahead_.size()) {
      size_t take = std::min(block_bytes_, ahead_.size() - offset_);
      block->assign(ahead_.begin() + offset_, ahead_.begin() + offset_ + take);
      offset_ += take;
      if (offset_ == ahead_.size()) {  // all handed out: free it
        std::vector<uint8_t>().swap(ahead_);
        offset_ = 0;
      }
    }
    if (block->size() < block_bytes_) read_more(in_, block, block_bytes_ - block->size());
    return !block->empty();
  }

 private:
  std::istream& in_;
  std::vector<uint8_t> ahead_;
  size_t offset_ = 0;
  size_t block_bytes_;
};

// The bytes each symbol stands for, for the mixer's byte contexts.
// A block's symbols: its bytes through the codec's filter, then the dictionary. scratch holds the filtered
// copy (the raw bytes stay as they are: they are stored, written and checksummed).
void tokenize_block(const Dictionary& dictionary, const CodecSettings& codec, const uint8_t* raw, size_t size,
                    std::vector<uint16_t>* symbols, std::vector<uint8_t>* scratch) {
  symbols->clear();
  if (codec.filter == 0) {
    dictionary.tokenize(raw, size, symbols);
    return;
  }
  scratch->assign(raw, raw + size);
  x86_filter_encode(scratch->data(), scratch->size());
  dictionary.tokenize(scratch->data(), scratch->size(), symbols);
}

std::vector<std::vector<uint8_t>> symbol_bytes_of(const Dictionary& dictionary) {
  std::vector<std::vector<uint8_t>> bytes(dictionary.vocab_size());
  for (int s = 0; s < dictionary.vocab_size(); ++s) bytes[s] = dictionary.symbol_bytes(s);
  return bytes;
}

Mixers make_mixer(const Settings& settings, const std::vector<std::vector<uint8_t>>& symbol_bytes) {
  Mixers mixers;
  if (settings.mix.models == 0) return mixers;
  const int vocab = static_cast<int>(settings.model.vocab);
  if (settings.mix.binary)
    mixers.binary = std::make_unique<BitMixer>(settings.mix, vocab, &symbol_bytes);
  else
    mixers.symbol = std::make_unique<ContextMixer>(settings.mix, vocab, &symbol_bytes);
  return mixers;
}

void write_raw(std::ostream& out, const std::vector<uint8_t>& raw) {
  out.write(reinterpret_cast<const char*>(raw.data()), static_cast<std::streamsize>(raw.size()));
  if (!out) throw Error(ErrorCode::kIo, "cannot write the output");
}

// ---- one rank's share of a block, and the messages between ranks (include/nncpp/ranks.h) ----------------
//
// Rank 0 sends every rank each member's header and each block (broadcast); every rank codes its share of
// the block's streams (rank_share.h) and sends rank 0 a reply (gather): its model bits (f64), then its
// record (compressing) or its decoded symbols (u16 each, decoding). With one process the same functions
// code the whole block and send nothing.

enum RankMessage : uint8_t { kCompressMember = 1, kDecompressMember, kBlock, kEndMember, kDone };

// What this process codes its shares with.
struct ShareCoder {
  Predictor& predictor;
  Mixers& mixers;
  const Settings& settings;
  RankGroup* ranks;  // null: one process
  const std::atomic<bool>* cancel;
  Stats::Phases* profile;

  bool several() const { return ranks != nullptr && ranks->size() > 1; }
  StreamShare share(size_t n) const { return stream_share(n, settings, ranks ? ranks->rank() : 0); }
};

std::vector<uint8_t> rank_reply(double bits, const uint8_t* bytes, size_t size) {
  std::vector<uint8_t> reply(sizeof bits + size);
  std::memcpy(reply.data(), &bits, sizeof bits);
  if (size > 0) std::memcpy(reply.data() + sizeof bits, bytes, size);
  return reply;
}

double reply_bits(const std::vector<uint8_t>& reply) {
  double bits = 0;
  if (reply.size() < sizeof bits) throw Error(ErrorCode::kIo, "a rank sent a short reply");
  std::memcpy(&bits, reply.data(), sizeof bits);
  return bits;
}

// Compressing symbols[n]: every rank codes its share; rank 0 gets the payload (the ranks' records in rank
// order, docs/format.md "Ranks") and everyone's model bits in *bits.
std::vector<uint8_t> encode_block(const ShareCoder& c, uint16_t* symbols, size_t n,
                                  const BlockProgress& progress, double* bits) {
  const StreamShare share = c.share(n);
  EncodeSide side(symbols + share.first_symbol, share.streams);
  *bits = code_block(c.predictor, c.mixers, c.settings, share, side, symbols + share.first_symbol, progress,
                     c.cancel, c.profile, c.ranks);
  std::vector<uint8_t> record = side.finish();
  if (!c.several()) return record;
  std::vector<std::vector<uint8_t>> replies =
      c.ranks->gather(rank_reply(*bits, record.data(), record.size()));
  if (c.ranks->rank() != 0) return {};
  std::vector<std::vector<uint8_t>> records;
  *bits = 0;
  for (const std::vector<uint8_t>& reply : replies) {
    *bits += reply_bits(reply);
    records.emplace_back(reply.begin() + sizeof(double), reply.end());
  }
  return write_stream_table(records);
}

// A stored block: every rank's model learns from its share of symbols[n] without coding it. Returns the
// model bits of all ranks on rank 0.
double replay_block(const ShareCoder& c, uint16_t* symbols, size_t n, const BlockProgress& progress) {
  const StreamShare share = c.share(n);
  EncodeSide replay(symbols + share.first_symbol, share.streams, /*coding=*/false);
  double bits = code_block(c.predictor, c.mixers, c.settings, share, replay, symbols + share.first_symbol,
                           progress, c.cancel, c.profile, c.ranks);
  if (!c.several()) return bits;
  bits = 0;
  for (const std::vector<uint8_t>& reply : c.ranks->gather(rank_reply(bits, nullptr, 0)))
    bits += reply_bits(reply);
  return bits;
}

// Decoding a block of n symbols from its payload: every rank decodes its record; rank 0 gets all symbols in
// out[n] (the other ranks pass null) and everyone's model bits.
double decode_block(const ShareCoder& c, const uint8_t* payload, size_t size, size_t n, uint16_t* out,
                    const BlockProgress& progress) {
  const StreamShare share = c.share(n);
  std::vector<std::pair<size_t, size_t>> records{{0, size}};
  if (c.several()) records = parse_stream_table(payload, size, c.ranks->size());
  const auto [at, length] = records[c.several() ? c.ranks->rank() : 0];
  std::vector<uint16_t> local;
  uint16_t* mine = out != nullptr ? out + share.first_symbol : nullptr;
  if (mine == nullptr) {
    local.resize(share.symbols);
    mine = local.data();
  }
  DecodeSide side(payload + at, length, share.streams);
  double bits = code_block(c.predictor, c.mixers, c.settings, share, side, mine, progress, c.cancel,
                           c.profile, c.ranks);
  if (!c.several()) return bits;
  std::vector<std::vector<uint8_t>> replies = c.ranks->gather(
      rank_reply(bits, reinterpret_cast<const uint8_t*>(local.data()), local.size() * sizeof(uint16_t)));
  if (c.ranks->rank() != 0) return bits;
  bits = 0;
  for (int r = 0; r < c.ranks->size(); ++r) {
    bits += reply_bits(replies[r]);
    if (r == 0) continue;
    const StreamShare theirs = stream_share(n, c.settings, r);
    if (replies[r].size() != sizeof(double) + theirs.symbols * sizeof(uint16_t))
      throw Error(ErrorCode::kIo, "rank " + std::to_string(r) + " sent a reply of the wrong size");
    std::memcpy(out + theirs.first_symbol, replies[r].data() + sizeof(double),
                theirs.symbols * sizeof(uint16_t));
  }
  return bits;
}

// Rank 0: the start of a member, for the other ranks (kind, then the member's header as the file has it).
void announce_member(RankGroup* ranks, RankMessage kind, const uint8_t* header, size_t size) {
  if (ranks == nullptr || ranks->size() == 1) return;
  std::vector<uint8_t> message{kind};
  message.insert(message.end(), header, header + size);
  ranks->broadcast(&message);
}

// Rank 0: a block for the other ranks: u32 raw bytes, u32 symbols (0: stored or compressing), its bytes
// (compressing and stored: the original; else the payload).
void announce_block(RankGroup* ranks, uint32_t raw_bytes, uint32_t symbols, const uint8_t* data,
                    size_t size) {
  if (ranks == nullptr || ranks->size() == 1) return;
  std::vector<uint8_t> message{kBlock};
  ByteWriter w(&message);
  w.u32(raw_bytes);
  w.u32(symbols);
  w.bytes(data, size);
  ranks->broadcast(&message);
}

void end_member(RankGroup* ranks) {
  if (ranks == nullptr || ranks->size() == 1) return;
  std::vector<uint8_t> message{kEndMember};
  ranks->broadcast(&message);
}

// Everything that can refuse a member before it is decoded: the number of ranks, the memory it needs, then
// the fingerprint. Returns the settings to decode it with.
Settings check_member(const Member& member, const DecompressJob& job, uint64_t file_bytes) {
  const Settings& settings = member.header.settings;
  const uint32_t ranks = job.ranks != nullptr ? static_cast<uint32_t>(job.ranks->size()) : 1;
  if (settings.runtime.ranks != ranks)
    throw Error(ErrorCode::kIncompatible,
                "the file was made by " + std::to_string(settings.runtime.ranks) + " ranks" +
                    (settings.runtime.ranks > 1 ? " (" + settings.runtime.rank_backend + ")" : "") +
                    " and decodes only with as many (this run has " + std::to_string(ranks) +
                    "): use --ranks " + std::to_string(settings.runtime.ranks));
  // The memory before the fingerprint: it needs no backend (the tool loads LibTorch only for the latter).
  const uint64_t need = decoder_memory_bytes(member) + file_bytes;
  const uint64_t limit = job.memory_limit != 0 ? job.memory_limit : available_memory_bytes();
  if (need > limit)
    throw Error(
        ErrorCode::kOutOfMemory,
        "decoding needs about " + mebibytes(need) + " (" + model_kind_name(settings.model.kind) + " " +
            std::to_string(settings.model.layers) + "x" + std::to_string(settings.model.hidden) +
            ", vocabulary " + std::to_string(settings.model.vocab) + "), more than " +
            (job.memory_limit != 0 ? "the memory limit of " + mebibytes(limit) + " (--memlimit)"
                                   : "the " + mebibytes(limit) + " this process may use (--memlimit)"));
  Fingerprint here;
  try {
    here = job.backend->fingerprint(settings);
  } catch (const Error& e) {  // e.g. a file made on cuda, read where there is no GPU
    throw Error(ErrorCode::kIncompatible, std::string("incompatible device: ") + e.what());
  }
  if (!job.ignore_fingerprint) check_fingerprint(member.header.fingerprint, here, settings);
  return settings;
}

// Decodes one verified member block by block; each block is written only once its data check matched.
void decode_member(const uint8_t* file, const Member& member, const Settings& settings,
                   const DecompressJob& job, std::ostream& out, Stats* stats) {
  const FileHeader& header = member.header;
  Dictionary dictionary;
  if (!header.dictionary.empty())
    dictionary = Dictionary::deserialize(header.dictionary.data(), header.dictionary.size());
  std::unique_ptr<Predictor> predictor = job.backend->create(settings);
  const std::vector<std::vector<uint8_t>> symbol_bytes = symbol_bytes_of(dictionary);
  Mixers mixers = make_mixer(settings, symbol_bytes);
  const ShareCoder coder{*predictor, mixers,     settings,
                         job.ranks,  job.cancel, job.profile ? &stats->phases : nullptr};
  announce_member(job.ranks, kDecompressMember, file + member.begin, header.encoded_bytes);

  stats->dictionary_bytes += header.dictionary.size();
  Crc32 total_crc;
  std::vector<uint8_t> raw;
  std::vector<uint16_t> symbols;
  std::vector<uint8_t> filtered;
  ProgressInfo done;
  done.bytes_total = header.original_size;
  uint64_t member_bytes = 0;
  for (size_t index = 0; index < member.blocks.size(); ++index) {
    const BlockHeader& block = member.blocks[index].header;
    const uint8_t* payload = file + member.blocks[index].payload_at;
    const Clock::time_point block_start = Clock::now();
    const bool stored = block.symbols == 0;
    BlockProgress progress{&job.on_progress, done, block.raw_bytes};
    double bits = 0;
    uint64_t symbol_count = 0;
    if (stored) {  // the bytes are here; replay the model on them as the compressor ran it
      raw.assign(payload, payload + block.raw_bytes);
      if (crc32_update(total_crc.value(), raw.data(), raw.size()) != block.data_crc)
        throw Error(ErrorCode::kCorrupt, "file is corrupt (stored block " + std::to_string(index + 1) +
                                             " does not match its checksum)");
      announce_block(job.ranks, block.raw_bytes, 0, raw.data(), raw.size());
      tokenize_block(dictionary, settings.codec, raw.data(), raw.size(), &symbols, &filtered);
      bits = replay_block(coder, symbols.data(), symbols.size(), progress);
      symbol_count = symbols.size();
    } else {
      // Not zero-filled: the coder writes each position before anything reads it, so a block that claims
      // more symbols than its payload holds costs address space, not memory, until the payload runs out.
      std::unique_ptr<uint16_t[]> decoded(new uint16_t[block.symbols]);
      announce_block(job.ranks, block.raw_bytes, block.symbols, payload, block.payload_bytes);
      bits = decode_block(coder, payload, block.payload_bytes, block.symbols, decoded.get(), progress);
      raw.clear();
      dictionary.detokenize(decoded.get(), block.symbols, &raw, block.raw_bytes);
      if (settings.codec.filter != 0) x86_filter_decode(raw.data(), raw.size());
      symbol_count = block.symbols;
      if (raw.size() != block.raw_bytes ||
          crc32_update(total_crc.value(), raw.data(), raw.size()) != block.data_crc)
        throw Error(ErrorCode::kCorrupt, "file is corrupt (block " + std::to_string(index + 1) +
                                             " does not decode to its checksum)");
    }
    total_crc.update(raw.data(), raw.size());
    write_raw(out, raw);
    if (job.on_block)
      job.on_block(BlockInfo{stats->blocks, block.raw_bytes, symbol_count, block.payload_bytes,
                             streams_for_block(symbol_count, settings), bits, seconds_since(block_start)});
    member_bytes += raw.size();
    stats->original_bytes += raw.size();
    stats->symbols += symbol_count;
    stats->model_bits += bits;
    stats->coded_bits += 8.0 * block.payload_bytes;
    stats->blocks += 1;
    done.bytes_done = member_bytes;
    done.coded_bits += bits;
  }
  end_member(job.ranks);
}

}  // namespace

int streams_for_block(uint64_t symbols, const Settings& settings) {
  uint64_t by_length = symbols / settings.codec.min_stream_symbols;
  // At least one stream per rank (validate() keeps ranks <= streams).
  return static_cast<int>(std::clamp<uint64_t>(by_length, settings.runtime.ranks, settings.model.streams));
}

namespace {

// The job's settings as compress() codes with them before the dictionary: the ranks, then fitted to the size.
Settings fitted_settings(const CompressJob& job) {
  Settings settings = job.settings;
  if (job.ranks != nullptr && job.ranks->size() > 1) {  // before fitting: at least one stream per rank
    settings.runtime.ranks = static_cast<uint32_t>(job.ranks->size());
    settings.runtime.rank_backend = job.ranks->backend();
  }
  fit_to_input(&settings, job.size_hint);
  return settings;
}

// One pass over the input with `settings` (fitted_settings(job), perhaps with another stream count).
Stats compress_pass(std::istream& in, std::ostream& out, const CompressJob& job, Settings settings) {
  const Clock::time_point start = Clock::now();
  // A level fitted to a large input may ask for the tokenizer (presets.cpp, fit_to_input), if the
  // input's first bytes agree (fit_to_content).
  std::vector<uint8_t> ahead;
  if (settings.codec.max_vocab != job.settings.codec.max_vocab) {
    read_more(in, &ahead, std::min<uint64_t>(uint64_t{1} << 20, job.dictionary_sample_bytes));
    fit_to_content(&settings, ahead.data(), ahead.size());
  }
  TokenizerOptions tokenizer = job.tokenizer;
  if (settings.codec.max_vocab != job.settings.codec.max_vocab) {
    tokenizer.max_vocab = static_cast<int>(settings.codec.max_vocab);
    tokenizer.adaptive = true;
  }
  // Pass 1: the dictionary, from the leading bytes (kept for coding, so pipes work too).
  Dictionary dictionary;
  if (tokenizer.max_vocab > 0) {
    read_more(in, &ahead, job.dictionary_sample_bytes - ahead.size());  // ahead holds at most this
    check_cancel(job.cancel);
    dictionary = build_dictionary(ahead.data(), ahead.size(), tokenizer);
    check_cancel(job.cancel);
  }
  if (job.detect_filter && settings.codec.filter == 0) {
    if (ahead.size() < 4096) read_more(in, &ahead, 4096 - ahead.size());
    if (looks_like_x86(ahead.data(), ahead.size())) settings.codec.filter = 1;
  }
  settings.model.vocab = static_cast<uint32_t>(dictionary.vocab_size());
  validate(settings);

  FileHeader header;
  header.settings = settings;
  if (!dictionary.empty()) header.dictionary = dictionary.serialize();
  header.fingerprint = digest_fingerprint(job.backend->fingerprint(settings), settings);
  header.original_size = job.size_hint;
  const bool size_known = job.size_hint != kUnknownSize;
  uint32_t container_crc = 0;
  Stats stats;
  stats.output_bytes = write_file_header(out, header, &container_crc);
  std::unique_ptr<Predictor> predictor = job.backend->create(settings);
  const std::vector<std::vector<uint8_t>> symbol_bytes = symbol_bytes_of(dictionary);
  Mixers mixers = make_mixer(settings, symbol_bytes);
  const ShareCoder coder{*predictor, mixers,     settings,
                         job.ranks,  job.cancel, job.profile ? &stats.phases : nullptr};
  if (coder.several()) {
    std::ostringstream bytes;
    uint32_t unused = 0;
    write_file_header(bytes, header, &unused);
    const std::string text = bytes.str();
    announce_member(job.ranks, kCompressMember, reinterpret_cast<const uint8_t*>(text.data()), text.size());
  }

  stats.dictionary_bytes = header.dictionary.size();
  Crc32 total_crc;
  std::vector<uint8_t> raw;
  std::vector<uint16_t> symbols;
  std::vector<uint8_t> filtered;
  ProgressInfo done;
  done.bytes_total = job.size_hint;
  BlockReader blocks(in, std::move(ahead), settings.codec.block_bytes);
  while (blocks.next(&raw)) {
    const Clock::time_point block_start = Clock::now();
    announce_block(job.ranks, static_cast<uint32_t>(raw.size()), 0, raw.data(), raw.size());
    tokenize_block(dictionary, settings.codec, raw.data(), raw.size(), &symbols, &filtered);
    BlockProgress progress{&job.on_progress, done, raw.size()};
    double bits = 0;
    std::vector<uint8_t> payload = encode_block(coder, symbols.data(), symbols.size(), progress, &bits);
    payload.resize(std::max<size_t>(payload.size(), min_block_payload(symbols.size())), 0);
    // A block the model expands is stored instead (symbols = 0); the decoder still replays the model on it.
    const bool stored = payload.size() >= raw.size();
    if (stored) payload = raw;

    total_crc.update(raw.data(), raw.size());
    BlockHeader block;
    block.raw_bytes = static_cast<uint32_t>(raw.size());
    block.symbols = stored ? 0 : static_cast<uint32_t>(symbols.size());
    block.payload_bytes = static_cast<uint32_t>(payload.size());
    block.data_crc = total_crc.value();
    stats.output_bytes += write_block(out, block, payload.data(), size_known, &container_crc);
    if (job.on_block)
      job.on_block(BlockInfo{stats.blocks, block.raw_bytes, static_cast<uint32_t>(symbols.size()),
                             block.payload_bytes, streams_for_block(symbols.size(), settings), bits,
                             seconds_since(block_start)});

    stats.original_bytes += raw.size();
    stats.symbols += symbols.size();
    stats.model_bits += bits;
    stats.coded_bits += 8.0 * block.payload_bytes;
    stats.blocks += 1;
    done.bytes_done = stats.original_bytes;
    done.coded_bits = stats.model_bits;
  }
  end_member(job.ranks);
  if (size_known && job.size_hint != stats.original_bytes)
    throw Error(ErrorCode::kIo, "input changed size while being compressed");
  stats.output_bytes += write_member_end(out, size_known, container_crc);
  out.flush();
  if (!out) throw Error(ErrorCode::kIo, "cannot write the compressed output");

  stats.input_bytes = stats.original_bytes;
  stats.settings = settings;
  stats.seconds = seconds_since(start);
  return stats;
}

}  // namespace

Stats compress(std::istream& in, std::ostream& out, const CompressJob& job) {
  const Settings fitted = fitted_settings(job);
  const std::vector<ModelSettings> trials = model_trials(fitted, job.size_hint);
  if (trials.empty()) return compress_pass(in, out, job, fitted);
  // Small inputs (below 1 MiB): coded once per trial model in memory, the smallest file written. Progress
  // runs over all passes; the blocks of the pass kept are reported at the end.
  const Clock::time_point start = Clock::now();
  std::string input;
  {
    std::ostringstream all;
    all << in.rdbuf();
    if (in.bad()) throw Error(ErrorCode::kIo, "cannot read the input");
    input = all.str();
  }
  const uint64_t passes = trials.size() + 1;
  std::string best;
  Stats best_stats;
  std::vector<BlockInfo> best_blocks;
  Stats::Phases phases;
  for (uint64_t pass = 0; pass < passes; ++pass) {
    CompressJob one = job;
    std::vector<BlockInfo> blocks;
    one.on_block = [&blocks](const BlockInfo& block) { blocks.push_back(block); };
    if (job.on_progress)
      one.on_progress = [&job, pass, passes, size = input.size()](const ProgressInfo& p) {
        ProgressInfo all = p;
        all.bytes_done = pass * size + p.bytes_done;
        all.bytes_total = passes * size;
        job.on_progress(all);
      };
    Settings settings = fitted;
    if (pass > 0) settings.model = trials[pass - 1];
    std::istringstream from(input);
    std::ostringstream to;
    const Stats stats = compress_pass(from, to, one, settings);
    phases.step += stats.phases.step;
    phases.code += stats.phases.code;
    phases.train += stats.phases.train;
    phases.retrain += stats.phases.retrain;
    phases.mix += stats.phases.mix;
    std::string coded = to.str();
    if (pass == 0 || coded.size() < best.size()) {  // a tie keeps the earlier, fitted count
      best = std::move(coded);
      best_stats = stats;
      best_blocks = std::move(blocks);
    }
  }
  out.write(best.data(), static_cast<std::streamsize>(best.size()));
  out.flush();
  if (!out) throw Error(ErrorCode::kIo, "cannot write the compressed output");
  if (job.on_block)
    for (const BlockInfo& block : best_blocks) job.on_block(block);
  best_stats.phases = phases;
  best_stats.seconds = seconds_since(start);
  return best_stats;
}

Stats decompress(std::istream& in, std::ostream& out, const DecompressJob& job) {
  const Clock::time_point start = Clock::now();
  // The whole container is read and verified (every member's header, record layout, stream tables and
  // container check) before any model work, so damage anywhere is found in a fraction of a second and
  // nothing is written for a damaged, foreign or too large file, a concatenated one included.
  const std::vector<uint8_t> file = read_all(in);
  const std::vector<Member> members = parse_container(file.data(), file.size());
  std::vector<Settings> settings;
  for (const Member& m : members) settings.push_back(check_member(m, job, file.size()));

  Stats stats;
  stats.input_bytes = file.size();
  for (size_t i = 0; i < members.size(); ++i)
    decode_member(file.data(), members[i], settings[i], job, out, &stats);
  out.flush();
  if (!out) throw Error(ErrorCode::kIo, "cannot write the output");
  stats.output_bytes = stats.original_bytes;
  stats.settings = settings.back();
  stats.seconds = seconds_since(start);
  return stats;
}

void finish_ranks(RankGroup& ranks) {
  if (ranks.size() == 1) return;
  std::vector<uint8_t> message{kDone};
  ranks.broadcast(&message);
}

void serve_rank(RankGroup& ranks, const Backend& backend, const std::atomic<bool>* cancel) {
  std::vector<uint8_t> message;
  const std::function<void(const ProgressInfo&)> silent;
  const BlockProgress no_progress{&silent, ProgressInfo{}, 0};
  for (;;) {
    ranks.broadcast(&message);
    if (message.empty()) throw Error(ErrorCode::kIo, "rank 0 sent an empty message");
    if (message[0] == kDone) return;
    if (message[0] != kCompressMember && message[0] != kDecompressMember)
      throw Error(ErrorCode::kIo, "rank 0 sent an unexpected message");
    // A member: rank 0 has checked the file (decoding) or made the header (compressing).
    const FileHeader header = parse_file_header(message.data() + 1, message.size() - 1);
    const Settings& settings = header.settings;
    // Pins the thread count as rank 0 did; a host whose libraries or kernels differ refuses here.
    check_fingerprint(header.fingerprint, backend.fingerprint(settings), settings);
    if (settings.runtime.ranks != static_cast<uint32_t>(ranks.size()))
      throw Error(ErrorCode::kIncompatible,
                  "the member needs " + std::to_string(settings.runtime.ranks) + " ranks");
    Dictionary dictionary;
    if (!header.dictionary.empty())
      dictionary = Dictionary::deserialize(header.dictionary.data(), header.dictionary.size());
    std::unique_ptr<Predictor> predictor = backend.create(settings);
    const std::vector<std::vector<uint8_t>> symbol_bytes = symbol_bytes_of(dictionary);
    Mixers mixers = make_mixer(settings, symbol_bytes);
    const ShareCoder coder{*predictor, mixers, settings, &ranks, cancel, nullptr};
    const bool compressing = message[0] == kCompressMember;
    std::vector<uint16_t> symbols;
    std::vector<uint8_t> filtered;
    for (;;) {
      ranks.broadcast(&message);
      if (message.empty() || (message[0] != kBlock && message[0] != kEndMember))
        throw Error(ErrorCode::kIo, "rank 0 sent an unexpected message");
      if (message[0] == kEndMember) break;
      ByteReader r(message.data() + 1, message.size() - 1, "rank message");
      const uint32_t raw_bytes = r.u32(), coded_symbols = r.u32();
      const size_t size = r.remaining();
      const uint8_t* data = r.bytes(size);
      double bits = 0;
      if (coded_symbols != 0) {
        decode_block(coder, data, size, coded_symbols, nullptr, no_progress);
        continue;
      }
      if (size != raw_bytes) throw Error(ErrorCode::kIo, "rank 0 sent a block of the wrong size");
      tokenize_block(dictionary, settings.codec, data, size, &symbols, &filtered);
      if (compressing)
        encode_block(coder, symbols.data(), symbols.size(), no_progress, &bits);
      else
        replay_block(coder, symbols.data(), symbols.size(), no_progress);
    }
  }
}

}  // namespace nncpp
