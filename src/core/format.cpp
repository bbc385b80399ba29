#include "nncpp/format.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "core/byte_io.h"
#include "core/checksum.h"
#include "core/rank_share.h"
#include "nncpp/engine.h"
#include "nncpp/error.h"
#include "nncpp/presets.h"
#include "nncpp/tokenizer.h"

namespace nncpp {
namespace {

// ---- Descriptor byte (docs/format.md, "File header") ----
constexpr uint8_t kLevelMask = 0x0f;      // Settings::level, 0 = custom (a base level byte follows)
constexpr uint8_t kSizeKnown = 0x10;      // the original size follows
constexpr uint8_t kHasDictionary = 0x20;  // a dictionary follows
constexpr uint8_t kListsSettings = 0x40;  // settings that differ from the base level follow
constexpr uint8_t kReservedBits = 0x80;   // must be 0

// Format version 2 began with this 8-byte magic; its files are refused with a clear message.
constexpr uint8_t kVersion2Magic[8] = {0x89, 'N', 'N', 'C', 'P', 'P', '\r', '\n'};

// Smallest block record: symbols, payload size (one byte each), data check.
constexpr size_t kMinBlockRecordBytes = 1 + 1 + 4;
constexpr size_t kContainerCheckBytes = 2;

[[noreturn]] void corrupt(const std::string& why) {
  throw Error(ErrorCode::kCorrupt, "file is corrupt (" + why + ")");
}

// ---- Settings table: every setting the header can carry, one row each ----
// A row is a field id (stable: never reused), a name, and the field it reads and writes; the encoding
// follows from the field's type (put/get below). A new setting is a new row with a new id.

void put(ByteWriter& w, uint32_t v) {
  w.varint(v);
}
void put(ByteWriter& w, uint64_t v) {
  w.varint(v);
}
void put(ByteWriter& w, ModelKind v) {
  w.varint(static_cast<uint8_t>(v));
}
void put(ByteWriter& w, bool v) {
  w.varint(v ? 1 : 0);
}
void put(ByteWriter& w, float v) {
  w.f32(v);
}
void put(ByteWriter& w, const std::string& v) {
  if (v.size() > 255) throw Error(ErrorCode::kUsage, "setting longer than 255 bytes: " + v);
  w.varint(v.size());
  w.bytes(reinterpret_cast<const uint8_t*>(v.data()), v.size());
}

void get(ByteReader& r, uint32_t* v) {
  *v = static_cast<uint32_t>(r.varint(UINT32_MAX));
}
void get(ByteReader& r, uint64_t* v) {
  *v = r.varint();
}
void get(ByteReader& r, ModelKind* v) {
  *v = static_cast<ModelKind>(r.varint(255));
}
void get(ByteReader& r, bool* v) {
  *v = r.varint(1) != 0;
}
void get(ByteReader& r, float* v) {
  *v = r.f32();
}
void get(ByteReader& r, std::string* v) {
  const size_t n = r.varint(255);
  const uint8_t* p = r.bytes(n);
  v->assign(reinterpret_cast<const char*>(p), n);
}

// Equal as stored: floats by bit pattern, so every value round-trips exactly.
template <typename T>
bool same(const T& a, const T& b) {
  return a == b;
}
bool same(float a, float b) {
  return std::memcmp(&a, &b, sizeof a) == 0;
}

struct SettingRow {
  uint32_t id;
  const char* name;
  void (*write)(ByteWriter&, const Settings&);
  void (*read)(ByteReader&, Settings*);
  bool (*equal)(const Settings&, const Settings&);
};

template <auto Group, auto Field>
SettingRow row(uint32_t id, const char* name) {
  return {id, name, [](ByteWriter& w, const Settings& s) { put(w, (s.*Group).*Field); },
          [](ByteReader& r, Settings* s) { get(r, &((s->*Group).*Field)); },
          [](const Settings& a, const Settings& b) { return same((a.*Group).*Field, (b.*Group).*Field); }};
}

// Ids in increasing order. 1-31 model, 32-47 codec, 48-63 runtime, 64-95 reserved for context mixing.
const std::vector<SettingRow>& setting_rows() {
  using S = Settings;
  using M = ModelSettings;
  using C = CodecSettings;
  using R = RuntimeSettings;
  using X = MixSettings;
  static const std::vector<SettingRow> rows = {
      row<&S::model, &M::kind>(1, "model kind"),
      row<&S::model, &M::vocab>(2, "vocab"),
      row<&S::model, &M::layers>(3, "layers"),
      row<&S::model, &M::hidden>(4, "hidden"),
      row<&S::model, &M::embed>(5, "embed"),
      row<&S::model, &M::heads>(6, "heads"),
      row<&S::model, &M::ff>(7, "ff"),
      row<&S::model, &M::memory>(8, "memory"),
      row<&S::model, &M::group>(9, "group"),
      row<&S::model, &M::streams>(10, "streams"),
      row<&S::model, &M::segment>(11, "segment"),
      row<&S::model, &M::lr>(12, "lr"),
      row<&S::model, &M::lr_floor>(13, "lr floor"),
      row<&S::model, &M::lr_decay>(14, "lr decay"),
      row<&S::model, &M::beta2>(15, "beta2"),
      row<&S::model, &M::adam_eps>(16, "adam eps"),
      row<&S::model, &M::grad_clip>(17, "grad clip"),
      row<&S::model, &M::seed>(18, "seed"),
      row<&S::model, &M::retrain_period>(19, "retrain period"),
      row<&S::model, &M::retrain_window>(20, "retrain window"),
      row<&S::model, &M::retrain_lr>(21, "retrain lr"),
      row<&S::model, &M::dropout>(22, "dropout"),
      row<&S::model, &M::train_max_skip>(23, "train max skip"),
      row<&S::model, &M::train_margin>(24, "train margin"),
      row<&S::codec, &C::block_bytes>(32, "block bytes"),
      row<&S::codec, &C::min_stream_symbols>(33, "min stream symbols"),
      row<&S::codec, &C::match_order>(34, "match order"),
      row<&S::codec, &C::match_hash_bits>(35, "match hash bits"),
      row<&S::codec, &C::filter>(36, "filter"),
      row<&S::codec, &C::long_match_order>(37, "long match order"),
      row<&S::runtime, &R::threads>(48, "threads"),
      row<&S::runtime, &R::device>(49, "device"),
      row<&S::runtime, &R::dtype>(50, "dtype"),
      row<&S::runtime, &R::cuda_graphs>(51, "cuda graphs"),
      row<&S::runtime, &R::ranks>(52, "ranks"),
      row<&S::runtime, &R::rank_backend>(53, "rank backend"),
      row<&S::mix, &X::models>(64, "context models"),
      row<&S::mix, &X::table_bits>(65, "context table bits"),
      row<&S::mix, &X::count_limit>(66, "context count limit"),
      row<&S::mix, &X::lr>(67, "mixer lr"),
      row<&S::mix, &X::initial_weight>(68, "mixer initial weight"),
      row<&S::mix, &X::escape>(69, "context escape"),
      row<&S::mix, &X::binary>(70, "mixer binary domain"),
  };
  return rows;
}

const SettingRow* find_row(uint32_t id) {
  for (const SettingRow& r : setting_rows())
    if (r.id == id) return &r;
  return nullptr;
}

// Setting id 0, first in the list when present: the reference's model becomes the trial's of that number
// (model_trials, from 1), and the entries after it are relative to that. 3 bytes where the trial's network
// listed field by field took up to 17.
constexpr uint32_t kModelTrialId = 0;

// The model of trial `trial` (from 1) of the reference settings `s` (docs/format.md, "Settings").
ModelSettings trial_model(const Settings& s, uint64_t original_size, uint64_t trial) {
  const std::vector<ModelSettings> trials = model_trials(s, original_size);
  if (trial == 0 || trial > trials.size())
    corrupt("model trial " + std::to_string(trial) + " of " + std::to_string(trials.size()));
  return trials[trial - 1];
}

// The settings list: how `s` differs from `base`, preceded by the model trial `base` took (0: none).
std::vector<uint8_t> encode_settings(const Settings& s, const Settings& base, uint64_t trial = 0) {
  std::vector<uint8_t> entries;
  ByteWriter w(&entries);
  size_t count = 0;
  if (trial != 0) {
    w.varint(kModelTrialId);
    w.varint(trial);
    ++count;
  }
  for (const SettingRow& r : setting_rows()) {
    if (r.equal(s, base)) continue;
    w.varint(r.id);
    r.write(w, s);
    ++count;
  }
  std::vector<uint8_t> out;
  ByteWriter head(&out);
  if (count > 0) head.varint(count);
  head.bytes(entries.data(), entries.size());
  return out;
}

bool is_gpu_level(int level) {
  return level >= kMinGpuLevel && level <= kMaxGpuLevel;
}

// ---- Fingerprint digest ----

// Fingerprint fields that restate a setting the header already carries: equal by construction.
bool restates_setting(const std::string& name) {
  return name == "device" || name == "threads" || name == "dtype" || name == "cuda_graphs";
}

size_t digest_bytes(const Settings& s) {
  return s.runtime.device == "cpu" ? kFingerprintBytes : kGpuFingerprintBytes;
}

uint8_t field_hash(const FingerprintField& f) {
  uint32_t c = crc32_update(0, reinterpret_cast<const uint8_t*>(f.name.data()), f.name.size());
  const uint8_t zero = 0;
  c = crc32_update(c, &zero, 1);
  c = crc32_update(c, reinterpret_cast<const uint8_t*>(f.value.data()), f.value.size());
  return static_cast<uint8_t>(c ^ (c >> 8) ^ (c >> 16) ^ (c >> 24));
}

// ---- Output ----

size_t write_all(std::ostream& out, const std::vector<uint8_t>& bytes, uint32_t* container_crc) {
  *container_crc = crc32_update(*container_crc, bytes.data(), bytes.size());
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw Error(ErrorCode::kIo, "cannot write the compressed output");
  return bytes.size();
}

}  // namespace

void ByteWriter::short_string(const std::string& s) {
  if (s.size() > 255) throw Error(ErrorCode::kUsage, "header string longer than 255 bytes: " + s);
  u8(static_cast<uint8_t>(s.size()));
  bytes(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

std::vector<SettingInfo> setting_fields() {
  std::vector<SettingInfo> out;
  for (const SettingRow& r : setting_rows()) out.push_back({r.id, r.name});
  return out;
}

Settings reference_settings(int level, uint32_t vocab, uint64_t original_size) {
  Settings s;
  if (level != 0) {
    if (level < kMinLevel || level > kMaxGpuLevel)
      throw Error(ErrorCode::kIncompatible, "file uses level " + std::to_string(level) +
                                                ", which this nncpp does not know (made by a newer nncpp?)");
    s = preset(level);
    fit_to_input(&s, original_size);  // as the compressor fitted the level to the input
  }
  if (is_gpu_level(level)) {
    s.runtime.device = "cuda";
    s.runtime.dtype = "tf32";
  }
  s.model.vocab = vocab;
  return s;
}

FingerprintDigest digest_fingerprint(const Fingerprint& fingerprint, const Settings& settings) {
  FingerprintDigest digest(digest_bytes(settings), 0);
  size_t i = 0;
  for (const FingerprintField& f : fingerprint)
    if (!restates_setting(f.name)) digest[i++ % digest.size()] ^= field_hash(f);
  return digest;
}

void check_fingerprint(const FingerprintDigest& file, const Fingerprint& here, const Settings& settings) {
  const FingerprintDigest mine = digest_fingerprint(here, settings);
  if (file.size() != mine.size()) throw Error(ErrorCode::kIncompatible, "incompatible fingerprint size");
  for (size_t byte = 0; byte < mine.size(); ++byte) {
    if (file[byte] == mine[byte]) continue;
    std::string names, values;
    size_t i = 0;
    for (const FingerprintField& f : here) {
      if (restates_setting(f.name) || i++ % mine.size() != byte) continue;
      names += (names.empty() ? "" : " or ") + f.name;
      values += (values.empty() ? "" : ", ") + f.name + " '" + f.value + "'";
    }
    if (names.empty()) names = values = "a fingerprint field this nncpp does not have";
    throw Error(
        ErrorCode::kIncompatible,
        "incompatible " + names + ": the file was made with another value (this run has " + values + ")");
  }
}

size_t write_file_header(std::ostream& out, const FileHeader& header, uint32_t* container_crc) {
  const Settings& s = header.settings;
  if (header.dictionary.size() > kMaxDictionaryBytes)
    throw Error(ErrorCode::kUsage, "dictionary too large for the format");
  if (s.level > kMaxGpuLevel) throw Error(ErrorCode::kUsage, "level out of range for the format");
  if (header.fingerprint.size() != digest_bytes(s))
    throw Error(ErrorCode::kUsage, "fingerprint digest of the wrong size");
  // A file at a level lists only what differs from it; a custom file picks the base that lists least. The
  // vocabulary is listed only if it differs from the dictionary's.
  const uint32_t vocab = static_cast<uint32_t>(
      header.dictionary.empty()
          ? 256
          : Dictionary::deserialize(header.dictionary.data(), header.dictionary.size()).vocab_size());
  int base = s.level;
  std::vector<uint8_t> listed;
  const auto consider = [&](int level) {
    const Settings reference = reference_settings(level, vocab, header.original_size);
    const std::vector<ModelSettings> trials = model_trials(reference, header.original_size);
    for (size_t trial = 0; trial <= trials.size(); ++trial) {
      Settings from = reference;
      if (trial != 0) from.model = trials[trial - 1];
      std::vector<uint8_t> candidate = encode_settings(s, from, trial);
      if (level == s.level && trial == 0)
        listed = std::move(candidate);
      else if (candidate.size() < listed.size())
        base = level, listed = std::move(candidate);
    }
  };
  consider(s.level);
  if (s.level == 0)
    for (int level = kMinLevel; level <= kMaxGpuLevel; ++level) consider(level);
  std::vector<uint8_t> bytes(kMagic.begin(), kMagic.end());
  ByteWriter w(&bytes);
  w.u8(kFormatVersion);
  const bool size_known = header.original_size != kUnknownSize;
  w.u8(static_cast<uint8_t>(s.level | (size_known ? kSizeKnown : 0) |
                            (header.dictionary.empty() ? 0 : kHasDictionary) |
                            (listed.empty() ? 0 : kListsSettings)));
  if (s.level == 0) w.varint(static_cast<uint64_t>(base));
  if (size_known) w.varint(header.original_size);
  if (!header.dictionary.empty()) {
    w.varint(header.dictionary.size());
    w.bytes(header.dictionary.data(), header.dictionary.size());
  }
  w.bytes(listed.data(), listed.size());
  w.bytes(header.fingerprint.data(), header.fingerprint.size());
  return write_all(out, bytes, container_crc);
}

FileHeader parse_file_header(const uint8_t* data, size_t size) {
  if (size < kMagic.size() || !std::equal(kMagic.begin(), kMagic.end(), data))
    throw Error(ErrorCode::kNotNncpp, "not an nncpp file (bad magic number)");
  if (size >= sizeof kVersion2Magic && std::equal(kVersion2Magic, kVersion2Magic + 8, data))
    throw Error(ErrorCode::kIncompatible,
                "file format version 2 (nncpp 0.2 before the compact container) is not supported by this "
                "nncpp, which reads version " +
                    std::to_string(kFormatVersion) + "; decode it with the nncpp that made it");
  ByteReader r(data + kMagic.size(), size - kMagic.size(), "file header");
  const uint8_t version = r.u8();
  if (version != kFormatVersion)
    throw Error(ErrorCode::kIncompatible, "file format version " + std::to_string(version) +
                                              " is not supported (this nncpp reads version " +
                                              std::to_string(kFormatVersion) + ")");
  const uint8_t descriptor = r.u8();
  if (descriptor & kReservedBits)
    throw Error(ErrorCode::kIncompatible, "file uses a reserved header bit (made by a newer nncpp?)");
  FileHeader header;
  const int level = descriptor & kLevelMask;
  const int base = level != 0 ? level : static_cast<int>(r.varint(255));
  if (descriptor & kSizeKnown) {
    header.original_size = r.varint();
    if (header.original_size == kUnknownSize) r.corrupt("original size");
  }
  Dictionary dictionary;
  if (descriptor & kHasDictionary) {
    const size_t n = r.varint(kMaxDictionaryBytes);
    if (n == 0) r.corrupt("empty dictionary");
    const uint8_t* p = r.bytes(n);
    header.dictionary.assign(p, p + n);
    dictionary = Dictionary::deserialize(p, n);
    if (dictionary.empty()) r.corrupt("dictionary without symbols");
  }
  Settings& s = header.settings;
  s = reference_settings(base, static_cast<uint32_t>(dictionary.vocab_size()), header.original_size);
  s.level = static_cast<uint8_t>(level);
  if (descriptor & kListsSettings) {
    const size_t count = r.varint(kMaxSettingsListed);
    if (count == 0) r.corrupt("empty settings list");
    uint32_t last = 0;
    for (size_t i = 0; i < count; ++i) {
      const uint32_t id = static_cast<uint32_t>(r.varint(UINT32_MAX));
      if (id == kModelTrialId && i == 0) {
        Settings reference = s;
        reference.level = static_cast<uint8_t>(base);  // a custom file's trial is its base level's
        s.model = trial_model(reference, header.original_size, r.varint(UINT32_MAX));
        continue;
      }
      if (id <= last) r.corrupt("settings out of order");
      last = id;
      const SettingRow* row = find_row(id);
      if (row == nullptr)
        throw Error(ErrorCode::kIncompatible,
                    "file uses setting #" + std::to_string(id) +
                        ", which this nncpp does not know (made by a newer nncpp?)");
      row->read(r, &s);
    }
  }
  try {
    validate(s);
  } catch (const Error& e) {
    corrupt(e.what());
  }
  if (s.model.vocab != static_cast<uint32_t>(dictionary.vocab_size()))
    corrupt("vocabulary size does not match the dictionary");
  const uint8_t* digest = r.bytes(digest_bytes(s));
  header.fingerprint.assign(digest, digest + digest_bytes(s));
  header.encoded_bytes = static_cast<size_t>(r.position() - data);
  return header;
}

std::vector<uint8_t> read_all(std::istream& in) {
  std::vector<uint8_t> buf;
  for (;;) {
    // Grow with what arrived: 64 KiB first, then as much again as is already here.
    const size_t old = buf.size(), chunk = std::max<size_t>(64 << 10, old);
    buf.resize(old + chunk);
    in.read(reinterpret_cast<char*>(buf.data() + old), static_cast<std::streamsize>(chunk));
    if (in.bad()) throw Error(ErrorCode::kIo, "cannot read the input");
    buf.resize(old + static_cast<size_t>(in.gcount()));
    if (static_cast<size_t>(in.gcount()) < chunk) break;
  }
  buf.shrink_to_fit();
  return buf;
}

FileHeader read_file_header(std::istream& in) {
  // The largest header: descriptor, sizes, a full dictionary, every setting, a GPU digest.
  constexpr size_t kMaxHeaderBytes = kMaxDictionaryBytes + 64 * 1024;
  std::vector<uint8_t> buf;
  constexpr size_t kChunk = 64 * 1024;
  while (buf.size() < kMaxHeaderBytes) {
    const size_t old = buf.size();
    buf.resize(old + kChunk);
    in.read(reinterpret_cast<char*>(buf.data() + old), static_cast<std::streamsize>(kChunk));
    if (in.bad()) throw Error(ErrorCode::kIo, "cannot read the input");
    buf.resize(old + static_cast<size_t>(in.gcount()));
    if (static_cast<size_t>(in.gcount()) < kChunk) break;
  }
  return parse_file_header(buf.data(), buf.size());
}

size_t write_block(std::ostream& out, const BlockHeader& block, const uint8_t* payload, bool size_known,
                   uint32_t* container_crc) {
  std::vector<uint8_t> bytes;
  ByteWriter w(&bytes);
  if (!size_known) w.varint(block.raw_bytes);
  w.varint(block.symbols);
  w.varint(block.payload_bytes);
  w.u32(block.data_crc);
  w.bytes(payload, block.payload_bytes);
  return write_all(out, bytes, container_crc);
}

size_t write_member_end(std::ostream& out, bool size_known, uint32_t container_crc) {
  std::vector<uint8_t> bytes;
  ByteWriter w(&bytes);
  if (!size_known) w.varint(0);
  // The check covers every byte of the member before it, the zero above included.
  container_crc = crc32_update(container_crc, bytes.data(), bytes.size());
  w.u16(static_cast<uint16_t>(container_crc));
  uint32_t unused = 0;
  return write_all(out, bytes, &unused);
}

uint64_t max_block_symbols(uint64_t raw_bytes) {
  return 2 * raw_bytes + 16;
}

uint64_t max_block_payload(uint64_t symbols, int streams) {
  // Frequencies are >= 1 of 2^31: at most 31 bits a symbol; each stream flushes at most 5 bytes and its
  // size takes at most 5.
  return 4 * symbols + 10 * static_cast<uint64_t>(streams) + 16;
}

uint64_t min_block_payload(uint64_t symbols) {
  return symbols >> 16;
}

std::vector<uint8_t> write_stream_table(const std::vector<std::vector<uint8_t>>& streams) {
  std::vector<uint8_t> payload;
  ByteWriter w(&payload);
  for (size_t s = 0; s + 1 < streams.size(); ++s) w.varint(streams[s].size());
  for (const std::vector<uint8_t>& bytes : streams) w.bytes(bytes.data(), bytes.size());
  return payload;
}

std::vector<std::pair<size_t, size_t>> parse_stream_table(const uint8_t* payload, size_t size, int streams) {
  ByteReader r(payload, size, "stream table");
  std::vector<size_t> sizes(static_cast<size_t>(streams));
  uint64_t total = 0;
  for (int s = 0; s + 1 < streams; ++s) {
    sizes[s] = static_cast<size_t>(r.varint(size));
    total += sizes[s];
  }
  const size_t table = size - r.remaining();
  if (total > r.remaining()) corrupt("stream sizes exceed the block");
  sizes[streams - 1] = r.remaining() - static_cast<size_t>(total);
  std::vector<std::pair<size_t, size_t>> out;
  size_t at = table;
  for (size_t n : sizes) {
    out.emplace_back(at, n);
    at += n;
  }
  return out;
}

std::vector<Member> parse_container(const uint8_t* data, size_t size) {
  std::vector<Member> members;
  size_t at = 0;
  do {
    if (!members.empty() &&
        (size - at < kMagic.size() || !std::equal(kMagic.begin(), kMagic.end(), data + at)))
      corrupt("data after the end of the compressed data");
    Member m;
    m.begin = at;
    m.header = parse_file_header(data + at, size - at);
    const Settings& s = m.header.settings;
    const bool size_known = m.header.original_size != kUnknownSize;
    const bool bytes_only = m.header.dictionary.empty();
    ByteReader r(data + at + m.header.encoded_bytes, size - at - m.header.encoded_bytes, "block record");
    // With a known size the blocks follow from it: check that the file can hold them before walking them.
    uint64_t blocks_left = 0;
    if (size_known) {
      blocks_left = (m.header.original_size + s.codec.block_bytes - 1) / s.codec.block_bytes;
      if (blocks_left > r.remaining() / kMinBlockRecordBytes)
        corrupt("original size larger than the file can hold");
    }
    for (;;) {
      BlockRef b;
      const uint8_t* record = r.position();
      BlockHeader& h = b.header;
      if (size_known) {
        if (blocks_left == 0) break;
        --blocks_left;
        h.raw_bytes = static_cast<uint32_t>(
            std::min<uint64_t>(s.codec.block_bytes, m.header.original_size - m.original_bytes));
      } else {
        h.raw_bytes = static_cast<uint32_t>(r.varint(s.codec.block_bytes));
        if (h.raw_bytes == 0) break;  // the member's end
      }
      const std::string which = "block " + std::to_string(m.blocks.size() + 1);
      h.symbols = static_cast<uint32_t>(r.varint(max_block_symbols(h.raw_bytes)));
      const bool stored = h.symbols == 0;
      if (!stored && bytes_only && h.symbols != h.raw_bytes)
        corrupt(which + ": symbol count differs from its size");
      // With several ranks the payload is the ranks' records, each a stream table (one size more each).
      const int ranks = static_cast<int>(s.runtime.ranks);
      const int streams = stored ? 0 : streams_for_block(h.symbols, s) + (ranks > 1 ? ranks : 0);
      h.payload_bytes = static_cast<uint32_t>(r.varint(UINT32_MAX));
      if (stored ? h.payload_bytes != h.raw_bytes
                 : h.payload_bytes > max_block_payload(h.symbols, streams) ||
                       h.payload_bytes < min_block_payload(h.symbols))
        corrupt(which + ": payload size out of range");
      h.data_crc = r.u32();
      if (h.payload_bytes > r.remaining()) corrupt(which + ": payload runs past the end of the file");
      b.payload_at = static_cast<size_t>(r.position() - data);
      const uint8_t* payload = r.bytes(h.payload_bytes);
      if (!stored && ranks == 1) parse_stream_table(payload, h.payload_bytes, streams);
      if (!stored && ranks > 1) {
        const auto records = parse_stream_table(payload, h.payload_bytes, ranks);
        for (int rank = 0; rank < ranks; ++rank)
          parse_stream_table(payload + records[rank].first, records[rank].second,
                             stream_share(h.symbols, s, rank).streams);
      }
      b.record_bytes = static_cast<size_t>(r.position() - record);
      m.original_bytes += h.raw_bytes;
      m.blocks.push_back(b);
    }
    const size_t check_at = static_cast<size_t>(r.position() - data);
    const uint16_t check = r.u16();
    if (check != static_cast<uint16_t>(crc32_update(0, data + at, check_at - at)))
      corrupt("container check mismatch: damaged header or record");
    at = m.end = check_at + kContainerCheckBytes;
    members.push_back(std::move(m));
  } while (at < size);
  return members;
}

uint64_t decoder_memory_bytes(const Member& member) {
  const Settings& s = member.header.settings;
  uint64_t block = 0;
  for (const BlockRef& b : member.blocks) {
    // Raw bytes, and the symbols (2 bytes each): as many as coded, or for a stored block as many as the
    // tokenizer can make of it.
    const uint64_t symbols = b.header.symbols != 0 ? b.header.symbols : max_block_symbols(b.header.raw_bytes);
    block = std::max(block, b.header.raw_bytes + 2 * symbols);
  }
  const uint64_t table = uint64_t{4} << s.codec.match_hash_bits;
  const uint64_t match = (s.codec.match_order > 0 ? table : 0) +
                         (s.codec.long_match_order > 0 && s.mix.binary && s.mix.models != 0 ? table : 0);
  return model_memory_bytes(s) + match + block;
}

}  // namespace nncpp
