// Makes the damaged and hostile golden files (tests/golden/make_golden.sh) from a valid single-member nncpp
// file. Hostile recipes rewrite the file with the library's writers or patch it and recompute the container
// check, so that the decoder must refuse the values themselves, not a checksum.
//
//   golden_forge RECIPE IN OUT
//
// Recipes: truncated-header, truncated-payload, flipped-header-bit, flipped-payload-bit,
// flipped-last-record-bit, trailing-garbage, future-version, version-2, reserved-bit, unknown-level,
// absurd-model, big-model, header-only, absurd-vocabulary, absurd-dictionary-size, other-libtorch,
// absurd-original-size, huge-symbol-count, false-symbol-count, many-threads.
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/checksum.h"
#include "nncpp/error.h"
#include "nncpp/format.h"

namespace {

std::string read_all(const char* path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(std::string("cannot read ") + path);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

const uint8_t* bytes_of(const std::string& s) {
  return reinterpret_cast<const uint8_t*>(s.data());
}

// The member's container check is its last two bytes: recompute it after an edit.
std::string with_container_check(std::string file) {
  const uint32_t crc = nncpp::crc32_update(0, bytes_of(file), file.size() - 2);
  file[file.size() - 2] = static_cast<char>(crc);
  file[file.size() - 1] = static_cast<char>(crc >> 8);
  return file;
}

// The file rewritten with another header and/or blocks, every container check valid.
std::string rebuild(const nncpp::FileHeader& header, const std::vector<nncpp::BlockHeader>& blocks,
                    const std::vector<std::string>& payloads) {
  std::ostringstream out;
  uint32_t crc = 0;
  nncpp::write_file_header(out, header, &crc);
  const bool size_known = header.original_size != nncpp::kUnknownSize;
  for (size_t i = 0; i < blocks.size(); ++i)
    nncpp::write_block(out, blocks[i], bytes_of(payloads[i]), size_known, &crc);
  nncpp::write_member_end(out, size_known, crc);
  return out.str();
}

std::string varint(uint64_t v) {
  std::string s;
  for (; v >= 0x80; v >>= 7) s += static_cast<char>(v | 0x80);
  return s + static_cast<char>(v);
}

std::string forge(const std::string& recipe, std::string file) {
  const std::vector<nncpp::Member> members = nncpp::parse_container(bytes_of(file), file.size());
  if (members.size() != 1) throw std::runtime_error("needs a file of one member");
  const nncpp::Member& m = members[0];
  nncpp::FileHeader h = m.header;
  std::vector<nncpp::BlockHeader> blocks;
  std::vector<std::string> payloads;
  for (const nncpp::BlockRef& b : m.blocks) {
    blocks.push_back(b.header);
    payloads.push_back(file.substr(b.payload_at, b.header.payload_bytes));
  }
  const bool block_recipe = recipe == "truncated-payload" || recipe == "flipped-payload-bit" ||
                            recipe == "huge-symbol-count" || recipe == "false-symbol-count";
  if (block_recipe && (blocks.empty() || blocks[0].payload_bytes < 2))
    throw std::runtime_error("the file has no block to damage");

  // Damage that the container check finds.
  if (recipe == "truncated-header") return file.substr(0, h.encoded_bytes / 2);
  if (recipe == "truncated-payload")
    return file.substr(0, m.blocks[0].payload_at + blocks[0].payload_bytes / 2);
  if (recipe == "trailing-garbage") return file + "garbage\n";
  if (recipe == "flipped-header-bit") {
    file[5] ^= 0x01;  // the lowest bit of the first field after the descriptor
    return file;
  }
  if (recipe == "flipped-payload-bit") {
    file[m.blocks[0].payload_at + blocks[0].payload_bytes / 2] ^= 0x08;
    return file;
  }
  if (recipe == "flipped-last-record-bit") {
    file[file.size() - 3] ^= 0x10;  // the last byte before the container check
    return file;
  }

  // Fields the writer cannot produce: patched in place, the container check recomputed.
  if (recipe == "future-version") {
    file[3] = static_cast<char>(nncpp::kFormatVersion + 1);
    return with_container_check(file);
  }
  if (recipe == "version-2") {  // the 8-byte magic and version field of format version 2, then this body
    return std::string("\x89NNCPP\r\n\x02\x00\x00\x00", 12) + file.substr(4);
  }
  if (recipe == "reserved-bit") {
    file[4] = static_cast<char>(file[4] | 0x80);
    return with_container_check(file);
  }
  if (recipe == "other-libtorch") {  // the digest byte of the second fingerprint field (libtorch on the CPU)
    file[h.encoded_bytes - h.fingerprint.size() + 1] ^= 0x5a;
    return with_container_check(file);
  }
  if (recipe == "unknown-level") {  // level 14: no such preset
    file[4] = static_cast<char>((file[4] & 0xf0) | 14);
    return with_container_check(file);
  }
  if (recipe == "absurd-dictionary-size") {  // 2^32 - 1, in a varint
    if (h.dictionary.empty()) throw std::runtime_error("needs a file with a dictionary");
    const std::string size = varint(h.dictionary.size());
    const size_t at = file.find(size + std::string(h.dictionary.begin(), h.dictionary.end()));
    file.replace(at, size.size(), varint(0xFFFFFFFFu));
    return with_container_check(file);
  }

  // Header values, written back by the library's writer (a custom level lists them).
  if (recipe == "absurd-model" || recipe == "big-model" || recipe == "absurd-vocabulary" ||
      recipe == "many-threads" || recipe == "absurd-original-size" || recipe == "header-only") {
    h.settings.level = 0;
    if (recipe == "absurd-model") {  // each in range, together ~100 GiB with the optimizer state
      h.settings.model.layers = 32;
      h.settings.model.hidden = 8192;
    }
    if (recipe == "big-model" || recipe == "header-only") {  // LSTM 2 x 8192: ~8 GiB with Adam state
      h.settings.model.layers = 2;
      h.settings.model.hidden = 8192;
    }
    if (recipe == "absurd-vocabulary") h.settings.model.vocab = 0xFFFFFFFFu;
    if (recipe == "many-threads") h.settings.runtime.threads = 256;
    if (recipe == "absurd-original-size") {  // 1 GiB blocks, 2^40 bytes: far more blocks than the file holds
      h.settings.codec.block_bytes = nncpp::kMaxBlockBytes;
      h.original_size = uint64_t{1} << 40;
    }
    const std::string rebuilt = rebuild(h, blocks, payloads);
    if (recipe == "header-only")  // the header of big-model alone: nothing may be built for it
      return rebuilt.substr(0, nncpp::parse_file_header(bytes_of(rebuilt), rebuilt.size()).encoded_bytes);
    return rebuilt;
  }

  // Block records, rewritten as a streamed file (the header's size does not imply them).
  if (recipe == "huge-symbol-count" || recipe == "false-symbol-count") {
    h.original_size = nncpp::kUnknownSize;
    nncpp::BlockHeader& b = blocks[0];
    if (recipe == "false-symbol-count") {  // in range with a dictionary; this file has none
      if (!h.dictionary.empty()) throw std::runtime_error("needs a file without a dictionary");
      b.symbols = static_cast<uint32_t>(nncpp::max_block_symbols(b.raw_bytes));
    } else {  // 1 GiB blocks: the block claims 2^30 bytes of 2^31 symbols, in one stream of this payload
      if (h.dictionary.empty()) throw std::runtime_error("needs a file with a dictionary");
      h.settings.level = 0;
      h.settings.codec.block_bytes = nncpp::kMaxBlockBytes;
      h.settings.codec.min_stream_symbols = 0xFFFFFFFFu;
      b.raw_bytes = nncpp::kMaxBlockBytes;
      b.symbols = 2 * nncpp::kMaxBlockBytes;
      blocks.resize(1);
      payloads.resize(1);
    }
    return rebuild(h, blocks, payloads);
  }
  throw std::runtime_error("unknown recipe " + recipe);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s RECIPE IN OUT\n", argv[0]);
    return 3;
  }
  try {
    const std::string out = forge(argv[1], read_all(argv[2]));
    std::ofstream f(argv[3], std::ios::binary | std::ios::trunc);
    f.write(out.data(), static_cast<std::streamsize>(out.size()));
    if (!f) throw std::runtime_error(std::string("cannot write ") + argv[3]);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "golden_forge: %s\n", e.what());
    return 1;
  }
  return 0;
}
