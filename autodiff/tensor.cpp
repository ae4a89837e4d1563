#include "autodiff/tensor.hpp"

#include <algorithm>
#include <cmath>
#include <fmt/format.h>

#include "autodiff/rng.hpp"
#include "autodiff/shape.hpp"
#include "autodiff/detail/storage.hpp"
#include "autodiff/tape.hpp"

namespace cholla {

using detail::TensorImpl;

namespace detail {

// Four cache lines (tensor_impl.hpp): a field added there should not silently make it five.
static_assert(sizeof(TensorImpl) == 256);

void destroy_impl(TensorImpl* p) {
  if (p->kind == StorageKind::Buffer) release_buffer(p->data, static_cast<size_t>(p->capacity));
  // Reset to the default state for reuse; releasing base/grad may free other tensors.
  if (p->base.defined()) p->base = Tensor();
  if (p->grad.defined()) p->grad = Tensor();
  p->tape_refs = 0;
  p->kind = StorageKind::Inline;
  p->requires_grad = false;
  p->output = 0;
  p->generation = 0;
  p->node = -1;
  p->size = 0;
  p->data = nullptr;
  p->capacity = 0;
  p->shape.clear();  // keeps its capacity: the next tensor's shape needs no allocation
  p->capture_slot = -1;
  recycle_impl(p);
}

}  // namespace detail

void Tensor::throw_undefined(const char* what) {
  throw GraphError(what, "the tensor is undefined (default-constructed, or a gradient that "
                         "was never computed).");
}

// Storage for n elements of `shape` (n already validated).
Tensor Tensor::empty_of_size(const Shape& shape, int64_t n, const char* op) {
  TensorImpl* p = detail::allocate_impl();
  Tensor t(p);  // owns p from here on, also if the buffer allocation throws
  p->size = n;
  if (n <= detail::kInlineValues) {
    p->data = p->inline_values;
  } else {
    p->data = detail::allocate_buffer(static_cast<size_t>(n), shape, op);
    p->kind = detail::StorageKind::Buffer;
    p->capacity = n;
  }
  p->shape = shape;
  return t;
}

Tensor Tensor::empty(const Shape& shape, const char* op) {
  return empty_of_size(shape, cholla::numel(shape, op), op);
}

Tensor Tensor::empty_like(const Tensor& x) {
  const TensorImpl& src = x.checked_impl("empty_like");
  return empty_of_size(src.shape, src.size, "empty_like");
}

Tensor Tensor::alias(const Tensor& x, Shape shape) {
  const TensorImpl& src = x.checked_impl("alias");
  TensorImpl* p = detail::allocate_impl();
  Tensor t(p);
  p->kind = detail::StorageKind::Alias;
  // The owner of the values, held as an internal handle: sharing values must not count as
  // holding the owner's history (else a reshape captured by a backward closure would keep
  // its tape alive forever; see tensor_impl.hpp).
  p->base = src.kind == detail::StorageKind::Alias ? src.base : x;
  p->base.adopt();
  p->data = src.data;
  p->size = src.size;
  p->shape = std::move(shape);
  return t;
}

Tensor Tensor::make(const Shape& shape, std::vector<double> values) {
  if (static_cast<int64_t>(values.size()) != cholla::numel(shape, "Tensor::from"))
    throw ShapeError("Tensor::from",
                     fmt::format("{} values given for shape {}, which holds {}.", values.size(),
                                 format_shape(shape), cholla::numel(shape)),
                     "values", {shape});
  Tensor t = empty(shape, "Tensor::from");
  std::copy(values.begin(), values.end(), t.impl()->data);
  return t;
}

namespace {

Tensor filled(const Shape& shape, double value, const char* op) {
  Tensor t = Tensor::empty(shape, op);
  std::fill(t.mutable_data().begin(), t.mutable_data().end(), value);
  return t;
}

}  // namespace

Tensor Tensor::full(const Shape& shape, double value) { return filled(shape, value, "full"); }
Tensor Tensor::zeros(const Shape& shape) { return filled(shape, 0.0, "zeros"); }
Tensor Tensor::ones(const Shape& shape) { return filled(shape, 1.0, "ones"); }
Tensor Tensor::scalar(double value) { return filled({}, value, "scalar"); }
Tensor Tensor::from(const Shape& shape, std::vector<double> values) {
  return make(shape, std::move(values));
}

Tensor Tensor::eye(int64_t n) {
  Tensor t = empty({n, n}, "eye");
  std::fill_n(t.impl()->data, t.impl()->size, 0.0);
  for (int64_t i = 0; i < n; ++i) t.impl()->data[static_cast<size_t>(i * n + i)] = 1.0;
  return t;
}

Tensor Tensor::arange(int64_t n) {
  Tensor t = empty({n}, "arange");
  for (int64_t i = 0; i < n; ++i) t.impl()->data[static_cast<size_t>(i)] = static_cast<double>(i);
  return t;
}

Tensor Tensor::randn(const Shape& shape, Rng& rng) {
  Tensor t = empty(shape, "randn");
  for (double& v : t.mutable_data()) v = rng.normal();
  return t;
}

Tensor Tensor::uniform(const Shape& shape, double lo, double hi, Rng& rng) {
  Tensor t = empty(shape, "uniform");
  for (double& v : t.mutable_data()) v = rng.uniform(lo, hi);
  return t;
}

int64_t Tensor::size(int64_t d) const {
  return shape()[static_cast<size_t>(normalize_dim(d, dim(), "size"))];
}

double Tensor::item() const {
  if (numel() != 1)
    throw ShapeError("item",
                     fmt::format("the tensor has shape {} ({} elements); item() needs exactly one.",
                                 format_shape(shape()), numel()),
                     "", {shape()});
  return impl()->data[0];
}

double Tensor::at(std::initializer_list<int64_t> index) const {
  const Shape& s = shape();
  if (index.size() != s.size())
    throw ShapeError("at", fmt::format("{} indices given for a tensor of shape {}.", index.size(),
                                       format_shape(s)),
                     "", {s});
  int64_t flat = 0;
  size_t d = 0;
  for (int64_t i : index) {
    if (i < 0 || i >= s[d])
      throw ShapeError("at", fmt::format("index {} is out of range for dimension {} of shape {}.",
                                         i, d, format_shape(s)),
                       "", {s});
    flat = flat * s[d] + i;
    ++d;
  }
  return impl()->data[static_cast<size_t>(flat)];
}

Tensor& Tensor::requires_grad(bool on) {
  const TensorImpl& t = checked_impl("requires_grad");
  if (t.generation != 0)
    throw GraphError("requires_grad",
                     "only leaves (tensors no op produced) can be marked; call detach() first "
                     "to make a leaf with the same values.");
  impl()->requires_grad = on;
  return *this;
}

Tensor Tensor::grad() const { return checked_impl("grad").grad; }
void Tensor::zero_grad() { checked_impl("zero_grad"), impl()->grad = Tensor(); }

void Tensor::set_grad(Tensor g) {
  checked_impl("set_grad");
  if (g.defined() && g.shape() != shape())
    throw ShapeError("set_grad", fmt::format("gradient of shape {} for a tensor of shape {}.",
                                             format_shape(g.shape()), format_shape(shape())),
                     "", {g.shape(), shape()});
  impl()->grad = std::move(g);
}

Tensor Tensor::detach() const { return alias(*this, checked_impl("detach").shape); }

Tensor Tensor::clone() const {
  const TensorImpl& t = checked_impl("clone");
  Tensor out = empty(t.shape, "clone");
  std::copy_n(t.data, t.size, out.impl()->data);
  return out;
}

std::string to_string(const Tensor& t) {
  if (!t.defined()) return "tensor(undefined)";
  const Shape& s = t.shape();
  auto values = t.data();
  std::string out = "tensor(";
  // Brackets open and close where the row-major index crosses a block of each dimension.
  std::vector<int64_t> block(s.size());
  int64_t size = 1;
  for (size_t d = s.size(); d-- > 0;) block[d] = size *= s[d];
  const int64_t n = t.numel();
  const int64_t limit = 64;
  for (int64_t i = 0; i < n; ++i) {
    if (n > limit && i == limit / 2) {
      out += "..., ";
      i = n - limit / 2;
    }
    for (size_t d = 0; d < s.size(); ++d)
      if (i % block[d] == 0) out += "[";
    out += fmt::format("{:.6g}", values[static_cast<size_t>(i)]);
    for (size_t d = 0; d < s.size(); ++d)
      if ((i + 1) % block[d] == 0) out += "]";
    if (i + 1 < n) out += ", ";
  }
  return out + fmt::format(", shape={})", format_shape(s));
}

}  // namespace cholla
