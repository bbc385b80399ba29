// Safe file handling for the CLI: outputs go to a temporary file in the destination folder and are renamed
// into place only when complete, so no partial output survives an error or an interrupt.
#pragma once

#include <cstdint>
#include <memory>
#include <streambuf>
#include <string>
#include <vector>

namespace nncpp::cli {

// A std::streambuf over a POSIX file descriptor (binary, unbuffered by stdio, EINTR-safe).
class FdBuf : public std::streambuf {
 public:
  explicit FdBuf(int fd);
  ~FdBuf() override;
  int fd() const { return fd_; }

 protected:
  int_type underflow() override;
  int_type overflow(int_type ch) override;
  int sync() override;
  std::streamsize xsputn(const char* s, std::streamsize n) override;

 private:
  bool flush_out();
  int fd_;
  std::vector<char> in_;
  std::vector<char> out_;
};

// The input: a file (opened read-only, never modified) or stdin for "-".
class InputFile {
 public:
  explicit InputFile(const std::string& path);  // throws Error(kIo)
  ~InputFile();
  std::streambuf* buf() { return buf_.get(); }
  uint64_t size_hint() const { return size_; }  // kUnknownSize for pipes
  bool is_stdin() const { return fd_ == 0; }

 private:
  int fd_ = -1;
  uint64_t size_;
  std::unique_ptr<FdBuf> buf_;
};

// The output: stdout for "-", else a temporary file renamed to `path` by commit().
class OutputFile {
 public:
  // Refuses (Error kUsage) an existing file without force, and the input itself.
  OutputFile(const std::string& path, bool force, const std::string& input_path);
  ~OutputFile();  // removes the temporary file unless committed
  std::streambuf* buf() { return buf_.get(); }
  void commit();  // flush, fsync, rename; throws Error(kIo)
  bool is_stdout() const { return temp_.empty(); }

 private:
  std::string path_;
  std::string temp_;
  int fd_ = -1;
  bool committed_ = false;
  std::unique_ptr<FdBuf> buf_;
};

// Output name when none is given: IN.nncp for compression; IN minus .nncp for decompression
// (empty if IN has no .nncp suffix).
std::string default_output(const std::string& input, bool compress);

}  // namespace nncpp::cli
