// Handling files that came from a user (internal to cholla, not installed; read_csv, nn::load).
//
// RegularFile refuses what is not a regular file (a directory, a device such as /dev/zero, a
// pipe) before reading a byte, and never reads past the size fstat reported, so no input can
// make a reader loop or allocate without bound. excerpt() keeps error messages short whatever
// the file holds.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace cholla::data::detail {

class RegularFile {
 public:
  // IoError from `op` when `path` cannot be opened or is not a regular file.
  RegularFile(std::string op, std::string path);
  ~RegularFile();
  RegularFile(const RegularFile&) = delete;
  RegularFile& operator=(const RegularFile&) = delete;

  uint64_t size() const { return size_; }
  // Exactly `n` bytes from `offset`; IoError when the file ends sooner (it shrank meanwhile),
  // ResourceError when the bytes do not fit in memory.
  std::string read(uint64_t offset, uint64_t n) const;
  std::string read_all() const { return read(0, size_); }

 private:
  std::string op_, path_;
  int fd_ = -1;
  uint64_t size_ = 0;
};

// `text` quoted for a message: whole when at most kExcerpt bytes, else its first bytes (not
// splitting a UTF-8 character) followed by "... (N bytes)".
inline constexpr size_t kExcerpt = 80;
std::string excerpt(std::string_view text);

}  // namespace cholla::data::detail
