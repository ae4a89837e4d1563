// data::read_csv edge cases, each on a file the test writes to a temporary directory.
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
                       doctest::Contains("more than once"), IoError);
}

TEST_CASE("csv: a header without rows gives empty columns") {
  TempDir dir;
  const auto t = data::read_csv(dir.write("h.csv", "a,b\n"));
  CHECK(t.rows() == 0);
  CHECK(t["a"].shape() == Shape{0});
}
