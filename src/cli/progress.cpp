#include "progress.h"

#include <cstdio>

#include "nncpp/format.h"

namespace nncpp::cli {

ProgressLine::ProgressLine(bool enabled) : enabled_(enabled), start_(Clock::now()), last_(start_) {}

ProgressLine::~ProgressLine() {
  clear();
}

void ProgressLine::clear() {
  if (drawn_) std::fputs("\r\033[K", stderr);
  drawn_ = false;
}

void ProgressLine::update(const ProgressInfo& info) {
  if (!enabled_) return;
  Clock::time_point now = Clock::now();
  if (now - last_ < std::chrono::milliseconds(200)) return;
  last_ = now;
  double seconds = std::chrono::duration<double>(now - start_).count();
  double kbps = seconds > 0 ? info.bytes_done / 1000.0 / seconds : 0;
  double bpb = info.bytes_done > 0 ? info.coded_bits / info.bytes_done : 0;
  char eta[32] = "";
  char total[48] = "";
  if (info.bytes_total != kUnknownSize && info.bytes_total > 0) {
    std::snprintf(total, sizeof total, " / %.2f MB (%.0f%%)", info.bytes_total / 1e6,
                  100.0 * info.bytes_done / info.bytes_total);
    if (kbps > 0) {
      long left = static_cast<long>((info.bytes_total - info.bytes_done) / 1000.0 / kbps);
      std::snprintf(eta, sizeof eta, "  ETA %ld:%02ld:%02ld", left / 3600, left / 60 % 60, left % 60);
    }
  }
  std::fprintf(stderr, "\r\033[K%.2f MB%s  %.3f bpb  %.1f KB/s%s", info.bytes_done / 1e6, total, bpb, kbps,
               eta);
  std::fflush(stderr);
  drawn_ = true;
}

}  // namespace nncpp::cli
