// Safe file handling for the CLI. A new or replaced regular output goes to a temporary file in the
// destination folder and is renamed into place only when complete (never over a file that appeared
// meanwhile unless -f), so no partial output survives an error, an interrupt or a signal. Device nodes
// and FIFOs are written in place, never replaced. Every I/O error names the path and the reason, and is
// raised by the write or read that failed.
#pragma once

#include <sys/stat.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <streambuf>
#include <string>
#include <vector>

namespace nncpp::cli {

// A std::streambuf over a POSIX file descriptor (binary, 64 KiB buffers). A failed read or write throws
// Error(kIo) naming `label` and strerror; a signal that sets *cancel while a read or write waits throws
// Error(kInterrupted). Use it under streams with exceptions(badbit) so those errors reach the caller.
class FdBuf : public std::streambuf {
 public:
  FdBuf(int fd, std::string label, const std::atomic<bool>* cancel);
  ~FdBuf() override;  // flushes what it can, silently
  int fd() const { return fd_; }

 protected:
  int_type underflow() override;
  int_type overflow(int_type ch) override;
  int sync() override;
  std::streamsize xsputn(const char* s, std::streamsize n) override;

 private:
  void flush_out();  // throws
  void check_interrupt(const char* verb) const;
  int fd_;
  std::string label_;  // "" for the input (messages are prefixed with its name), else the output path
  const std::atomic<bool>* cancel_;
  std::vector<char> in_;
  std::vector<char> out_;
};

// The input: a file (opened read-only, never modified) or stdin for "-".
class InputFile {
 public:
  InputFile(const std::string& path, const std::atomic<bool>* cancel);  // throws Error(kIo)
  ~InputFile();
  std::streambuf* buf() { return buf_.get(); }
  uint64_t size_hint() const { return size_; }  // kUnknownSize for pipes
  bool is_stdin() const { return fd_ == 0; }
  int fd() const { return fd_; }
  // The file's status when it is a regular file (mode, owner, times): outputs copy it. Null otherwise.
  const struct stat* regular_status() const { return regular_ ? &st_ : nullptr; }

 private:
  int fd_ = -1;
  uint64_t size_;
  bool regular_ = false;
  struct stat st_ {};
  std::unique_ptr<FdBuf> buf_;
};

// What may be written where.
struct OutputPolicy {
  bool force = false;                      // -f: replace an existing regular file, write to a block device
  const struct stat* input = nullptr;      // refuse to write over this file (same device and inode)
  const struct stat* copy_from = nullptr;  // give the output this mode, times and (as root) owner
};

// The output: stdout for "-"; an existing character device or FIFO (or, with -f, block device) written in
// place; else a temporary file renamed to `path` by commit().
class OutputFile {
 public:
  // Refuses (Error kUsage) an existing regular file without force, a directory, and the input itself.
  OutputFile(const std::string& path, const OutputPolicy& policy, const std::atomic<bool>* cancel);
  ~OutputFile();  // removes the temporary file unless committed
  std::streambuf* buf() { return buf_.get(); }
  // Flush; for a temporary file also fsync, copy mode/times/owner, and rename into place (failing if the
  // name was taken meanwhile, unless force). Throws Error(kIo), or Error(kUsage) for a name taken.
  void commit();
  bool is_stdout() const { return path_ == "-"; }
  bool in_place() const { return temp_.empty(); }  // stdout or a special file: nothing to rename

 private:
  std::string path_;
  std::string temp_;
  OutputPolicy policy_;
  int fd_ = -1;
  bool committed_ = false;
  std::unique_ptr<FdBuf> buf_;
};

// Output name when none is given: IN.nncp for compression; IN minus .nncp for decompression
// (empty if IN has no .nncp suffix).
std::string default_output(const std::string& input, bool compress);

bool has_nncp_suffix(const std::string& path);

// True when `path` is a regular file that begins with the nncpp magic.
bool is_nncpp_file(const std::string& path);

// Temporary name next to `path` that fits NAME_MAX: "NAME.XXXXXX.tmp", NAME shortened when long.
std::string temp_template(const std::string& path);

}  // namespace nncpp::cli
