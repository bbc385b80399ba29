// The contexts of the mixer's count models (context_table.h), computed from each stream's coded history.
// Symbol contexts see the symbol sequence; byte contexts see the bytes those symbols stand for, so lines,
// columns and fixed-length records are found whatever the tokenizer did with them.
#pragma once

#include <cstdint>
#include <vector>

namespace nncpp {

// One bit per context model in MixSettings::models.
enum ContextModelId : int {
  kOrder1 = 0,   // the previous symbol
  kOrder2,       // the previous 2 symbols
  kOrder3,       // 3
  kOrder4,       // 4
  kOrder6,       // 6
  kSparse,       // symbols 2 and 3 back (skips the last one: binary fields, interleaved data)
  kWord,         // the bytes of the current word and of the word before (letters only, case folded)
  kColumn,       // text tables: the column in the line and the bytes above it in the previous line
  kRecord,       // fixed-length records (found automatically): the bytes one record back, and the last byte
  kOrder2Bytes,  // the last 2 bytes, whatever symbols they came from (mixed token/byte regions)
  kWordPrefix,   // the bytes of the current word alone (letters only, case folded), and the byte before
  kOrder8,       // 8
  kSparse13,     // bytes 1 and 3 back (binary: opcodes and operands, 16-bit fields)
  kSparse24,     // bytes 2 and 4 back
  kStride4,      // bytes 4 and 8 back and the position mod 4 (32-bit words: numbers, addresses)
  kIndirect,     // the last byte and the two bytes that followed it the last times it occurred
  // Bits around the current bit in the rows above (bit_mixer.h: record bits): bitmaps and tables whose
  // record length was found. Handled by the binary mixer itself; contexts() leaves its hash 0.
  kRecordBits,
  kNumContextModels
};

// Fixed-length records (table rows, bitmap rows): a byte value recurring at the same distance twice votes
// for that distance; a length needs kMinVotes confirmations over its rivals, and, where min_hits is set,
// that share of the bytes must equal the byte one length back (it stops being used below half of that).
// Each stream has a finder of its own; a mixer's streams also share one that needs 90% hits: 32 streams
// each finding pic's rows alone found them late (pic 36% larger), while a shared finder without the hit
// test let lengths found by chance in text and code spoil paper1, progc, sum and obj2 (docs/architecture.md).
class RecordFinder {
 public:
  static constexpr int kMinVotes = 8, kMaxVotes = 64;
  explicit RecordFinder(int min_hits = 0) : min_hits_(min_hits) {}  // min_hits in 1/65536
  // A byte recurred at the same distance `gap` as the time before.
  void vote(uint32_t gap);
  // The length being voted for (0 = none) and, for each byte, whether it equalled the byte that far back.
  uint32_t candidate() const { return candidate_; }
  void observe(bool hit);
  // The record length in use (0 = none).
  uint32_t length() const { return length_; }

 private:
  void decide();

  int min_hits_;
  uint32_t candidate_ = 0;
  int votes_ = 0;
  int hits_ = 0;  // running share of bytes equal to the byte candidate_ back, in 1/65536 (rate 1/256)
  uint32_t length_ = 0;
};

// The hit share a mixer's shared record finder needs.
constexpr int kSharedRecordMinHits = 58982;  // 0.9

// Per stream: the last symbols and bytes, the line and record structure, and the context hashes for
// the next symbol.
class ContextHistory {
 public:
  // symbol_bytes[s]: the bytes symbol s stands for (empty for the tokenizer's case escapes); records: a
  // finder shared with other streams (nullptr: none), whose length wins over the stream's own.
  explicit ContextHistory(const std::vector<std::vector<uint8_t>>* symbol_bytes,
                          RecordFinder* records = nullptr);

  // Hashes of every context model for the next symbol; hashes[kNumContextModels].
  void contexts(uint64_t* hashes) const;
  // The symbol just coded.
  void push(uint16_t symbol);
  // The record length in bytes (0 = none).
  uint32_t record() const {
    return shared_records_ != nullptr && shared_records_->length() != 0 ? shared_records_->length()
                                                                        : own_records_.length();
  }
  // The byte `distance` back (>= 1; 0 before the start or beyond kRing).
  uint8_t byte_back(uint32_t distance) const {
    return distance <= bytes_seen_ && distance <= kRing ? ring_[(bytes_seen_ - distance) & (kRing - 1)] : 0;
  }

 private:
  static constexpr uint32_t kRing = 1u << 13;  // bytes kept: records up to kRing / 2
  void push_byte(uint8_t c);

  const std::vector<std::vector<uint8_t>>* symbol_bytes_;
  uint16_t last_[8] = {};  // the previous symbols + 1, last_[0] the latest (0 = before the start)
  std::vector<uint8_t> ring_;
  uint32_t bytes_seen_ = 0;
  uint32_t line_start_ = 0;       // byte index where the current line starts
  uint32_t prev_line_start_ = 0;  // and where the previous one started
  uint64_t word_ = 0, prev_word_ = 0;
  uint16_t followed_[256] = {};  // per byte value: the two bytes that followed it last, the latest low
  // Record length detection: where each byte value was last seen, and the distance before that.
  uint32_t last_at_[256] = {};
  uint32_t last_gap_[256] = {};
  RecordFinder own_records_;
  RecordFinder* shared_records_;
};

}  // namespace nncpp
