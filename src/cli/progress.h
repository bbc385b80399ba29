// A progress line on stderr (when it is a terminal), refreshed at most five times a second.
#pragma once

#include <chrono>

#include "nncpp/engine.h"

namespace nncpp::cli {

class ProgressLine {
 public:
  explicit ProgressLine(bool enabled);
  ~ProgressLine();
  void update(const ProgressInfo& info);
  void clear();  // erases the line (before a log message); the next update() draws it again

 private:
  using Clock = std::chrono::steady_clock;
  bool enabled_;
  bool drawn_ = false;
  Clock::time_point start_;
  Clock::time_point last_;
};

}  // namespace nncpp::cli
