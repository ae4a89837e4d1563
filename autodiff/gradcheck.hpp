// gradcheck: compare the tape's gradients with central finite differences (float64).
//
//   auto result = cholla::gradcheck(
//       [](const std::vector<Tensor>& x) { return linalg::potrf(x[0]); },
//       {A}, {.structure = {cholla::Structure::Symmetric}});
//   CHECK_MESSAGE(result.ok, result.report);
//
// A non-scalar f is reduced to the scalar s = sum(w * f(x)) with fixed pseudo-random weights w
// (all of magnitude 0.5..1.5, random sign), so every output element takes part.
// For each input element the numeric derivative (s(x + eps e) - s(x - eps e)) / (2 eps) is
// compared with the analytic one; an element passes when |a - n| <= atol + rtol * |n|.
//
// Structured inputs: ops that read only one triangle of a matrix (potrf, syevd) or treat it as
// symmetric cannot be checked with independent perturbations of every entry. Symmetric
// perturbs (i, j) and (j, i) together and compares with g_ij + g_ji; LowerTriangular /
// UpperTriangular perturb only that triangle (diagonal included).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "autodiff/tensor.hpp"

namespace cholla {

enum class Structure { General, Symmetric, LowerTriangular, UpperTriangular };

struct GradcheckOptions {
  double eps = 1e-6;
  double atol = 1e-6;
  double rtol = 1e-5;
  std::vector<Structure> structure = {};  // per input; missing entries are General
  uint64_t seed = 12345;                  // for the output weights
  bool throw_on_failure = false;          // throw GraphError with the report instead
};

struct GradcheckResult {
  bool ok = true;
  std::string report;  // the worst element: input, multi-index, analytic, numeric, error
  double max_error = 0.0;  // the largest |a - n| / (atol + rtol |n|); <= 1 passes
};

using TensorFunction = std::function<Tensor(const std::vector<Tensor>&)>;

GradcheckResult gradcheck(const TensorFunction& f, const std::vector<Tensor>& inputs,
                          const GradcheckOptions& options = {});

// Second order: checks the gradient of  x -> sum_i <v_i, d s / d x_i>  (v fixed random), where
// the inner gradient is computed by the tape with create_graph. Passing means the backward
// rules are themselves correctly differentiated.
GradcheckResult gradgradcheck(const TensorFunction& f, const std::vector<Tensor>& inputs,
                              const GradcheckOptions& options = {});

}  // namespace cholla
