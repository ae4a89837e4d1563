// The fuzz targets' one piece of plumbing: read_csv and nn::load take a path, so each input is
// written to an anonymous in-memory file (memfd) and passed as /proc/self/fd/N. No disk I/O
// per input and nothing to clean up.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <string>

namespace cholla::fuzz {

class MemoryFile {
 public:
  MemoryFile() : fd_(::memfd_create("cholla-fuzz", MFD_CLOEXEC)) {
    if (fd_ < 0) std::abort();  // the harness cannot run at all: not a finding
  }
  ~MemoryFile() { ::close(fd_); }
  MemoryFile(const MemoryFile&) = delete;
  MemoryFile& operator=(const MemoryFile&) = delete;

  // Replaces the contents and returns a path that opens them.
  std::string hold(const uint8_t* data, size_t size) {
    if (::ftruncate(fd_, 0) != 0) std::abort();
    for (size_t done = 0; done < size;) {
      const ssize_t w = ::pwrite(fd_, data + done, size - done, static_cast<off_t>(done));
      if (w <= 0) std::abort();
      done += static_cast<size_t>(w);
    }
    return "/proc/self/fd/" + std::to_string(fd_);
  }

 private:
  int fd_;
};

// A property the target checks is false: report it as a crash, which libFuzzer records.
[[noreturn]] inline void finding(const char* what) {
  ::write(2, what, __builtin_strlen(what));
  ::write(2, "\n", 1);
  std::abort();
}

}  // namespace cholla::fuzz
