// Errors of the nncpp library. The library never prints or exits: it throws nncpp::Error and the CLI maps
// the code to an exit status (README, "Usage"; man/nncpp.1).
#pragma once

#include <stdexcept>
#include <string>

namespace nncpp {

enum class ErrorCode : int {
  kIo = 1,            // cannot read or write a file
  kUsage = 3,         // bad command line or settings
  kNotNncpp = 4,      // input is not an nncpp file (bad magic)
  kCorrupt = 5,       // truncated, corrupt, or checksum mismatch
  kIncompatible = 6,  // made by another version, device, thread count, ... (fingerprint mismatch)
  kOutOfMemory = 7,
  kInterrupted = 8,  // stopped by SIGINT/SIGTERM
};

class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  ErrorCode code() const { return code_; }

 private:
  ErrorCode code_;
};

}  // namespace nncpp
