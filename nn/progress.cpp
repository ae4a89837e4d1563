#include "nn/progress.hpp"

#include <fmt/core.h>
#include <unistd.h>

#include <string>

namespace cholla::nn {
namespace {

std::string human_rate(double per_second) {
  if (per_second >= 1e6) return fmt::format("{:.1f}M", per_second / 1e6);
  if (per_second >= 1e3) return fmt::format("{:.1f}k", per_second / 1e3);
  return fmt::format("{:.0f}", per_second);
}

}  // namespace

Progress::Progress(const ProgressOptions& options)
    : options_(options), start_(std::chrono::steady_clock::now()), last_(start_) {
  if (options_.out == nullptr) options_.out = stdout;
  if (options_.every < 1) options_.every = 1;
  terminal_ = options_.mode == ProgressMode::Terminal ||
              (options_.mode == ProgressMode::Auto && ::isatty(::fileno(options_.out)) == 1);
}

Progress::~Progress() { finish(); }

double Progress::elapsed_seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void Progress::update(int64_t epoch, double loss, int64_t samples) {
  const auto now = std::chrono::steady_clock::now();
  const double interval = std::chrono::duration<double>(now - last_).count();
  last_ = now;
  const bool last = options_.epochs > 0 && epoch + 1 >= options_.epochs;
  if (!terminal_ && (epoch + 1) % options_.every != 0 && !last && epoch != 0) return;
  std::string line = options_.epochs > 0
                         ? fmt::format("epoch {:>{}}/{}", epoch + 1,
                                       std::to_string(options_.epochs).size(), options_.epochs)
                         : fmt::format("epoch {}", epoch + 1);
  line += fmt::format("  loss {:.6g}", loss);
  if (samples > 0 && interval > 0)
    line += fmt::format("  {} samples/s", human_rate(static_cast<double>(samples) / interval));
  line += fmt::format("  elapsed {:.1f}s", elapsed_seconds());
  if (terminal_) {
    // "\x1b[K" clears what a longer previous line left behind.
    fmt::print(options_.out, "\r{}\x1b[K", line);
    open_line_ = true;
  } else {
    fmt::print(options_.out, "{}\n", line);
  }
  std::fflush(options_.out);
}

void Progress::finish() {
  if (!open_line_) return;
  fmt::print(options_.out, "\n");
  std::fflush(options_.out);
  open_line_ = false;
}

}  // namespace cholla::nn
