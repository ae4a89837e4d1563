// cholla::nn, cholla::optim, cholla::data: modules, losses, optimisers, data loading,
// checkpoints, the training progress line, and nn::MultivariateNormalHead (a layer whose output
// is a dist::MultivariateNormal, nn/mvn_head.hpp).
#pragma once

#include "nn/activations.hpp"
#include "nn/checkpoint.hpp"
#include "nn/data/csv.hpp"
#include "nn/data/loader.hpp"
#include "nn/linear.hpp"
#include "nn/losses.hpp"
#include "nn/mixture_head.hpp"
#include "nn/module.hpp"
#include "nn/mvn_head.hpp"
#include "nn/optim/adam.hpp"
#include "nn/optim/lbfgs.hpp"
#include "nn/optim/optimizer.hpp"
#include "nn/optim/plateau.hpp"
#include "nn/optim/schedule.hpp"
#include "nn/optim/sgd.hpp"
#include "nn/progress.hpp"
#include "nn/sequential.hpp"
