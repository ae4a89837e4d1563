// libFuzzer target for data::read_csv. The first byte picks the options (delimiter, header,
// missing-value policy, selected columns, NA list), the rest is the file. Every input must give
// a table or a cholla::Error (any other exception, a crash or a sanitizer report is a finding),
// and a table must be self-consistent.
#include <cholla.hpp>

#include <cstring>

#include "fuzz_file.hpp"

using namespace cholla;

namespace {

data::CsvOptions options_from(uint8_t b) {
  static const data::Delimiter kDelimiters[] = {data::Delimiter::Auto, data::Delimiter::Comma,
                                                data::Delimiter::Semicolon, data::Delimiter::Tab,
                                                data::Delimiter::Whitespace};
  static const std::vector<std::string> kColumns[] = {{}, {"a"}, {"b", "a"}, {"1", "0"}};
  data::CsvOptions o;
  o.delimiter = kDelimiters[b % 5];
  o.header = (b / 5) % 2 == 0;
  o.missing = (b / 10) % 2 == 0 ? data::Missing::Error : data::Missing::SkipRow;
  o.columns = kColumns[(b / 20) % 4];
  if ((b / 80) % 2 == 1) o.na_values = {};
  return o;
}

void check(const data::Table& t) {
  const auto cols = static_cast<int64_t>(t.names().size());
  if (t.cols() != cols || cols == 0 || t.rows() < 0) fuzz::finding("table: bad counts");
  const Tensor m = t.matrix();
  if (m.shape() != Shape{t.rows(), cols}) fuzz::finding("table: matrix shape");
  for (int64_t j = 0; j < cols; ++j) {
    const Tensor c = t[t.names()[static_cast<size_t>(j)]];
    if (c.shape() != Shape{t.rows()}) fuzz::finding("table: column shape");
    for (int64_t i = 0; i < t.rows(); ++i)
      if (std::memcmp(&c.data()[static_cast<size_t>(i)],
                      &m.data()[static_cast<size_t>(i * cols + j)], sizeof(double)) != 0)
        fuzz::finding("table: column differs from the matrix");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  static fuzz::MemoryFile file;
  const std::string path = file.hold(data + 1, size - 1);
  try {
    check(data::read_csv(path, options_from(data[0])));
  } catch (const Error&) {
    // A typed refusal is the expected outcome for most inputs.
  }
  return 0;
}
