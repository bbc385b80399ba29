// libFuzzer target for the container (src/core/format.cpp) and the decoder (src/core/engine.cpp), with the counting
// predictor of tests/support/count_predictor.h in place of the LSTM. The input is one option byte followed
// by an nncpp file:
//   bit 0: repair the CRCs first (header, records, payloads), so that mutations reach the checks behind them;
//   bit 1: decode with ignore_fingerprint.
// From each input it checks:
//   - read_file_header + read_record until the end record: only nncpp::Error with status 4, 5 or 6;
//   - decompress(): succeeds, or fails with the same status as the parser for a bad header and otherwise with
//     4, 5 or 6; what it wrote is whole blocks; on success the statistics describe the output; the engine
//     keeps the predictor contract (no violations in the call log) even on hostile input.
// Run with -rss_limit_mb=2048 -malloc_limit_mb=1024 (docs/testing.md): a hang or an absurd allocation is a
// finding too.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

#include "core/checksum.h"
#include "nncpp/engine.h"
#include "nncpp/error.h"
#include "nncpp/format.h"
#include "support/count_predictor.h"

namespace {

using nncpp::ErrorCode;

void check(bool ok) {
  if (!ok) std::abort();
}

bool is_file_error(ErrorCode code) {
  return code == ErrorCode::kNotNncpp || code == ErrorCode::kCorrupt || code == ErrorCode::kIncompatible;
}

uint32_t get_u32(const std::string& s, size_t at) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(static_cast<uint8_t>(s[at + i])) << (8 * i);
  return v;
}

void put_u32(std::string* s, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) (*s)[at + i] = static_cast<char>(v >> (8 * i));
}

uint32_t crc(const std::string& s, size_t at, size_t n) {
  return nncpp::crc32_update(0, reinterpret_cast<const uint8_t*>(s.data()) + at, n);
}

// Rewrites every CRC that the bytes present allow (docs/format.md): the header's, and each record's and
// payload's, walking the records as the reader would.
void repair_crcs(std::string* file) {
  const size_t n = file->size();
  if (n < 16) return;
  const uint64_t body = get_u32(*file, 12);
  if (16 + body + 4 > n) return;
  put_u32(file, 16 + body, crc(*file, 0, 16 + body));
  size_t at = 16 + body + 4;
  while (at < n) {
    const char tag = (*file)[at];
    if (tag == 'E' && at + nncpp::kEndRecordBytes <= n) {
      put_u32(file, at + 13, crc(*file, at, 13));
      return;
    }
    if (tag != 'B' || at + nncpp::kBlockRecordBytes > n) return;
    const uint64_t payload = get_u32(*file, at + 9);
    const size_t payload_at = at + nncpp::kBlockRecordBytes;
    if (payload_at + payload <= n) put_u32(file, at + 17, crc(*file, payload_at, payload));
    put_u32(file, at + 21, crc(*file, at, 21));
    at = payload_at + payload;
  }
}

// The parser alone: header, then records until the end record. Returns the error code, or 0.
int parse(const std::string& file) {
  std::istringstream in(file);
  try {
    nncpp::FileHeader header = nncpp::read_file_header(in);
    check(header.encoded_bytes <= file.size());
    check(header.dictionary.size() <= nncpp::kMaxDictionaryBytes);
    nncpp::BlockHeader block;
    nncpp::EndRecord end;
    std::vector<uint8_t> payload;
    while (nncpp::read_record(in, header.settings, &block, &payload, &end) == nncpp::RecordTag::kBlock) {
      check(block.raw_bytes >= 1 && block.raw_bytes <= header.settings.codec.block_bytes);
      check(block.symbols >= 1 && block.symbols <= nncpp::max_block_symbols(block.raw_bytes));
      check(payload.size() == block.payload_bytes && payload.size() <= file.size());
    }
    return 0;
  } catch (const nncpp::Error& e) {
    check(is_file_error(e.code()));
    return static_cast<int>(e.code());
  }
}

// The format lets a header declare up to 1 GiB blocks, 2^26-entry match tables and large vocabularies,
// which a decoder then legitimately allocates and spends time on (the same code at larger sizes). Inputs
// must stay fast, so decompress() runs only for headers that declare little; the parser sees them all.
bool affordable(const nncpp::Settings& s) {
  return s.codec.block_bytes <= (64u << 10) && s.codec.match_hash_bits <= 16 &&
         uint64_t{s.codec.block_bytes} * s.model.vocab <= (uint64_t{1} << 25) &&
         uint64_t{s.model.streams} * s.model.vocab <= (uint64_t{1} << 20);
}

struct Decoded {
  int code = 0;  // 0 = success
  std::string out;
};

Decoded decode(const std::string& file, bool ignore_fingerprint) {
  nncpp::test_support::TestBackend backend;
  std::istringstream in(file);
  std::ostringstream out;
  nncpp::DecompressJob job;
  job.backend = &backend;
  job.ignore_fingerprint = ignore_fingerprint;
  uint64_t blocks = 0, block_bytes = 0;
  job.on_block = [&](const nncpp::BlockInfo& b) {
    check(b.index == blocks++);
    block_bytes += b.raw_bytes;
  };
  Decoded d;
  try {
    nncpp::Stats stats = nncpp::decompress(in, out, job);
    check(stats.original_bytes == out.str().size() && stats.blocks == blocks);
    check(stats.input_bytes == file.size());
  } catch (const nncpp::Error& e) {
    check(is_file_error(e.code()));
    d.code = static_cast<int>(e.code());
  }
  d.out = out.str();
  check(d.out.size() == block_bytes);  // only blocks that matched their CRC were written
  check(backend.log.violations.empty());
  return d;
}

size_t g_decoded = 0;  // inputs that decoded completely (for the smoke driver's check)

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t options = data[0];
  std::string file(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (options & 1) repair_crcs(&file);

  const int parsed = parse(file);
  int header_code = 0;
  std::istringstream in(file);
  try {
    if (!affordable(nncpp::read_file_header(in).settings)) return 0;
  } catch (const nncpp::Error& e) {
    header_code = static_cast<int>(e.code());
    check(header_code == parsed);
  }
  Decoded d = decode(file, options & 2);
  if (d.code == static_cast<int>(ErrorCode::kIncompatible) && !(options & 2)) d = decode(file, true);
  if (header_code != 0) check(d.code == header_code && d.out.empty());
  if (d.code == 0) {
    check(parsed == 0);  // a file that decodes also parses
    ++g_decoded;
  }
  return 0;
}

// Called by the smoke driver (tests/fuzz/smoke_main.cpp) after its run: a seed corpus that no longer decodes
// (format or engine changed) would leave the decoder untested.
extern "C" const char* NncppFuzzSmokeCheck() {
  return g_decoded > 0 ? nullptr
                       : "no input decoded completely: regenerate the seed corpus (docs/testing.md)";
}
