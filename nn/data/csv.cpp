#include "nn/data/csv.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <deque>
#include <optional>
#include <string_view>
#include <unordered_map>

#include "autodiff/shape.hpp"
#include "nn/data/detail/untrusted.hpp"

namespace cholla::data {
namespace {

using detail::excerpt;

// First position (0-based) of each name seen so far, so a repeated name is caught the moment it
// appears, before anything is stored for the rest of a (possibly huge) header. The views must
// outlive the finder.
class DuplicateFinder {
 public:
  // The earlier position of `name`, if there was one.
  std::optional<size_t> add(std::string_view name, size_t position) {
    const auto [it, fresh] = first_.emplace(name, position);
    if (fresh) return std::nullopt;
    return it->second;
  }

 private:
  std::unordered_map<std::string_view, size_t> first_;
};

// Lines of the text, ended by LF, CRLF or a lone CR, with 1-based numbers; blank lines (only
// spaces and tabs) are skipped but counted. Views into the text: no copy per line.
class Lines {
 public:
  explicit Lines(std::string_view text) : rest_(text) {}

  bool next(std::string_view& line, int64_t& number) {
    while (!rest_.empty()) {
      const size_t end = rest_.find_first_of("\r\n");
      line = rest_.substr(0, end);
      if (end == std::string_view::npos) {
        rest_ = {};
      } else {
        const bool crlf = rest_[end] == '\r' && end + 1 < rest_.size() && rest_[end + 1] == '\n';
        rest_.remove_prefix(end + (crlf ? 2 : 1));
      }
      number = ++count_;
      if (line.find_first_not_of(" \t") != std::string_view::npos) return true;
    }
    return false;
  }

 private:
  std::string_view rest_;
  int64_t count_ = 0;
};

struct Field {
  std::string_view raw;  // between the quotes for a quoted field, trimmed otherwise
  bool escaped = false;  // holds "" pairs that stand for one quote each
  int64_t column = 0;    // 1-based character position in the line, for messages
};

// The fields of one line, one at a time, so that no line (however many fields it has) costs
// more than one Field of memory.
class Fields {
 public:
  Fields(std::string_view line, int64_t number, Delimiter delimiter, const std::string& path)
      : line_(line), number_(number), runs_(delimiter == Delimiter::Whitespace),
        sep_(delimiter == Delimiter::Comma ? ','
             : delimiter == Delimiter::Tab ? '\t'
                                           : ';'),
        path_(path) {}

  bool next(Field& f) {
    const size_t n = line_.size();
    if (done_) return false;
    if (trailing_empty_) {  // a trailing separator ends with an empty field
      done_ = true;
      f = {{}, false, static_cast<int64_t>(n) + 1};
      return true;
    }
    if (runs_)
      while (i_ < n && is_space(line_[i_])) ++i_;
    else
      while (i_ < n && line_[i_] == ' ') ++i_;
    if (runs_ && i_ == n) return done_ = true, false;
    f = {{}, false, static_cast<int64_t>(i_) + 1};
    if (i_ < n && line_[i_] == '"') {
      const size_t start = ++i_;
      while (true) {
        if (i_ == n) fail(f.column, "unterminated quoted field. Close it with '\"'.");
        if (line_[i_] != '"') {
          ++i_;
        } else if (i_ + 1 < n && line_[i_ + 1] == '"') {
          f.escaped = true;
          i_ += 2;
        } else {
          break;
        }
      }
      f.raw = line_.substr(start, i_++ - start);
      if (!runs_)
        while (i_ < n && line_[i_] == ' ') ++i_;
      if (i_ < n && !is_sep(line_[i_]))
        fail(static_cast<int64_t>(i_) + 1, "unexpected text after a quoted field.");
    } else {
      const size_t start = i_;
      while (i_ < n && !is_sep(line_[i_])) ++i_;
      size_t end = i_;
      while (end > start && line_[end - 1] == ' ') --end;
      f.raw = line_.substr(start, end - start);
    }
    if (i_ == n) {
      done_ = true;
    } else {
      ++i_;  // the separator
      trailing_empty_ = !runs_ && i_ == n;
    }
    return true;
  }

  // How many fields the whole line has (consumes this cursor).
  size_t count() {
    size_t k = 0;
    for (Field f; next(f);) ++k;
    return k;
  }

  [[noreturn]] void fail(int64_t column, const std::string& what) const {
    throw IoError("read_csv", fmt::format("{}:{}:{}: {}", path_, number_, column, what));
  }

 private:
  static bool is_space(char c) { return c == ' ' || c == '\t'; }
  bool is_sep(char c) const { return runs_ ? is_space(c) : c == sep_; }

  std::string_view line_;
  int64_t number_;
  bool runs_;
  char sep_;
  const std::string& path_;
  size_t i_ = 0;
  bool done_ = false, trailing_empty_ = false;
};

// A field's text: the raw view, or the unescaped copy in `scratch` when it holds "" pairs.
std::string_view text_of(const Field& f, std::string& scratch) {
  if (!f.escaped) return f.raw;
  scratch.clear();
  for (size_t i = 0; i < f.raw.size(); ++i) {
    scratch += f.raw[i];
    if (f.raw[i] == '"') ++i;  // the second quote of a pair
  }
  return scratch;
}

Delimiter detect(std::string_view line) {
  bool quoted = false, comma = false;
  for (char c : line) {
    if (c == '"') quoted = !quoted;
    if (quoted) continue;
    if (c == ';') return Delimiter::Semicolon;
    comma = comma || c == ',';
  }
  return comma ? Delimiter::Comma : Delimiter::Whitespace;
}

bool parse_number(std::string_view s, double& out) {
  const char* first = s.data();
  const char* last = s.data() + s.size();
  if (first != last && *first == '+') ++first;  // from_chars rejects a leading '+'
  const auto [ptr, ec] = std::from_chars(first, last, out);
  return ec == std::errc() && ptr == last && first != last;
}

// At most a few names, each shortened, for "the header has ..." messages.
std::string some_names(const std::vector<std::string>& names, size_t total) {
  constexpr size_t kShown = 10;
  std::string out;
  for (size_t i = 0; i < names.size() && i < kShown; ++i)
    out += (i == 0 ? "" : ", ") + excerpt(names[i]);
  if (total > kShown) out += fmt::format(" and {} more", total - kShown);
  return out;
}

std::string both_named(size_t first, size_t second, std::string_view name) {
  return fmt::format("columns {} and {} are both named {}", first + 1, second + 1, excerpt(name));
}

// Which header positions to read and under which names, in the order of the output columns.
struct Selection {
  std::vector<std::string> names;  // empty when positional
  std::vector<size_t> positions;   // header position of each output column; empty: all, in order
  size_t width = 0;                // fields per line
  bool positional = false;         // every column of a file without header: names "0", "1", ...

  size_t size() const { return positional ? width : names.size(); }
  std::string name(size_t column) const {
    return positional ? std::to_string(column) : names[column];
  }
  // Made only once the rows are read: a line too wide or a bad first row is refused without
  // ever holding a name per field.
  std::vector<std::string> all_names() const {
    if (!positional) return names;
    std::vector<std::string> out;
    for (size_t c = 0; c < width; ++c) out.push_back(std::to_string(c));
    return out;
  }
};

Selection select_columns(const std::string& path, const CsvOptions& options,
                         std::string_view header_line, int64_t header_number, Delimiter delimiter,
                         size_t width) {
  auto name_at = [&](const Field& f, size_t position, std::string& scratch) -> std::string_view {
    if (options.header) return text_of(f, scratch);
    scratch = std::to_string(position);
    return scratch;
  };
  Selection out;
  out.width = width;
  if (options.columns.empty() && !options.header) {
    out.positional = true;
    return out;
  }
  std::string scratch;
  Fields fields(header_line, header_number, delimiter, path);
  Field f;
  if (options.columns.empty()) {
    // Every column: its name is kept anyway, and a repeated one stops the scan at once.
    std::deque<std::string> names;  // stable addresses for the finder's views
    DuplicateFinder finder;
    for (size_t p = 0; fields.next(f); ++p) {
      names.emplace_back(text_of(f, scratch));
      if (const auto earlier = finder.add(names.back(), p))
        throw IoError("read_csv", fmt::format("{}: {} in the header; rename one of them.", path,
                                              both_named(*earlier, p, names.back())));
    }
    out.names.assign(std::make_move_iterator(names.begin()), std::make_move_iterator(names.end()));
    return out;
  }
  // Chosen columns: only the requested names are looked at, however wide the header.
  std::unordered_map<std::string_view, size_t> wanted;  // name -> index in options.columns
  for (size_t i = 0; i < options.columns.size(); ++i)
    if (!wanted.emplace(options.columns[i], i).second)
      throw DomainError("read_csv", fmt::format("columns lists {} twice; list each column once.",
                                                excerpt(options.columns[i])));
  constexpr size_t kUnseen = static_cast<size_t>(-1);
  out.positions.assign(options.columns.size(), kUnseen);
  std::vector<std::string> first_names;  // for the message when a name is missing
  for (size_t p = 0; fields.next(f); ++p) {
    const std::string_view name = name_at(f, p, scratch);
    if (first_names.size() < 10) first_names.emplace_back(name);
    const auto it = wanted.find(name);
    if (it == wanted.end()) continue;
    size_t& position = out.positions[it->second];
    if (position != kUnseen)
      throw IoError("read_csv", fmt::format("{}: {} in the header; rename one of them.", path,
                                            both_named(position, p, name)));
    position = p;
  }
  for (size_t i = 0; i < options.columns.size(); ++i)
    if (out.positions[i] == kUnseen)
      throw IoError("read_csv", fmt::format("{}: no column named {}; the header has {}.", path,
                                            excerpt(options.columns[i]),
                                            some_names(first_names, width)));
  out.names = options.columns;
  return out;
}

// Reserves room for every value that `text` (the rest of the file) can still hold, so that growth
// never doubles the peak: a value takes at least two bytes of the file (itself and what ends
// it), and a line holds at most k of them. Called once the first row was read, so that a file
// refused at its first row never reserves (allocators may touch what they hand out).
void reserve_values(std::vector<double>& values, const std::string& path, std::string_view text,
                    size_t k) {
  size_t lines = 0;
  std::string_view line;
  int64_t number = 0;
  for (Lines counter(text); counter.next(line, number);) ++lines;
  try {
    values.reserve(values.size() +
                   std::min(text.size() / 2 + 1, lines > SIZE_MAX / k ? SIZE_MAX : lines * k));
  } catch (const std::exception&) {  // bad_alloc or length_error
    throw ResourceError("read_csv", fmt::format("{}: the values need more memory than this "
                                                "process can get.",
                                                path));
  }
}

}  // namespace

Table::Table(std::vector<std::string> names, Tensor values)
    : names_(std::move(names)), values_(std::move(values)) {
  if (!values_.defined() || values_.dim() != 2 ||
      values_.size(1) != static_cast<int64_t>(names_.size()))
    throw ShapeError("Table",
                     fmt::format("values must have shape [rows, {}] (one column per name), not {}.",
                                 names_.size(), values_.defined() ? format_shape(values_.shape())
                                                                  : std::string("undefined")),
                     "values", {values_.defined() ? values_.shape() : Shape{}});
  DuplicateFinder finder;
  for (size_t i = 0; i < names_.size(); ++i)
    if (const auto earlier = finder.add(names_[i], i))
      throw DomainError("Table", both_named(*earlier, i, names_[i]) + "; names must be distinct.");
}

int64_t Table::rows() const { return values_.size(0); }

size_t Table::index(const std::string& name) const {
  for (size_t i = 0; i < names_.size(); ++i)
    if (names_[i] == name) return i;
  throw IoError("Table", fmt::format("no column named {}; the table has {}.", excerpt(name),
                                     some_names(names_, names_.size())));
}

std::vector<double> Table::gather(const std::vector<std::string>& names) const {
  std::vector<size_t> picks;
  for (const auto& n : names) picks.push_back(index(n));
  const auto r = static_cast<size_t>(rows()), c = names_.size(), k = picks.size();
  const auto all = values_.data();
  std::vector<double> out(r * k);
  for (size_t i = 0; i < r; ++i)
    for (size_t j = 0; j < k; ++j) out[i * k + j] = all[i * c + picks[j]];
  return out;
}

Tensor Table::operator[](const std::string& name) const {
  return Tensor::from({rows()}, gather({name}));
}

Tensor Table::matrix(const std::vector<std::string>& names) const {
  if (names_.empty()) throw ShapeError("Table::matrix", "the table has no columns.");
  if (names.empty()) return values_.clone();
  return Tensor::from({rows(), static_cast<int64_t>(names.size())}, gather(names));
}

Table read_csv(const std::string& path, const CsvOptions& options) {
  std::string file = detail::RegularFile("read_csv", path).read_all();
  std::string_view text(file);
  if (text.starts_with("\xEF\xBB\xBF")) text.remove_prefix(3);  // UTF-8 byte-order mark

  Lines lines(text);
  std::string_view first, line;
  int64_t first_number = 0, number = 0;
  if (!lines.next(first, first_number))
    throw IoError("read_csv", fmt::format("{}: the file is empty (no {}). Check the path and "
                                          "that the file was fully written.",
                                          path, options.header ? "header" : "rows"));
  const Delimiter delimiter = options.delimiter == Delimiter::Auto ? detect(first) : options.delimiter;
  const size_t width = Fields(first, first_number, delimiter, path).count();
  const Selection selection = select_columns(path, options, first, first_number, delimiter, width);
  const size_t k = selection.size();
  // Output column of each selected header position, in header order, walked along each line.
  std::vector<std::pair<size_t, size_t>> slots;  // (position, output column)
  for (size_t c = 0; c < selection.positions.size(); ++c)
    slots.emplace_back(selection.positions[c], c);
  std::sort(slots.begin(), slots.end());

  std::vector<double> values;  // row-major, 8 bytes per value read: all that grows with the file
  std::string scratch;
  auto read_row = [&](std::string_view row, int64_t row_number) {
    Fields fields(row, row_number, delimiter, path);
    const size_t found = Fields(row, row_number, delimiter, path).count();
    if (found != width)
      fields.fail(1, fmt::format("expected {} fields (as in line {}), found {}.", width,
                                 first_number, found));
    // Every column: values are appended in field order, so a bad field stops the row before
    // a slot is taken for each of the (maybe millions of) fields after it. Chosen columns: one
    // slot per requested name, filled in header order.
    const bool all = slots.empty();
    const size_t base = values.size();
    if (!all) values.resize(base + k);
    auto slot = slots.begin();
    Field f;
    for (size_t p = 0; fields.next(f); ++p) {
      if (!all && (slot == slots.end() || slot->first != p)) continue;
      const std::string_view value = text_of(f, scratch);
      const size_t column = all ? p : slot->second;
      if (std::find(options.na_values.begin(), options.na_values.end(), value) !=
          options.na_values.end()) {
        if (options.missing == Missing::SkipRow) return values.resize(base);
        fields.fail(f.column, fmt::format("missing value {} in column {}. Clean the file or pass "
                                          ".missing = data::Missing::SkipRow.",
                                          excerpt(value), excerpt(selection.name(column))));
      }
      double parsed = 0;
      if (!parse_number(value, parsed))
        fields.fail(f.column, fmt::format("{} in column {} is not a number.", excerpt(value),
                                          excerpt(selection.name(column))));
      // One header position may feed several output columns only if listed twice, which
      // select_columns refuses; so each position has at most one slot.
      if (all) {
        values.push_back(parsed);
      } else {
        values[base + column] = parsed;
        ++slot;
      }
    }
  };
  if (!options.header) read_row(first, first_number);
  if (lines.next(line, number)) {
    read_row(line, number);
    reserve_values(values, path, text.substr(static_cast<size_t>(line.data() - text.data())), k);
    while (lines.next(line, number)) read_row(line, number);
  }
  std::string().swap(file);  // done with the text: free it before the values are copied
  const auto rows = static_cast<int64_t>(values.size() / k);
  return Table(selection.all_names(), Tensor::from({rows, static_cast<int64_t>(k)}, std::move(values)));
}

}  // namespace cholla::data
