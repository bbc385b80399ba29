#include "nncpp/engine.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "nncpp/checksum.h"
#include "nncpp/error.h"
#include "nncpp/quantize.h"
#include "nncpp/range_coder.h"

namespace nncpp {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

void check_cancel(const std::atomic<bool>* cancel) {
  if (cancel != nullptr && cancel->load(std::memory_order_relaxed))
    throw Error(ErrorCode::kInterrupted, "interrupted");
}

// Compressor side of code_block: the symbol is known, code it.
class EncodeSide {
 public:
  explicit EncodeSide(const uint16_t* symbols) : symbols_(symbols) {}
  uint16_t code(size_t pos, const uint32_t* cum, int /*vocab*/) {
    uint16_t s = symbols_[pos];
    encoder_.encode(cum[s], cum[s + 1] - cum[s]);
    return s;
  }
  void check_payload() const {}
  RangeEncoder& encoder() { return encoder_; }

 private:
  const uint16_t* symbols_;
  RangeEncoder encoder_;
};

// Decompressor side: the coder tells which symbol it was.
class DecodeSide {
 public:
  DecodeSide(const uint8_t* payload, size_t size) : decoder_(payload, size) {}
  uint16_t code(size_t /*pos*/, const uint32_t* cum, int vocab) {
    uint32_t s = find_symbol(cum, vocab, decoder_.target());
    decoder_.consume(cum[s], cum[s + 1] - cum[s]);
    return static_cast<uint16_t>(s);
  }
  // A valid payload never needs more than kMaxValidOverrun bytes past its end, at any point: reading further
  // means damage or a hostile symbol count, so stop now instead of running the model to the block's end.
  void check_payload() const {
    if (decoder_.overrun_bytes() > RangeDecoder::kMaxValidOverrun)
      throw Error(ErrorCode::kCorrupt, "file is corrupt (block payload ends before its symbols)");
  }
  const RangeDecoder& decoder() const { return decoder_; }

 private:
  RangeDecoder decoder_;
};

struct BlockProgress {
  const std::function<void(const ProgressInfo&)>* callback;
  ProgressInfo base;     // totals before this block
  uint64_t block_bytes;  // original bytes in this block (progress is reported pro rata)
};

// Codes one block of n symbols as B contiguous streams, T positions per segment, one training step after
// each segment. symbols[] is read (compress) or written (decompress) through side.code().
template <typename Side>
double code_block(Predictor& predictor, const Settings& settings, size_t n, Side& side, uint16_t* symbols,
                  const BlockProgress& progress, const std::atomic<bool>* cancel) {
  const int vocab = static_cast<int>(settings.model.vocab);
  const int streams = streams_for_block(n, settings);
  const size_t stream_len = (n + streams - 1) / streams;
  const int segment = static_cast<int>(settings.model.segment);

  std::vector<uint16_t> prev(streams, 0);
  std::vector<uint16_t> targets(static_cast<size_t>(segment) * streams);
  std::vector<uint8_t> mask(targets.size());
  std::vector<uint32_t> cum(vocab + 1);
  double model_bits = 0;
  std::vector<MatchHint> hints(streams);
  std::unique_ptr<MatchModel> matches;
  if (settings.codec.match_order > 0) {
    matches = std::make_unique<MatchModel>(settings.codec.match_order, settings.codec.match_hash_bits);
    matches->reset(symbols, n, stream_len, streams);
  }

  predictor.reset_streams(streams);
  for (size_t start = 0; start < stream_len; start += segment) {
    check_cancel(cancel);
    int steps = static_cast<int>(std::min<size_t>(segment, stream_len - start));
    for (int t = 0; t < steps; ++t) {
      if (matches) matches->predict(start + t, hints.data());
      const float* probs = predictor.step(prev.data(), matches ? hints.data() : nullptr);
      for (int b = 0; b < streams; ++b) {
        size_t pos = b * stream_len + start + t;
        bool live = start + t < stream_len && pos < n;
        size_t k = static_cast<size_t>(t) * streams + b;
        mask[k] = live;
        targets[k] = 0;
        if (!live) continue;
        const float* p = probs + static_cast<size_t>(b) * vocab;
        quantize(p, vocab, cum.data());
        uint16_t s = side.code(pos, cum.data(), vocab);
        symbols[pos] = s;
        targets[k] = s;
        prev[b] = s;
        model_bits -= std::log2(std::max(p[s], 1e-30f));
      }
      if (matches) matches->update(start + t);
    }
    side.check_payload();
    predictor.train(targets.data(), mask.data(), steps);
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

void write_raw(std::ostream& out, const std::vector<uint8_t>& raw) {
  out.write(reinterpret_cast<const char*>(raw.data()), static_cast<std::streamsize>(raw.size()));
  if (!out) throw Error(ErrorCode::kIo, "cannot write the output");
}

}  // namespace

int streams_for_block(uint64_t symbols, const Settings& settings) {
  uint64_t by_length = symbols / settings.codec.min_stream_symbols;
  return static_cast<int>(std::clamp<uint64_t>(by_length, 1, settings.model.streams));
}

Stats compress(std::istream& in, std::ostream& out, const CompressJob& job) {
  const Clock::time_point start = Clock::now();
  // Pass 1: the dictionary, from the leading bytes (kept for coding, so pipes work too).
  std::vector<uint8_t> ahead;
  Dictionary dictionary;
  if (job.tokenizer.max_vocab > 0) {
    read_more(in, &ahead, job.dictionary_sample_bytes);
    check_cancel(job.cancel);
    dictionary = build_dictionary(ahead.data(), ahead.size(), job.tokenizer);
    check_cancel(job.cancel);
  }
  Settings settings = job.settings;
  settings.model.vocab = static_cast<uint32_t>(dictionary.vocab_size());
  validate(settings);

  FileHeader header;
  header.settings = settings;
  if (!dictionary.empty()) header.dictionary = dictionary.serialize();
  header.fingerprint = job.backend->fingerprint(settings);
  header.original_size = job.size_hint;
  Stats stats;
  stats.output_bytes = write_file_header(out, header);
  std::unique_ptr<Predictor> predictor = job.backend->create(settings);

  stats.dictionary_bytes = header.dictionary.size();
  Crc32 total_crc;
  std::vector<uint8_t> raw;
  std::vector<uint16_t> symbols;
  ProgressInfo done;
  done.bytes_total = job.size_hint;
  BlockReader blocks(in, std::move(ahead), settings.codec.block_bytes);
  while (blocks.next(&raw)) {
    const Clock::time_point block_start = Clock::now();
    symbols.clear();
    dictionary.tokenize(raw.data(), raw.size(), &symbols);
    EncodeSide side(symbols.data());
    BlockProgress progress{&job.on_progress, done, raw.size()};
    double bits =
        code_block(*predictor, settings, symbols.size(), side, symbols.data(), progress, job.cancel);
    side.encoder().finish();

    BlockHeader block;
    block.raw_bytes = static_cast<uint32_t>(raw.size());
    block.symbols = static_cast<uint32_t>(symbols.size());
    block.payload_bytes = static_cast<uint32_t>(side.encoder().bytes().size());
    block.raw_crc = crc32_update(0, raw.data(), raw.size());
    block.payload_crc = crc32_update(0, side.encoder().bytes().data(), block.payload_bytes);
    stats.output_bytes += write_block(out, block, side.encoder().bytes().data());
    if (job.on_block)
      job.on_block(BlockInfo{stats.blocks, block.raw_bytes, block.symbols, block.payload_bytes,
                             streams_for_block(block.symbols, settings), bits, seconds_since(block_start)});

    total_crc.update(raw.data(), raw.size());
    stats.original_bytes += raw.size();
    stats.symbols += symbols.size();
    stats.model_bits += bits;
    stats.coded_bits += 8.0 * block.payload_bytes;
    stats.blocks += 1;
    done.bytes_done = stats.original_bytes;
    done.coded_bits = stats.model_bits;
  }
  if (job.size_hint != kUnknownSize && job.size_hint != stats.original_bytes)
    throw Error(ErrorCode::kIo, "input changed size while being compressed");
  stats.output_bytes += write_end(out, EndRecord{stats.original_bytes, total_crc.value()});
  out.flush();
  if (!out) throw Error(ErrorCode::kIo, "cannot write the compressed output");

  stats.input_bytes = stats.original_bytes;
  stats.settings = settings;
  stats.seconds = seconds_since(start);
  return stats;
}

Stats decompress(std::istream& in, std::ostream& out, const DecompressJob& job) {
  const Clock::time_point start = Clock::now();
  FileHeader header = read_file_header(in);
  const Settings& settings = header.settings;
  Fingerprint here;
  try {
    here = job.backend->fingerprint(settings);
  } catch (const Error& e) {  // e.g. a file made on cuda, read where there is no GPU
    throw Error(ErrorCode::kIncompatible, std::string("incompatible device: ") + e.what());
  }
  if (!job.ignore_fingerprint) check_fingerprint(header.fingerprint, here);
  Dictionary dictionary;
  if (!header.dictionary.empty())
    dictionary = Dictionary::deserialize(header.dictionary.data(), header.dictionary.size());
  if (settings.model.vocab != static_cast<uint32_t>(dictionary.vocab_size()))
    throw Error(ErrorCode::kCorrupt, "file is corrupt (vocabulary size does not match the dictionary)");
  std::unique_ptr<Predictor> predictor = job.backend->create(settings);

  Stats stats;
  stats.input_bytes = header.encoded_bytes + kEndRecordBytes;
  stats.dictionary_bytes = header.dictionary.size();
  Crc32 total_crc;
  BlockHeader block;
  EndRecord end;
  std::vector<uint8_t> payload;
  std::vector<uint8_t> raw;
  std::vector<uint16_t> symbols;
  ProgressInfo done;
  done.bytes_total = header.original_size;
  while (read_record(in, settings, &block, &payload, &end) == RecordTag::kBlock) {
    const Clock::time_point block_start = Clock::now();
    if (stats.original_bytes + block.raw_bytes > header.original_size)
      throw Error(ErrorCode::kCorrupt, "file is corrupt (more data than its header says)");
    // Without a dictionary every symbol is one byte: a hostile count must not cost memory or model time.
    if (dictionary.empty() && block.symbols != block.raw_bytes)
      throw Error(ErrorCode::kCorrupt, "file is corrupt (block symbol count differs from its size)");
    symbols.assign(block.symbols, 0);
    DecodeSide side(payload.data(), payload.size());
    BlockProgress progress{&job.on_progress, done, block.raw_bytes};
    double bits =
        code_block(*predictor, settings, symbols.size(), side, symbols.data(), progress, job.cancel);
    raw.clear();
    dictionary.detokenize(symbols.data(), symbols.size(), &raw, block.raw_bytes);
    if (raw.size() != block.raw_bytes || crc32_update(0, raw.data(), raw.size()) != block.raw_crc)
      throw Error(ErrorCode::kCorrupt, "file is corrupt (block " + std::to_string(stats.blocks + 1) +
                                           " does not decode to its checksum)");
    write_raw(out, raw);
    if (job.on_block)
      job.on_block(BlockInfo{stats.blocks, block.raw_bytes, block.symbols, block.payload_bytes,
                             streams_for_block(block.symbols, settings), bits, seconds_since(block_start)});

    total_crc.update(raw.data(), raw.size());
    stats.original_bytes += raw.size();
    stats.symbols += symbols.size();
    stats.model_bits += bits;
    stats.coded_bits += 8.0 * block.payload_bytes;
    stats.input_bytes += kBlockRecordBytes + block.payload_bytes;
    stats.blocks += 1;
    done.bytes_done = stats.original_bytes;
    done.coded_bits = stats.model_bits;
  }
  if (end.total_bytes != stats.original_bytes || end.total_crc != total_crc.value() ||
      (header.original_size != kUnknownSize && header.original_size != stats.original_bytes))
    throw Error(ErrorCode::kCorrupt, "file is corrupt (size or checksum of the whole differs)");
  if (in.peek() != std::char_traits<char>::eof())
    throw Error(ErrorCode::kCorrupt, "file is corrupt (data after the end record)");
  out.flush();
  if (!out) throw Error(ErrorCode::kIo, "cannot write the output");

  stats.output_bytes = stats.original_bytes;
  stats.settings = settings;
  stats.seconds = seconds_since(start);
  return stats;
}

}  // namespace nncpp
