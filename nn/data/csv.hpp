// data::read_csv: numeric columns of a delimited text file as named float64 tensors.
//
//   auto table = data::read_csv("prices.csv", {.columns = {"DAX", "SMI"}});
//   Tensor dax = table["DAX"];                       // [rows]
//   Tensor X = table.matrix({"DAX", "SMI"});         // [rows, 2]
//
// - The delimiter is detected from the first line unless given: ';' if it holds one (outside
//   quotes), else ',' if it holds one, else runs of spaces/tabs.
// - Fields may be double-quoted ("DAX", "1.5"; "" inside quotes is a quote). Surrounding spaces
//   are ignored. A UTF-8 byte-order mark, CRLF line ends, blank lines and a missing or present
//   trailing newline are all fine.
// - Only the selected columns are parsed, so text columns (dates) can sit next to them.
// - A missing value (an empty field or one of na_values) is an IoError naming file:line:column
//   and the column, or, with .missing = Missing::SkipRow, drops the whole row.
// - A field that is not a number is an IoError naming file:line:column, the column and the text.
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
  Table(std::vector<std::string> names, std::vector<Tensor> columns);

  const std::vector<std::string>& names() const { return names_; }
  int64_t rows() const;
  int64_t cols() const { return static_cast<int64_t>(names_.size()); }
  // The column named `name`, shape [rows]; IoError listing the names when there is none.
  const Tensor& operator[](const std::string& name) const;
  // Columns side by side, shape [rows, names.size()]; every column when `names` is empty.
  Tensor matrix(const std::vector<std::string>& names = {}) const;

 private:
  std::vector<std::string> names_;
  std::vector<Tensor> columns_;
};

Table read_csv(const std::string& path, const CsvOptions& options = {});

}  // namespace cholla::data
