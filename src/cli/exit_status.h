// Exit statuses, as documented in `nncpp --help`, the README and man/nncpp.1 (EXIT STATUS).
#pragma once

#include "nncpp/error.h"

namespace nncpp::cli {

constexpr int kExitOk = 0;
constexpr int kExitError = 1;    // I/O and other errors
constexpr int kExitWarning = 2;  // a named file was skipped (a folder without -r, a .nncp to compress)
constexpr int kExitUsage = 3;
constexpr int kExitNotNncpp = 4;
constexpr int kExitCorrupt = 5;
constexpr int kExitIncompatible = 6;
constexpr int kExitOutOfMemory = 7;
constexpr int kExitInterrupted = 8;
constexpr int kExitNoBackend = 9;  // the LibTorch backend (libnncpp_torch.so) is missing or cannot load

constexpr const char* kExitStatusHelp =
    "Exit status: 0 ok, 1 error (I/O), 2 warning (a file skipped), 3 usage or refused output,\n"
    "             4 not an nncpp file, 5 corrupt or truncated, 6 incompatible file, 7 out of memory,\n"
    "             8 interrupted (SIGINT, SIGTERM, SIGHUP, SIGPIPE), 9 the LibTorch backend\n"
    "             (libnncpp_torch.so) missing or not loadable. With several files: the first failure's\n"
    "             status, else 2 if a file was skipped.";

// The status of a library error.
inline int exit_status(ErrorCode code) {
  switch (code) {
    case ErrorCode::kIo:
      return kExitError;
    case ErrorCode::kUsage:
      return kExitUsage;
    case ErrorCode::kNotNncpp:
      return kExitNotNncpp;
    case ErrorCode::kCorrupt:
      return kExitCorrupt;
    case ErrorCode::kIncompatible:
      return kExitIncompatible;
    case ErrorCode::kOutOfMemory:
      return kExitOutOfMemory;
    case ErrorCode::kInterrupted:
      return kExitInterrupted;
  }
  return kExitError;
}

}  // namespace nncpp::cli
