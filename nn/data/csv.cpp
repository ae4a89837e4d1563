#include "nn/data/csv.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string_view>

#include "autodiff/ops.hpp"

namespace cholla::data {
namespace {

struct Field {
  std::string text;
  int64_t column;  // 1-based character position in the line, for messages
};

class Reader {
 public:
  Reader(const std::string& path, Delimiter delimiter) : path_(path), delimiter_(delimiter) {}

  [[noreturn]] void fail(int64_t line, int64_t column, const std::string& what) const {
    throw IoError("read_csv", fmt::format("{}:{}:{}: {}", path_, line, column, what));
  }

  Delimiter detect(std::string_view line) const {
    bool quoted = false, comma = false;
    for (char c : line) {
      if (c == '"') quoted = !quoted;
      if (quoted) continue;
      if (c == ';') return Delimiter::Semicolon;
      comma = comma || c == ',';
    }
    return comma ? Delimiter::Comma : Delimiter::Whitespace;
  }

  std::vector<Field> split(std::string_view line, int64_t number) const {
    std::vector<Field> out;
    const bool runs = delimiter_ == Delimiter::Whitespace;
    const char sep = delimiter_ == Delimiter::Comma ? ',' : delimiter_ == Delimiter::Tab ? '\t' : ';';
    auto is_space = [](char c) { return c == ' ' || c == '\t'; };
    auto is_sep = [&](char c) { return runs ? is_space(c) : c == sep; };
    size_t i = 0;
    const size_t n = line.size();
    while (true) {
      if (runs)
        while (i < n && is_space(line[i])) ++i;
      else
        while (i < n && line[i] == ' ') ++i;
      if (runs && i == n) break;
      Field f{{}, static_cast<int64_t>(i) + 1};
      if (i < n && line[i] == '"') {
        ++i;
        while (true) {
          if (i == n) fail(number, f.column, "unterminated quoted field. Close it with '\"'.");
          if (line[i] == '"') {
            if (i + 1 < n && line[i + 1] == '"') {
              f.text += '"';
              i += 2;
              continue;
            }
            ++i;
            break;
          }
          f.text += line[i++];
        }
        if (!runs)
          while (i < n && line[i] == ' ') ++i;
        if (i < n && !is_sep(line[i]))
          fail(number, static_cast<int64_t>(i) + 1, "unexpected text after a quoted field.");
      } else {
        const size_t start = i;
        while (i < n && !is_sep(line[i])) ++i;
        size_t end = i;
        while (end > start && line[end - 1] == ' ') --end;
        f.text.assign(line.substr(start, end - start));
      }
      out.push_back(std::move(f));
      if (i == n) break;
      ++i;  // the separator
      if (!runs && i == n) {  // a trailing separator ends with an empty field
        out.push_back({{}, static_cast<int64_t>(i) + 1});
        break;
      }
    }
    return out;
  }

  void set_delimiter(Delimiter d) { delimiter_ = d; }
  Delimiter delimiter() const { return delimiter_; }

 private:
  const std::string& path_;
  Delimiter delimiter_;
};

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw IoError("read_csv", fmt::format("cannot open '{}': {}. Check the path.", path,
                                          std::strerror(errno)));
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) throw IoError("read_csv", fmt::format("error while reading '{}'.", path));
  std::string text = std::move(buffer).str();
  if (text.starts_with("\xEF\xBB\xBF")) text.erase(0, 3);  // UTF-8 byte-order mark
  return text;
}

bool parse_number(const std::string& s, double& out) {
  const char* first = s.data();
  const char* last = s.data() + s.size();
  if (first != last && *first == '+') ++first;  // from_chars rejects a leading '+'
  const auto [ptr, ec] = std::from_chars(first, last, out);
  return ec == std::errc() && ptr == last && first != last;
}

}  // namespace

Table::Table(std::vector<std::string> names, std::vector<Tensor> columns)
    : names_(std::move(names)), columns_(std::move(columns)) {}

int64_t Table::rows() const { return columns_.empty() ? 0 : columns_[0].numel(); }

const Tensor& Table::operator[](const std::string& name) const {
  for (size_t i = 0; i < names_.size(); ++i)
    if (names_[i] == name) return columns_[i];
  std::string all;
  for (const auto& n : names_) all += (all.empty() ? "'" : ", '") + n + "'";
  throw IoError("Table", fmt::format("no column named '{}'; the table has {}.", name, all));
}

Tensor Table::matrix(const std::vector<std::string>& names) const {
  const std::vector<std::string>& pick = names.empty() ? names_ : names;
  if (pick.empty()) throw ShapeError("Table::matrix", "the table has no columns.");
  std::vector<Tensor> cols;
  for (const auto& n : pick) cols.push_back((*this)[n]);
  return stack(cols, 1);
}

Table read_csv(const std::string& path, const CsvOptions& options) {
  const std::string text = read_file(path);
  // Split into lines (LF or CRLF), remembering 1-based line numbers, skipping blank lines.
  std::vector<std::pair<std::string_view, int64_t>> lines;
  std::string_view rest(text);
  for (int64_t number = 1; !rest.empty(); ++number) {
    const size_t end = rest.find('\n');
    std::string_view line = rest.substr(0, end);
    rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.find_first_not_of(" \t") != std::string_view::npos) lines.emplace_back(line, number);
  }
  if (lines.empty())
    throw IoError("read_csv", fmt::format("{}: the file is empty (no {}). Check the path and "
                                          "that the file was fully written.",
                                          path, options.header ? "header" : "rows"));

  Reader reader(path, options.delimiter);
  if (options.delimiter == Delimiter::Auto) reader.set_delimiter(reader.detect(lines[0].first));

  std::vector<std::string> header;
  const auto first = reader.split(lines[0].first, lines[0].second);
  for (size_t i = 0; i < first.size(); ++i)
    header.push_back(options.header ? first[i].text : std::to_string(i));
  const size_t width = header.size();

  // Selected columns: indices into the header, in the requested order.
  std::vector<size_t> pick;
  if (options.columns.empty()) {
    for (size_t i = 0; i < width; ++i) pick.push_back(i);
  } else {
    for (const auto& name : options.columns) {
      const auto it = std::find(header.begin(), header.end(), name);
      if (it == header.end()) {
        std::string all;
        for (const auto& h : header) all += (all.empty() ? "'" : ", '") + h + "'";
        throw IoError("read_csv", fmt::format("{}: no column named '{}'; the header has {}.",
                                              path, name, all));
      }
      if (std::find(it + 1, header.end(), name) != header.end())
        throw IoError("read_csv", fmt::format("{}: the header names column '{}' more than once; "
                                              "rename one of them.",
                                              path, name));
      pick.push_back(static_cast<size_t>(it - header.begin()));
    }
  }

  std::vector<std::vector<double>> values(pick.size());
  std::vector<double> row(pick.size());
  for (size_t l = options.header ? 1 : 0; l < lines.size(); ++l) {
    const auto [line, number] = lines[l];
    const auto fields = reader.split(line, number);
    if (fields.size() != width)
      reader.fail(number, 1, fmt::format("expected {} fields (as in line {}), found {}.", width,
                                         lines[0].second, fields.size()));
    bool skip = false;
    for (size_t c = 0; c < pick.size() && !skip; ++c) {
      const Field& f = fields[pick[c]];
      const std::string& name = header[pick[c]];
      if (std::find(options.na_values.begin(), options.na_values.end(), f.text) !=
          options.na_values.end()) {
        if (options.missing == Missing::SkipRow) {
          skip = true;
          continue;
        }
        reader.fail(number, f.column,
                    fmt::format("missing value '{}' in column '{}'. Clean the file or pass "
                                ".missing = data::Missing::SkipRow.",
                                f.text, name));
      }
      if (!parse_number(f.text, row[c]))
        reader.fail(number, f.column,
                    fmt::format("'{}' in column '{}' is not a number.", f.text, name));
    }
    if (skip) continue;
    for (size_t c = 0; c < pick.size(); ++c) values[c].push_back(row[c]);
  }

  std::vector<std::string> names;
  std::vector<Tensor> columns;
  for (size_t c = 0; c < pick.size(); ++c) {
    names.push_back(header[pick[c]]);
    const auto n = static_cast<int64_t>(values[c].size());
    columns.push_back(Tensor::from({n}, std::move(values[c])));
  }
  return Table(std::move(names), std::move(columns));
}

}  // namespace cholla::data
