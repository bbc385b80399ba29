// The nncpp container (docs/format.md is the specification):
//   file header (magic, version, settings, fingerprint, dictionary, header CRC)
//   block records (sizes, CRCs, range-coded payload), one per block of input
//   end record (total size and CRC-32 of the whole original)
// All integers are little-endian. Readers validate every size before allocating.
#pragma once

#include <array>
#include <cstdint>
#include <istream>
#include <limits>
#include <ostream>
#include <vector>

#include "nncpp/predictor.h"
#include "nncpp/settings.h"

namespace nncpp {

constexpr std::array<uint8_t, 8> kMagic = {0x89, 'N', 'N', 'C', 'P', 'P', '\r', '\n'};
constexpr uint16_t kFormatVersion = 2;
constexpr uint64_t kUnknownSize = std::numeric_limits<uint64_t>::max();

// Bounds that keep a hostile header from asking for absurd allocations.
constexpr uint32_t kMaxHeaderBytes = 4u << 20;
constexpr uint32_t kMaxDictionaryBytes = 2u << 20;
constexpr uint32_t kMaxBlockBytes = 1u << 30;

struct FileHeader {
  Settings settings;
  Fingerprint fingerprint;
  uint64_t original_size = kUnknownSize;  // kUnknownSize when compressing a stream of unknown length
  std::vector<uint8_t> dictionary;        // serialised tokenizer dictionary; empty = bytes only
  size_t encoded_bytes = 0;               // set by read_file_header: the header's size in the file
};

struct BlockHeader {
  uint32_t raw_bytes = 0;      // original bytes in this block
  uint32_t symbols = 0;        // symbols coded (bytes, or tokens after the dictionary)
  uint32_t payload_bytes = 0;  // range-coded bytes that follow
  uint32_t raw_crc = 0;        // CRC-32 of the original bytes
  uint32_t payload_crc = 0;    // CRC-32 of the payload, checked before decoding (fails fast)
};

struct EndRecord {
  uint64_t total_bytes = 0;
  uint32_t total_crc = 0;
};

// Writers return the number of bytes written.
size_t write_file_header(std::ostream& out, const FileHeader& header);
// Throws kNotNncpp (bad magic), kIncompatible (unknown version or flags), kCorrupt (bad CRC, bad values).
FileHeader read_file_header(std::istream& in);

// Records after the header: a one-byte tag says which.
enum class RecordTag : uint8_t { kBlock = 'B', kEnd = 'E' };

size_t write_block(std::ostream& out, const BlockHeader& block, const uint8_t* payload);
size_t write_end(std::ostream& out, const EndRecord& end);

// Encoded sizes of the fixed parts of records (for byte accounting).
constexpr size_t kBlockRecordBytes = 1 + 5 * 4 + 4;  // tag, five fields, record CRC
constexpr size_t kEndRecordBytes = 1 + 8 + 4 + 4;    // tag, size, CRC, record CRC

// Reads the next record's tag and fields (the block's payload too, into *payload). Validates sizes against
// the header's settings and the payload CRC. Throws kCorrupt.
RecordTag read_record(std::istream& in, const Settings& settings, BlockHeader* block,
                      std::vector<uint8_t>* payload, EndRecord* end);

// Most symbols a block of raw_bytes may hold (tokenizer escapes can add symbols).
uint64_t max_block_symbols(uint64_t raw_bytes);

// Throws Error(kIncompatible) naming the first field where `file` differs from `here`.
void check_fingerprint(const Fingerprint& file, const Fingerprint& here);

}  // namespace nncpp
