// The container (include/nncpp/format.h), format version 3: headers round trip through the settings table
// and the fingerprint digest; a preset file costs at most 24 bytes beyond its payload; every malformed
// input maps to the right ErrorCode; hostile sizes are rejected before anything is allocated.
#include "nncpp/format.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <new>
#include <random>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "core/byte_io.h"
#include "core/checksum.h"
#include "nncpp/engine.h"
#include "nncpp/error.h"
#include "nncpp/presets.h"
#include "nncpp/tokenizer.h"

// ---- allocation guard --------------------------------------------------------------------------------
// While a guard is armed, any single allocation above its limit throws std::bad_alloc instead of happening,
// so a test proves "rejected before allocating" without ever touching gigabytes.
namespace {
std::atomic<size_t> g_alloc_limit{0};  // 0 = no limit
std::atomic<size_t> g_largest_refused{0};

void* checked_alloc(size_t n) {
  size_t limit = g_alloc_limit.load(std::memory_order_relaxed);
  if (limit != 0 && n > limit) {
    g_largest_refused.store(n, std::memory_order_relaxed);
    throw std::bad_alloc();
  }
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
}  // namespace

void* operator new(size_t n) {
  return checked_alloc(n);
}
void* operator new[](size_t n) {
  return checked_alloc(n);
}
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete[](void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, size_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, size_t) noexcept {
  std::free(p);
}

namespace nncpp {
namespace {

class AllocationGuard {
 public:
  explicit AllocationGuard(size_t limit) {
    g_largest_refused = 0;
    g_alloc_limit = limit;
  }
  ~AllocationGuard() { g_alloc_limit = 0; }
  static size_t largest_refused() { return g_largest_refused; }
};

constexpr size_t kSmallAllocation = 8u << 20;  // the biggest honest allocation in these tests is ~4 MiB

// ---- helpers -----------------------------------------------------------------------------------------

// Every field of the settings table away from its default and from every level.
Settings custom_settings() {
  Settings s;
  s.level = 0;
  s.model.kind = ModelKind::kTransformer;
  s.model.vocab = 260;
  s.model.layers = 3;
  s.model.hidden = 76;
  s.model.embed = 13;
  s.model.heads = 2;
  s.model.ff = 99;
  s.model.memory = 17;
  s.model.group = 1;
  s.model.streams = 5;
  s.model.segment = 9;
  s.model.lr = 0.0123f;
  s.model.lr_floor = 0.00077f;
  s.model.lr_decay = 1234;
  s.model.beta2 = 0.9876f;
  s.model.adam_eps = 3.5e-7f;
  s.model.grad_clip = 0.625f;
  s.model.seed = 0x0123456789abcdefull;
  s.model.retrain_period = 3;
  s.model.retrain_window = 33;
  s.model.retrain_lr = 3e-4f;
  s.model.dropout = 0.125f;
  s.model.train_max_skip = 4;
  s.model.train_margin = 0.0625f;
  s.codec.block_bytes = 4096;
  s.codec.min_stream_symbols = 17;
  s.codec.match_order = 6;
  s.codec.match_hash_bits = 18;
  s.runtime.threads = 3;
  s.runtime.device = "cuda:1";
  s.runtime.dtype = "bfloat16";
  s.runtime.cuda_graphs = false;
  return s;
}

Fingerprint cpu_fingerprint(const std::string& libtorch = "1.13.0") {
  return {{"nncpp", "0.2.0"},   {"libtorch", libtorch},  {"device", "cpu"},           {"threads", "1"},
          {"dtype", "float32"}, {"cpu_kernels", "AVX2"}, {"blas", "openblas-Haswell"}};
}

std::vector<uint8_t> dictionary_bytes() {
  return Dictionary::from_strings({{'t', 'h', 'e'}, {'a', 'n', 'd'}}).serialize();
}

const uint8_t* bytes_of(const std::string& s) {
  return reinterpret_cast<const uint8_t*>(s.data());
}

std::string header_bytes(const FileHeader& h, uint32_t* crc = nullptr) {
  std::ostringstream out;
  uint32_t local = 0;
  size_t n = write_file_header(out, h, crc ? crc : &local);
  EXPECT_EQ(n, out.str().size());
  return out.str();
}

FileHeader level_header(int level, uint64_t size) {
  FileHeader h;
  h.settings = preset(level);
  fit_to_input(&h.settings, size);  // as compress() does
  h.fingerprint = digest_fingerprint(cpu_fingerprint(), h.settings);
  h.original_size = size;
  return h;
}

bool same_bits(float a, float b) {
  return std::memcmp(&a, &b, sizeof a) == 0;
}

void expect_same_settings(const Settings& a, const Settings& b) {
  EXPECT_EQ(a.level, b.level);
  const ModelSettings &m = a.model, &n = b.model;
  EXPECT_EQ(m.kind, n.kind);
  EXPECT_EQ(m.vocab, n.vocab);
  EXPECT_EQ(m.layers, n.layers);
  EXPECT_EQ(m.hidden, n.hidden);
  EXPECT_EQ(m.embed, n.embed);
  EXPECT_EQ(m.heads, n.heads);
  EXPECT_EQ(m.ff, n.ff);
  EXPECT_EQ(m.memory, n.memory);
  EXPECT_EQ(m.group, n.group);
  EXPECT_EQ(m.streams, n.streams);
  EXPECT_EQ(m.segment, n.segment);
  EXPECT_TRUE(same_bits(m.lr, n.lr));
  EXPECT_TRUE(same_bits(m.lr_floor, n.lr_floor));
  EXPECT_EQ(m.lr_decay, n.lr_decay);
  EXPECT_TRUE(same_bits(m.beta2, n.beta2));
  EXPECT_TRUE(same_bits(m.adam_eps, n.adam_eps));
  EXPECT_TRUE(same_bits(m.grad_clip, n.grad_clip));
  EXPECT_EQ(m.seed, n.seed);
  EXPECT_EQ(m.retrain_period, n.retrain_period);
  EXPECT_EQ(m.retrain_window, n.retrain_window);
  EXPECT_TRUE(same_bits(m.retrain_lr, n.retrain_lr));
  EXPECT_TRUE(same_bits(m.dropout, n.dropout));
  EXPECT_EQ(m.train_max_skip, n.train_max_skip);
  EXPECT_TRUE(same_bits(m.train_margin, n.train_margin));
  EXPECT_EQ(a.codec.block_bytes, b.codec.block_bytes);
  EXPECT_EQ(a.codec.min_stream_symbols, b.codec.min_stream_symbols);
  EXPECT_EQ(a.codec.match_order, b.codec.match_order);
  EXPECT_EQ(a.codec.match_hash_bits, b.codec.match_hash_bits);
  EXPECT_EQ(a.runtime.threads, b.runtime.threads);
  EXPECT_EQ(a.runtime.device, b.runtime.device);
  EXPECT_EQ(a.runtime.dtype, b.runtime.dtype);
  EXPECT_EQ(a.runtime.cuda_graphs, b.runtime.cuda_graphs);
}

// The code of the Error that f() throws; fails the test if it throws anything else or nothing.
template <typename F>
ErrorCode error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.code();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "threw a non-nncpp exception: " << e.what();
    return ErrorCode::kIo;
  }
  ADD_FAILURE() << "did not throw";
  return ErrorCode::kIo;
}

template <typename F>
std::string message_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "did not throw an nncpp::Error";
  return "";
}

ErrorCode header_error(const std::string& bytes) {
  return error_of([&] { parse_file_header(bytes_of(bytes), bytes.size()); });
}

ErrorCode container_error(const std::string& bytes) {
  return error_of([&] { parse_container(bytes_of(bytes), bytes.size()); });
}

// A member: header, then blocks of `data` cut at the settings' block size (coded blocks carry the bytes
// themselves as their single stream: the container does not look inside streams), then the end.
std::string member(const std::string& data, Settings settings, bool size_known, bool stored = false) {
  FileHeader h;
  h.original_size = size_known ? data.size() : kUnknownSize;
  fit_to_input(&settings, h.original_size);  // as compress() does
  h.settings = settings;
  h.fingerprint = digest_fingerprint(cpu_fingerprint(), settings);
  std::ostringstream out;
  uint32_t crc = 0;
  write_file_header(out, h, &crc);
  Crc32 data_crc;
  for (size_t at = 0; at < data.size(); at += settings.codec.block_bytes) {
    const std::string raw = data.substr(at, settings.codec.block_bytes);
    data_crc.update(bytes_of(raw), raw.size());
    BlockHeader b;
    b.raw_bytes = static_cast<uint32_t>(raw.size());
    b.symbols = stored ? 0 : b.raw_bytes;
    b.payload_bytes = b.raw_bytes;
    b.data_crc = data_crc.value();
    write_block(out, b, bytes_of(raw), size_known, &crc);
  }
  write_member_end(out, size_known, crc);
  return out.str();
}

Settings small_settings() {
  Settings s;
  s.codec.block_bytes = 1024;
  return s;
}

// Rewrites the member's container check (its last two bytes) after a deliberate edit, so the test reaches
// the check behind it.
void fix_container_check(std::string* file) {
  const uint32_t crc = crc32_update(0, bytes_of(*file), file->size() - 2);
  (*file)[file->size() - 2] = static_cast<char>(crc);
  (*file)[file->size() - 1] = static_cast<char>(crc >> 8);
}

// ---- varints -----------------------------------------------------------------------------------------

TEST(FormatVarint, RoundTripsAndRejectsOverlongAndOutOfRange) {
  for (uint64_t v : {uint64_t{0}, uint64_t{1}, uint64_t{127}, uint64_t{128}, uint64_t{16383}, uint64_t{16384},
                     uint64_t{1} << 32, UINT64_MAX}) {
    std::vector<uint8_t> bytes;
    ByteWriter(&bytes).varint(v);
    ByteReader r(bytes.data(), bytes.size(), "test");
    EXPECT_EQ(r.varint(), v);
    EXPECT_EQ(r.remaining(), 0u);
  }
  const uint8_t overlong[] = {0x81, 0x00};  // 1 with a needless zero byte
  EXPECT_EQ(error_of([&] { ByteReader(overlong, 2, "t").varint(); }), ErrorCode::kCorrupt);
  const uint8_t big[] = {0xff, 0xff, 0xff, 0xff, 0x10};  // 2^32 + ...
  EXPECT_EQ(error_of([&] { ByteReader(big, 5, "t").varint(UINT32_MAX); }), ErrorCode::kCorrupt);
  const uint8_t too_long[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f};
  EXPECT_EQ(error_of([&] { ByteReader(too_long, 10, "t").varint(); }), ErrorCode::kCorrupt);
  const uint8_t unterminated[] = {0x80, 0x80};
  EXPECT_EQ(error_of([&] { ByteReader(unterminated, 2, "t").varint(); }), ErrorCode::kCorrupt);
}

// ---- settings table and header round trips -----------------------------------------------------------

TEST(FormatSettings, TableIdsAreUniqueAndIncreasing) {
  const std::vector<SettingInfo> rows = setting_fields();
  ASSERT_GE(rows.size(), 30u);
  for (size_t i = 1; i < rows.size(); ++i) EXPECT_LT(rows[i - 1].id, rows[i].id) << rows[i].name;
}

TEST(FormatHeader, RoundTripsEverySettingDigestAndDictionary) {
  FileHeader h;
  h.settings = custom_settings();
  h.dictionary = dictionary_bytes();
  h.settings.model.vocab = 260;  // 258 + 2 learnt strings
  h.fingerprint = digest_fingerprint(cpu_fingerprint(), h.settings);
  EXPECT_EQ(h.fingerprint.size(), kGpuFingerprintBytes);  // device cuda:1
  h.original_size = 0x0123456789ull;
  const std::string bytes = header_bytes(h);
  FileHeader back = parse_file_header(bytes_of(bytes), bytes.size());
  expect_same_settings(back.settings, h.settings);
  EXPECT_EQ(back.fingerprint, h.fingerprint);
  EXPECT_EQ(back.dictionary, h.dictionary);
  EXPECT_EQ(back.original_size, h.original_size);
  EXPECT_EQ(back.encoded_bytes, bytes.size());
}

TEST(FormatHeader, EveryLevelRoundTripsWithoutListingSettings) {
  for (int level = kMinLevel; level <= kMaxGpuLevel; ++level) {
    SCOPED_TRACE("level " + std::to_string(level));
    FileHeader h = level_header(level, kUnknownSize);
    if (level >= kMinGpuLevel) {
      h.settings.runtime.device = "cuda";
      h.settings.runtime.dtype = "tf32";
      h.fingerprint = FingerprintDigest(kGpuFingerprintBytes, 7);
    }
    const std::string bytes = header_bytes(h);
    // magic 3, version, descriptor, digest
    EXPECT_EQ(bytes.size(), 3 + 1 + 1 + h.fingerprint.size());
    FileHeader back = parse_file_header(bytes_of(bytes), bytes.size());
    expect_same_settings(back.settings, h.settings);
    EXPECT_EQ(back.original_size, kUnknownSize);
  }
}

TEST(GpuLevels, CodeTheTokenizersSymbolsWithoutTheMixer) {
  // Their inputs are large and the network runs on the GPU: with the mixer every distribution would
  // cross to the host (they start from level 9's settings, which mix over bytes).
  for (int level = kMinGpuLevel; level <= kMaxGpuLevel; ++level) {
    SCOPED_TRACE("level " + std::to_string(level));
    const Settings s = preset(level);
    EXPECT_EQ(s.mix.models, 0u);
    EXPECT_EQ(s.codec.max_vocab, 16384u);
    Settings fitted = s;
    fit_to_input(&fitted, 100 << 10);
    EXPECT_EQ(fitted.mix.models, 0u);
    EXPECT_EQ(fitted.codec.max_vocab, 16384u);
  }
}

TEST(FormatHeader, ListsOnlyTheSettingsThatDifferFromTheLevel) {
  FileHeader h = level_header(5, 100);
  const size_t plain = header_bytes(h).size();
  h.settings.runtime.threads = 2;  // a run-time setting: the level stays 5
  const std::string bytes = header_bytes(h);
  EXPECT_EQ(bytes.size(), plain + 3);  // count, id, value
  FileHeader back = parse_file_header(bytes_of(bytes), bytes.size());
  expect_same_settings(back.settings, h.settings);
  EXPECT_EQ(back.settings.level, 5);
}

TEST(FormatHeader, AKeptModelTrialIsListedByItsNumber) {
  const uint64_t size = 300000;  // levels 8 and 9 try 4 streams, level 9 with a deeper network
  for (int level : {8, 9}) {
    FileHeader h = level_header(level, size);
    const size_t plain = header_bytes(h).size();
    const std::vector<ModelSettings> trials = model_trials(h.settings, size);
    ASSERT_EQ(trials.size(), 1u);
    h.settings.model = trials[0];
    std::string bytes = header_bytes(h);
    EXPECT_EQ(bytes.size(), plain + 3) << level;  // count, id 0, trial 1
    FileHeader back = parse_file_header(bytes_of(bytes), bytes.size());
    expect_same_settings(back.settings, h.settings);

    h.settings.model.seed = 7;  // listed after the trial, relative to its model
    bytes = header_bytes(h);
    EXPECT_EQ(bytes.size(), plain + 5) << level;
    back = parse_file_header(bytes_of(bytes), bytes.size());
    expect_same_settings(back.settings, h.settings);

    h.settings.level = 0;  // custom on top of the trial: the base level's trial
    bytes = header_bytes(h);
    back = parse_file_header(bytes_of(bytes), bytes.size());
    expect_same_settings(back.settings, h.settings);
  }
}

TEST(FormatHeader, AModelTrialTheLevelDoesNotHaveIsCorrupt) {
  FileHeader h = level_header(9, 300000);
  h.settings.model = model_trials(h.settings, 300000)[0];
  const std::string bytes = header_bytes(h);
  const size_t trial_at = bytes.size() - 4 - 1;             // before the 4-byte digest
  ASSERT_EQ(static_cast<uint8_t>(bytes[trial_at - 1]), 0);  // id 0
  for (uint8_t trial : {0, 2, 127}) {
    std::string bad = bytes;
    bad[trial_at] = static_cast<char>(trial);
    EXPECT_EQ(header_error(bad), ErrorCode::kCorrupt) << int{trial};
  }
  std::string on_level_7 = bytes;  // the same list on a level without trials
  on_level_7[4] = static_cast<char>((on_level_7[4] & ~0x0f) | 7);
  EXPECT_EQ(header_error(on_level_7), ErrorCode::kCorrupt);
  FileHeader later = level_header(9, 300000);  // id 0 after another entry
  later.settings.model.seed = 7;
  std::string after = header_bytes(later);
  const size_t count_at = after.size() - 4 - 3;
  ASSERT_EQ(static_cast<uint8_t>(after[count_at]), 1);
  after.insert(count_at + 3, std::string("\x00\x01", 2));
  after[count_at] = 2;
  EXPECT_EQ(header_error(after), ErrorCode::kCorrupt);
}

TEST(FormatHeader, CustomSettingsPickTheNearestLevelAndStayCustom) {
  FileHeader h = level_header(7, 100);
  h.settings.level = 0;  // e.g. --hidden 200 on top of -7
  h.settings.model.hidden = 200;
  const std::string bytes = header_bytes(h);
  EXPECT_LE(bytes.size(),
            3 + 1 + 1 + 1 + 1 + 1 + 3 + 4u);  // ..., base level, size, count, id + value, digest
  FileHeader back = parse_file_header(bytes_of(bytes), bytes.size());
  expect_same_settings(back.settings, h.settings);
  EXPECT_EQ(back.settings.level, 0);
}

TEST(FormatHeader, PresetFileCostsAtMost24BytesBeyondItsPayload) {
  // The worst single-block case of a small file: the size and the counts take a byte each.
  const std::string data = "hello world\n";
  Settings s = preset(kDefaultLevel);
  const std::string file = member(data, s, true);
  EXPECT_LE(file.size() - data.size(), 24u);
  EXPECT_EQ(file.size() - data.size(), 18u);  // magic+version 4, descriptor, size, digest 4, block 6, check 2
  const std::string empty = member("", s, true);
  EXPECT_EQ(empty.size(), 12u);
  const std::string streamed = member(data, s, false);
  EXPECT_EQ(streamed.size() - data.size(), 19u);  // raw size and end marker instead of the header's size
}

TEST(FormatHeader, WriterRejectsWhatTheFormatCannotHold) {
  FileHeader h = level_header(5, 10);
  h.dictionary.assign(kMaxDictionaryBytes + 1, 1);
  EXPECT_EQ(error_of([&] { header_bytes(h); }), ErrorCode::kUsage);
  h = level_header(5, 10);
  h.fingerprint.push_back(0);
  EXPECT_EQ(error_of([&] { header_bytes(h); }), ErrorCode::kUsage);
  h = level_header(5, 10);
  h.settings.runtime.device = std::string(300, 'x');
  h.fingerprint = FingerprintDigest(kGpuFingerprintBytes, 0);
  EXPECT_EQ(error_of([&] { header_bytes(h); }), ErrorCode::kUsage);
}

TEST(FormatHeader, WriteFailureIsIoError) {
  std::ostringstream out;
  out.setstate(std::ios::badbit);
  uint32_t crc = 0;
  EXPECT_EQ(error_of([&] { write_file_header(out, level_header(5, 1), &crc); }), ErrorCode::kIo);
}

// ---- header failures ---------------------------------------------------------------------------------

TEST(FormatHeader, EmptyTextAndOtherFormatsAreNotNncpp) {
  for (std::string bytes :
       {std::string(), std::string("\x89N"), std::string("hello world\n"), std::string("\x1f\x8b\x08\x00", 4),
        std::string("\xfd"
                    "7zXZ\x00",
                    6),
        std::string("\x28\xb5\x2f\xfd", 4), std::string("\x89PNG\r\n\x1a\n", 8)})
    EXPECT_EQ(header_error(bytes), ErrorCode::kNotNncpp) << bytes;
  EXPECT_EQ(container_error(""), ErrorCode::kNotNncpp);
}

TEST(FormatHeader, OtherVersionsAreIncompatible) {
  std::string bytes = header_bytes(level_header(5, 10));
  for (int v : {0, 1, 2, 4, 255}) {
    bytes[3] = static_cast<char>(v);
    EXPECT_EQ(header_error(bytes), ErrorCode::kIncompatible) << v;
  }
  // A version 2 file (8-byte magic) is named as such.
  const std::string v2("\x89NNCPP\r\n\x02\x00\x00\x00", 12);
  EXPECT_EQ(header_error(v2), ErrorCode::kIncompatible);
  EXPECT_NE(message_of([&] { parse_file_header(bytes_of(v2), v2.size()); }).find("version 2"),
            std::string::npos);
}

TEST(FormatHeader, ReservedBitUnknownLevelAndUnknownSettingAreIncompatible) {
  std::string bytes = header_bytes(level_header(5, 10));
  std::string reserved = bytes;
  reserved[4] = static_cast<char>(reserved[4] | 0x80);
  EXPECT_EQ(header_error(reserved), ErrorCode::kIncompatible);
  std::string level = bytes;
  level[4] = static_cast<char>((level[4] & 0xf0) | 14);
  EXPECT_EQ(header_error(level), ErrorCode::kIncompatible);
  // Setting id 63 (unassigned) in a settings list.
  FileHeader h = level_header(5, 10);
  h.settings.runtime.threads = 2;
  std::string listed = header_bytes(h);
  const size_t id_at = 3 + 1 + 1 + 1 + 1;              // magic, version, descriptor, size, count
  ASSERT_EQ(static_cast<uint8_t>(listed[id_at]), 48);  // threads
  listed[id_at] = 63;
  EXPECT_EQ(header_error(listed), ErrorCode::kIncompatible);
  EXPECT_NE(message_of([&] { parse_file_header(bytes_of(listed), listed.size()); }).find("#63"),
            std::string::npos);
}

TEST(FormatHeader, InvalidSettingsAreCorrupt) {
  FileHeader h = level_header(5, 10);
  h.settings.runtime.threads = 2;
  std::string bytes = header_bytes(h);
  const size_t value_at = 3 + 1 + 1 + 1 + 1 + 1;
  for (uint8_t threads : {0, 65, 127}) {
    bytes[value_at] = static_cast<char>(threads);
    EXPECT_EQ(header_error(bytes), ErrorCode::kCorrupt) << int{threads};
  }
  std::string out_of_order = header_bytes([] {
    FileHeader x = level_header(5, 10);
    x.settings.runtime.threads = 2;
    x.settings.model.seed = 5;
    return x;
  }());
  // count 2, then id 18 (seed) and id 48 (threads): swap the ids.
  const size_t first_id = 3 + 1 + 1 + 1 + 1;
  ASSERT_EQ(static_cast<uint8_t>(out_of_order[first_id]), 18);
  out_of_order[first_id] = 49;
  EXPECT_NE(header_error(out_of_order), ErrorCode::kIo);
}

TEST(FormatHeader, VocabularyOtherThanTheDictionarysIsListedAndCorrupt) {
  FileHeader h = level_header(5, 10);
  h.settings.model.vocab = 300;  // bytes only: the vocabulary must be 256
  const std::string bytes = header_bytes(h);
  EXPECT_EQ(header_error(bytes), ErrorCode::kCorrupt);
  h.settings.model.vocab = 0xFFFFFFFFu;
  EXPECT_EQ(header_error(header_bytes(h)), ErrorCode::kCorrupt);
}

TEST(FormatHeader, TruncationAtEveryLengthIsAnError) {
  FileHeader h;
  h.settings = custom_settings();
  h.dictionary = dictionary_bytes();
  h.fingerprint = digest_fingerprint(cpu_fingerprint(), h.settings);
  h.original_size = 77;
  const std::string bytes = header_bytes(h);
  for (size_t n = 0; n < bytes.size(); ++n) {
    ErrorCode code = header_error(bytes.substr(0, n));
    EXPECT_TRUE(code == ErrorCode::kCorrupt || code == ErrorCode::kNotNncpp) << n;
  }
}

TEST(FormatHeader, HugeDictionarySizeIsCorruptWithoutAllocating) {
  FileHeader h = level_header(5, 10);
  h.dictionary = dictionary_bytes();
  h.settings.model.vocab = 260;
  std::string bytes = header_bytes(h);
  // magic, version, descriptor, size (1 byte), then the dictionary size: make it 2^32 - 1.
  std::string huge = bytes.substr(0, 6) + std::string("\xff\xff\xff\xff\x0f", 5) + bytes.substr(7);
  AllocationGuard guard(kSmallAllocation);
  EXPECT_EQ(header_error(huge), ErrorCode::kCorrupt);
  EXPECT_EQ(AllocationGuard::largest_refused(), 0u);
}

// ---- containers --------------------------------------------------------------------------------------

TEST(FormatContainer, MembersParseWithTheirBlocks) {
  const std::string data(2500, 'x');
  for (bool size_known : {true, false}) {
    const std::string file = member(data, small_settings(), size_known);
    std::vector<Member> members = parse_container(bytes_of(file), file.size());
    ASSERT_EQ(members.size(), 1u);
    const Member& m = members[0];
    ASSERT_EQ(m.blocks.size(), 3u);
    EXPECT_EQ(m.blocks[0].header.raw_bytes, 1024u);
    EXPECT_EQ(m.blocks[2].header.raw_bytes, 452u);
    EXPECT_EQ(m.original_bytes, 2500u);
    EXPECT_EQ(m.end, file.size());
    EXPECT_EQ(file.substr(m.blocks[1].payload_at, 1024), data.substr(1024, 1024));
  }
}

TEST(FormatContainer, ConcatenatedMembersAllParse) {
  const std::string a = member("first", small_settings(), true);
  const std::string b = member(std::string(1500, 'y'), small_settings(), false, /*stored=*/true);
  const std::string file = a + b + a;
  std::vector<Member> members = parse_container(bytes_of(file), file.size());
  ASSERT_EQ(members.size(), 3u);
  EXPECT_EQ(members[1].begin, a.size());
  EXPECT_EQ(members[1].blocks.size(), 2u);
  EXPECT_EQ(members[2].end, file.size());
}

TEST(FormatContainer, TrailingGarbageAndDamagedSecondMemberAreCorrupt) {
  const std::string a = member("first", small_settings(), true);
  EXPECT_EQ(container_error(a + "garbage\n"), ErrorCode::kCorrupt);
  EXPECT_EQ(container_error(a + std::string(1, '\0')), ErrorCode::kCorrupt);
  EXPECT_EQ(container_error(a + a.substr(0, a.size() - 1)), ErrorCode::kCorrupt);
}

TEST(FormatContainer, EveryFlippedBitIsAnError) {
  const std::string file = member(std::string(1500, 'z'), small_settings(), false);
  for (size_t bit = 0; bit < 8 * file.size(); ++bit) {
    std::string damaged = file;
    damaged[bit / 8] = static_cast<char>(damaged[bit / 8] ^ (1 << (bit % 8)));
    const ErrorCode code = container_error(damaged);
    EXPECT_TRUE(code == ErrorCode::kCorrupt || code == ErrorCode::kNotNncpp ||
                code == ErrorCode::kIncompatible)
        << "bit " << bit;
  }
}

TEST(FormatContainer, EveryTruncationIsAnError) {
  const std::string file = member(std::string(1500, 'z'), small_settings(), true);
  for (size_t n = 0; n < file.size(); ++n) {
    const ErrorCode code = container_error(file.substr(0, n));
    EXPECT_TRUE(code == ErrorCode::kCorrupt || code == ErrorCode::kNotNncpp) << n;
  }
}

TEST(FormatContainer, DamagedLastRecordIsFoundByTheContainerCheck) {
  std::string file = member(std::string(3000, 'q'), small_settings(), true);
  file[file.size() - 10] ^= 0x20;  // in the last block's payload
  EXPECT_NE(message_of([&] { parse_container(bytes_of(file), file.size()); }).find("container check"),
            std::string::npos);
}

// Hostile sizes with a valid container check: refused from the bytes present, before any allocation.
TEST(FormatContainer, HostileSizesAreCorruptWithoutAllocating) {
  Settings big = small_settings();
  big.codec.block_bytes = kMaxBlockBytes;
  const std::string file = member("abc", big, true);
  // The header's original size (byte 5) claims 2^40 bytes: more blocks than the file can hold.
  std::string huge_size = file.substr(0, 5) + std::string("\x80\x80\x80\x80\x80\x20", 6) + file.substr(6);
  fix_container_check(&huge_size);
  // A streamed block that claims 2^30 raw bytes, 2^31 symbols and a payload of 2^32 - 1 bytes.
  std::string streamed = member(std::string(3, 'a'), big, false);
  const size_t block_at = streamed.size() - 2 - 1 - (3 + 4 + 3);  // check, end marker, block
  ASSERT_EQ(streamed[block_at], 3);                               // the raw size
  std::string claims = streamed.substr(0, block_at) + std::string("", 5) +
                       std::string("", 5) + std::string("ÿÿÿÿ", 5) +
                       streamed.substr(block_at + 3);
  fix_container_check(&claims);
  AllocationGuard guard(kSmallAllocation);
  EXPECT_EQ(container_error(huge_size), ErrorCode::kCorrupt);
  EXPECT_EQ(container_error(claims), ErrorCode::kCorrupt);
  EXPECT_EQ(AllocationGuard::largest_refused(), 0u);
}

TEST(FormatContainer, BlockFieldsOutOfRangeAreCorrupt) {
  Settings s = small_settings();
  const std::string data(100, 'b');
  auto with_block = [&](uint32_t raw, uint32_t symbols, uint32_t payload_bytes, const std::string& payload) {
    FileHeader h;
    h.settings = s;
    h.fingerprint = digest_fingerprint(cpu_fingerprint(), s);
    h.original_size = kUnknownSize;
    std::ostringstream out;
    uint32_t crc = 0;
    write_file_header(out, h, &crc);
    BlockHeader b{raw, symbols, payload_bytes, 0};
    write_block(out, b, bytes_of(payload), false, &crc);
    write_member_end(out, false, crc);
    return out.str();
  };
  const std::string good = with_block(100, 100, 100, data);
  EXPECT_NO_THROW(parse_container(bytes_of(good), good.size()));
  const std::string cases[] = {
      with_block(2000, 100, 100, data),                    // raw above the block size
      with_block(100, 90, 100, data),                      // bytes only: symbols must equal raw
      with_block(100, 0, 99, data.substr(0, 99)),          // stored: payload must equal raw
      with_block(100, 100, 1000, std::string(1000, 'c')),  // payload above 4 per symbol
  };
  for (const std::string& file : cases) EXPECT_EQ(container_error(file), ErrorCode::kCorrupt);
  // A payload size beyond the file (written short): the container ends inside the payload.
  std::string cut = with_block(100, 100, 100, data);
  cut.resize(cut.size() - 40);
  EXPECT_EQ(container_error(cut), ErrorCode::kCorrupt);
}

TEST(FormatContainer, StreamTablesRoundTripAndMustFit) {
  const std::vector<std::vector<uint8_t>> streams = {{1, 2, 3}, {}, std::vector<uint8_t>(300, 9), {4}};
  const std::vector<uint8_t> payload = write_stream_table(streams);
  EXPECT_EQ(payload.size(), 1 + 1 + 2 + 3 + 300 + 1u);  // three sizes (the last is implied)
  auto parts = parse_stream_table(payload.data(), payload.size(), 4);
  ASSERT_EQ(parts.size(), 4u);
  for (size_t s = 0; s < 4; ++s) {
    EXPECT_EQ(parts[s].second, streams[s].size());
    EXPECT_TRUE(std::equal(streams[s].begin(), streams[s].end(), payload.begin() + parts[s].first));
  }
  EXPECT_EQ(error_of([&] { parse_stream_table(payload.data(), 5, 4); }), ErrorCode::kCorrupt);
  EXPECT_EQ(error_of([&] { parse_stream_table(payload.data(), payload.size(), 400); }), ErrorCode::kCorrupt);
}

TEST(FormatContainer, DecoderMemoryGrowsWithTheModel) {
  const std::string file = member("abc", small_settings(), true);
  std::vector<Member> members = parse_container(bytes_of(file), file.size());
  const uint64_t small = decoder_memory_bytes(members[0]);
  members[0].header.settings.model.layers = 2;
  members[0].header.settings.model.hidden = 8192;
  EXPECT_GT(decoder_memory_bytes(members[0]), small + (uint64_t{4} << 30));  // ~8 GiB with Adam state
}

// ---- fingerprints ------------------------------------------------------------------------------------

TEST(Fingerprint, EqualPassesAndRestatedSettingsDoNotCount) {
  Settings s;
  const FingerprintDigest file = digest_fingerprint(cpu_fingerprint(), s);
  EXPECT_EQ(file.size(), kFingerprintBytes);
  EXPECT_NO_THROW(check_fingerprint(file, cpu_fingerprint(), s));
  Fingerprint other_threads = cpu_fingerprint();
  other_threads[3].value = "2";  // a setting the header carries
  EXPECT_EQ(digest_fingerprint(other_threads, s), file);
}

TEST(Fingerprint, DifferentValueNamesTheField) {
  Settings s;
  const FingerprintDigest file = digest_fingerprint(cpu_fingerprint("1.13.0"), s);
  const std::string message = message_of([&] { check_fingerprint(file, cpu_fingerprint("2.1.0"), s); });
  EXPECT_NE(message.find("incompatible libtorch"), std::string::npos) << message;
  EXPECT_NE(message.find("2.1.0"), std::string::npos) << message;
  EXPECT_EQ(error_of([&] { check_fingerprint(file, cpu_fingerprint("2.1.0"), s); }),
            ErrorCode::kIncompatible);
  Fingerprint kernels = cpu_fingerprint();
  kernels[5].value = "AVX512";
  EXPECT_NE(message_of([&] { check_fingerprint(file, kernels, s); }).find("cpu_kernels"), std::string::npos);
}

TEST(Fingerprint, ExtraOrMissingFieldIsIncompatible) {
  Settings s;
  const FingerprintDigest file = digest_fingerprint(cpu_fingerprint(), s);
  Fingerprint more = cpu_fingerprint();
  more.push_back({"new_field", "x"});
  EXPECT_EQ(error_of([&] { check_fingerprint(file, more, s); }), ErrorCode::kIncompatible);
  Fingerprint fewer = cpu_fingerprint();
  fewer.pop_back();
  EXPECT_EQ(error_of([&] { check_fingerprint(file, fewer, s); }), ErrorCode::kIncompatible);
}

TEST(Fingerprint, GpuFilesHaveALongerDigest) {
  Settings s;
  s.runtime.device = "cuda";
  Fingerprint gpu = {{"nncpp", "0.2.0"},   {"libtorch", "2.11"},          {"device", "cuda"},
                     {"gpu", "H200"},      {"compute_capability", "9.0"}, {"cuda_runtime", "13000"},
                     {"cuda_graphs", "on"}};
  const FingerprintDigest file = digest_fingerprint(gpu, s);
  EXPECT_EQ(file.size(), kGpuFingerprintBytes);
  gpu[4].value = "8.0";
  EXPECT_NE(message_of([&] { check_fingerprint(file, gpu, s); }).find("compute_capability"),
            std::string::npos);
}

}  // namespace
}  // namespace nncpp

namespace nncpp {
namespace {

TEST(FitToInput, LevelsFollowTheInputSize) {
  Settings small = preset(9);
  fit_to_input(&small, 100 << 10);
  EXPECT_EQ(small.model.hidden, preset(5).model.hidden) << "below 256 KiB levels 6..9 take level 5's net";
  Settings six = preset(6);
  fit_to_input(&six, 700 << 10);
  EXPECT_EQ(six.model.hidden, preset(5).model.hidden) << "below 1 MiB level 6 takes level 5's net";
  Settings eight = preset(8);
  fit_to_input(&eight, 700 << 10);
  EXPECT_EQ(eight.model.hidden, preset(7).model.hidden) << "below 1 MiB levels 8 and 9 take level 7's";
  // Levels 1..9 below 256 KiB and below 1 MiB: each takes a lower level's network that lost to none below
  // it on the benchmark files there (presets.cpp), so no level writes a larger file than the one below.
  const auto net = [](int level, uint64_t bytes) {
    Settings s = preset(level);
    fit_to_input(&s, bytes);
    return std::make_pair(s.model.layers, s.model.hidden);
  };
  const auto own = [](int level) {
    return std::make_pair(preset(level).model.layers, preset(level).model.hidden);
  };
  for (int level : {1, 2, 3}) EXPECT_EQ(net(level, 100 << 10), own(1)) << "level " << level << ", 100 KiB";
  for (int level : {4, 5, 6, 7, 8, 9}) EXPECT_EQ(net(level, 100 << 10), own(5)) << "level " << level;
  const std::pair<uint32_t, uint32_t> below_1mib[] = {own(1), own(2), own(2), own(5), own(5),
                                                      own(5), own(7), own(7), own(7)};
  for (int level = 1; level <= 9; ++level)
    EXPECT_EQ(net(level, 700 << 10), below_1mib[level - 1]) << "level " << level << ", 700 KiB";
  for (int level = 1; level <= 9; ++level)
    EXPECT_EQ(net(level, 1u << 20), own(level)) << "from 1 MiB: its own";
  EXPECT_EQ(small.mix.table_bits, 17u) << "about one bucket per input byte";
  EXPECT_EQ(small.codec.max_vocab, 0u) << "small inputs are coded as bytes";
  Settings large = preset(5);
  fit_to_input(&large, 4u << 20);
  EXPECT_EQ(large.mix.table_bits, 20u);
  EXPECT_EQ(large.codec.max_vocab, 16384u) << "from 2 MiB on the tokenizer builds a dictionary";
  Settings custom = preset(5);
  custom.level = 0;
  const Settings before = custom;
  fit_to_input(&custom, 4u << 20);
  EXPECT_EQ(custom.mix.table_bits, before.mix.table_bits) << "custom settings stay as given";
  Settings streamed = preset(5);
  fit_to_input(&streamed, kUnknownSize);
  EXPECT_EQ(streamed.codec.max_vocab, 0u);
}

TEST(FitToInput, StrongLevelsTryFewerStreamsBelowOneMiB) {
  // Levels 8 and 9 code small inputs again with fewer, longer streams and keep the smaller file; level 9's
  // trial takes a deeper network than level 8's.
  struct Trial {
    uint32_t streams, segment, layers, hidden;
    bool operator==(const Trial& o) const {
      return streams == o.streams && segment == o.segment && layers == o.layers && hidden == o.hidden;
    }
  };
  using Trials = std::vector<Trial>;
  const auto trials = [](int level, uint64_t bytes, uint32_t ranks = 1) {
    Settings s = preset(level);
    s.runtime.ranks = ranks;
    s.runtime.rank_backend = ranks > 1 ? "gloo" : "";
    fit_to_input(&s, bytes);
    EXPECT_EQ(s.model.streams, preset(level).model.streams) << "the fitted count is the level's own";
    Trials out;
    for (const ModelSettings& m : model_trials(s, bytes)) {
      out.push_back({m.streams, m.segment, m.layers, m.hidden});
      EXPECT_EQ(m.kind, ModelKind::kLstm);
      EXPECT_EQ(m.vocab, s.model.vocab);
    }
    return out;
  };
  const ModelSettings small = [] {
    Settings s = preset(9);
    fit_to_input(&s, 100 << 10);
    return s.model;
  }();
  EXPECT_EQ(trials(9, 100 << 10), (Trials{{1, small.segment, small.layers, small.hidden}}));
  EXPECT_EQ(trials(8, 100 << 10), Trials{});
  const ModelSettings seven = preset(7).model;
  EXPECT_EQ(trials(8, 700 << 10), (Trials{{4, 30, seven.layers, seven.hidden}})) << "30 positions a step";
  const Trials nine = trials(9, 700 << 10);
  ASSERT_EQ(nine.size(), 1u);
  EXPECT_EQ(nine[0].streams, 4u);
  EXPECT_GT(nine[0].layers, seven.layers) << "a deeper network than level 8's trial";
  EXPECT_EQ(trials(7, 700 << 10), Trials{});
  EXPECT_EQ(trials(9, 4u << 20), Trials{}) << "from 1 MiB on one pass";
  EXPECT_EQ(trials(9, kUnknownSize), Trials{});
  EXPECT_EQ(trials(9, 100 << 10, 2), Trials{}) << "several ranks: one pass";
  Settings custom = preset(9);
  custom.level = 0;
  EXPECT_TRUE(model_trials(custom, 100 << 10).empty());
  const auto streams = [](int level, uint64_t bytes) {
    Settings s = preset(level);
    fit_to_input(&s, bytes);
    return s.model.streams;
  };
  // The large-input GPU level: more streams for larger inputs (faster, and better once they have learnt).
  EXPECT_EQ(streams(13, 8u << 20), 64u);
  EXPECT_EQ(streams(13, 64u << 20), 128u);
  EXPECT_EQ(streams(13, uint64_t{1} << 30), 256u);
  Settings unknown = preset(13);
  fit_to_input(&unknown, kUnknownSize);
  EXPECT_EQ(unknown.model.streams, preset(13).model.streams);
}

TEST(FitToContent, TheTokenizerOnlyForTextOfWords) {
  // Prose (one byte in 6 a space) keeps the tokenizer; markup with few spaces goes back to bytes.
  std::string prose, markup;
  while (prose.size() < (1u << 16)) prose += "In the beginning God created the heaven and the earth. ";
  while (markup.size() < (1u << 16))
    markup += "<mime-type type=\"application/x-zip\"><glob pattern=\"*.zip\"/>\n";
  const auto fitted = [](int level, const std::string& sample) {
    Settings s = preset(level);
    fit_to_input(&s, 4u << 20);
    fit_to_content(&s, reinterpret_cast<const uint8_t*>(sample.data()), sample.size());
    return s;
  };
  const Settings text = fitted(5, prose);
  EXPECT_EQ(text.codec.max_vocab, 16384u);
  EXPECT_FALSE(text.mix.binary) << "symbols mix in the symbol domain";
  const Settings tags = fitted(5, markup);
  EXPECT_EQ(tags.codec.max_vocab, 0u) << "markup is coded as bytes";
  EXPECT_TRUE(tags.mix.binary) << "bytes mix in the binary domain";
  EXPECT_EQ(tags.mix.models, preset(5).mix.models);
  EXPECT_EQ(tags.mix.table_bits, 20u);
  Settings small = preset(5);  // below 2 MiB the size already chose bytes
  fit_to_input(&small, 100 << 10);
  const Settings before = small;
  fit_to_content(&small, reinterpret_cast<const uint8_t*>(prose.data()), prose.size());
  EXPECT_EQ(small.codec.max_vocab, before.codec.max_vocab) << "content never asks for the tokenizer";
  Settings custom = fitted(5, prose);
  custom.level = 0;
  fit_to_content(&custom, reinterpret_cast<const uint8_t*>(markup.data()), markup.size());
  EXPECT_EQ(custom.codec.max_vocab, 16384u) << "custom settings stay as given";
}

}  // namespace
}  // namespace nncpp
