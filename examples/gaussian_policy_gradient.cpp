// Seed 4: "a differentiable multivariate Gaussian log-density for policy-gradient RL".
//
// REINFORCE with a Gaussian policy on a 2-D point mass: the state s is a position, the action
// a a velocity, s' = s + 0.5 a, and each step pays -|s'|^2 - 0.01 |a|^2 (reach the origin, do
// not thrash). The policy is N(K s + b, Sigma) with K, b and the covariance Sigma itself as
// free parameters: Sigma is a plain symmetric matrix, so the gradient flows through potrf,
// trsm and sumlogdiag, and the Jitter policy keeps training alive if an update ever makes
// Sigma indefinite (its report says when).
//
// The end of the program writes the log-density by hand from potrf, trsm and sumlogdiag and
// checks that value and gradient agree with MultivariateNormal::log_prob.
#include <cmath>
#include <fmt/core.h>

#include <cholla.hpp>

#include "common/cli.hpp"

using namespace cholla;

namespace {

constexpr int kSteps = 8;
constexpr double kEntropyBonus = 0.2;

struct Policy {
  Tensor K = Tensor::zeros({2, 2}).requires_grad(true);
  Tensor b = Tensor::zeros({2}).requires_grad(true);
  Tensor Sigma = Tensor::from({2, 2}, {0.5, 0.0, 0.0, 0.5}).requires_grad(true);

  dist::MultivariateNormal at(const Tensor& s) const {
    Tensor mean = linalg::gemm2(s, K, {.transpose_b = true}) + b;
    return dist::MultivariateNormal::from_covariance(mean, Sigma, {.on_failure = dist::Jitter{}});
  }
};

struct Rollout {
  Tensor loss;           // REINFORCE surrogate: -mean(log pi(a|s) * advantage)
  double mean_return;    // average total reward per episode
  int64_t jittered = 0;  // steps at which Sigma needed jitter
};

Rollout rollout(const Policy& policy, int64_t episodes, Rng& rng) {
  Tensor s = Tensor::uniform({episodes, 2}, -2.0, 2.0, rng);
  std::vector<Tensor> log_probs, rewards;
  Rollout out;
  Tensor entropy;
  for (int t = 0; t < kSteps; ++t) {
    auto pi = policy.at(s);
    if (t == 0) entropy = pi.entropy();
    out.jittered += pi.report().ok() ? 0 : 1;
    Tensor a = reshape(pi.sample(rng, 1), {episodes, 2});
    log_probs.push_back(pi.log_prob(a));
    NoGrad guard;
    s = s + 0.5 * a;
    rewards.push_back(-sum(square(s), {1}) - 0.01 * sum(square(a), {1}));
  }
  // Rewards-to-go, a per-step baseline, and normalised advantages (all constants).
  NoGrad guard;
  Tensor R = stack(rewards, 1);  // [episodes, steps]
  std::vector<Tensor> to_go(kSteps);
  Tensor acc = Tensor::zeros({episodes});
  for (int t = kSteps - 1; t >= 0; --t) to_go[static_cast<size_t>(t)] = acc = acc + select(R, 1, t);
  Tensor G = stack(to_go, 1);
  Tensor adv = G - mean(G, {0}, true);
  adv = adv / (sqrt(mean(square(adv))) + 1e-8);
  out.mean_return = mean(sum(R, {1})).item();
  EnableGrad on;
  // The entropy bonus is the usual guard against a policy collapsing to a point: its gradient
  // 1/2 Sigma^{-1} grows as Sigma shrinks, a barrier that keeps the covariance positive definite.
  out.loss = -mean(stack(log_probs, 1) * adv) - kEntropyBonus * mean(entropy);
  return out;
}

// log N(a; mean, Sigma) written with the linalg primitives (docs/linalg.md §8.1).
Tensor handwritten_log_prob(const Tensor& mean, const Tensor& Sigma, const Tensor& a) {
  Tensor L = linalg::potrf(Sigma);
  Tensor Z = linalg::trsm(L, a - mean, {.transpose = true, .rightside = true});  // rows L^{-1}(a - mean)
  return -0.5 * sum(square(Z), {1}) - linalg::sumlogdiag(L) - std::log(2 * M_PI);
}

}  // namespace

int run(int argc, char** argv);

int main(int argc, char** argv) { return examples::run_main(argc, argv, run); }

int run(int argc, char** argv) {
  const auto cli = examples::parse_cli(
      argc, argv,
      "gaussian_policy_gradient: REINFORCE with a Gaussian policy N(K s + b, Sigma) on a 2-D point "
      "mass,\nSigma a free covariance matrix (gradient through potrf).\n\n"
      "--check passes when the average return of the trained policy is at least 3x closer to 0\n"
      "than the untrained one's, and the hand-written log-density (potrf, trsm, sumlogdiag)\n"
      "agrees with MultivariateNormal::log_prob to 1e-10 in value and gradient.",
      4);
  Rng rng(cli.seed);
  Policy policy;
  // A smaller step for the covariance: REINFORCE pushes the variance down hard once the mean
  // is good, and a covariance parameter cannot take big steps and stay positive definite.
  optim::Adam opt({{{policy.K, policy.b}, {.lr = 0.05}}, {{policy.Sigma}, {.lr = 0.002}}});
  const int iterations = cli.quick ? 60 : 300;
  const int64_t episodes = cli.quick ? 128 : 512;
  double first = 0.0, last = 0.0;
  int64_t jittered = 0;
  for (int it = 0; it <= iterations; ++it) {
    Rollout r = rollout(policy, episodes, rng);
    if (it == 0) first = r.mean_return;
    last = r.mean_return;
    jittered += r.jittered;
    if (it % (iterations / 6) == 0)
      fmt::print("iteration {:4d}  average return {:9.4f}\n", it, r.mean_return);
    if (it == iterations) break;
    opt.zero_grad();
    r.loss.backward();
    opt.step();
  }
  fmt::print("\nlearned gain K = {}  (moving to the origin in one step needs -2 I)\n", to_string(policy.K));
  fmt::print("learned Sigma = {}\n", to_string(policy.Sigma));
  fmt::print("steps at which Sigma needed jitter: {}\n", jittered);

  // The same log-density by hand, value and gradient.
  Tensor s = Tensor::uniform({16, 2}, -2.0, 2.0, rng);
  auto pi = policy.at(s);
  Tensor a = reshape(pi.sample(rng, 1), {16, 2});
  Tensor mean = linalg::gemm2(s, policy.K, {.transpose_b = true}) + policy.b;
  Tensor library = pi.log_prob(a), by_hand = handwritten_log_prob(mean, policy.Sigma, a);
  // Both graphs share `mean`: keep it for the second gradient.
  auto g_library = grad({sum(library)}, {policy.K, policy.Sigma}, {.retain_graph = true});
  auto g_hand = grad({sum(by_hand)}, {policy.K, policy.Sigma});
  double worst = max(abs(library - by_hand), {0}).item();
  for (size_t i = 0; i < 2; ++i) worst = std::max(worst, max(reshape(abs(g_library[i] - g_hand[i]), {-1}), {0}).item());
  fmt::print("hand-written vs library log_prob: largest difference (values and gradients) {:.2e}\n", worst);

  const bool ok = last > first / 3.0 && worst < 1e-10;
  return examples::verdict(cli, ok, fmt::format("return {:.3f} -> {:.3f}; agreement {:.1e}", first, last, worst));
}
