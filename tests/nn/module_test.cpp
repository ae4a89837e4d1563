// nn::Module: parameter registration, dotted names, train/eval, printing, misuse errors.
#include "../autodiff/helpers.hpp"

using namespace cholla;

namespace {

struct Block : nn::Module {
  nn::Linear inner{2, 3};
  Tensor scale = register_parameter("scale", Tensor::ones({3}));
  Block() { register_module("inner", inner); }
};

struct Net : nn::Module {
  nn::Linear first{4, 2};
  Block block;
  nn::Linear last{3, 1, {.bias = false}};
  Net() {
    register_module("first", first);
    register_module("block", block);
    register_module("last", last);
  }
};

std::vector<std::string> names_of(const nn::Module& m) {
  std::vector<std::string> out;
  for (auto& [name, t] : m.named_parameters()) out.push_back(name);
  return out;
}

}  // namespace

TEST_CASE("module: dotted names in registration order, own parameters first") {
  Net net;
  CHECK(names_of(net) == std::vector<std::string>{"first.weight", "first.bias", "block.scale",
                                                  "block.inner.weight", "block.inner.bias",
                                                  "last.weight"});
  const auto params = net.parameters();
  REQUIRE(params.size() == 6);
  CHECK(params[0].same(net.first.weight));
  CHECK(params[3].same(net.block.inner.weight));
  for (const Tensor& p : params) {
    CHECK(p.is_leaf());
    CHECK(p.requires_grad());
  }
  CHECK(net.first.weight.shape() == Shape{2, 4});
  CHECK(net.first.bias.shape() == Shape{2});
  CHECK_FALSE(net.last.bias.defined());
}

TEST_CASE("module: a tensor registered twice is listed once, under its first name") {
  struct Tied : nn::Module {
    nn::Linear a{2, 2}, b{2, 2};
    Tied() {
      register_module("a", a);
      register_module("b", b);
    }
  } tied;
  // Share the weight the way a user would: register a's weight again inside a wrapper.
  struct Wrapper : nn::Module {
    Tensor w;
    explicit Wrapper(const Tensor& shared) { w = register_parameter("w", shared); }
  } wrapper(tied.a.weight);
  struct Both : nn::Module {
    Both(nn::Module& x, nn::Module& y) {
      register_module("x", x);
      register_module("y", y);
    }
  } both(tied, wrapper);
  CHECK(names_of(both) ==
        std::vector<std::string>{"x.a.weight", "x.a.bias", "x.b.weight", "x.b.bias"});
}

TEST_CASE("module: train and eval reach every sub-module") {
  Net net;
  CHECK(net.is_training());
  net.eval();
  CHECK_FALSE(net.is_training());
  CHECK_FALSE(net.block.is_training());
  CHECK_FALSE(net.block.inner.is_training());
  net.train();
  CHECK(net.block.inner.is_training());
}

TEST_CASE("module: zero_grad drops every gradient") {
  Net net;
  Tensor loss = sum(net.last(net.block.inner(net.first(Tensor::ones({5, 4})))));
  loss.backward();
  for (const Tensor& p : net.parameters())
    if (!p.same(net.block.scale)) CHECK(p.grad().defined());
  net.zero_grad();
  for (const Tensor& p : net.parameters()) CHECK_FALSE(p.grad().defined());
}

TEST_CASE("module: printing shows the tree") {
  Net net;
  const std::string expected =
      "Net(\n"
      "  (first): Linear(in=4, out=2, bias=true)\n"
      "  (block): Block(\n"
      "    (scale): Tensor[3]\n"
      "    (inner): Linear(in=2, out=3, bias=true)\n"
      "  )\n"
      "  (last): Linear(in=3, out=1, bias=false)\n"
      ")";
  CHECK(nn::to_string(net) == expected);
  nn::Sequential seq;
  seq.emplace<nn::Linear>(1, 2);
  seq.emplace<nn::ELU>(0.5);
  CHECK(nn::to_string(seq) == "Sequential(\n  (0): Linear(in=1, out=2, bias=true)\n"
                              "  (1): ELU(alpha=0.5)\n)");
}

TEST_CASE("module: misuse is a typed error") {
  struct Bad : nn::Module {
    nn::Linear a{1, 1};
    void add(const std::string& name) { register_module(name, a); }
    void param(const std::string& name, Tensor t) { register_parameter(name, std::move(t)); }
  } bad;
  bad.add("a");
  CHECK_THROWS_WITH_AS(bad.add("a"), doctest::Contains("already registered"), DomainError);
  CHECK_THROWS_WITH_AS(bad.add("x.y"), doctest::Contains("no '.'"), DomainError);
  CHECK_THROWS_AS(bad.param("", Tensor::ones({1})), DomainError);
  CHECK_THROWS_AS(bad.param("u", Tensor()), DomainError);
  Tensor leaf = Tensor::ones({2}).requires_grad(true);
  CHECK_THROWS_WITH_AS(bad.param("v", leaf * 2.0), doctest::Contains("detach"), GraphError);
}
