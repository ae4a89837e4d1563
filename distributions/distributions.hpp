// cholla::dist: Normal and MultivariateNormal, transforms, KL, failure policies.
#pragma once

#include "distributions/failure_policy.hpp"
#include "distributions/multivariate_normal.hpp"
#include "distributions/normal.hpp"
#include "distributions/transforms.hpp"
