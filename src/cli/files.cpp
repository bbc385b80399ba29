#include "files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "nncpp/error.h"
#include "nncpp/format.h"

namespace nncpp::cli {
namespace {

constexpr size_t kBufferBytes = 1 << 16;

Error io_error(const std::string& what, const std::string& path) {
  return Error(ErrorCode::kIo, what + " " + path + ": " + std::strerror(errno));
}

}  // namespace

FdBuf::FdBuf(int fd) : fd_(fd), in_(kBufferBytes), out_(kBufferBytes) {
  setg(in_.data(), in_.data(), in_.data());
  setp(out_.data(), out_.data() + out_.size());
}

FdBuf::~FdBuf() {
  flush_out();
}

FdBuf::int_type FdBuf::underflow() {
  if (gptr() < egptr()) return traits_type::to_int_type(*gptr());
  ssize_t n;
  do {
    n = ::read(fd_, in_.data(), in_.size());
  } while (n < 0 && errno == EINTR);
  if (n <= 0) return traits_type::eof();  // a read error surfaces as a truncated input
  setg(in_.data(), in_.data(), in_.data() + n);
  return traits_type::to_int_type(*gptr());
}

bool FdBuf::flush_out() {
  const char* p = pbase();
  while (p < pptr()) {
    ssize_t n = ::write(fd_, p, static_cast<size_t>(pptr() - p));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
  }
  setp(out_.data(), out_.data() + out_.size());
  return true;
}

FdBuf::int_type FdBuf::overflow(int_type ch) {
  if (!flush_out()) return traits_type::eof();
  if (!traits_type::eq_int_type(ch, traits_type::eof())) {
    *pptr() = traits_type::to_char_type(ch);
    pbump(1);
  }
  return traits_type::not_eof(ch);
}

std::streamsize FdBuf::xsputn(const char* s, std::streamsize n) {
  std::streamsize done = 0;
  while (done < n) {
    if (pptr() == epptr() && !flush_out()) return done;
    std::streamsize room = std::min<std::streamsize>(epptr() - pptr(), n - done);
    std::memcpy(pptr(), s + done, static_cast<size_t>(room));
    pbump(static_cast<int>(room));
    done += room;
  }
  return done;
}

int FdBuf::sync() {
  return flush_out() ? 0 : -1;
}

InputFile::InputFile(const std::string& path) : size_(kUnknownSize) {
  if (path == "-") {
    fd_ = 0;
  } else {
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) throw io_error("cannot open", path);
    struct stat st;
    if (::fstat(fd_, &st) != 0) throw io_error("cannot stat", path);
    if (S_ISDIR(st.st_mode)) {
      ::close(fd_);
      throw Error(ErrorCode::kIo, path + " is a directory");
    }
    if (S_ISREG(st.st_mode)) size_ = static_cast<uint64_t>(st.st_size);
  }
  buf_ = std::make_unique<FdBuf>(fd_);
}

InputFile::~InputFile() {
  if (fd_ > 0) ::close(fd_);
}

OutputFile::OutputFile(const std::string& path, bool force, const std::string& input_path) : path_(path) {
  if (path == "-") {
    fd_ = 1;
    buf_ = std::make_unique<FdBuf>(fd_);
    return;
  }
  struct stat out_st;
  if (::stat(path.c_str(), &out_st) == 0) {
    struct stat in_st;
    if (input_path != "-" && ::stat(input_path.c_str(), &in_st) == 0 && in_st.st_dev == out_st.st_dev &&
        in_st.st_ino == out_st.st_ino)
      throw Error(ErrorCode::kUsage, "output " + path + " is the input file");
    if (!force) throw Error(ErrorCode::kUsage, "output " + path + " already exists (use -f to overwrite)");
    if (S_ISDIR(out_st.st_mode)) throw Error(ErrorCode::kUsage, "output " + path + " is a directory");
  }
  // The temporary file lives next to the output so rename() is atomic (same file system).
  std::string temp = path + ".XXXXXX.tmp";
  std::vector<char> name(temp.begin(), temp.end());
  name.push_back('\0');
  fd_ = ::mkstemps(name.data(), 4);
  if (fd_ < 0) throw io_error("cannot create a temporary file for", path);
  temp_ = name.data();
  buf_ = std::make_unique<FdBuf>(fd_);
}

OutputFile::~OutputFile() {
  if (temp_.empty()) {
    if (buf_) buf_->pubsync();
    return;
  }
  buf_.reset();
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) ::unlink(temp_.c_str());
}

void OutputFile::commit() {
  if (buf_->pubsync() != 0) throw io_error("cannot write", is_stdout() ? "stdout" : path_);
  if (is_stdout()) return;
  if (::fsync(fd_) != 0) throw io_error("cannot write", path_);
  int fd = fd_;
  fd_ = -1;
  buf_.reset();
  if (::close(fd) != 0) throw io_error("cannot write", path_);
  ::chmod(
      temp_.c_str(), 0644 & ~[] {
        mode_t mask = ::umask(0);
        ::umask(mask);
        return mask;
      }());
  if (::rename(temp_.c_str(), path_.c_str()) != 0) throw io_error("cannot rename the output to", path_);
  committed_ = true;
}

std::string default_output(const std::string& input, bool compress) {
  if (input == "-") return "-";
  if (compress) return input + ".nncp";
  const std::string suffix = ".nncp";
  if (input.size() > suffix.size() && input.compare(input.size() - suffix.size(), suffix.size(), suffix) == 0)
    return input.substr(0, input.size() - suffix.size());
  return "";
}

}  // namespace nncpp::cli
