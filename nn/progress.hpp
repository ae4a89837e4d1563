// nn::Progress: the one-line training report examples print, e.g.
//   epoch  12/200  loss 0.041873  52.1k samples/s  elapsed 3.4s
// On a terminal the line is redrawn in place ('\r'); otherwise (a log file, a pipe, CI) each
// report is a plain line, so logs stay readable. This is the only part of cholla that prints,
// and only to the stream it is given.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>

namespace cholla::nn {

enum class ProgressMode { Auto, Terminal, Plain };

struct ProgressOptions {
  int64_t epochs = 0;         // total, shown as "12/200"; 0 shows the epoch alone
  std::FILE* out = nullptr;   // nullptr: stdout
  ProgressMode mode = ProgressMode::Auto;  // Auto: Terminal when `out` is a tty (isatty)
  int64_t every = 1;          // Plain mode prints every `every`-th epoch (and the last)
};

class Progress {
 public:
  explicit Progress(const ProgressOptions& options = {});
  ~Progress();  // ends an in-place line with a newline
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  // Reports `epoch` (counted from 0, shown from 1) with its loss; `samples` is how many samples
  // this epoch processed, for the throughput (samples per second since the previous report).
  void update(int64_t epoch, double loss, int64_t samples = 0);
  // Ends the line (Terminal mode); called by the destructor if needed.
  void finish();

  bool terminal() const { return terminal_; }
  double elapsed_seconds() const;

 private:
  ProgressOptions options_;
  bool terminal_;
  bool open_line_ = false;
  std::chrono::steady_clock::time_point start_, last_;
};

}  // namespace cholla::nn
