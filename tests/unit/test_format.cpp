// The container (include/nncpp/format.h): header, block and end records round trip; every malformed input
// maps to the right ErrorCode; hostile sizes are rejected before anything is allocated.
#include "nncpp/format.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <new>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "core/byte_io.h"
#include "core/checksum.h"
#include "nncpp/error.h"

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

Settings custom_settings() {
  Settings s;
  s.level = 7;
  s.model.vocab = 300;
  s.model.layers = 3;
  s.model.hidden = 77;
  s.model.embed = 13;
  s.model.streams = 5;
  s.model.segment = 9;
  s.model.lr = 0.0123f;
  s.model.lr_floor = 0.00077f;
  s.model.lr_decay = 1234;
  s.model.beta2 = 0.9876f;
  s.model.adam_eps = 3.5e-7f;
  s.model.grad_clip = 0.625f;
  s.model.seed = 0x0123456789abcdefull;
  s.codec.block_bytes = 4096;
  s.codec.min_stream_symbols = 17;
  s.codec.match_order = 6;
  s.codec.match_hash_bits = 18;
  s.runtime.threads = 3;
  s.runtime.device = "cuda:1";
  return s;
}

Fingerprint custom_fingerprint() {
  return {{"nncpp", "0.1.0"}, {"libtorch", "1.13.1"}, {"device", "cpu"},
          {"threads", "3"},   {"empty", ""},          {std::string(255, 'n'), std::string(255, 'v')}};
}

std::vector<uint8_t> random_bytes(size_t n, uint64_t seed) {
  std::mt19937_64 g(seed);
  std::vector<uint8_t> v(n);
  for (auto& b : v) b = static_cast<uint8_t>(g() >> 56);
  return v;
}

std::string to_string(const std::vector<uint8_t>& v) {
  return std::string(v.begin(), v.end());
}

std::string header_bytes(const FileHeader& h) {
  std::ostringstream out;
  size_t n = write_file_header(out, h);
  EXPECT_EQ(n, out.str().size());
  return out.str();
}

FileHeader small_header() {
  FileHeader h;
  h.settings.codec.block_bytes = 4096;
  h.fingerprint = {{"device", "cpu"}, {"threads", "1"}};
  h.original_size = 5000;
  return h;
}

bool same_bits(float a, float b) {
  return std::memcmp(&a, &b, sizeof a) == 0;
}

void expect_same_settings(const Settings& a, const Settings& b) {
  EXPECT_EQ(a.level, b.level);
  EXPECT_EQ(a.model.kind, b.model.kind);
  EXPECT_EQ(a.model.vocab, b.model.vocab);
  EXPECT_EQ(a.model.layers, b.model.layers);
  EXPECT_EQ(a.model.hidden, b.model.hidden);
  EXPECT_EQ(a.model.embed, b.model.embed);
  EXPECT_EQ(a.model.streams, b.model.streams);
  EXPECT_EQ(a.model.segment, b.model.segment);
  EXPECT_TRUE(same_bits(a.model.lr, b.model.lr));
  EXPECT_TRUE(same_bits(a.model.lr_floor, b.model.lr_floor));
  EXPECT_EQ(a.model.lr_decay, b.model.lr_decay);
  EXPECT_TRUE(same_bits(a.model.beta2, b.model.beta2));
  EXPECT_TRUE(same_bits(a.model.adam_eps, b.model.adam_eps));
  EXPECT_TRUE(same_bits(a.model.grad_clip, b.model.grad_clip));
  EXPECT_EQ(a.model.seed, b.model.seed);
  EXPECT_EQ(a.codec.block_bytes, b.codec.block_bytes);
  EXPECT_EQ(a.codec.min_stream_symbols, b.codec.min_stream_symbols);
  EXPECT_EQ(a.codec.match_order, b.codec.match_order);
  EXPECT_EQ(a.codec.match_hash_bits, b.codec.match_hash_bits);
  EXPECT_EQ(a.runtime.threads, b.runtime.threads);
  EXPECT_EQ(a.runtime.device, b.runtime.device);
}

void expect_same_fingerprint(const Fingerprint& a, const Fingerprint& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].name, b[i].name);
    EXPECT_EQ(a[i].value, b[i].value);
  }
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
  return error_of([&] {
    std::istringstream in(bytes);
    read_file_header(in);
  });
}

// Recomputes the header CRC after a deliberate edit, so the test reaches the check behind it.
void fix_header_crc(std::string* bytes, size_t header_size) {
  uint32_t crc = crc32_update(0, reinterpret_cast<const uint8_t*>(bytes->data()), header_size - 4);
  for (int i = 0; i < 4; ++i) (*bytes)[header_size - 4 + i] = static_cast<char>(crc >> (8 * i));
}

// Offsets in the header (format.h / docs/format.md): magic 8, version 2, flags 2, body size 4, body, CRC 4.
constexpr size_t kVersionAt = 8, kFlagsAt = 10, kBodySizeAt = 12, kBodyAt = 16;
// In the body: level u8, kind u8, reserved u16, ...
constexpr size_t kReservedAt = kBodyAt + 2;

void put_u32(std::string* bytes, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) (*bytes)[at + i] = static_cast<char>(v >> (8 * i));
}

// A block record whose fields are what the caller says, with a valid record CRC (payload not included).
std::string raw_block_record(uint32_t raw, uint32_t symbols, uint32_t payload, uint32_t raw_crc = 0,
                             uint32_t payload_crc = 0) {
  std::vector<uint8_t> bytes;
  ByteWriter w(&bytes);
  w.u8(static_cast<uint8_t>(RecordTag::kBlock));
  w.u32(raw);
  w.u32(symbols);
  w.u32(payload);
  w.u32(raw_crc);
  w.u32(payload_crc);
  w.u32(crc32_update(0, bytes.data(), bytes.size()));
  return to_string(bytes);
}

// Reads a header and then records until the end record, as a decoder would.
void parse_all(const std::string& bytes) {
  std::istringstream in(bytes);
  FileHeader h = read_file_header(in);
  BlockHeader block;
  EndRecord end;
  std::vector<uint8_t> payload;
  while (read_record(in, h.settings, &block, &payload, &end) == RecordTag::kBlock) {
  }
}

// A header, two blocks and an end record.
std::string whole_file() {
  std::ostringstream out;
  FileHeader h = small_header();
  h.dictionary = random_bytes(40, 9);
  write_file_header(out, h);
  auto p1 = random_bytes(100, 1);
  auto p2 = random_bytes(30, 2);
  BlockHeader b1{4096, 4096, 100, 0x11111111, crc32_update(0, p1.data(), p1.size())};
  BlockHeader b2{904, 904, 30, 0x22222222, crc32_update(0, p2.data(), p2.size())};
  write_block(out, b1, p1.data());
  write_block(out, b2, p2.data());
  write_end(out, EndRecord{5000, 0x33333333});
  return out.str();
}

// ---- header round trips ------------------------------------------------------------------------------

TEST(FormatHeader, RoundTripsEverySettingFingerprintAndDictionary) {
  FileHeader h;
  h.settings = custom_settings();
  h.fingerprint = custom_fingerprint();
  h.original_size = 0x0123456789abull;
  h.dictionary = random_bytes(1000, 3);
  std::string bytes = header_bytes(h);
  std::istringstream in(bytes + "rest");
  FileHeader r = read_file_header(in);
  expect_same_settings(r.settings, h.settings);
  expect_same_fingerprint(r.fingerprint, h.fingerprint);
  EXPECT_EQ(r.original_size, h.original_size);
  EXPECT_EQ(r.dictionary, h.dictionary);
  EXPECT_EQ(r.encoded_bytes, bytes.size());
  std::string rest(4, '\0');
  in.read(&rest[0], 4);
  EXPECT_EQ(rest, "rest");  // the reader stops exactly at the end of the header
}

TEST(FormatHeader, RoundTripsDefaultsUnknownSizeEmptyFingerprintAndDictionary) {
  FileHeader h;
  std::string bytes = header_bytes(h);
  EXPECT_EQ(0, std::memcmp(bytes.data(), kMagic.data(), kMagic.size()));
  std::istringstream in(bytes);
  FileHeader r = read_file_header(in);
  expect_same_settings(r.settings, h.settings);
  EXPECT_TRUE(r.fingerprint.empty());
  EXPECT_EQ(r.original_size, kUnknownSize);
  EXPECT_TRUE(r.dictionary.empty());
  EXPECT_EQ(r.encoded_bytes, bytes.size());
}

TEST(FormatHeader, RoundTripsExtremeValidValues) {
  FileHeader h;
  h.settings.model.vocab = 65536;
  h.settings.model.seed = ~0ull;
  h.settings.codec.block_bytes = kMaxBlockBytes;
  h.settings.codec.min_stream_symbols = ~0u;
  h.settings.codec.match_order = 64;
  h.settings.codec.match_hash_bits = 26;
  h.settings.runtime.threads = 256;
  h.settings.runtime.device = std::string(64, 'd');
  h.settings.model.grad_clip = 0.0f;
  h.original_size = 0;
  h.dictionary = random_bytes(kMaxDictionaryBytes, 4);
  std::istringstream in(header_bytes(h));
  FileHeader r = read_file_header(in);
  expect_same_settings(r.settings, h.settings);
  EXPECT_EQ(r.original_size, 0u);
  EXPECT_EQ(r.dictionary, h.dictionary);
}

TEST(FormatHeader, WriterRejectsWhatTheFormatCannotHold) {
  FileHeader h;
  h.dictionary.resize(kMaxDictionaryBytes + 1);
  EXPECT_EQ(error_of([&] {
              std::ostringstream out;
              write_file_header(out, h);
            }),
            ErrorCode::kUsage);
  FileHeader f;
  f.fingerprint.push_back({std::string(256, 'x'), "v"});
  EXPECT_EQ(error_of([&] {
              std::ostringstream out;
              write_file_header(out, f);
            }),
            ErrorCode::kUsage);
}

TEST(FormatHeader, WriteFailureIsIoError) {
  std::ostringstream out;
  out.setstate(std::ios::badbit);
  EXPECT_EQ(error_of([&] { write_file_header(out, small_header()); }), ErrorCode::kIo);
}

// ---- header failures ---------------------------------------------------------------------------------

TEST(FormatHeader, EmptyInputIsNotNncpp) {
  EXPECT_EQ(header_error(""), ErrorCode::kNotNncpp);
}

TEST(FormatHeader, TextAndOtherFormatsAreNotNncpp) {
  EXPECT_EQ(header_error("Hello, world! This is plain text, long enough for a header.\n"),
            ErrorCode::kNotNncpp);
  EXPECT_EQ(header_error(std::string("\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03rest of gzip", 20)),
            ErrorCode::kNotNncpp);
  EXPECT_EQ(header_error(std::string("\xfd"
                                     "7zXZ\0\0\0\0\0\0\0\0\0\0\0\0\0\0",
                                     20)),
            ErrorCode::kNotNncpp);
  EXPECT_EQ(header_error(std::string(64, '\0')), ErrorCode::kNotNncpp);
  EXPECT_EQ(header_error("NNCPP\r\n"), ErrorCode::kNotNncpp);
  // The magic with its line ending mangled by a text-mode transfer.
  std::string bytes = header_bytes(small_header());
  std::string mangled = bytes.substr(0, 6) + "\n" + bytes.substr(8);
  EXPECT_EQ(header_error(mangled), ErrorCode::kNotNncpp);
}

TEST(FormatHeader, WrongMagicIsNotNncppForEveryByte) {
  std::string good = header_bytes(small_header());
  for (size_t i = 0; i < kMagic.size(); ++i) {
    std::string bad = good;
    bad[i] = static_cast<char>(bad[i] ^ 0x20);
    EXPECT_EQ(header_error(bad), ErrorCode::kNotNncpp) << "byte " << i;
  }
}

TEST(FormatHeader, OtherVersionIsIncompatible) {
  std::string good = header_bytes(small_header());
  for (uint16_t version : {uint16_t{0}, uint16_t{kFormatVersion + 1}, uint16_t{0xFFFF}}) {
    std::string bad = good;
    bad[kVersionAt] = static_cast<char>(version & 0xFF);
    bad[kVersionAt + 1] = static_cast<char>(version >> 8);
    EXPECT_EQ(header_error(bad), ErrorCode::kIncompatible) << version;
    fix_header_crc(&bad, good.size());
    EXPECT_EQ(header_error(bad), ErrorCode::kIncompatible) << version << " (with a valid CRC)";
  }
}

TEST(FormatHeader, NonzeroFlagsAreIncompatible) {
  std::string good = header_bytes(small_header());
  for (int bit = 0; bit < 16; ++bit) {
    std::string bad = good;
    bad[kFlagsAt + bit / 8] = static_cast<char>(1 << (bit % 8));
    fix_header_crc(&bad, good.size());
    EXPECT_EQ(header_error(bad), ErrorCode::kIncompatible) << "flag bit " << bit;
  }
}

TEST(FormatHeader, NonzeroReservedSettingsFieldIsIncompatible) {
  std::string good = header_bytes(small_header());
  std::string bad = good;
  bad[kReservedAt] = 1;
  fix_header_crc(&bad, good.size());
  EXPECT_EQ(header_error(bad), ErrorCode::kIncompatible);
  bad[kReservedAt] = 1;  // without the CRC fixed: corrupt or incompatible, never accepted
  fix_header_crc(&bad, good.size());
  bad[good.size() - 1] ^= 1;
  ErrorCode code = header_error(bad);
  EXPECT_TRUE(code == ErrorCode::kCorrupt || code == ErrorCode::kIncompatible);
}

TEST(FormatHeader, BadCrcIsCorrupt) {
  std::string good = header_bytes(small_header());
  for (size_t i = good.size() - 4; i < good.size(); ++i) {
    std::string bad = good;
    bad[i] ^= 0x01;
    EXPECT_EQ(header_error(bad), ErrorCode::kCorrupt) << i;
  }
}

TEST(FormatHeader, InvalidSettingsWithValidCrcAreCorrupt) {
  auto corrupt_with = [](auto edit) {
    FileHeader h = small_header();
    edit(h.settings);
    return header_error(header_bytes(h));
  };
  EXPECT_EQ(corrupt_with([](Settings& s) { s.model.layers = 0; }), ErrorCode::kCorrupt);
  EXPECT_EQ(corrupt_with([](Settings& s) { s.model.vocab = 1; }), ErrorCode::kCorrupt);
  EXPECT_EQ(corrupt_with([](Settings& s) { s.model.kind = static_cast<ModelKind>(77); }),
            ErrorCode::kCorrupt);
  EXPECT_EQ(corrupt_with([](Settings& s) { s.model.hidden = 1u << 31; }), ErrorCode::kCorrupt);
  EXPECT_EQ(corrupt_with([](Settings& s) { s.model.streams = 4096, s.model.segment = 4096; }),
            ErrorCode::kCorrupt);
  EXPECT_EQ(corrupt_with([](Settings& s) { s.model.lr = std::numeric_limits<float>::quiet_NaN(); }),
            ErrorCode::kCorrupt);
  EXPECT_EQ(corrupt_with([](Settings& s) { s.codec.block_bytes = 0; }), ErrorCode::kCorrupt);
  EXPECT_EQ(corrupt_with([](Settings& s) { s.codec.block_bytes = kMaxBlockBytes + 1; }), ErrorCode::kCorrupt);
  EXPECT_EQ(corrupt_with([](Settings& s) { s.codec.min_stream_symbols = 0; }), ErrorCode::kCorrupt);
  EXPECT_EQ(corrupt_with([](Settings& s) { s.runtime.threads = 0; }), ErrorCode::kCorrupt);
  EXPECT_EQ(corrupt_with([](Settings& s) { s.codec.match_order = 65; }), ErrorCode::kCorrupt);
  EXPECT_EQ(corrupt_with([](Settings& s) { s.codec.match_hash_bits = 9; }), ErrorCode::kCorrupt);
  EXPECT_EQ(corrupt_with([](Settings& s) { s.codec.match_hash_bits = 27; }), ErrorCode::kCorrupt);
  // A model far too large for any machine (~140 GB of weights): refused before anything is built.
  EXPECT_EQ(corrupt_with([](Settings& s) { s.model.layers = 32, s.model.hidden = 8192; }),
            ErrorCode::kCorrupt);
  EXPECT_EQ(corrupt_with([](Settings& s) { s.runtime.device = ""; }), ErrorCode::kCorrupt);
}

TEST(FormatHeader, TruncationAtEveryLengthIsAnError) {
  FileHeader h = small_header();
  h.dictionary = random_bytes(50, 5);
  std::string good = header_bytes(h);
  for (size_t n = 0; n < good.size(); ++n) {
    ErrorCode code = header_error(good.substr(0, n));
    if (n < kMagic.size()) {
      EXPECT_TRUE(code == ErrorCode::kNotNncpp || code == ErrorCode::kCorrupt) << n;
    } else {
      EXPECT_EQ(code, ErrorCode::kCorrupt) << "truncated to " << n << " bytes";
    }
  }
}

TEST(FormatHeader, AbsurdBodySizeIsCorruptWithoutAllocating) {
  std::string good = header_bytes(small_header());
  for (uint32_t size : {0xFFFFFFFFu, 0xFFFFFFFBu, 0x80000000u, kMaxHeaderBytes + 1}) {
    std::string bad = good;
    put_u32(&bad, kBodySizeAt, size);
    AllocationGuard guard(kSmallAllocation);
    EXPECT_EQ(header_error(bad), ErrorCode::kCorrupt) << size;
    EXPECT_EQ(AllocationGuard::largest_refused(), 0u) << "tried to allocate for body size " << size;
  }
}

TEST(FormatHeader, WrongBodySizeIsCorrupt) {
  std::string good = header_bytes(small_header());
  uint32_t body = static_cast<uint32_t>(good.size() - kBodyAt - 4);
  for (uint32_t size : {0u, 1u, body - 1, body + 1, body + 100, kMaxHeaderBytes}) {
    std::string bad = good;
    put_u32(&bad, kBodySizeAt, size);
    EXPECT_EQ(header_error(bad + std::string(200, '\0')), ErrorCode::kCorrupt) << size;
  }
}

TEST(FormatHeader, BodySizeZeroWithMatchingCrcIsCorrupt) {
  // A well-formed envelope around an empty body: the body parser must report truncation, not crash.
  std::string bytes(kMagic.begin(), kMagic.end());
  bytes += std::string(1, static_cast<char>(kFormatVersion)) + std::string(7, '\0');
  bytes += std::string(4, '\0');
  fix_header_crc(&bytes, bytes.size());
  EXPECT_EQ(header_error(bytes), ErrorCode::kCorrupt);
}

TEST(FormatHeader, BodyWithTrailingBytesIsCorrupt) {
  std::string good = header_bytes(small_header());
  uint32_t body = static_cast<uint32_t>(good.size() - kBodyAt - 4);
  std::string bad = good.substr(0, good.size() - 4) + std::string(3, '\0') + "CRC.";
  put_u32(&bad, kBodySizeAt, body + 3);
  fix_header_crc(&bad, bad.size());
  EXPECT_EQ(header_error(bad), ErrorCode::kCorrupt);
}

TEST(FormatHeader, HugeDictionarySizeInsideBodyIsCorruptWithoutAllocating) {
  // The dictionary length is the last u32 before the dictionary; point it far past the body.
  FileHeader h = small_header();
  std::string good = header_bytes(h);
  size_t dict_size_at = good.size() - 4 - 4;  // empty dictionary: its size is just before the CRC
  for (uint32_t size : {0xFFFFFFFFu, kMaxDictionaryBytes + 1, kMaxDictionaryBytes, 1u}) {
    std::string bad = good;
    put_u32(&bad, dict_size_at, size);
    fix_header_crc(&bad, bad.size());
    AllocationGuard guard(kSmallAllocation);
    EXPECT_EQ(header_error(bad), ErrorCode::kCorrupt) << size;
    EXPECT_EQ(AllocationGuard::largest_refused(), 0u);
  }
}

TEST(FormatHeader, FingerprintCountPastTheBodyIsCorrupt) {
  FileHeader h = small_header();
  h.fingerprint.clear();
  std::string good = header_bytes(h);
  // Body layout: settings, u64 original size, u8 field count, u32 dictionary size.
  size_t count_at = good.size() - 4 - 4 - 1;
  std::string bad = good;
  bad[count_at] = static_cast<char>(255);
  fix_header_crc(&bad, bad.size());
  EXPECT_EQ(header_error(bad), ErrorCode::kCorrupt);
}

// ---- records -----------------------------------------------------------------------------------------

TEST(FormatRecords, BlockAndEndRoundTrip) {
  Settings settings;
  settings.codec.block_bytes = 4096;
  auto p1 = random_bytes(777, 6);
  BlockHeader b1{4096, 5000, 777, 0xdeadbeef, crc32_update(0, p1.data(), p1.size())};
  BlockHeader b2{1, 1, 0, 0x12345678, 0};  // empty payload
  EndRecord e{0x0102030405060708ull, 0xcafef00d};

  std::ostringstream out;
  EXPECT_EQ(write_block(out, b1, p1.data()), kBlockRecordBytes + p1.size());
  EXPECT_EQ(write_block(out, b2, nullptr), kBlockRecordBytes);
  EXPECT_EQ(write_end(out, e), kEndRecordBytes);
  EXPECT_EQ(out.str().size(), 2 * kBlockRecordBytes + p1.size() + kEndRecordBytes);

  std::istringstream in(out.str());
  BlockHeader r;
  EndRecord re;
  std::vector<uint8_t> payload;
  ASSERT_EQ(read_record(in, settings, &r, &payload, &re), RecordTag::kBlock);
  EXPECT_EQ(r.raw_bytes, b1.raw_bytes);
  EXPECT_EQ(r.symbols, b1.symbols);
  EXPECT_EQ(r.payload_bytes, b1.payload_bytes);
  EXPECT_EQ(r.raw_crc, b1.raw_crc);
  EXPECT_EQ(r.payload_crc, b1.payload_crc);
  EXPECT_EQ(payload, p1);
  ASSERT_EQ(read_record(in, settings, &r, &payload, &re), RecordTag::kBlock);
  EXPECT_EQ(r.raw_bytes, 1u);
  EXPECT_EQ(r.raw_crc, 0x12345678u);
  EXPECT_TRUE(payload.empty());
  ASSERT_EQ(read_record(in, settings, &r, &payload, &re), RecordTag::kEnd);
  EXPECT_EQ(re.total_bytes, e.total_bytes);
  EXPECT_EQ(re.total_crc, e.total_crc);
  EXPECT_EQ(in.peek(), std::char_traits<char>::eof());
}

TEST(FormatRecords, MaxBlockSymbolsAllowsTokenizerEscapes) {
  EXPECT_GE(max_block_symbols(1), 3u);
  EXPECT_GE(max_block_symbols(4096), 2u * 4096);
  Settings settings;
  settings.codec.block_bytes = 4096;
  std::string rec = raw_block_record(4096, static_cast<uint32_t>(max_block_symbols(4096)), 0);
  std::istringstream in(rec);
  BlockHeader b;
  EndRecord e;
  std::vector<uint8_t> payload;
  EXPECT_EQ(read_record(in, settings, &b, &payload, &e), RecordTag::kBlock);
}

ErrorCode record_error(const std::string& bytes, uint32_t block_bytes = 4096) {
  Settings settings;
  settings.codec.block_bytes = block_bytes;
  return error_of([&] {
    std::istringstream in(bytes);
    BlockHeader b;
    EndRecord e;
    std::vector<uint8_t> payload;
    read_record(in, settings, &b, &payload, &e);
  });
}

TEST(FormatRecords, MissingRecordIsCorrupt) {
  EXPECT_EQ(record_error(""), ErrorCode::kCorrupt);
}

TEST(FormatRecords, UnknownTagIsCorrupt) {
  for (int tag = 0; tag < 256; ++tag) {
    if (tag == 'B' || tag == 'E') continue;
    std::string rec = raw_block_record(10, 10, 0);
    rec[0] = static_cast<char>(tag);
    EXPECT_EQ(record_error(rec), ErrorCode::kCorrupt) << tag;
  }
}

TEST(FormatRecords, BadRecordCrcIsCorrupt) {
  std::string block = raw_block_record(10, 10, 0);
  block[5] ^= 4;
  EXPECT_EQ(record_error(block), ErrorCode::kCorrupt);
  std::ostringstream out;
  write_end(out, EndRecord{5, 6});
  std::string end = out.str();
  end[3] ^= 1;
  EXPECT_EQ(record_error(end), ErrorCode::kCorrupt);
}

TEST(FormatRecords, BadPayloadCrcIsCorrupt) {
  auto p = random_bytes(20, 7);
  std::ostringstream out;
  write_block(out, BlockHeader{10, 10, 20, 0, crc32_update(0, p.data(), p.size())}, p.data());
  std::string bytes = out.str();
  bytes[kBlockRecordBytes + 3] ^= 0x10;
  EXPECT_EQ(record_error(bytes), ErrorCode::kCorrupt);
}

TEST(FormatRecords, TruncationAtEveryLengthIsCorrupt) {
  auto p = random_bytes(40, 8);
  std::ostringstream out;
  write_block(out, BlockHeader{100, 100, 40, 0, crc32_update(0, p.data(), p.size())}, p.data());
  std::string block = out.str();
  for (size_t n = 0; n < block.size(); ++n)
    EXPECT_EQ(record_error(block.substr(0, n)), ErrorCode::kCorrupt) << n;
  std::ostringstream out2;
  write_end(out2, EndRecord{1, 2});
  std::string end = out2.str();
  for (size_t n = 0; n < end.size(); ++n) EXPECT_EQ(record_error(end.substr(0, n)), ErrorCode::kCorrupt) << n;
}

TEST(FormatRecords, SizesOutOfRangeAreCorruptWithoutAllocating) {
  struct Case {
    uint32_t raw, symbols, payload;
    const char* what;
  };
  const Case cases[] = {
      {0, 1, 0, "raw size 0"},
      {4097, 4097, 10, "raw size > block_bytes"},
      {0xFFFFFFFF, 100, 10, "raw size 2^32-1"},
      {100, 0, 0, "no symbols"},
      {100, static_cast<uint32_t>(max_block_symbols(100) + 1), 0, "too many symbols"},
      {100, 0xFFFFFFFF, 0, "symbols 2^32-1"},
      {100, 100, 0xFFFFFFFF, "payload 2^32-1"},
      {100, 100, 0x80000000, "payload 2^31"},
      {4096, 4096, 4 * 4096 + 65, "payload just above 4 bytes per symbol + 64"},
  };
  for (const Case& c : cases) {
    AllocationGuard guard(kSmallAllocation);
    EXPECT_EQ(record_error(raw_block_record(c.raw, c.symbols, c.payload) + std::string(100, 'x')),
              ErrorCode::kCorrupt)
        << c.what;
    EXPECT_EQ(AllocationGuard::largest_refused(), 0u) << c.what;
  }
}

// KNOWN BUG (reported): read_record() in src/core/format.cpp (payload->resize(block->payload_bytes) before
// read_exact) allocates and zero-fills the whole claimed payload before reading it. The bound it checks
// (4 * symbols + 64, symbols <= 2 * block_bytes + 16) follows the header's block_bytes, which a hostile
// file sets to 1 GiB, so a file of ~150 bytes makes the decoder allocate and zero ~4 GiB (or exit 7,
// "out of memory") before it finds out that the file is truncated. The payload should be read in chunks
// (grow the vector as data actually arrives), so a truncated file fails with kCorrupt after allocating
// at most what the file holds.
TEST(FormatRecords, TruncatedHugeClaimedPayloadIsCorruptWithoutAllocatingIt) {
  const uint32_t block_bytes = kMaxBlockBytes;                                         // valid in a header
  const uint32_t raw = block_bytes, symbols = 2 * block_bytes, payload = 0xF0000000u;  // within the bound
  AllocationGuard guard(64u << 20);
  EXPECT_EQ(record_error(raw_block_record(raw, symbols, payload) + "only a few payload bytes", block_bytes),
            ErrorCode::kCorrupt);
  EXPECT_EQ(AllocationGuard::largest_refused(), 0u)
      << "read_record tried to allocate " << AllocationGuard::largest_refused()
      << " bytes for a payload the file does not hold";
}

// ---- whole byte strings: every flipped bit and every truncation --------------------------------------

TEST(FormatFile, WholeFileParses) {
  EXPECT_NO_THROW(parse_all(whole_file()));
}

TEST(FormatFile, EveryFlippedBitIsAnError) {
  const std::string good = whole_file();
  for (size_t i = 0; i < good.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string bad = good;
      bad[i] = static_cast<char>(bad[i] ^ (1 << bit));
      ErrorCode code = error_of([&] { parse_all(bad); });
      ASSERT_TRUE(code == ErrorCode::kCorrupt || code == ErrorCode::kNotNncpp ||
                  code == ErrorCode::kIncompatible)
          << "byte " << i << " bit " << bit << " gave code " << static_cast<int>(code);
    }
  }
}

TEST(FormatFile, EveryTruncationIsAnError) {
  const std::string good = whole_file();
  for (size_t n = 0; n < good.size(); ++n) {
    ErrorCode code = error_of([&] { parse_all(good.substr(0, n)); });
    ASSERT_TRUE(code == ErrorCode::kCorrupt || (n < kMagic.size() && code == ErrorCode::kNotNncpp))
        << "truncated to " << n << " bytes gave code " << static_cast<int>(code);
  }
}

TEST(FormatFile, RandomGarbageNeverCrashes) {
  std::mt19937_64 g(11);
  const std::string good = whole_file();
  for (int round = 0; round < 2000; ++round) {
    std::string bad = good;
    int edits = 1 + static_cast<int>(g() % 8);
    for (int k = 0; k < edits; ++k) bad[g() % bad.size()] = static_cast<char>(g());
    if (g() % 2) bad.resize(g() % bad.size());
    try {
      parse_all(bad);
    } catch (const Error&) {
    }
  }
}

// ---- fingerprints ------------------------------------------------------------------------------------

TEST(Fingerprint, EqualPasses) {
  EXPECT_NO_THROW(check_fingerprint(custom_fingerprint(), custom_fingerprint()));
  EXPECT_NO_THROW(check_fingerprint({}, {}));
  Fingerprint reordered = custom_fingerprint();
  std::swap(reordered[0], reordered[3]);
  EXPECT_NO_THROW(check_fingerprint(custom_fingerprint(), reordered));
}

TEST(Fingerprint, DifferentValueNamesTheField) {
  Fingerprint file = {{"libtorch", "1.13.1"}, {"threads", "1"}, {"cpu_kernels", "AVX2"}};
  for (size_t i = 0; i < file.size(); ++i) {
    Fingerprint here = file;
    here[i].value = "other";
    ErrorCode code = error_of([&] { check_fingerprint(file, here); });
    EXPECT_EQ(code, ErrorCode::kIncompatible);
    std::string message = message_of([&] { check_fingerprint(file, here); });
    EXPECT_NE(message.find(file[i].name), std::string::npos) << message;
    EXPECT_NE(message.find(file[i].value), std::string::npos) << message;
    EXPECT_NE(message.find("other"), std::string::npos) << message;
    for (size_t j = 0; j < file.size(); ++j)
      if (j != i) {
        EXPECT_EQ(message.find(file[j].name), std::string::npos) << message;
      }
  }
}

TEST(Fingerprint, FieldMissingOnEitherSideNamesIt) {
  Fingerprint file = {{"device", "cpu"}, {"threads", "1"}};
  Fingerprint fewer = {{"device", "cpu"}};
  Fingerprint more = {{"device", "cpu"}, {"threads", "1"}, {"blas", "openblas-Haswell"}};
  EXPECT_EQ(error_of([&] { check_fingerprint(file, fewer); }), ErrorCode::kIncompatible);
  EXPECT_NE(message_of([&] { check_fingerprint(file, fewer); }).find("threads"), std::string::npos);
  EXPECT_EQ(error_of([&] { check_fingerprint(file, more); }), ErrorCode::kIncompatible);
  EXPECT_NE(message_of([&] { check_fingerprint(file, more); }).find("blas"), std::string::npos);
}

TEST(Fingerprint, SurvivesTheHeader) {
  FileHeader h = small_header();
  h.fingerprint = custom_fingerprint();
  std::istringstream in(header_bytes(h));
  FileHeader r = read_file_header(in);
  EXPECT_NO_THROW(check_fingerprint(r.fingerprint, custom_fingerprint()));
}

}  // namespace
}  // namespace nncpp
