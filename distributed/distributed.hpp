// cholla::distributed: data-parallel training over MPI (built when meson finds MPI,
// `-Dmpi=auto`). Not part of <cholla.hpp>: include this header where it is used.
// How to run it on a cluster: docs/distributed.md; a complete program:
// examples/data_parallel.cpp.
#pragma once

#include "distributed/checkpoint.hpp"
#include "distributed/collectives.hpp"
#include "distributed/context.hpp"
#include "nn/data/distributed_sampler.hpp"
