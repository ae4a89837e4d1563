// doctest's main for the MPI tests: one distributed::Context for the whole run (MPI cannot be
// initialised twice), then every rank runs every test case. Run under mpirun -np 1 and -np 2.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include "distributed/distributed.hpp"

int main(int argc, char** argv) {
  cholla::distributed::Context context(argc, argv);
  doctest::Context tests(argc, argv);
  return tests.run();
}
