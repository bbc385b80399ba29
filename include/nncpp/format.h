// The nncpp container, format version 3 (docs/format.md is the specification). A file is one or more
// members; each member is
//   file header   magic, version, descriptor (level, flags), original size, the settings that differ from
//                 the level, the fingerprint digest, the tokenizer dictionary
//   block records symbol count, payload size, data check (CRC-32 of the original so far), payload
//   member end    a zero raw size (only when the original size is unknown), container check
// Integers are LEB128 varints unless docs/format.md says otherwise. Readers check every size against the
// bytes present before allocating anything.
#pragma once

#include <array>
#include <cstdint>
#include <istream>
#include <limits>
#include <ostream>
#include <string>
#include <vector>

#include "nncpp/predictor.h"
#include "nncpp/settings.h"

namespace nncpp {

constexpr std::array<uint8_t, 3> kMagic = {0x89, 'N', 'N'};
constexpr uint8_t kFormatVersion = 3;
constexpr uint64_t kUnknownSize = std::numeric_limits<uint64_t>::max();

// Bounds that keep a hostile header from asking for absurd allocations.
constexpr uint32_t kMaxDictionaryBytes = 2u << 20;
constexpr uint32_t kMaxBlockBytes = 1u << 30;
constexpr uint32_t kMaxSettingsListed = 256;

// The fingerprint as the file carries it: kFingerprintBytes (CPU) or kGpuFingerprintBytes (other devices)
// bytes; field i of the backend's fingerprint (fields that restate a setting left out) XORs an 8-bit hash of
// its name and value into byte i mod size. The decoder recomputes it from its own fingerprint: a differing
// byte names the fields that map to it.
constexpr size_t kFingerprintBytes = 4;
constexpr size_t kGpuFingerprintBytes = 8;
using FingerprintDigest = std::vector<uint8_t>;

struct FileHeader {
  Settings settings;
  FingerprintDigest fingerprint;          // digest_fingerprint() of the compressor's fingerprint
  uint64_t original_size = kUnknownSize;  // kUnknownSize when compressing a stream of unknown length
  std::vector<uint8_t> dictionary;        // serialised tokenizer dictionary; empty = bytes only
  size_t encoded_bytes = 0;               // set by the readers: the header's size in the file
};

// One block record as the compressor writes it.
struct BlockHeader {
  uint32_t raw_bytes = 0;      // original bytes in this block
  uint32_t symbols = 0;        // symbols coded (bytes, or tokens after the dictionary); 0 = stored block
  uint32_t payload_bytes = 0;  // bytes of the payload that follows
  uint32_t data_crc = 0;       // CRC-32 of the member's original bytes from its start through this block
};

// A block record found by parse_container(): its fields and where its payload lies in the buffer.
struct BlockRef {
  BlockHeader header;
  size_t payload_at = 0;    // offset of the payload in the parsed buffer
  size_t record_bytes = 0;  // the record's size in the file, payload included
};

// One member of a file: a complete nncpp stream (header, blocks, end), verified by parse_container().
struct Member {
  FileHeader header;
  std::vector<BlockRef> blocks;
  size_t begin = 0, end = 0;  // offsets of its first byte and one past its last
  uint64_t original_bytes = 0;
};

// The settings a file at `level` starts from (1..12; 0 = the defaults of Settings{}), before the settings
// it lists: the level's preset, the vocabulary of `dictionary`, and for the GPU levels device "cuda" with
// dtype "tf32", fitted to original_size as the compressor fits a level (fit_to_input in presets.h). Throws
// Error(kIncompatible) for a level this nncpp does not know.
Settings reference_settings(int level, uint32_t vocab, uint64_t original_size);

// The digest the header stores for `fingerprint` (the backend's, for `settings`).
FingerprintDigest digest_fingerprint(const Fingerprint& fingerprint, const Settings& settings);

// Throws Error(kIncompatible) naming the field(s) where the file's digest differs from this run's
// fingerprint.
void check_fingerprint(const FingerprintDigest& file, const Fingerprint& here, const Settings& settings);

// Writers return the number of bytes written; each keeps the running CRC of the member (*container_crc,
// start with 0) for its container check.
size_t write_file_header(std::ostream& out, const FileHeader& header, uint32_t* container_crc);
size_t write_block(std::ostream& out, const BlockHeader& block, const uint8_t* payload, bool size_known,
                   uint32_t* container_crc);
size_t write_member_end(std::ostream& out, bool size_known, uint32_t container_crc);

// Parses a file header from memory. Throws kNotNncpp (bad magic), kIncompatible (other version, unknown
// level or setting, reserved bit), kCorrupt (truncated, values out of range). Does not check the container
// check (the member's end holds it): parse_container() does.
FileHeader parse_file_header(const uint8_t* data, size_t size);

// Reads and parses a file header from a stream (reads ahead: the stream's position afterwards is
// unspecified). For listing a file's settings.
FileHeader read_file_header(std::istream& in);

// Parses and verifies a whole file in memory before any decoding: every member's header, each record's
// layout and sizes (against the settings and against the bytes present), each payload's stream table, and
// each member's container check. Bytes after a member must start another member. Throws as
// parse_file_header, and kCorrupt for anything else.
std::vector<Member> parse_container(const uint8_t* data, size_t size);

// Reads the whole input into memory in chunks (a truncated file never costs the size it claims).
std::vector<uint8_t> read_all(std::istream& in);

// The payload of a coded block: the sizes of streams 0..S-2 as varints, then the S coded streams.
std::vector<uint8_t> write_stream_table(const std::vector<std::vector<uint8_t>>& streams);
// Splits a payload into its S streams: (offset, size) each. Throws kCorrupt if the table does not fit.
std::vector<std::pair<size_t, size_t>> parse_stream_table(const uint8_t* payload, size_t size, int streams);

// Most symbols a block of raw_bytes may hold (tokenizer escapes can add symbols).
uint64_t max_block_symbols(uint64_t raw_bytes);
// Most payload bytes a coded block of `symbols` symbols in `streams` streams may take (31 bits per symbol
// at worst, a flush and a size per stream).
uint64_t max_block_payload(uint64_t symbols, int streams);
// The least payload a coded block of `symbols` carries: one byte per 65536 symbols. The writer pads the
// payload (its last stream) with zero bytes, which decode as the bytes past a stream's end do, so a forged
// symbol count is refused before any model work instead of costing model time once a confident model
// stops reading the payload.
uint64_t min_block_payload(uint64_t symbols);

// The memory decoding a member needs beyond the program itself: the model with its optimizer state and
// activations, the match table, and the block buffers, in bytes.
uint64_t decoder_memory_bytes(const Member& member);

// Setting fields of the header (docs/format.md, "Settings"): for tests and tools.
struct SettingInfo {
  uint32_t id;
  const char* name;
};
std::vector<SettingInfo> setting_fields();

}  // namespace nncpp
