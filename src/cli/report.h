// What the CLI tells the user: --stats-json files and the `l` (list) view of a header.
#pragma once

#include <string>

#include "nncpp/engine.h"
#include "nncpp/format.h"

namespace nncpp::cli {

// One JSON object with the run's numbers. Throws Error(kIo).
void write_stats_json(const std::string& path, const char* command, const Stats& stats);

// --profile: where the time went, e.g. "profile: step 41.2 s (62%), code 9.8 s (15%), ...".
std::string describe_profile(const Stats& stats);

// The header in human form, or as JSON. compressed_bytes: the file's size (kUnknownSize if unknown).
std::string describe_header(const FileHeader& header, uint64_t compressed_bytes, bool json);

}  // namespace nncpp::cli
