// Makes the hostile golden files (tests/golden/make_golden.sh): changes one field of a valid nncpp file and
// recomputes the CRC that covers it, so that the decoder must refuse the value itself, not a checksum.
//
//   golden_forge RECIPE IN OUT
//
// Recipes: truncated-header, truncated-payload, flipped-header-bit, flipped-payload-bit, trailing-garbage,
// future-version, flags-1, absurd-header-size, absurd-model, absurd-vocabulary, absurd-dictionary-size,
// other-libtorch, absurd-block-size, false-symbol-count.
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <sstream>
#include <stdexcept>
#include <string>

#include "core/checksum.h"
#include "nncpp/error.h"
#include "nncpp/format.h"

namespace {

std::string read_all(const char* path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(std::string("cannot read ") + path);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void put_u32(std::string* s, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) (*s)[at + i] = static_cast<char>(v >> (8 * i));
}

void put_u16(std::string* s, size_t at, uint16_t v) {
  (*s)[at] = static_cast<char>(v);
  (*s)[at + 1] = static_cast<char>(v >> 8);
}

uint32_t get_u32(const std::string& s, size_t at) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(static_cast<uint8_t>(s[at + i])) << (8 * i);
  return v;
}

void put_crc(std::string* s, size_t from, size_t n, size_t at) {
  put_u32(s, at, nncpp::crc32_update(0, reinterpret_cast<const uint8_t*>(s->data()) + from, n));
}

// The file with its header rewritten by the library's writer (valid CRC).
std::string with_header(const std::string& file, const nncpp::FileHeader& header) {
  std::ostringstream out;
  nncpp::write_file_header(out, header);
  return out.str() + file.substr(header.encoded_bytes);
}

std::string forge(const std::string& recipe, std::string file) {
  std::istringstream in(file);
  nncpp::FileHeader h = nncpp::read_file_header(in);
  const size_t header_crc_at = h.encoded_bytes - 4;
  const size_t block_at = h.encoded_bytes;  // the first record
  const size_t payload_at = block_at + nncpp::kBlockRecordBytes;
  const size_t payload_bytes =
      file.size() > payload_at && file[block_at] == 'B' ? get_u32(file, block_at + 9) : 0;

  // Damage that no CRC hides.
  if (recipe == "truncated-header") return file.substr(0, h.encoded_bytes / 2);
  if (recipe == "trailing-garbage") return file + "garbage\n";
  if (recipe == "flipped-header-bit") {
    file[16 + 12] ^= 0x01;  // the lowest bit of the model's hidden size
    return file;
  }
  if (recipe == "absurd-header-size") {  // refused before the body (and its CRC) is read
    put_u32(&file, 12, 0xFFFFFFFFu);
    return file;
  }
  const bool block_recipe = recipe == "truncated-payload" || recipe == "flipped-payload-bit" ||
                            recipe == "absurd-block-size" || recipe == "false-symbol-count";
  if (block_recipe && payload_bytes < 2) throw std::runtime_error("the file has no block to damage");
  if (recipe == "truncated-payload") return file.substr(0, payload_at + payload_bytes / 2);
  if (recipe == "flipped-payload-bit") {
    file[payload_at + payload_bytes / 2] ^= 0x08;
    return file;
  }

  // Header values, written back by the library's writer.
  if (recipe == "absurd-model") {  // each in range, together ~100 GiB with the optimizer state
    h.settings.model.layers = 32;
    h.settings.model.hidden = 8192;
    return with_header(file, h);
  }
  if (recipe == "absurd-vocabulary") {
    h.settings.model.vocab = 0xFFFFFFFFu;
    return with_header(file, h);
  }
  if (recipe == "other-libtorch") {
    bool found = false;
    for (nncpp::FingerprintField& f : h.fingerprint)
      if (f.name == "libtorch") f.value = "0.0.1", found = true;
    if (!found) throw std::runtime_error("no libtorch field in the fingerprint");
    return with_header(file, h);
  }

  // Fields the writer cannot produce: patched in place, then the covering CRC recomputed.
  if (recipe == "future-version" || recipe == "flags-1" || recipe == "absurd-dictionary-size") {
    if (recipe == "future-version") put_u16(&file, 8, nncpp::kFormatVersion + 1);
    if (recipe == "flags-1") put_u16(&file, 10, 1);
    if (recipe == "absurd-dictionary-size")
      put_u32(&file, header_crc_at - h.dictionary.size() - 4, 0xFFFFFFFFu);
    put_crc(&file, 0, header_crc_at, header_crc_at);
    return file;
  }
  if (recipe == "absurd-block-size") {
    put_u32(&file, block_at + 1, 0xFFFFFFFFu);
    put_crc(&file, block_at, 21, block_at + 21);
    return file;
  }
  if (recipe == "false-symbol-count") {  // in range for a file with a dictionary, but this one has none
    if (!h.dictionary.empty()) throw std::runtime_error("needs a file without a dictionary");
    put_u32(&file, block_at + 5,
            static_cast<uint32_t>(nncpp::max_block_symbols(get_u32(file, block_at + 1))));
    put_crc(&file, block_at, 21, block_at + 21);
    return file;
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
