// What the CLI tells the user: --stats-json files and the `l` (list) view of a header.
#pragma once

#include <string>
#include <vector>

#include "nncpp/engine.h"
#include "nncpp/format.h"

namespace nncpp::cli {

// --stats-json: one JSON object with the run's numbers, and a newline.
std::string stats_json(const char* command, const Stats& stats);

// --profile: where the time went, e.g. "profile: step 41.2 s (62%), code 9.8 s (15%), ...".
std::string describe_profile(const Stats& stats);

// A file `l` looked at.
struct ListedFile {
  std::string name;
  FileHeader header;
  uint64_t compressed_bytes = kUnknownSize;  // the file's size (kUnknownSize for a pipe)
  bool size_from_end = false;                // header.original_size read from the end record (streamed)
};

// The header in human form, or as JSON.
std::string describe_header(const ListedFile& file, bool json);

// `l`: one file as describe_header(); several (asked for, even if some failed to open) with a "file NAME"
// line each and a total line, or as one JSON object {"files": [...], "total": {...}}.
std::string describe_files(const std::vector<ListedFile>& files, bool json, bool several);

}  // namespace nncpp::cli
