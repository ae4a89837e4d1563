// cholla::dist: Normal, MultivariateNormal, LowRankMultivariateNormal, MixtureSameFamily,
// transforms, KL, failure policies.
#pragma once

#include "distributions/failure_policy.hpp"
#include "distributions/low_rank_normal.hpp"
#include "distributions/mixture.hpp"
#include "distributions/multivariate_normal.hpp"
#include "distributions/normal.hpp"
#include "distributions/transforms.hpp"
