#include "nn/data/detail/untrusted.hpp"

#include <fcntl.h>
#include <fmt/core.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "autodiff/errors.hpp"

namespace cholla::data::detail {

RegularFile::RegularFile(std::string op, std::string path) : op_(std::move(op)), path_(std::move(path)) {
  // O_NONBLOCK: opening a FIFO with no writer must not hang before fstat can refuse it.
  fd_ = ::open(path_.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd_ < 0)
    throw IoError(op_, fmt::format("cannot open '{}': {}. Check the path.", path_,
                                   std::strerror(errno)));
  struct stat st {};
  if (::fstat(fd_, &st) != 0) {
    const int err = errno;
    ::close(fd_);
    throw IoError(op_, fmt::format("cannot inspect '{}': {}.", path_, std::strerror(err)));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd_);
    throw IoError(op_, fmt::format("'{}' is {}, not a regular file. Pass the path of a file.",
                                   path_, S_ISDIR(st.st_mode) ? "a directory" : "a device, pipe or socket"));
  }
  size_ = static_cast<uint64_t>(st.st_size);
}

RegularFile::~RegularFile() { ::close(fd_); }

std::string RegularFile::read(uint64_t offset, uint64_t n) const {
  std::string out;
  try {
    out.resize(n);
  } catch (const std::exception&) {  // bad_alloc or length_error
    throw ResourceError(op_, fmt::format("reading {} bytes of '{}' needs more memory than this "
                                         "process can get.",
                                         n, path_));
  }
  for (uint64_t done = 0; done < n;) {
    const ssize_t got = ::pread(fd_, out.data() + done, n - done, static_cast<off_t>(offset + done));
    if (got < 0 && errno == EINTR) continue;
    if (got < 0)
      throw IoError(op_, fmt::format("error while reading '{}': {}.", path_, std::strerror(errno)));
    if (got == 0)
      throw IoError(op_, fmt::format("'{}' shrank to {} bytes while being read; was it still being "
                                     "written?",
                                     path_, offset + done));
    done += static_cast<uint64_t>(got);
  }
  return out;
}

std::string excerpt(std::string_view text) {
  if (text.size() <= kExcerpt) return fmt::format("'{}'", text);
  size_t cut = kExcerpt - 3;
  // Back up over UTF-8 continuation bytes (10xxxxxx) so the cut falls between characters.
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  return fmt::format("'{}...' ({} bytes)", text.substr(0, cut), text.size());
}

}  // namespace cholla::data::detail
