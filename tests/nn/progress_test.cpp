// nn::Progress: plain lines when not a terminal, one redrawn line when it is.
#include <cstdio>

#include "../autodiff/helpers.hpp"
#include "temp_dir.hpp"

using namespace cholla;

namespace {

std::string run(nn::ProgressMode mode, int64_t every) {
  test::TempDir dir;
  const std::string path = dir.file("log.txt");
  std::FILE* f = std::fopen(path.c_str(), "w");
  REQUIRE(f != nullptr);
  {
    nn::Progress progress({.epochs = 10, .out = f, .mode = mode, .every = every});
    for (int64_t e = 0; e < 10; ++e) progress.update(e, 1.0 / static_cast<double>(e + 1), 1000);
  }
  std::fclose(f);
  return dir.read("log.txt");
}

}  // namespace

TEST_CASE("progress: plain mode prints whole lines, every n-th epoch and the last") {
  const std::string out = run(nn::ProgressMode::Auto, 5);  // a file is not a terminal
  CHECK(out.find('\r') == std::string::npos);
  CHECK(out.find("epoch  1/10  loss 1") != std::string::npos);
  CHECK(out.find("epoch  5/10  loss 0.2") != std::string::npos);
  CHECK(out.find("epoch 10/10  loss 0.1") != std::string::npos);
  CHECK(out.find("epoch  2/10") == std::string::npos);
  CHECK(out.find("samples/s") != std::string::npos);
  CHECK(out.find("elapsed") != std::string::npos);
  CHECK(std::count(out.begin(), out.end(), '\n') == 3);
}

TEST_CASE("progress: terminal mode redraws one line and ends it with a newline") {
  const std::string out = run(nn::ProgressMode::Terminal, 5);
  CHECK(std::count(out.begin(), out.end(), '\r') == 10);
  CHECK(std::count(out.begin(), out.end(), '\n') == 1);
  CHECK(out.back() == '\n');
}
