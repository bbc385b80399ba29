// libFuzzer target for the container (src/core/format.cpp) and the decoder (src/core/engine.cpp), with the
// counting predictor of tests/support/count_predictor.h in place of the LSTM. The input is one option byte
// followed by an nncpp file:
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

// Rewrites the container check of a single-member file (docs/format.md, "Member end").
void repair_container_check(std::string* file) {
  if (file->size() < 2) return;
  const uint32_t crc =
      nncpp::crc32_update(0, reinterpret_cast<const uint8_t*>(file->data()), file->size() - 2);
  (*file)[file->size() - 2] = static_cast<char>(crc);
  (*file)[file->size() - 1] = static_cast<char>(crc >> 8);
}

// The parser alone. Returns the error code, or 0.
int parse(const std::string& file) {
  try {
    const auto members = nncpp::parse_container(reinterpret_cast<const uint8_t*>(file.data()), file.size());
    size_t at = 0;
    for (const nncpp::Member& m : members) {
      check(m.begin == at && m.end > m.begin && m.end <= file.size());
      check(m.header.dictionary.size() <= nncpp::kMaxDictionaryBytes);
      for (const nncpp::BlockRef& b : m.blocks) {
        const nncpp::BlockHeader& h = b.header;
        check(h.raw_bytes >= 1 && h.raw_bytes <= m.header.settings.codec.block_bytes);
        check(h.symbols <= nncpp::max_block_symbols(h.raw_bytes));
        check(b.payload_at >= m.begin && b.payload_at + h.payload_bytes <= m.end);
      }
      at = m.end;
    }
    check(at == file.size());
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
  if (options & 1) repair_container_check(&file);

  const int parsed = parse(file);
  // The decoder verifies the whole container before anything else: a file the parser refuses fails the
  // same way and writes nothing.
  if (parsed == 0) {
    for (const nncpp::Member& m :
         nncpp::parse_container(reinterpret_cast<const uint8_t*>(file.data()), file.size()))
      if (!affordable(m.header.settings)) return 0;
  }
  Decoded d = decode(file, options & 2);
  if (d.code == static_cast<int>(ErrorCode::kIncompatible) && !(options & 2)) d = decode(file, true);
  if (parsed != 0) check(d.code == parsed && d.out.empty());
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
