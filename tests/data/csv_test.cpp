// data::read_csv edge cases, each on a file the test writes to a temporary directory.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../autodiff/helpers.hpp"
#include "../nn/temp_dir.hpp"

using namespace cholla;
using test::check_values;
using test::TempDir;

TEST_CASE("csv: quoted header names, comma delimiter, trailing newline or none") {
  TempDir dir;
  for (const char* text : {"Date,\"DAX\",\"SMI\"\n2024-01-02,1.5,2\n2024-01-03,-3e2,+4\n",
                           "Date,\"DAX\",\"SMI\"\r\n2024-01-02,1.5,2\r\n2024-01-03,-3e2,+4",
                           "\xEF\xBB\xBF" "Date , \"DAX\" ,SMI\n\n2024-01-02, 1.5 ,2\n\n"
                           "2024-01-03,-3e2,4\n\n"}) {
    CAPTURE(text);
    const auto table = data::read_csv(dir.write("prices.csv", text), {.columns = {"SMI", "DAX"}});
    CHECK(table.names() == std::vector<std::string>{"SMI", "DAX"});
    CHECK(table.rows() == 2);
    check_values(table["DAX"], {1.5, -300});
    check_values(table["SMI"], {2, 4});
    Tensor m = table.matrix();
    CHECK(m.shape() == Shape{2, 2});
    check_values(m, {2, 1.5, 4, -300});
    CHECK_THROWS_WITH_AS(table["FTSE"], doctest::Contains("'SMI', 'DAX'"), IoError);
  }
}

TEST_CASE("csv: delimiter detection and explicit delimiters") {
  TempDir dir;
  check_values(data::read_csv(dir.write("a.csv", "x;y\n1;2\n3;4\n"))["y"], {2, 4});
  check_values(data::read_csv(dir.write("b.txt", "x   y\n 1 \t 2\n3 4  \n"))["y"], {2, 4});
  check_values(data::read_csv(dir.write("c.tsv", "x\ty\n1\t2\n"),
                              {.delimiter = data::Delimiter::Tab})["y"],
               {2});
  // A quoted name holding the other delimiter does not fool the detection.
  const auto t = data::read_csv(dir.write("d.csv", "\"a;b\",c\n1,2\n"));
  CHECK(t.names() == std::vector<std::string>{"a;b", "c"});
  // Quoted values and escaped quotes in names.
  const auto q = data::read_csv(dir.write("e.csv", "\"say \"\"hi\"\"\",v\n\"1.25\",\"2\"\n"));
  CHECK(q.names()[0] == "say \"hi\"");
  check_values(q["say \"hi\""], {1.25});
}

TEST_CASE("csv: no header names columns by position") {
  TempDir dir;
  const auto t = data::read_csv(dir.write("n.csv", "1,2,3\n4,5,6\n"), {.header = false});
  CHECK(t.names() == std::vector<std::string>{"0", "1", "2"});
  check_values(t["0"], {1, 4});
  check_values(t.matrix({"2", "1"}), {3, 2, 6, 5});
}

TEST_CASE("csv: missing values are reported with file:line:column, or skipped") {
  TempDir dir;
  const std::string path = dir.write("na.csv", "a,b,c\n1,2,3\n4,NA,6\n7,8,\n10,11,12\n");
  CHECK_THROWS_WITH_AS(data::read_csv(path), doctest::Contains("na.csv:3:3: missing value 'NA' in "
                                                               "column 'b'"),
                       IoError);
  CHECK_THROWS_WITH_AS(data::read_csv(path, {.columns = {"a", "c"}}),
                       doctest::Contains("na.csv:4:5: missing value '' in column 'c'"), IoError);
  // Only the selected columns matter.
  check_values(data::read_csv(path, {.columns = {"a"}})["a"], {1, 4, 7, 10});
  const auto t = data::read_csv(path, {.missing = data::Missing::SkipRow});
  CHECK(t.rows() == 2);
  check_values(t["a"], {1, 10});
  check_values(data::read_csv(path, {.columns = {"b"}, .missing = data::Missing::SkipRow})["b"],
               {2, 8, 11});
}

TEST_CASE("csv: malformed input is an IoError naming file:line:column") {
  TempDir dir;
  CHECK_THROWS_WITH_AS(data::read_csv(dir.write("bad.csv", "a,b\n1,2\n3,4x\n")),
                       doctest::Contains("bad.csv:3:3: '4x' in column 'b' is not a number"),
                       IoError);
  CHECK_THROWS_WITH_AS(data::read_csv(dir.write("bad2.csv", "a;b\n1,5;2\n")),
                       doctest::Contains("bad2.csv:2:1: '1,5' in column 'a'"), IoError);
  CHECK_THROWS_WITH_AS(data::read_csv(dir.write("short.csv", "a,b\n1,2\n3\n")),
                       doctest::Contains("short.csv:3:1: expected 2 fields"), IoError);
  CHECK_THROWS_WITH_AS(data::read_csv(dir.write("quote.csv", "\"a,b\n1,2\n")),
                       doctest::Contains("quote.csv:1:1: unterminated"), IoError);
  CHECK_THROWS_WITH_AS(data::read_csv(dir.write("empty.csv", "")), doctest::Contains("empty"),
                       IoError);
  CHECK_THROWS_WITH_AS(data::read_csv(dir.write("blank.csv", "\n  \n")),
                       doctest::Contains("empty"), IoError);
  CHECK_THROWS_WITH_AS(data::read_csv(dir.file("missing.csv")), doctest::Contains("cannot open"),
                       IoError);
  CHECK_THROWS_WITH_AS(data::read_csv(dir.write("h.csv", "a,b\n1,2\n"), {.columns = {"c"}}),
                       doctest::Contains("no column named 'c'"), IoError);
  CHECK_THROWS_WITH_AS(data::read_csv(dir.write("dup.csv", "a,a\n1,2\n"), {.columns = {"a"}}),
                       doctest::Contains("columns 1 and 2 are both named 'a'"), IoError);
}

TEST_CASE("csv: a header without rows gives empty columns") {
  TempDir dir;
  const auto t = data::read_csv(dir.write("h.csv", "a,b\n"));
  CHECK(t.rows() == 0);
  CHECK(t["a"].shape() == Shape{0});
}

TEST_CASE("csv: CR, LF and CRLF line ends are all line breaks, and count lines") {
  TempDir dir;
  for (const char* text : {"a,b\r1,2\r3,4\r", "a,b\r1,2\r3,4", "a,b\r\n1,2\r3,4\n",
                           "a,b\n\r1,2\r\n\r\n3,4\r"}) {
    CAPTURE(text);
    const auto t = data::read_csv(dir.write("cr.csv", text));
    CHECK(t.names() == std::vector<std::string>{"a", "b"});
    check_values(t.matrix(), {1, 2, 3, 4});
  }
  // Each lone CR ends a line, also for the line numbers in messages (CRLF counts once).
  CHECK_THROWS_WITH_AS(data::read_csv(dir.write("cr2.csv", "a,b\r1,2\r\n\r3,x\r")),
                       doctest::Contains("cr2.csv:4:3: 'x' in column 'b' is not a number"),
                       IoError);
}

TEST_CASE("csv: two selected columns with one name are an IoError naming both positions") {
  TempDir dir;
  const std::string path = dir.write("dup.csv", "a,b,a,c\n1,2,3,4\n");
  CHECK_THROWS_WITH_AS(data::read_csv(path),
                       doctest::Contains("dup.csv: columns 1 and 3 are both named 'a' in the header"),
                       IoError);
  CHECK_THROWS_WITH_AS(data::read_csv(path, {.columns = {"c", "a"}}),
                       doctest::Contains("columns 1 and 3 are both named 'a'"), IoError);
  // Columns that are not read may share a name.
  const auto t = data::read_csv(path, {.columns = {"c", "b"}});
  check_values(t.matrix(), {4, 2});
  // Without a header the names are positions, never equal.
  CHECK(data::read_csv(dir.write("n.csv", "1,2,1\n"), {.header = false}).names() ==
        std::vector<std::string>{"0", "1", "2"});
  CHECK_THROWS_WITH_AS(data::read_csv(path, {.columns = {"b", "b"}}),
                       doctest::Contains("columns lists 'b' twice"), DomainError);
  // A Table built by hand holds the same rule, and its shape must match its names.
  CHECK_THROWS_WITH_AS(data::Table({"x", "y", "x"}, Tensor::zeros({2, 3})),
                       doctest::Contains("columns 1 and 3 are both named 'x'"), DomainError);
  CHECK_THROWS_WITH_AS(data::Table({"x", "y"}, Tensor::zeros({2, 3})),
                       doctest::Contains("shape [rows, 2]"), ShapeError);
}

TEST_CASE("csv: messages quote at most ~80 bytes of a field or a name") {
  TempDir dir;
  const std::string big(1 << 20, '7');
  auto message = [](auto&& read) -> std::string {
    try {
      read();
    } catch (const IoError& e) {
      return e.what();
    }
    return "no IoError";
  };
  const std::string path = dir.write("big.csv", "a,b\n1,x" + big + "\n");
  const std::string not_number = message([&] { data::read_csv(path); });
  CAPTURE(not_number);
  CHECK(not_number.find("big.csv:2:3: 'x777777") != std::string::npos);
  CHECK(not_number.find("...' (1048577 bytes) in column 'b' is not a number") != std::string::npos);
  CHECK(not_number.size() < 300);
  // A huge quoted name in a header of many columns: some names, shortened, and how many more.
  std::string header = "\"" + big + "\"";
  for (int i = 0; i < 50; ++i) header += ",c" + std::to_string(i);
  const std::string wide = dir.write("wide.csv", header + "\n");
  const std::string missing = message([&] { data::read_csv(wide, {.columns = {"zz"}}); });
  CAPTURE(missing);
  CHECK(missing.find("no column named 'zz'; the header has '777") != std::string::npos);
  CHECK(missing.find("(1048576 bytes), 'c0', 'c1'") != std::string::npos);
  CHECK(missing.find("'c8' and 41 more.") != std::string::npos);
  CHECK(missing.size() < 600);
  // Multi-byte UTF-8 is cut between characters, never inside one.
  std::string accents;
  for (int i = 0; i < 100; ++i) accents += "\xC3\xA9";  // e acute, 2 bytes
  const std::string utf8 = message([&] {
    data::read_csv(dir.write("u.csv", "a\n" + accents + "\n"));
  });
  const size_t start = utf8.find('\'') + 1, stop = utf8.find("...");
  REQUIRE(stop != std::string::npos);
  CHECK((stop - start) % 2 == 0);
  CHECK(stop - start <= 80);
}

namespace {

// Peak memory growth in bytes of running `read` in a child process, so that an earlier peak of
// this process (other tests) cannot hide it. The child starts from this process's pages.
int64_t peak_growth(const std::function<void()>& read) {
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    rusage before {}, after {};
    ::getrusage(RUSAGE_SELF, &before);
    try {
      read();
    } catch (const Error&) {  // reported as a cholla error: fine, only the memory matters here
    } catch (...) {
      ::_exit(255);
    }
    ::getrusage(RUSAGE_SELF, &after);
    // Exit status carries the growth in MiB (saturated).
    const int64_t mib = (after.ru_maxrss - before.ru_maxrss) / 1024;
    ::_exit(static_cast<int>(std::min<int64_t>(mib, 254)));
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) != 255);
  return int64_t{WEXITSTATUS(status)} << 20;
}

}  // namespace

TEST_CASE("csv: parsing memory stays within a small multiple of the file size") {
  TempDir dir;
  constexpr int64_t kSize = 16 << 20;
  const std::string commas(kSize, ',');
  // Lines of 16 Mi empty fields: as a data line of the wrong width, as a header (its empty
  // names repeat), and as the first row without a header (its first value is missing). Each
  // is refused, without ever listing the fields.
  const std::pair<std::string, bool> cases[] = {
      {"a\n" + commas + "\n", true}, {commas + "\n1\n", true}, {commas, false}};
  for (const auto& c : cases) {
    const auto& text = c.first;  // named, not bound: clang 14 lambdas cannot capture bindings
    const bool header = c.second;
    const std::string path = dir.write("commas.csv", text);
    // Measured first: a read in this process could leave pages the child would reuse.
    const int64_t growth = peak_growth([&] { data::read_csv(path, {.header = header}); });
    CAPTURE(growth);
    CHECK(growth <= 3 * kSize);
    CHECK_THROWS_AS(data::read_csv(path, {.header = header}), IoError);
  }
  // Many short rows: the values (8 bytes for 2 bytes of the file) dominate.
  std::string rows = "x\n";
  while (static_cast<int64_t>(rows.size()) < kSize) rows += "1\n2\n3\n4\n5\n6\n7\n8\n";
  const std::string path = dir.write("rows.csv", rows);
  const int64_t growth = peak_growth([&] { data::read_csv(path); });
  CAPTURE(growth);
  // The bound of csv.hpp is 9 times the file (the text, then the values twice while they move
  // into the tensor); 12 leaves room for the sanitizers' shadow memory. Before the values were
  // reserved and the lines scanned in place this took over 20 times.
  CHECK(growth <= 12 * kSize);
  CHECK(data::read_csv(path).rows() == static_cast<int64_t>(rows.size() / 2 - 1));
}
