// cholla::Tensor: a cheap-to-copy handle to float64, contiguous, row-major values with a shape.
//
// Leading dimensions are batch dimensions; for linalg ops the last two are the matrix.
// A tensor's values never change once an op has produced them (the tape relies on that);
// the one exception is `mutable_data()`, which optimisers use on parameters under NoGrad.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <vector>

#include "autodiff/errors.hpp"

namespace cholla {

class Rng;
class Tensor;
struct BackwardOptions;
class Tape;

namespace detail {
struct TensorImpl;  // internal: what a handle points at (tensor_impl.hpp)
// The engine's access to a handle's object (autodiff/ and kernels that fill values use it).
TensorImpl* impl_of(const Tensor& t) noexcept;
}  // namespace detail

class Tensor {
 public:
  // An undefined tensor (no values). `defined()` is false; most uses throw GraphError.
  Tensor() noexcept = default;
  Tensor(const Tensor& other) noexcept;
  Tensor(Tensor&& other) noexcept;
  Tensor& operator=(const Tensor& other) noexcept;
  Tensor& operator=(Tensor&& other) noexcept;
  ~Tensor();

  // Factories.
  static Tensor zeros(const Shape& shape);
  static Tensor ones(const Shape& shape);
  static Tensor full(const Shape& shape, double value);
  static Tensor scalar(double value);  // shape [] (rank 0)
  static Tensor eye(int64_t n);
  static Tensor from(const Shape& shape, std::vector<double> values);
  static Tensor randn(const Shape& shape, Rng& rng);
  static Tensor uniform(const Shape& shape, double lo, double hi, Rng& rng);
  static Tensor arange(int64_t n);  // 0, 1, ..., n-1 as float64

  // Reading.
  bool defined() const { return bits_ != 0; }
  // A named tensor's shape by reference; a temporary's by value (the reason is data()'s below;
  // shapes of up to 5 dimensions are copied without allocating).
  const Shape& shape() const&;
  Shape shape() const&&;
  int64_t dim() const;
  int64_t size(int64_t d) const;  // negative d counts from the end
  int64_t numel() const;
  // A view of a named tensor's values; a temporary's values come back as a copy, because the
  // temporary (and, once its graph is dropped, its storage) dies at the end of the full
  // expression: `for (double v : f(x).data())` would otherwise read freed memory.
  std::span<const double> data() const&;
  std::vector<double> data() const&& { return to_vector(); }
  std::vector<double> to_vector() const { return {data().begin(), data().end()}; }
  double item() const;                            // the value of a one-element tensor
  double at(std::initializer_list<int64_t> index) const;  // one element by multi-index

  // Writing values outside the tape (optimiser updates, in-place initialisation). Never use on
  // a tensor that a recorded op still needs for its backward.
  std::span<double> mutable_data();

  // Autodiff.
  bool requires_grad() const;
  Tensor& requires_grad(bool on);  // only on leaves (tensors no op produced)
  bool is_leaf() const;
  Tensor grad() const;          // accumulated gradient of a leaf; undefined before backward
  void zero_grad();             // drops the accumulated gradient
  void set_grad(Tensor g);      // replaces it (optimisers, tests)
  Tensor detach() const;        // same values (shared storage), no history, no grad requirement
  Tensor clone() const;         // a copy of the values in new storage, no history
  void backward() const;        // scalar output: seeds 1
  void backward(const BackwardOptions& options) const;
  void backward(const Tensor& seed, const BackwardOptions& options) const;

  // Identity of the tensor object: equal for every copy of a handle, different for different
  // tensors (a shared parameter appears once in a Module or an optimiser). Not an address to use.
  const void* id() const noexcept { return reinterpret_cast<const void*>(bits_ & ~kTapeTag); }

  // Engine access (ops use these; users need not).
  // A new tensor with no history. `values.size()` must equal numel(shape).
  static Tensor make(const Shape& shape, std::vector<double> values);
  // Uninitialised storage of the given shape, for kernels to fill (its values are unspecified:
  // write every element). `op` names the caller in a ShapeError (bad shape) or ResourceError
  // (more memory than the machine has).
  static Tensor empty(const Shape& shape, const char* op = "Tensor::empty");
  // Uninitialised storage of x's shape (no shape validation: x's shape is known good).
  static Tensor empty_like(const Tensor& x);
  bool same(const Tensor& other) const { return impl() == other.impl(); }
  // A tensor of `shape` (same element count) whose values are x's, shared, no history.
  static Tensor alias(const Tensor& x, Shape shape);

 private:
  // The TensorImpl pointer; bit 0 set when the tape holds this handle (tensor_impl.hpp).
  static constexpr uintptr_t kTapeTag = 1;
  uintptr_t bits_ = 0;
  explicit Tensor(detail::TensorImpl* adopted) noexcept
      : bits_(reinterpret_cast<uintptr_t>(adopted)) {}
  detail::TensorImpl* impl() const;
  void retain() const;
  void release();
  void adopt();
  const detail::TensorImpl& checked_impl(const char* what) const;
  static Tensor empty_of_size(const Shape& shape, int64_t n, const char* op);
  [[noreturn]] static void throw_undefined(const char* what);
  friend detail::TensorImpl* detail::impl_of(const Tensor& t) noexcept;
};

// Human-readable values, e.g. "tensor([[1, 2], [3, 4]])" (elides the middle of long tensors).
std::string to_string(const Tensor& t);

}  // namespace cholla

#include "autodiff/tensor_impl.hpp"
