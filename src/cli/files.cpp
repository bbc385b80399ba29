#include "files.h"

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>  // renameat2, RENAME_NOREPLACE (glibc >= 2.28)
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "nncpp/error.h"
#include "nncpp/format.h"

namespace nncpp::cli {
namespace {

constexpr size_t kBufferBytes = 1 << 16;
constexpr char kTempSuffix[] = ".XXXXXX.tmp";

// "cannot VERB[ PATH]: reason" from errno.
Error io_error(const std::string& verb, const std::string& path) {
  return Error(ErrorCode::kIo,
               "cannot " + verb + (path.empty() ? "" : " " + path) + ": " + std::strerror(errno));
}

mode_t current_umask() {
  mode_t mask = ::umask(0);
  ::umask(mask);
  return mask;
}

// Gives the finished temporary file the input's permissions, times and (when allowed) owner, as gzip, xz
// and zstd do; without an input file, the mode a new file gets (0666 minus the umask). Where the file
// system refuses (no owners on FAT, say) the file keeps mkstemp's 0600, the safe side: not an error.
void copy_status(int fd, const struct stat* from) {
  if (from == nullptr) {
    (void)::fchmod(fd, 0666 & ~current_umask());
    return;
  }
  mode_t mode = from->st_mode & 0777;  // never setuid/setgid/sticky bits on a new file
  // Root keeps the owner; anyone may keep the group if they belong to it.
  if (::geteuid() == 0) (void)!::fchown(fd, from->st_uid, static_cast<gid_t>(-1));
  if (::fchown(fd, static_cast<uid_t>(-1), from->st_gid) != 0) {
    // The output keeps our group: give it no more than what the input gave both its group and others.
    const mode_t shared = ((mode & 0070) >> 3) & (mode & 0007);
    mode = (mode & 0700) | (shared << 3) | shared;
  }
  (void)::fchmod(fd, mode);
  const struct timespec times[2] = {from->st_atim, from->st_mtim};
  (void)::futimens(fd, times);
}

// rename() that fails with EEXIST when `to` exists. File systems without RENAME_NOREPLACE get link() +
// unlink(), which fails the same way.
int rename_noreplace(const char* from, const char* to) {
  if (::renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0) return 0;
  if (errno != EINVAL && errno != ENOSYS && errno != ENOTSUP) return -1;
  if (::link(from, to) != 0) return -1;
  ::unlink(from);
  return 0;
}

}  // namespace

// ---- FdBuf -------------------------------------------------------------------------------------------

FdBuf::FdBuf(int fd, std::string label, const std::atomic<bool>* cancel)
    : fd_(fd), label_(std::move(label)), cancel_(cancel), in_(kBufferBytes), out_(kBufferBytes) {
  setg(in_.data(), in_.data(), in_.data());
  setp(out_.data(), out_.data() + out_.size());
}

FdBuf::~FdBuf() {
  try {
    flush_out();
  } catch (const Error&) {
    // The error path already reports the failure that brought us here.
  }
}

// A read or write that a signal interrupted: go on unless the signal asked to stop.
void FdBuf::check_interrupt(const char* verb) const {
  if (cancel_ != nullptr && cancel_->load(std::memory_order_relaxed))
    throw Error(ErrorCode::kInterrupted, std::string("interrupted while waiting to ") + verb);
}

FdBuf::int_type FdBuf::underflow() {
  if (gptr() < egptr()) return traits_type::to_int_type(*gptr());
  // Wait in poll() with a timeout, looking at the flag each time: a signal that came before the read
  // started (while the model was being built, say) must end the wait too, not only one that interrupts it.
  for (;;) {
    check_interrupt("read");
    pollfd ready{fd_, POLLIN, 0};
    const int r = ::poll(&ready, 1, 200);
    if (r > 0 || (r < 0 && errno != EINTR)) break;  // readable, at the end, or an error read() will report
  }
  ssize_t n;
  while ((n = ::read(fd_, in_.data(), in_.size())) < 0) {
    if (errno != EINTR) throw io_error("read", label_);
    check_interrupt("read");
  }
  if (n == 0) return traits_type::eof();
  setg(in_.data(), in_.data(), in_.data() + n);
  return traits_type::to_int_type(*gptr());
}

void FdBuf::flush_out() {
  const char* p = pbase();
  while (p < pptr()) {
    // A signal during a write into a pipe that has room for part of it ends the write early instead of
    // failing it with EINTR: look at the flag before every write.
    check_interrupt("write");
    ssize_t n = ::write(fd_, p, static_cast<size_t>(pptr() - p));
    if (n < 0 && errno == EINTR) {
      check_interrupt("write");
      continue;
    }
    if (n <= 0) {
      if (n == 0) errno = ENOSPC;
      setp(out_.data(), out_.data() + out_.size());  // drop the rest: the output is lost anyway
      throw io_error("write", label_);
    }
    p += n;
  }
  setp(out_.data(), out_.data() + out_.size());
}

FdBuf::int_type FdBuf::overflow(int_type ch) {
  flush_out();
  if (!traits_type::eq_int_type(ch, traits_type::eof())) {
    *pptr() = traits_type::to_char_type(ch);
    pbump(1);
  }
  return traits_type::not_eof(ch);
}

std::streamsize FdBuf::xsputn(const char* s, std::streamsize n) {
  std::streamsize done = 0;
  while (done < n) {
    if (pptr() == epptr()) flush_out();
    std::streamsize room = std::min<std::streamsize>(epptr() - pptr(), n - done);
    std::memcpy(pptr(), s + done, static_cast<size_t>(room));
    pbump(static_cast<int>(room));
    done += room;
  }
  return done;
}

int FdBuf::sync() {
  flush_out();
  return 0;
}

// ---- InputFile ---------------------------------------------------------------------------------------

InputFile::InputFile(const std::string& path, const std::atomic<bool>* cancel) : size_(kUnknownSize) {
  if (path == "-") {
    fd_ = 0;
  } else {
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd_ < 0) throw io_error("open", "");
    if (::fstat(fd_, &st_) != 0) throw io_error("stat", "");
    if (S_ISDIR(st_.st_mode)) {
      ::close(fd_);
      fd_ = -1;
      throw Error(ErrorCode::kIo, "is a directory");
    }
    regular_ = S_ISREG(st_.st_mode);
    if (regular_) size_ = static_cast<uint64_t>(st_.st_size);
  }
  buf_ = std::make_unique<FdBuf>(fd_, "", cancel);
}

InputFile::~InputFile() {
  buf_.reset();
  if (fd_ > 0) ::close(fd_);
}

// ---- OutputFile --------------------------------------------------------------------------------------

OutputFile::OutputFile(const std::string& path, const OutputPolicy& policy, const std::atomic<bool>* cancel)
    : path_(path), policy_(policy) {
  if (path == "-") {
    fd_ = 1;
    buf_ = std::make_unique<FdBuf>(fd_, "stdout", cancel);
    return;
  }
  std::string target = path;  // a symbolic link is written through: its target is replaced, the link stays
  struct stat out_st;
  if (::stat(path.c_str(), &out_st) == 0) {
    if (policy.input != nullptr && policy.input->st_dev == out_st.st_dev &&
        policy.input->st_ino == out_st.st_ino)
      throw Error(ErrorCode::kUsage, "output " + path + " is the input file");
    if (S_ISDIR(out_st.st_mode)) throw Error(ErrorCode::kUsage, "output " + path + " is a directory");
    if (S_ISSOCK(out_st.st_mode)) throw Error(ErrorCode::kUsage, "output " + path + " is a socket");
    if (!S_ISREG(out_st.st_mode)) {
      // A device node or FIFO is never replaced: it is opened and written like a shell redirection does.
      if (S_ISBLK(out_st.st_mode) && !policy.force)
        throw Error(ErrorCode::kUsage, "output " + path + " is a block device (use -f to write to it)");
      while ((fd_ = ::open(path.c_str(), O_WRONLY | O_CLOEXEC | O_NOCTTY)) < 0) {
        if (errno != EINTR) throw io_error("open", path);
        if (cancel != nullptr && cancel->load()) throw Error(ErrorCode::kInterrupted, "interrupted");
      }
      buf_ = std::make_unique<FdBuf>(fd_, path, cancel);
      return;
    }
    if (!policy.force)
      throw Error(ErrorCode::kUsage, "output " + path + " already exists (use -f to overwrite)");
    char resolved[PATH_MAX];
    if (::realpath(path.c_str(), resolved) != nullptr) target = resolved;
  }
  path_ = target;
  // The temporary file lives next to the output so the rename is atomic (same file system). mkstemps
  // creates it 0600: nobody else can read the data before commit() gives it its final mode.
  std::string name = temp_template(target);
  std::vector<char> buffer(name.begin(), name.end());
  buffer.push_back('\0');
  fd_ = ::mkstemps(buffer.data(), 4);
  if (fd_ < 0) throw io_error("create a temporary file for", path);
  temp_ = buffer.data();
  buf_ = std::make_unique<FdBuf>(fd_, path, cancel);
}

OutputFile::~OutputFile() {
  if (in_place()) {
    buf_.reset();  // flushes what it can
    if (fd_ > 1) ::close(fd_);
    return;
  }
  buf_.reset();
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) ::unlink(temp_.c_str());
}

void OutputFile::commit() {
  buf_->pubsync();  // throws Error(kIo) naming the path
  if (in_place()) return;
  if (::fsync(fd_) != 0) throw io_error("write", path_);
  copy_status(fd_, policy_.copy_from);
  int fd = fd_;
  fd_ = -1;
  buf_.reset();
  if (::close(fd) != 0) throw io_error("write", path_);
  if (policy_.force) {
    if (::rename(temp_.c_str(), path_.c_str()) != 0) throw io_error("rename the output to", path_);
  } else if (rename_noreplace(temp_.c_str(), path_.c_str()) != 0) {
    if (errno == EEXIST)
      throw Error(ErrorCode::kUsage, "output " + path_ + " was created by another program meanwhile; not " +
                                         "overwritten (use -f to overwrite)");
    throw io_error("rename the output to", path_);
  }
  committed_ = true;
}

// ---- names -------------------------------------------------------------------------------------------

bool has_nncp_suffix(const std::string& path) {
  const std::string suffix = ".nncp";
  return path.size() > suffix.size() && path.compare(path.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string default_output(const std::string& input, bool compress) {
  if (input == "-") return "-";
  if (compress) return input + ".nncp";
  if (has_nncp_suffix(input)) return input.substr(0, input.size() - 5);
  return "";
}

bool is_nncpp_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) return false;
  struct stat st;
  unsigned char magic[kMagic.size()];
  const bool yes = ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
                   ::read(fd, magic, sizeof magic) == static_cast<ssize_t>(sizeof magic) &&
                   std::equal(kMagic.begin(), kMagic.end(), magic);
  ::close(fd);
  return yes;
}

std::string temp_template(const std::string& path) {
  const size_t slash = path.rfind('/');
  const std::string folder = slash == std::string::npos ? "" : path.substr(0, slash + 1);
  std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
  const size_t room = NAME_MAX - (sizeof kTempSuffix - 1);
  if (name.size() > room) name.resize(room);
  return folder + name + kTempSuffix;
}

}  // namespace nncpp::cli
