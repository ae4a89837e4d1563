// Labelled tables for classification examples: features [n, p] and a class index per row.
//
// Three CSV layouts are recognised from the first line:
//   sklearn   first line "n,p,name0,name1,..." (iris.csv, wine_data.csv): then rows of p numbers
//             and an integer label that indexes the class names.
//   numeric   no header, every field a number (digits.csv): the label is the last column,
//             the features are named x0, x1, ...
//   header    a header line of names (penguins.csv): the label is `label` (or a column called
//             label/class/species/target/y, else the last column) and may be text; the features
//             are `features` (or every other column whose values are all numbers or missing;
//             text columns are listed as ignored).
// Labels that are not sklearn indices map to classes in order of first appearance.
//
// Missing values (an empty field or NA, N/A, NaN, nan) in a used column drop the row; every
// dropped row is reported as file:line and the columns that were missing. Missing values in
// columns that are not used do not drop the row (they are counted in the report).
//
// cholla::data::read_csv is not used here: it reads numeric columns only (the label may be
// text), skips rows with missing values without saying which, and cannot skip sklearn's first
// line. Header-only, like the other examples/common files.
#pragma once

#include <cholla.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <fmt/core.h>
#include <fstream>
#include <map>
#include <string>
#include <vector>

namespace examples {

struct LabelledData {
  std::string path;
  std::string layout;                      // "sklearn", "numeric" or "header"
  std::vector<std::string> feature_names;  // p names
  std::vector<std::string> class_names;    // K names
  cholla::Tensor X;                        // [n, p]
  std::vector<int64_t> y;                  // n class indices in [0, K)
  std::vector<int64_t> line;               // n source line numbers (1-based)
  std::vector<std::string> skipped;        // one "file:line: ..." per dropped row
  std::vector<std::string> notes;          // ignored columns, missing values that did not matter

  int64_t rows() const { return static_cast<int64_t>(y.size()); }
  int64_t dim() const { return static_cast<int64_t>(feature_names.size()); }
  int64_t classes() const { return static_cast<int64_t>(class_names.size()); }
};

struct LabelledOptions {
  std::string label = "";                 // header layout: the label column's name
  std::vector<std::string> features = {}; // header layout: feature columns; empty: all numeric
};

namespace detail {

inline std::string trim(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && (s[b] == ' ' || s[b] == '\t' || s[b] == '\r')) ++b;
  while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t' || s[e - 1] == '\r')) --e;
  return s.substr(b, e - b);
}

// Splits one line on `delim`, honouring double quotes ("" inside quotes is a quote).
inline std::vector<std::string> split_fields(const std::string& line, char delim) {
  std::vector<std::string> out;
  std::string field;
  bool quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        field += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        field += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == delim) {
      out.push_back(trim(field));
      field.clear();
    } else {
      field += c;
    }
  }
  out.push_back(trim(field));
  return out;
}

inline bool is_missing(const std::string& s) {
  return s.empty() || s == "NA" || s == "N/A" || s == "NaN" || s == "nan";
}

inline bool parse_number(const std::string& s, double& out) {
  if (s.empty()) return false;
  errno = 0;
  char* end = nullptr;
  out = std::strtod(s.c_str(), &end);
  return end == s.c_str() + s.size() && errno != ERANGE;
}

inline bool parse_index(const std::string& s, int64_t& out) {
  double v = 0.0;
  if (!parse_number(s, v) || v < 0 || v != static_cast<double>(static_cast<int64_t>(v))) return false;
  out = static_cast<int64_t>(v);
  return true;
}

inline std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace detail

// Throws cholla::IoError for a missing file, a malformed row or an unknown column.
inline LabelledData read_labelled_csv(const std::string& path, const LabelledOptions& options = {}) {
  using detail::split_fields;
  std::ifstream in(path);
  if (!in) throw cholla::IoError("read_labelled_csv", fmt::format("cannot open {}", path));
  std::vector<std::pair<int64_t, std::string>> lines;  // (line number, text) of non-blank lines
  {
    std::string text;
    for (int64_t number = 1; std::getline(in, text); ++number) {
      if (number == 1 && text.size() >= 3 && text.compare(0, 3, "\xEF\xBB\xBF") == 0) text.erase(0, 3);
      if (!detail::trim(text).empty()) lines.emplace_back(number, text);
    }
  }
  if (lines.size() < 2) throw cholla::IoError("read_labelled_csv", fmt::format("{}: fewer than two lines", path));
  const std::string& first = lines[0].second;
  const char delim = first.find(';') != std::string::npos ? ';' : first.find(',') != std::string::npos ? ',' : '\t';
  const std::vector<std::string> head = split_fields(first, delim);
  const size_t width1 = split_fields(lines[1].second, delim).size();

  LabelledData data;
  data.path = path;
  auto where = [&](int64_t line) { return fmt::format("{}:{}", path, line); };
  auto fail = [&](int64_t line, const std::string& what) {
    throw cholla::IoError("read_labelled_csv", fmt::format("{}: {}", where(line), what));
  };

  bool all_numeric = true;
  for (const auto& f : head) {
    double v;
    all_numeric = all_numeric && detail::parse_number(f, v);
  }
  int64_t sk_n = 0, sk_p = 0;
  const bool sklearn = head.size() >= 3 && detail::parse_index(head[0], sk_n) && detail::parse_index(head[1], sk_p) &&
                       !all_numeric && width1 == static_cast<size_t>(sk_p + 1);

  std::vector<size_t> feature_cols;
  size_t label_col = 0;
  size_t start = 1;  // first data line (index into `lines`)
  std::map<std::string, int64_t> class_of;  // label text -> class index (first-appearance order)
  if (sklearn) {
    data.layout = "sklearn";
    for (int64_t j = 0; j < sk_p; ++j) {
      feature_cols.push_back(static_cast<size_t>(j));
      data.feature_names.push_back(fmt::format("x{}", j));
    }
    label_col = static_cast<size_t>(sk_p);
    data.class_names.assign(head.begin() + 2, head.end());
  } else if (all_numeric) {
    data.layout = "numeric";
    start = 0;
    for (size_t j = 0; j + 1 < head.size(); ++j) {
      feature_cols.push_back(j);
      data.feature_names.push_back(fmt::format("x{}", j));
    }
    label_col = head.size() - 1;
  } else {
    data.layout = "header";
    auto find = [&](const std::string& name) -> int64_t {
      for (size_t j = 0; j < head.size(); ++j)
        if (head[j] == name) return static_cast<int64_t>(j);
      return -1;
    };
    auto columns = [&] {
      std::string s;
      for (const auto& h : head) s += (s.empty() ? "" : ", ") + h;
      return s;
    };
    if (!options.label.empty()) {
      const int64_t j = find(options.label);
      if (j < 0) fail(lines[0].first, fmt::format("no label column '{}' (columns: {})", options.label, columns()));
      label_col = static_cast<size_t>(j);
    } else {
      label_col = head.size() - 1;
      for (const char* guess : {"label", "class", "species", "target", "y"})
        for (size_t j = 0; j < head.size(); ++j)
          if (detail::lower(head[j]) == guess) {
            label_col = j;
            goto found;
          }
    found:;
    }
    if (!options.features.empty()) {
      for (const auto& name : options.features) {
        const int64_t j = find(name);
        if (j < 0) fail(lines[0].first, fmt::format("no feature column '{}' (columns: {})", name, columns()));
        feature_cols.push_back(static_cast<size_t>(j));
      }
    } else {
      for (size_t j = 0; j < head.size(); ++j) {
        if (j == label_col) continue;
        bool numeric = true;
        for (size_t r = 1; r < lines.size() && numeric; ++r) {
          const auto fields = split_fields(lines[r].second, delim);
          double v;
          if (j < fields.size() && !detail::is_missing(fields[j])) numeric = detail::parse_number(fields[j], v);
        }
        if (numeric)
          feature_cols.push_back(j);
        else
          data.notes.push_back(fmt::format("column '{}' is text: ignored", head[j]));
      }
    }
    for (size_t j : feature_cols) data.feature_names.push_back(head[j]);
  }
  if (feature_cols.empty()) fail(lines[0].first, "no feature columns");

  std::vector<double> values;
  std::map<std::string, int64_t> unused_missing;  // column -> rows with NA kept anyway
  for (size_t r = start; r < lines.size(); ++r) {
    const int64_t number = lines[r].first;
    const auto fields = split_fields(lines[r].second, delim);
    if (fields.size() != head.size() && !sklearn)
      fail(number, fmt::format("{} fields, expected {}", fields.size(), head.size()));
    if (sklearn && fields.size() != static_cast<size_t>(sk_p + 1))
      fail(number, fmt::format("{} fields, expected {}", fields.size(), sk_p + 1));
    std::vector<std::string> missing;
    for (size_t j : feature_cols)
      if (detail::is_missing(fields[j])) missing.push_back(data.layout == "header" ? head[j] : fmt::format("x{}", j));
    if (detail::is_missing(fields[label_col])) missing.push_back(data.layout == "header" ? head[label_col] : "label");
    if (!missing.empty()) {
      std::string cols;
      for (const auto& m : missing) cols += (cols.empty() ? "" : ", ") + m;
      data.skipped.push_back(fmt::format("{}: missing {}: row skipped", where(number), cols));
      continue;
    }
    if (data.layout == "header")
      for (size_t j = 0; j < fields.size(); ++j)
        if (j != label_col && std::find(feature_cols.begin(), feature_cols.end(), j) == feature_cols.end() &&
            detail::is_missing(fields[j]))
          ++unused_missing[head[j]];
    for (size_t j : feature_cols) {
      double v = 0.0;
      if (!detail::parse_number(fields[j], v))
        fail(number, fmt::format("column '{}': '{}' is not a number", data.layout == "header" ? head[j] : fmt::format("x{}", j), fields[j]));
      values.push_back(v);
    }
    const std::string& label = fields[label_col];
    int64_t k = 0;
    if (sklearn) {
      if (!detail::parse_index(label, k) || k >= static_cast<int64_t>(data.class_names.size()))
        fail(number, fmt::format("label '{}' is not a class index below {}", label, data.class_names.size()));
    } else {
      auto it = class_of.find(label);
      if (it == class_of.end()) {
        it = class_of.emplace(label, static_cast<int64_t>(data.class_names.size())).first;
        data.class_names.push_back(label);
      }
      k = it->second;
    }
    data.y.push_back(k);
    data.line.push_back(number);
  }
  for (const auto& [column, count] : unused_missing)
    data.notes.push_back(fmt::format("{} kept rows have a missing '{}', which is not used", count, column));
  if (sklearn && sk_n != static_cast<int64_t>(lines.size() - 1))
    data.notes.push_back(fmt::format("first line says {} rows, the file has {}", sk_n, lines.size() - 1));
  if (data.y.empty()) fail(lines[0].first, "no complete rows");
  data.X = cholla::Tensor::from({data.rows(), static_cast<int64_t>(feature_cols.size())}, std::move(values));
  return data;
}

}  // namespace examples
