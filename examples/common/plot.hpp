// Pictures for the examples through gnuplot (Debian gnuplot-nox, installed by `make`).
//
// An example writes its data as CSV files next to the PNG and hands gnuplot a script that
// reads them. Without gnuplot it says so clearly and leaves the CSV files, which are the
// numbers behind the picture anyway.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fmt/core.h>
#include <fmt/os.h>
#include <string>
#include <vector>

namespace examples {

inline bool have_gnuplot() { return std::system("command -v gnuplot >/dev/null 2>&1") == 0; }

// Writes rows of numbers as CSV with a header line.
inline void write_csv(const std::string& path, const std::vector<std::string>& header,
                      const std::vector<std::vector<double>>& rows) {
  auto out = fmt::output_file(path);
  for (size_t i = 0; i < header.size(); ++i) out.print("{}{}", i ? "," : "", header[i]);
  out.print("\n");
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size(); ++i) out.print("{}{:.9g}", i ? "," : "", row[i]);
    out.print("\n");
  }
}

// Runs `script` (gnuplot commands; it should `set output` to `png`). Returns true when the
// picture was drawn.
inline bool run_gnuplot(const std::string& script_path, const std::string& script, const std::string& png) {
  {
    auto out = fmt::output_file(script_path);
    out.print("{}", script);
  }
  if (!have_gnuplot()) {
    fmt::print("gnuplot is not installed (apt-get install gnuplot-nox): {} not drawn; the data "
               "and the script are in {}\n",
               png, std::filesystem::path(script_path).parent_path().string());
    return false;
  }
  const std::string command = fmt::format("gnuplot '{}' 2>&1", script_path);
  if (std::system(command.c_str()) != 0) {
    fmt::print("gnuplot failed on {}; the data is next to it\n", script_path);
    return false;
  }
  fmt::print("picture: {}\n", png);
  return true;
}

// The folder for an example's outputs (created): $CHOLLA_OUT or ./out/<example>.
inline std::string output_dir(const std::string& example) {
  const char* base = std::getenv("CHOLLA_OUT");
  std::filesystem::path dir = std::filesystem::path(base ? base : "out") / example;
  std::filesystem::create_directories(dir);
  return dir.string();
}

}  // namespace examples
