// cholla::nn, cholla::optim, cholla::data: modules, losses, optimisers, data loading,
// checkpoints and the training progress line.
//
// Not here yet: nn::MultivariateNormalHead (a layer returning a dist::MultivariateNormal,
// DESIGN.md "nn, optim, data"). It is being written with distributions/ (nn/mvn_head.{hpp,cpp});
// when it lands it joins this umbrella and nn/meson.build (cholla_sources, cholla_headers).
// Until then examples/mvn_from_network.cpp, which uses it, does not build.
#pragma once

#include "nn/activations.hpp"
#include "nn/checkpoint.hpp"
#include "nn/data/csv.hpp"
#include "nn/data/loader.hpp"
#include "nn/linear.hpp"
#include "nn/losses.hpp"
#include "nn/module.hpp"
#include "nn/mvn_head.hpp"
#include "nn/optim/adam.hpp"
#include "nn/optim/optimizer.hpp"
#include "nn/optim/sgd.hpp"
#include "nn/progress.hpp"
#include "nn/sequential.hpp"
