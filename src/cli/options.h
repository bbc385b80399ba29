// Command-line options of the nncpp tool (DESIGN.md section 9 and `nncpp --help`).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "nncpp/settings.h"

namespace nncpp::cli {

enum class Command { kNone, kCompress, kDecompress, kTest, kList };

struct Options {
  Command command = Command::kNone;
  std::vector<std::string> files;  // the positional names, as given ("-" = stdin)
  std::string output;              // -o; empty = derived from each input; "-" = stdout
  bool multiple = false;           // -m: every name is an input (`c -m a b` compresses a and b)
  bool recursive = false;          // -r: compress/decompress/test/list the files in named folders
  bool to_stdout = false;          // -c
  bool force = false;              // -f
  bool remove_input = false;       // --rm
  int verbosity = 1;               // 0 = -q, 1 = normal, 2 = -v
  bool json = false;               // `l --json`
  bool ignore_fingerprint = false;
  uint64_t memory_limit = 0;  // d, t: --memlimit in bytes; 0 = the machine's physical memory
  std::string stats_json;    // --stats-json FILE
  bool profile = false;      // --profile: time each phase of the coding loop (in the stats)
  bool vocab_fixed = false;  // --vocab N given: aim for N symbols instead of adapting to the input
  bool detect_filter = true;  // --filter auto (default): the x86 filter for x86 executables
  Settings settings;         // from the level preset and expert flags
  // --ranks: "" one process; "N" this process starts N - 1 workers (src/cli/ranks.h); "env" torchrun's
  // RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT.
  std::string ranks;
  double rank_timeout = 600;  // --rank-timeout: seconds any collective between ranks may wait
};

// Parses argv. Returns the exit status to use right away (help, version, usage error) or nullopt to run.
std::optional<int> parse_options(int argc, char** argv, Options* options);

}  // namespace nncpp::cli
