// The command line every example shares: --help, --seed N, --quick, --check, plus named
// string options of its own (--data F, --inputs A,B,...). Header-only: examples stay one file.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <exception>
#include <fmt/core.h>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace examples {

struct Cli {
  uint64_t seed = 0;
  bool quick = false;  // a few seconds, for `make test`
  bool check = false;  // exit non-zero when the success criterion fails
  std::map<std::string, std::string> options;

  std::string get(const std::string& name, const std::string& fallback = "") const {
    auto it = options.find(name);
    return it == options.end() ? fallback : it->second;
  }
};

// `usage` is printed by --help; it must state the --check criterion. `option_names` are the
// extra options that take a value. Exits on --help or on an unknown argument.
inline Cli parse_cli(int argc, char** argv, const std::string& usage, uint64_t default_seed,
                     const std::vector<std::string>& option_names = {}) {
  Cli cli;
  cli.seed = default_seed;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        fmt::print(stderr, "{} needs a value\n", arg);
        std::exit(2);
      }
      return argv[++i];
    };
    if (arg == "--help" || arg == "-h") {
      fmt::print("{}\n\ncommon options:\n  --seed N   random seed (default {})\n  --quick    a short run "
                 "(seconds), as `make test` does\n  --check    exit with status 1 unless the success "
                 "criterion above holds\n",
                 usage, default_seed);
      std::exit(0);
    } else if (arg == "--seed") {
      cli.seed = std::strtoull(value().c_str(), nullptr, 10);
    } else if (arg == "--quick") {
      cli.quick = true;
    } else if (arg == "--check") {
      cli.check = true;
    } else {
      bool known = false;
      for (const auto& name : option_names)
        if (arg == "--" + name) {
          cli.options[name] = value();
          known = true;
        }
      if (!known) {
        fmt::print(stderr, "unknown argument {} (try --help)\n", arg);
        std::exit(2);
      }
    }
  }
  return cli;
}

inline std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  for (std::string item; std::getline(in, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

// Prints the verdict and returns the exit status: 1 only when --check was asked and failed.
inline int verdict(const Cli& cli, bool ok, const std::string& criterion) {
  fmt::print("check: {} ({})\n", ok ? "passed" : "FAILED", criterion);
  return cli.check && !ok ? 1 : 0;
}

// main() of every example: runs `run`, and turns a cholla error into a message and status 1.
inline int run_main(int argc, char** argv, int (*run)(int, char**)) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return 1;
  }
}

}  // namespace examples
