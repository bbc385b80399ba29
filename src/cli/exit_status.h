// Exit statuses, as documented in `nncpp --help`, the README and man/nncpp.1 (EXIT STATUS).
#pragma once

namespace nncpp::cli {

constexpr int kExitOk = 0;
constexpr int kExitError = 1;  // I/O and other errors
constexpr int kExitWarning = 2;
constexpr int kExitUsage = 3;
constexpr int kExitNotNncpp = 4;
constexpr int kExitCorrupt = 5;
constexpr int kExitIncompatible = 6;
constexpr int kExitOutOfMemory = 7;
constexpr int kExitInterrupted = 8;

constexpr const char* kExitStatusHelp =
    "Exit status: 0 ok, 1 error (I/O), 2 warning, 3 usage, 4 not an nncpp file,\n"
    "             5 corrupt or truncated, 6 incompatible file, 7 out of memory, 8 interrupted";

}  // namespace nncpp::cli
