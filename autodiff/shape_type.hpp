// cholla::Shape: the dimensions of a tensor, outermost first.
//
// A vector of int64_t with the interface of std::vector (iterators are pointers), that keeps
// up to kInline dimensions in the object itself. Shapes are built, copied and compared by
// nearly every op (broadcasting, batch plans, reshapes, error checks); with std::vector each
// of those was a heap allocation, ~20 of the ~25 allocations of one small MVN NLL call. Every
// real tensor's shape (batch dimensions and a matrix) fits inline; longer ones spill to the
// heap and behave the same.
#pragma once

#include <algorithm>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <iterator>
#include <vector>

namespace cholla {

class Shape {
 public:
  using value_type = int64_t;
  using size_type = std::size_t;
  using difference_type = std::ptrdiff_t;
  using reference = int64_t&;
  using const_reference = const int64_t&;
  using pointer = int64_t*;
  using const_pointer = const int64_t*;
  using iterator = int64_t*;
  using const_iterator = const int64_t*;
  using reverse_iterator = std::reverse_iterator<iterator>;
  using const_reverse_iterator = std::reverse_iterator<const_iterator>;

  static constexpr size_type kInline = 5;

  Shape() noexcept = default;
  explicit Shape(size_type n, int64_t value = 0) { assign(n, value); }
  Shape(std::initializer_list<int64_t> dims) { assign(dims.begin(), dims.end()); }
  template <std::input_iterator It>
  Shape(It first, It last) {
    assign(first, last);
  }
  Shape(const std::vector<int64_t>& dims) { assign(dims.begin(), dims.end()); }  // NOLINT
  Shape(const Shape& other) { copy_from(other); }
  Shape(Shape&& other) noexcept { steal(other); }
  Shape& operator=(const Shape& other) {
    if (this != &other) copy_from(other);
    return *this;
  }
  Shape& operator=(Shape&& other) noexcept {
    if (this != &other) {
      free_heap();
      steal(other);
    }
    return *this;
  }
  Shape& operator=(std::initializer_list<int64_t> dims) {
    assign(dims.begin(), dims.end());
    return *this;
  }
  ~Shape() { free_heap(); }

  // The same dimensions as a std::vector (for code that stores them as one).
  operator std::vector<int64_t>() const { return {begin(), end()}; }  // NOLINT

  size_type size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }
  size_type capacity() const noexcept { return capacity_; }
  int64_t* data() noexcept { return data_; }
  const int64_t* data() const noexcept { return data_; }
  iterator begin() noexcept { return data_; }
  iterator end() noexcept { return data_ + size_; }
  const_iterator begin() const noexcept { return data_; }
  const_iterator end() const noexcept { return data_ + size_; }
  const_iterator cbegin() const noexcept { return begin(); }
  const_iterator cend() const noexcept { return end(); }
  reverse_iterator rbegin() noexcept { return reverse_iterator(end()); }
  reverse_iterator rend() noexcept { return reverse_iterator(begin()); }
  const_reverse_iterator rbegin() const noexcept { return const_reverse_iterator(end()); }
  const_reverse_iterator rend() const noexcept { return const_reverse_iterator(begin()); }
  int64_t& operator[](size_type i) noexcept { return data_[i]; }
  const int64_t& operator[](size_type i) const noexcept { return data_[i]; }
  int64_t& front() noexcept { return data_[0]; }
  const int64_t& front() const noexcept { return data_[0]; }
  int64_t& back() noexcept { return data_[size_ - 1]; }
  const int64_t& back() const noexcept { return data_[size_ - 1]; }

  void clear() noexcept { size_ = 0; }
  void reserve(size_type n) {
    if (n > capacity_) grow(n);
  }
  void resize(size_type n, int64_t value = 0) {
    reserve(n);
    for (size_type i = size_; i < n; ++i) data_[i] = value;
    size_ = static_cast<uint32_t>(n);
  }
  void push_back(int64_t value) {
    if (size_ == capacity_) grow(size_ + 1);
    data_[size_++] = value;
  }
  void pop_back() noexcept { --size_; }

  void assign(size_type n, int64_t value) {
    clear();
    resize(n, value);
  }
  template <std::input_iterator It>
  void assign(It first, It last) {
    if constexpr (std::forward_iterator<It>) {
      const auto n = static_cast<size_type>(std::distance(first, last));
      // Elements of this very shape (s.assign(s.begin() + 1, s.end())) are copied before the
      // storage can change: it changes only when growing, and a sub-range never needs to grow.
      reserve(n);
      std::copy(first, last, data_);  // copy, not copy_n: the ranges may overlap forwards
      size_ = static_cast<uint32_t>(n);
    } else {
      clear();
      for (; first != last; ++first) push_back(*first);
    }
  }

  iterator insert(const_iterator pos, int64_t value) { return insert(pos, size_type{1}, value); }
  iterator insert(const_iterator pos, size_type n, int64_t value) {
    const size_type at = open_gap(pos, n);
    std::fill_n(data_ + at, n, value);
    return data_ + at;
  }
  template <std::forward_iterator It>
  iterator insert(const_iterator pos, It first, It last) {
    const Shape copy(first, last);  // the range may be this shape's own elements
    const size_type at = open_gap(pos, copy.size());
    std::copy(copy.begin(), copy.end(), data_ + at);
    return data_ + at;
  }
  iterator insert(const_iterator pos, std::initializer_list<int64_t> dims) {
    return insert(pos, dims.begin(), dims.end());
  }
  iterator erase(const_iterator pos) { return erase(pos, pos + 1); }
  iterator erase(const_iterator first, const_iterator last) {
    const auto at = first - data_;
    std::copy(last, const_iterator(end()), data_ + at);
    size_ -= static_cast<uint32_t>(last - first);
    return data_ + at;
  }

  friend bool operator==(const Shape& a, const Shape& b) noexcept {
    if (a.size_ != b.size_) return false;
    for (uint32_t i = 0; i < a.size_; ++i)  // a loop, not std::equal: that becomes a memcmp call
      if (a.data_[i] != b.data_[i]) return false;
    return true;
  }
  friend std::strong_ordering operator<=>(const Shape& a, const Shape& b) noexcept {
    return std::lexicographical_compare_three_way(a.begin(), a.end(), b.begin(), b.end());
  }

 private:
  int64_t* data_ = inline_;  // inline_ or a heap array of capacity_ elements
  uint32_t size_ = 0;
  uint32_t capacity_ = kInline;
  int64_t inline_[kInline];

  bool on_heap() const noexcept { return data_ != inline_; }
  // Between two inline shapes, all kInline slots are copied: a fixed-size copy is a few moves,
  // where copying a count known only at run time was a memmove call (3 % of a scalar op).
  void copy_from(const Shape& other) {
    if (!on_heap() && !other.on_heap()) {
      std::memcpy(inline_, other.inline_, sizeof(inline_));
      size_ = other.size_;
    } else {
      assign(other.begin(), other.end());
    }
  }
  void free_heap() noexcept {
    if (on_heap()) delete[] data_;
  }
  void grow(size_type n) {
    const size_type capacity = std::max(n, size_type{2} * capacity_);
    auto* heap = new int64_t[capacity];
    std::copy(begin(), end(), heap);
    free_heap();
    data_ = heap;
    capacity_ = static_cast<uint32_t>(capacity);
  }
  void steal(Shape& other) noexcept {
    if (other.on_heap()) {
      data_ = other.data_;
      capacity_ = other.capacity_;
      other.data_ = other.inline_;
      other.capacity_ = kInline;
    } else {
      data_ = inline_;
      capacity_ = kInline;
      std::memcpy(inline_, other.inline_, sizeof(inline_));
    }
    size_ = other.size_;
    other.size_ = 0;
  }
  // Moves the elements from `pos` on n places up; returns pos's index.
  size_type open_gap(const_iterator pos, size_type n) {
    const auto at = static_cast<size_type>(pos - data_);
    reserve(size_ + n);
    std::copy_backward(data_ + at, data_ + size_, data_ + size_ + n);
    size_ += static_cast<uint32_t>(n);
    return at;
  }
};

}  // namespace cholla
