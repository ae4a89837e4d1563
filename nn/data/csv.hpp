// data::read_csv: numeric columns of a delimited text file as named float64 tensors.
//
//   auto table = data::read_csv("prices.csv", {.columns = {"DAX", "SMI"}});
//   Tensor dax = table["DAX"];                       // [rows], a copy
//   Tensor X = table.matrix({"DAX", "SMI"});         // [rows, 2]
//
// - Lines end with LF, CRLF or a lone CR (old Mac files).
// - The delimiter is detected from the first line unless given: ';' if it holds one (outside
//   quotes), else ',' if it holds one, else runs of spaces/tabs.
// - Fields may be double-quoted ("DAX", "1.5"; "" inside quotes is a quote). Surrounding spaces
//   are ignored. A UTF-8 byte-order mark, CRLF line ends, blank lines and a missing or present
//   trailing newline are all fine.
// - Only the selected columns are parsed, so text columns (dates) can sit next to them.
// - A missing value (an empty field or one of na_values) is an IoError naming file:line:column
//   and the column, or, with .missing = Missing::SkipRow, drops the whole row.
// - A field that is not a number is an IoError naming file:line:column, the column and the text.
// - Two selected columns with the same name are an IoError naming both positions; columns that
//   are not read may share a name. Messages quote at most ~80 bytes of any field or name.
// - Memory: lines and fields are scanned in place, never copied or listed; what is kept is the
//   file's text, 8 bytes per value read (twice, briefly, while they move into the tensor) and the
//   names of the selected columns. As a value takes at least 2 bytes of the file, the peak stays
//   below about 9 times the file size (typical files with longer numbers: 2 to 3 times).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "autodiff/tensor.hpp"

namespace cholla::data {

enum class Delimiter { Auto, Comma, Semicolon, Tab, Whitespace };
enum class Missing { Error, SkipRow };

struct CsvOptions {
  std::vector<std::string> columns = {};  // names to read, in this order; empty: every column
  Delimiter delimiter = Delimiter::Auto;
  bool header = true;  // false: columns are named "0", "1", ...
  Missing missing = Missing::Error;
  std::vector<std::string> na_values = {"NA", "N/A", "NaN", "nan", ""};
};

class Table {
 public:
  // `values` has shape [rows, names.size()]: ShapeError otherwise, DomainError when two names
  // are equal.
  Table(std::vector<std::string> names, Tensor values);

  const std::vector<std::string>& names() const { return names_; }
  int64_t rows() const;
  int64_t cols() const { return static_cast<int64_t>(names_.size()); }
  // The column named `name`, shape [rows]; IoError listing (some of) the names when there is none.
  Tensor operator[](const std::string& name) const;
  // Columns side by side, shape [rows, names.size()]; every column when `names` is empty.
  Tensor matrix(const std::vector<std::string>& names = {}) const;

 private:
  size_t index(const std::string& name) const;
  std::vector<double> gather(const std::vector<std::string>& names) const;  // row-major

  std::vector<std::string> names_;
  Tensor values_;  // [rows, cols], row-major as in the file
};

Table read_csv(const std::string& path, const CsvOptions& options = {});

}  // namespace cholla::data
