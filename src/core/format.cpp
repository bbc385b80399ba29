#include "nncpp/format.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "core/byte_io.h"
#include "core/checksum.h"
#include "nncpp/error.h"

namespace nncpp {
namespace {

size_t write_all(std::ostream& out, const std::vector<uint8_t>& bytes) {
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw Error(ErrorCode::kIo, "cannot write the compressed output");
  return bytes.size();
}

// Reads exactly n bytes; running out means the file is truncated.
void read_exact(std::istream& in, uint8_t* dst, size_t n, const char* what) {
  in.read(reinterpret_cast<char*>(dst), static_cast<std::streamsize>(n));
  if (static_cast<size_t>(in.gcount()) == n) return;
  if (in.bad()) throw Error(ErrorCode::kIo, "cannot read the input");
  throw Error(ErrorCode::kCorrupt, std::string("file is truncated (in the ") + what + ")");
}

void append_crc(std::vector<uint8_t>* bytes) {
  ByteWriter(bytes).u32(crc32_update(0, bytes->data(), bytes->size()));
}

void check_crc(const uint8_t* data, size_t n, uint32_t stored, const char* what) {
  if (crc32_update(0, data, n) != stored)
    throw Error(ErrorCode::kCorrupt, std::string("file is corrupt (") + what + " checksum mismatch)");
}

void write_settings(ByteWriter& w, const Settings& s) {
  const ModelSettings& m = s.model;
  w.u8(s.level);
  w.u8(static_cast<uint8_t>(m.kind));
  w.u16(0);  // reserved
  w.u32(m.vocab);
  w.u32(m.layers);
  w.u32(m.hidden);
  w.u32(m.embed);
  w.u32(m.streams);
  w.u32(m.segment);
  w.f32(m.lr);
  w.f32(m.lr_floor);
  w.u32(m.lr_decay);
  w.f32(m.beta2);
  w.f32(m.adam_eps);
  w.f32(m.grad_clip);
  w.u64(m.seed);
  w.u32(m.heads);
  w.u32(m.ff);
  w.u32(m.memory);
  w.u32(m.group);
  w.u32(m.retrain_period);
  w.u32(m.retrain_window);
  w.f32(m.retrain_lr);
  w.f32(m.dropout);
  w.u32(m.train_max_skip);
  w.f32(m.train_margin);
  w.u32(s.codec.block_bytes);
  w.u32(s.codec.min_stream_symbols);
  w.u32(s.codec.match_order);
  w.u32(s.codec.match_hash_bits);
  w.u32(s.mix.models);
  w.u32(s.mix.table_bits);
  w.u32(s.mix.count_limit);
  w.f32(s.mix.lr);
  w.f32(s.mix.initial_weight);
  w.f32(s.mix.escape);
  w.u32(s.runtime.threads);
  w.short_string(s.runtime.device);
  w.short_string(s.runtime.dtype);
}

Settings read_settings(ByteReader& r) {
  Settings s;
  ModelSettings& m = s.model;
  s.level = r.u8();
  m.kind = static_cast<ModelKind>(r.u8());
  if (r.u16() != 0) throw Error(ErrorCode::kIncompatible, "file uses reserved header fields (newer nncpp?)");
  m.vocab = r.u32();
  m.layers = r.u32();
  m.hidden = r.u32();
  m.embed = r.u32();
  m.streams = r.u32();
  m.segment = r.u32();
  m.lr = r.f32();
  m.lr_floor = r.f32();
  m.lr_decay = r.u32();
  m.beta2 = r.f32();
  m.adam_eps = r.f32();
  m.grad_clip = r.f32();
  m.seed = r.u64();
  m.heads = r.u32();
  m.ff = r.u32();
  m.memory = r.u32();
  m.group = r.u32();
  m.retrain_period = r.u32();
  m.retrain_window = r.u32();
  m.retrain_lr = r.f32();
  m.dropout = r.f32();
  m.train_max_skip = r.u32();
  m.train_margin = r.f32();
  s.codec.block_bytes = r.u32();
  s.codec.min_stream_symbols = r.u32();
  s.codec.match_order = r.u32();
  s.codec.match_hash_bits = r.u32();
  s.mix.models = r.u32();
  s.mix.table_bits = r.u32();
  s.mix.count_limit = r.u32();
  s.mix.lr = r.f32();
  s.mix.initial_weight = r.f32();
  s.mix.escape = r.f32();
  s.runtime.threads = r.u32();
  s.runtime.device = r.short_string();
  s.runtime.dtype = r.short_string();
  return s;
}

}  // namespace

void ByteWriter::short_string(const std::string& s) {
  if (s.size() > 255) throw Error(ErrorCode::kUsage, "header string longer than 255 bytes: " + s);
  u8(static_cast<uint8_t>(s.size()));
  bytes(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

size_t write_file_header(std::ostream& out, const FileHeader& header) {
  if (header.dictionary.size() > kMaxDictionaryBytes)
    throw Error(ErrorCode::kUsage, "dictionary too large for the format");
  std::vector<uint8_t> body;
  ByteWriter w(&body);
  write_settings(w, header.settings);
  w.u64(header.original_size);
  if (header.fingerprint.size() > 255) throw Error(ErrorCode::kUsage, "fingerprint has too many fields");
  w.u8(static_cast<uint8_t>(header.fingerprint.size()));
  for (const FingerprintField& f : header.fingerprint) {
    w.short_string(f.name);
    w.short_string(f.value);
  }
  w.u32(static_cast<uint32_t>(header.dictionary.size()));
  w.bytes(header.dictionary.data(), header.dictionary.size());

  std::vector<uint8_t> bytes(kMagic.begin(), kMagic.end());
  ByteWriter head(&bytes);
  head.u16(kFormatVersion);
  head.u16(0);  // flags, reserved
  head.u32(static_cast<uint32_t>(body.size()));
  head.bytes(body.data(), body.size());
  append_crc(&bytes);
  return write_all(out, bytes);
}

FileHeader read_file_header(std::istream& in) {
  std::vector<uint8_t> bytes(kMagic.size() + 8);
  in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  size_t got = static_cast<size_t>(in.gcount());
  if (in.bad()) throw Error(ErrorCode::kIo, "cannot read the input");
  if (got < kMagic.size() || !std::equal(kMagic.begin(), kMagic.end(), bytes.begin()))
    throw Error(ErrorCode::kNotNncpp, "not an nncpp file (bad magic number)");
  if (got < bytes.size()) throw Error(ErrorCode::kCorrupt, "file is truncated (in the file header)");

  ByteReader fixed(bytes.data() + kMagic.size(), 8, "file header");
  uint16_t version = fixed.u16();
  uint16_t flags = fixed.u16();
  uint32_t body_size = fixed.u32();
  if (version != kFormatVersion)
    throw Error(ErrorCode::kIncompatible, "file format version " + std::to_string(version) +
                                              " is not supported (this nncpp reads version " +
                                              std::to_string(kFormatVersion) + ")");
  if (flags != 0) throw Error(ErrorCode::kIncompatible, "file uses unknown header flags (newer nncpp?)");
  if (body_size > kMaxHeaderBytes)
    throw Error(ErrorCode::kCorrupt, "file is corrupt (header size too large)");

  bytes.resize(bytes.size() + body_size + 4);
  read_exact(in, bytes.data() + kMagic.size() + 8, body_size + 4, "file header");
  size_t crc_at = bytes.size() - 4;
  check_crc(bytes.data(), crc_at, ByteReader(bytes.data() + crc_at, 4, "header").u32(), "header");

  ByteReader r(bytes.data() + kMagic.size() + 8, body_size, "file header");
  FileHeader header;
  header.settings = read_settings(r);
  header.original_size = r.u64();
  int fields = r.u8();
  for (int i = 0; i < fields; ++i) {
    FingerprintField f;
    f.name = r.short_string();
    f.value = r.short_string();
    header.fingerprint.push_back(std::move(f));
  }
  uint32_t dictionary_size = r.u32();
  if (dictionary_size > kMaxDictionaryBytes)
    throw Error(ErrorCode::kCorrupt, "file is corrupt (dictionary size)");
  const uint8_t* dictionary = r.bytes(dictionary_size);
  header.dictionary.assign(dictionary, dictionary + dictionary_size);
  if (r.remaining() != 0) throw Error(ErrorCode::kCorrupt, "file is corrupt (header has trailing bytes)");
  header.encoded_bytes = bytes.size();
  try {
    validate(header.settings);
  } catch (const Error& e) {
    throw Error(ErrorCode::kCorrupt, std::string("file is corrupt (") + e.what() + ")");
  }
  return header;
}

uint64_t max_block_symbols(uint64_t raw_bytes) {
  return 2 * raw_bytes + 16;
}

size_t write_block(std::ostream& out, const BlockHeader& block, const uint8_t* payload) {
  std::vector<uint8_t> bytes;
  ByteWriter w(&bytes);
  w.u8(static_cast<uint8_t>(RecordTag::kBlock));
  w.u32(block.raw_bytes);
  w.u32(block.symbols);
  w.u32(block.payload_bytes);
  w.u32(block.raw_crc);
  w.u32(block.payload_crc);
  append_crc(&bytes);
  w.bytes(payload, block.payload_bytes);
  return write_all(out, bytes);
}

size_t write_end(std::ostream& out, const EndRecord& end) {
  std::vector<uint8_t> bytes;
  ByteWriter w(&bytes);
  w.u8(static_cast<uint8_t>(RecordTag::kEnd));
  w.u64(end.total_bytes);
  w.u32(end.total_crc);
  append_crc(&bytes);
  return write_all(out, bytes);
}

RecordTag read_record(std::istream& in, const Settings& settings, BlockHeader* block,
                      std::vector<uint8_t>* payload, EndRecord* end) {
  uint8_t bytes[kBlockRecordBytes > kEndRecordBytes ? kBlockRecordBytes : kEndRecordBytes];
  read_exact(in, bytes, 1, "record tag");
  if (bytes[0] == static_cast<uint8_t>(RecordTag::kEnd)) {
    read_exact(in, bytes + 1, kEndRecordBytes - 1, "end record");
    ByteReader r(bytes + 1, kEndRecordBytes - 1, "end record");
    end->total_bytes = r.u64();
    end->total_crc = r.u32();
    check_crc(bytes, kEndRecordBytes - 4, r.u32(), "end record");
    return RecordTag::kEnd;
  }
  if (bytes[0] != static_cast<uint8_t>(RecordTag::kBlock))
    throw Error(ErrorCode::kCorrupt, "file is corrupt (unknown record tag)");

  read_exact(in, bytes + 1, kBlockRecordBytes - 1, "block record");
  ByteReader r(bytes + 1, kBlockRecordBytes - 1, "block record");
  block->raw_bytes = r.u32();
  block->symbols = r.u32();
  block->payload_bytes = r.u32();
  block->raw_crc = r.u32();
  block->payload_crc = r.u32();
  check_crc(bytes, kBlockRecordBytes - 4, r.u32(), "block record");
  // Even a hopeless model codes a symbol in at most 31 bits (frequencies are >= 1 of 2^31), hence 4 bytes
  // per symbol, plus per stream its size field and flush.
  // symbols = 0 marks a stored block: the payload is the raw bytes.
  const bool stored = block->symbols == 0;
  if (block->raw_bytes == 0 || block->raw_bytes > settings.codec.block_bytes ||
      block->symbols > max_block_symbols(block->raw_bytes) ||
      (stored && block->payload_bytes != block->raw_bytes) ||
      (!stored && block->payload_bytes > 4ull * block->symbols + 12ull * settings.model.streams + 64))
    throw Error(ErrorCode::kCorrupt, "file is corrupt (block sizes out of range)");
  // Read in chunks: a truncated file must not make us allocate the size it claims.
  constexpr size_t kChunk = size_t{1} << 20;
  payload->clear();
  while (payload->size() < block->payload_bytes) {
    size_t have = payload->size();
    size_t take = std::min<size_t>(kChunk, block->payload_bytes - have);
    payload->resize(have + take);
    read_exact(in, payload->data() + have, take, "block payload");
  }
  check_crc(payload->data(), payload->size(), block->payload_crc, "block payload");
  return RecordTag::kBlock;
}

void check_fingerprint(const Fingerprint& file, const Fingerprint& here) {
  for (const FingerprintField& f : file) {
    const FingerprintField* match = nullptr;
    for (const FingerprintField& h : here)
      if (h.name == f.name) match = &h;
    if (match == nullptr)
      throw Error(ErrorCode::kIncompatible,
                  "file needs '" + f.name + "' = '" + f.value + "', which this build does not know");
    if (match->value != f.value)
      throw Error(ErrorCode::kIncompatible, "incompatible " + f.name + ": file made with '" + f.value +
                                                "', this run has '" + match->value + "'");
  }
  for (const FingerprintField& h : here) {
    bool found = false;
    for (const FingerprintField& f : file) found = found || f.name == h.name;
    if (!found) throw Error(ErrorCode::kIncompatible, "file does not record " + h.name);
  }
}

}  // namespace nncpp
