// Shape ops. Data is always contiguous row-major: reshape shares storage, the others copy.
// Along a dimension `dim` a tensor is viewed as [outer, size(dim), inner]; every copy below is
// a loop over that view.
#include <algorithm>
#include <cstring>
#include <fmt/format.h>

#include "autodiff/ops.hpp"
#include "autodiff/shape.hpp"
#include "autodiff/tape.hpp"

namespace cholla {
namespace {

struct DimView {
  int64_t outer = 1, size = 1, inner = 1;
};

DimView view_at(const Shape& shape, int64_t dim) {
  DimView v;
  for (int64_t d = 0; d < dim; ++d) v.outer *= shape[static_cast<size_t>(d)];
  v.size = shape[static_cast<size_t>(dim)];
  for (size_t d = static_cast<size_t>(dim) + 1; d < shape.size(); ++d) v.inner *= shape[d];
  return v;
}

// Copies, for every outer block, row `from[i]` of `src` into row `to[i]` of `dst` (rows along
// `dim` of length `inner`); with `add`, accumulates instead.
void copy_rows(const double* src, DimView sv, double* dst, DimView dv,
               const std::vector<int64_t>& from, const std::vector<int64_t>& to, bool add) {
  for (int64_t o = 0; o < sv.outer; ++o)
    for (size_t i = 0; i < from.size(); ++i) {
      const double* s = src + (o * sv.size + from[i]) * sv.inner;
      double* d = dst + (o * dv.size + to[i]) * dv.inner;
      if (add)
        for (int64_t k = 0; k < sv.inner; ++k) d[k] += s[k];
      else
        std::memcpy(d, s, static_cast<size_t>(sv.inner) * sizeof(double));
    }
}

std::vector<int64_t> iota(int64_t n, int64_t start = 0, int64_t step = 1) {
  std::vector<int64_t> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[static_cast<size_t>(i)] = start + i * step;
  return v;
}

int64_t rank_of(const Tensor& x) { return static_cast<int64_t>(x.shape().size()); }

}  // namespace

Tensor reshape(const Tensor& x, Shape shape) {
  // At most one -1; the other dimensions are checked (negative or overflowing) by numel.
  auto infer = std::find(shape.begin(), shape.end(), int64_t{-1});
  Shape known = shape;
  if (infer != shape.end()) known[static_cast<size_t>(infer - shape.begin())] = 1;
  const int64_t count = numel(known, "reshape");
  if (infer != shape.end() && count > 0 && x.numel() % count == 0) *infer = x.numel() / count;
  if (infer != shape.end() ? *infer < 0 || count * *infer != x.numel() : count != x.numel())
    throw ShapeError("reshape", fmt::format("cannot reshape a tensor of shape {} ({} elements) "
                                            "to {}.",
                                            format_shape(x.shape()), x.numel(), format_shape(shape)),
                     "shape", {x.shape(), shape});
  if (shape == x.shape()) return x;
  Tensor out = Tensor::alias(x, std::move(shape));
  return record("reshape", {x}, out,
                [from = x.shape()](const Tensor& g, Needs) { return Grads{reshape(g, from)}; });
}

Tensor transpose(const Tensor& x) {
  const Shape& s = x.shape();
  if (s.size() < 2)
    throw ShapeError("transpose", fmt::format("needs at least 2 dimensions, got shape {}.",
                                              format_shape(s)),
                     "x", {s});
  const int64_t m = s[s.size() - 2], n = s[s.size() - 1], batch = x.numel() / std::max<int64_t>(m * n, 1);
  Shape t = s;
  std::swap(t[t.size() - 2], t[t.size() - 1]);
  Tensor out = Tensor::empty(t);
  const double* in = x.data().data();
  double* o = out.mutable_data().data();
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) o[b * m * n + j * m + i] = in[b * m * n + i * n + j];
  return record("transpose", {x}, out, [](const Tensor& g, Needs) { return Grads{transpose(g)}; });
}

Tensor unsqueeze(const Tensor& x, int64_t dim) {
  const int64_t d = normalize_dim(dim, rank_of(x) + 1, "unsqueeze");
  Shape s = x.shape();
  s.insert(s.begin() + d, 1);
  return reshape(x, s);
}

Tensor squeeze(const Tensor& x, int64_t dim) {
  const int64_t d = normalize_dim(dim, rank_of(x), "squeeze");
  Shape s = x.shape();
  if (s[static_cast<size_t>(d)] != 1)
    throw ShapeError("squeeze", fmt::format("dimension {} of shape {} has size {}, not 1.", dim,
                                            format_shape(s), s[static_cast<size_t>(d)]),
                     "x", {s});
  s.erase(s.begin() + d);
  return reshape(x, s);
}

Tensor slice(const Tensor& x, int64_t dim, int64_t start, int64_t stop, int64_t step) {
  const int64_t d = normalize_dim(dim, rank_of(x), "slice");
  const int64_t n = x.shape()[static_cast<size_t>(d)];
  if (step <= 0)
    throw ShapeError("slice", fmt::format("step must be positive, got {}.", step), "step");
  if (start < 0) start += n;
  if (stop < 0) stop += n;
  start = std::clamp<int64_t>(start, 0, n);
  stop = std::clamp<int64_t>(stop, start, n);
  const int64_t count = (stop - start + step - 1) / step;
  Shape s = x.shape();
  s[static_cast<size_t>(d)] = count;
  if (s == x.shape()) return x;
  Tensor out = Tensor::empty(s);
  copy_rows(x.data().data(), view_at(x.shape(), d), out.mutable_data().data(), view_at(s, d),
            iota(count, start, step), iota(count), false);
  return record("slice", {x}, out, [from = x.shape(), d, start, step](const Tensor& g, Needs) {
    return Grads{slice_scatter(g, from, d, start, step)};
  });
}

Tensor slice_scatter(const Tensor& x, const Shape& shape, int64_t dim, int64_t start,
                     int64_t step) {
  const int64_t count = x.shape()[static_cast<size_t>(dim)];
  Tensor out = Tensor::zeros(shape);
  copy_rows(x.data().data(), view_at(x.shape(), dim), out.mutable_data().data(),
            view_at(shape, dim), iota(count), iota(count, start, step), false);
  return record("slice_scatter", {x}, out, [dim, start, step, count](const Tensor& g, Needs) {
    return Grads{slice(g, dim, start, start + (count - 1) * step + 1, step)};
  });
}

Tensor select(const Tensor& x, int64_t dim, int64_t index) {
  const int64_t d = normalize_dim(dim, rank_of(x), "select");
  const int64_t n = x.shape()[static_cast<size_t>(d)];
  if (index < -n || index >= n)
    throw ShapeError("select", fmt::format("index {} is out of range for dimension {} of size {}.",
                                           index, dim, n),
                     "index", {x.shape()});
  if (index < 0) index += n;
  return squeeze(slice(x, d, index, index + 1), d);
}

Tensor index_select(const Tensor& x, int64_t dim, const std::vector<int64_t>& indices) {
  const int64_t d = normalize_dim(dim, rank_of(x), "index_select");
  const int64_t n = x.shape()[static_cast<size_t>(d)];
  for (int64_t i : indices)
    if (i < 0 || i >= n)
      throw ShapeError("index_select",
                       fmt::format("index {} is out of range for dimension {} of size {}.", i, dim,
                                   n),
                       "indices", {x.shape()});
  Shape s = x.shape();
  s[static_cast<size_t>(d)] = static_cast<int64_t>(indices.size());
  Tensor out = Tensor::empty(s);
  copy_rows(x.data().data(), view_at(x.shape(), d), out.mutable_data().data(), view_at(s, d),
            indices, iota(static_cast<int64_t>(indices.size())), false);
  return record("index_select", {x}, out, [from = x.shape(), d, indices](const Tensor& g, Needs) {
    return Grads{index_add(g, from, d, indices)};
  });
}

Tensor index_add(const Tensor& x, const Shape& shape, int64_t dim,
                 const std::vector<int64_t>& indices) {
  Tensor out = Tensor::zeros(shape);
  copy_rows(x.data().data(), view_at(x.shape(), dim), out.mutable_data().data(),
            view_at(shape, dim), iota(static_cast<int64_t>(indices.size())), indices, true);
  return record("index_add", {x}, out, [dim, indices](const Tensor& g, Needs) {
    return Grads{index_select(g, dim, indices)};
  });
}

Tensor concat(const std::vector<Tensor>& xs, int64_t dim) {
  if (xs.empty()) throw ShapeError("concat", "needs at least one tensor.");
  const int64_t d = normalize_dim(dim, rank_of(xs[0]), "concat");
  Shape s = xs[0].shape();
  s[static_cast<size_t>(d)] = 0;
  for (size_t i = 0; i < xs.size(); ++i) {
    Shape a = xs[i].shape(), b = xs[0].shape();
    if (a.size() == b.size()) a[static_cast<size_t>(d)] = b[static_cast<size_t>(d)];
    if (a != b)
      throw ShapeError("concat", fmt::format("tensor {} has shape {}, which does not match {} "
                                             "outside dimension {}.",
                                             i, format_shape(xs[i].shape()),
                                             format_shape(xs[0].shape()), dim),
                       "xs", {xs[0].shape(), xs[i].shape()});
    int64_t& total = s[static_cast<size_t>(d)];
    if (__builtin_add_overflow(total, xs[i].shape()[static_cast<size_t>(d)], &total))
      throw ShapeError("concat", fmt::format("the sizes along dimension {} add up to more than a "
                                             "64-bit count can hold.", dim),
                       "xs", {xs[0].shape(), xs[i].shape()});
  }
  Tensor out = Tensor::empty(s, "concat");
  std::vector<int64_t> starts;
  int64_t offset = 0;
  for (const Tensor& x : xs) {
    const int64_t n = x.shape()[static_cast<size_t>(d)];
    copy_rows(x.data().data(), view_at(x.shape(), d), out.mutable_data().data(), view_at(s, d),
              iota(n), iota(n, offset), false);
    starts.push_back(offset);
    offset += n;
  }
  starts.push_back(offset);
  return record("concat", std::vector<Tensor>(xs), out, [d, starts](const Tensor& g, Needs need) {
    Grads grads(starts.size() - 1);
    for (size_t i = 0; i + 1 < starts.size(); ++i)
      if (need[i]) grads[i] = slice(g, d, starts[i], starts[i + 1]);
    return grads;
  });
}

Tensor stack(const std::vector<Tensor>& xs, int64_t dim) {
  if (xs.empty()) throw ShapeError("stack", "needs at least one tensor.");
  const int64_t d = normalize_dim(dim, rank_of(xs[0]) + 1, "stack");
  std::vector<Tensor> parts;
  parts.reserve(xs.size());
  for (const Tensor& x : xs) {
    if (x.shape() != xs[0].shape())
      throw ShapeError("stack", fmt::format("all tensors must have one shape; got {} and {}.",
                                            format_shape(xs[0].shape()), format_shape(x.shape())),
                       "xs", {xs[0].shape(), x.shape()});
    parts.push_back(unsqueeze(x, d));
  }
  return concat(parts, d);
}

std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t dim) {
  const int64_t d = normalize_dim(dim, rank_of(x), "split");
  int64_t total = 0;
  for (int64_t s : sizes) total += s;
  if (total != x.shape()[static_cast<size_t>(d)] ||
      std::any_of(sizes.begin(), sizes.end(), [](int64_t s) { return s < 0; }))
    throw ShapeError("split", fmt::format("sizes add up to {} but dimension {} of shape {} has "
                                          "size {}.",
                                          total, dim, format_shape(x.shape()),
                                          x.shape()[static_cast<size_t>(d)]),
                     "sizes", {x.shape()});
  std::vector<Tensor> parts;
  int64_t start = 0;
  for (int64_t s : sizes) {
    parts.push_back(slice(x, d, start, start + s));
    start += s;
  }
  return parts;
}

}  // namespace cholla
