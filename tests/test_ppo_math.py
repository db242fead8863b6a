"""PPO math against hand-computed values: GAE, whitening, rewards, each loss term, KL controllers."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from lmgym.agents.ppo.math import (
    AdaptiveKLController,
    FixedKLController,
    compute_gae,
    entropy_from_logits,
    group_center,
    group_relative_advantages,
    kl_from_logits,
    logprobs_from_logits,
    make_kl_controller,
    masked_mean,
    masked_var,
    masked_whiten,
    policy_loss,
    rloo_advantages,
    token_rewards,
    value_loss,
)


def t(rows):
    return torch.tensor(rows, dtype=torch.float32)


def test_gae_matches_hand_computation():
    # Row 0: three tokens. Row 1: two tokens, then padding whose (garbage) value must be ignored.
    rewards = t([[0.0, 0.0, 1.0], [0.0, 2.0, 0.0]])
    values = t([[0.5, 0.6, 0.7], [1.0, 0.5, 9.0]])
    mask = t([[1, 1, 1], [1, 1, 0]])
    adv, ret = compute_gae(rewards, values, mask, gamma=0.9, lam=0.8)
    # Row 0: d2 = 1 - .7 = .3; d1 = .9*.7 - .6 = .03; d0 = .9*.6 - .5 = .04; A = d + .72 A'.
    # Row 1: d1 = 2 - .5 = 1.5; d0 = .9*.5 - 1 = -.55; A0 = -.55 + .72*1.5 = .53.
    expected_adv = t([[0.21712, 0.246, 0.3], [0.53, 1.5, 0.0]])
    torch.testing.assert_close(adv, expected_adv, atol=1e-6, rtol=0)
    torch.testing.assert_close(ret, t([[0.71712, 0.846, 1.0], [1.53, 2.0, 0.0]]), atol=1e-6, rtol=0)


def test_gae_lambda_one_gamma_one_is_return_minus_value():
    rewards = t([[0.1, -0.2, 1.0]])
    values = t([[0.3, 0.2, 0.1]])
    adv, ret = compute_gae(rewards, values, torch.ones(1, 3), gamma=1.0, lam=1.0)
    torch.testing.assert_close(ret, t([[0.9, 0.8, 1.0]]))
    torch.testing.assert_close(adv, t([[0.6, 0.6, 0.9]]))


def test_masked_whiten_matches_hand_computation():
    x = t([[1, 2, 3], [4, 100, 100]])
    mask = t([[1, 1, 1], [1, 0, 0]])
    # valid entries 1..4: mean 2.5, unbiased variance (2.25 + .25 + .25 + 2.25) / 3 = 5/3
    std = math.sqrt(5 / 3)
    expected = t([[-1.5 / std, -0.5 / std, 0.5 / std], [1.5 / std, 0, 0]])
    torch.testing.assert_close(masked_whiten(x, mask), expected, atol=1e-6, rtol=0)
    assert masked_mean(x, mask).item() == pytest.approx(2.5)
    assert masked_var(x, mask).item() == pytest.approx(5 / 3)
    kept = masked_whiten(x, mask, shift_mean=False)
    torch.testing.assert_close(kept[0, 0], torch.tensor(1.0 / std - 2.5 / std + 2.5))


def test_group_center_by_hand():
    adv = t([[1, 2], [3, 9], [5, 5], [1, 1]])
    mask = t([[1, 1], [1, 0], [1, 1], [1, 1]])
    # group 1 (rows 0-1): valid 1, 2, 3 -> mean 2; group 2: 5, 5, 1, 1 -> mean 3
    torch.testing.assert_close(group_center(adv, mask, 2), t([[-1, 0], [1, 0], [2, 2], [-2, -2]]))
    torch.testing.assert_close(group_center(adv, mask, 1), adv)
    with pytest.raises(ValueError):
        group_center(adv, mask, 3)


def test_group_relative_advantages_by_hand():
    rewards = t([[0.0, 1.0], [0.5, 0.0], [0.2, 0.3], [1.0, 0.0], [0.0, 0.0], [0.0, 0.0]])
    mask = t([[1, 1], [1, 0], [1, 1], [1, 0], [1, 1], [1, 1]])
    # group 1: totals 1.0, 0.5, 0.5 -> mean 2/3, sample std sqrt(1/12); group 2: 1, 0, 0 -> mean 1/3, std sqrt(1/3)
    s1, s2 = (1 / 12) ** 0.5 + 1e-4, (1 / 3) ** 0.5 + 1e-4
    a, b, c, d = (1 - 2 / 3) / s1, (0.5 - 2 / 3) / s1, (1 - 1 / 3) / s2, (0 - 1 / 3) / s2
    expected = t([[a, a], [b, 0.0], [b, b], [c, 0.0], [d, d], [d, d]])
    torch.testing.assert_close(group_relative_advantages(rewards, mask, 3), expected)
    tied = group_relative_advantages(t([[1.0, 0.0], [0.0, 1.0]]), torch.ones(2, 2), 2)
    assert tied.abs().max().item() == 0.0
    with pytest.raises(ValueError, match="at least 2"):
        group_relative_advantages(rewards, mask, 1)
    with pytest.raises(ValueError, match="whole number"):
        group_relative_advantages(rewards, mask, 4)


def test_rloo_advantages_by_hand():
    rewards = t([[0.0, 1.0], [0.5, 0.0], [0.2, 0.3], [1.0, 0.0], [0.0, 0.0], [0.0, 0.0]])
    mask = t([[1, 1], [1, 0], [1, 1], [1, 0], [1, 1], [1, 1]])
    # group 1 (rows 0-2): totals 1.0, 0.5, 0.5 -> 1.0 - 0.5, 0.5 - 0.75, 0.5 - 0.75, on each written token
    # group 2 (rows 3-5): totals 1.0, 0.0, 0.0 -> 1.0, -0.5, -0.5
    expected = t([[0.5, 0.5], [-0.25, 0.0], [-0.25, -0.25], [1.0, 0.0], [-0.5, -0.5], [-0.5, -0.5]])
    torch.testing.assert_close(rloo_advantages(rewards, mask, 3), expected)
    tied = rloo_advantages(t([[1.0, 0.0], [0.0, 1.0]]), torch.ones(2, 2), 2)  # same totals: no signal at all
    assert tied.abs().max().item() == 0.0
    with pytest.raises(ValueError, match="at least 2"):
        rloo_advantages(rewards, mask, 1)
    with pytest.raises(ValueError, match="whole number"):
        rloo_advantages(rewards, mask, 4)


def test_token_rewards_put_score_on_last_token_and_kl_everywhere():
    scores = t([1.0, 0.5])
    logprobs = t([[-1.0, -2.0, -1.0], [-0.5, -0.5, -9.0]])
    ref = t([[-1.5, -1.0, -1.0], [-1.0, -0.5, -1.0]])
    mask = t([[1, 1, 1], [1, 1, 0]])
    rewards, kl = token_rewards(scores, logprobs, ref, mask, kl_coef=0.1)
    torch.testing.assert_close(kl, t([[0.5, -1.0, 0.0], [0.5, 0.0, 0.0]]))
    torch.testing.assert_close(rewards, t([[-0.05, 0.1, 1.0], [-0.05, 0.5, 0.0]]))


def test_token_rewards_accept_per_token_scores():
    dense = t([[0.2, 0.3, 0.5], [1.0, -0.5, 0.0]])
    zeros = torch.zeros(2, 3)
    mask = t([[1, 1, 1], [1, 1, 0]])
    rewards, _ = token_rewards(dense, zeros, zeros, mask, kl_coef=0.1)
    torch.testing.assert_close(rewards, dense * mask)


def test_policy_loss_clipping_by_hand():
    old = torch.zeros(1, 3)
    new = torch.log(t([[1.5, 0.5, 1.1]]))
    adv = t([[1.0, 1.0, -1.0]])
    out = policy_loss(new, old, adv, torch.ones(1, 3), clip_range=0.2)
    # token 0: max(-1.5, -1.2) = -1.2 (clipped); token 1: max(-.5, -.8) = -.5; token 2: max(1.1, 1.1) = 1.1
    assert out.loss.item() == pytest.approx((-1.2 - 0.5 + 1.1) / 3, abs=1e-6)
    assert out.clipfrac.item() == pytest.approx(1 / 3)
    approx = [(r - 1) - math.log(r) for r in (1.5, 0.5, 1.1)]
    assert out.approx_kl.item() == pytest.approx(sum(approx) / 3, abs=1e-6)


def test_policy_loss_gradient_pushes_positive_advantages_up():
    new = torch.zeros(1, 2, requires_grad=True)
    out = policy_loss(new, torch.zeros(1, 2), t([[1.0, -1.0]]), torch.ones(1, 2))
    out.loss.backward()
    assert new.grad[0, 0] < 0 < new.grad[0, 1]  # descent raises token 0's log-prob, lowers token 1's


def test_value_loss_clipping_by_hand():
    values, old, returns = t([[1.0, 0.0]]), t([[0.5, 0.5]]), t([[2.0, 0.0]])
    loss, clipfrac = value_loss(values, old, returns, torch.ones(1, 2), clip_range_value=0.2)
    # token 0: max((1-2)^2, (0.7-2)^2) = 1.69; token 1: max(0, 0.3^2) = 0.09
    assert loss.item() == pytest.approx(0.5 * (1.69 + 0.09) / 2, abs=1e-6)
    assert clipfrac.item() == 1.0
    plain, _ = value_loss(values, old, returns, torch.ones(1, 2), clip_range_value=None)
    assert plain.item() == pytest.approx(0.5 * (1.0 + 0.0) / 2)


def test_entropy_logprobs_and_kl_from_logits():
    uniform = torch.zeros(2, 4)
    torch.testing.assert_close(entropy_from_logits(uniform), torch.full((2,), math.log(4)))
    peaked = t([[0.0, math.log(3.0)]])  # probabilities 1/4, 3/4
    assert logprobs_from_logits(peaked, torch.tensor([1])).item() == pytest.approx(math.log(0.75))
    expected_kl = 0.25 * math.log(0.25 / 0.5) + 0.75 * math.log(0.75 / 0.5)
    assert kl_from_logits(peaked, torch.zeros(1, 2)).item() == pytest.approx(expected_kl, abs=1e-6)
    assert kl_from_logits(peaked, peaked).item() == pytest.approx(0.0, abs=1e-7)


def test_kl_from_logits_is_never_negative_from_rounding():
    # Nearly equal distributions (a LoRA policy one update away from its reference): rounding in the exact
    # sum gave about -1e-8 per sequence, and test_lora_ppo_run's `kl >= 0` then failed in some test orders.
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(1000, 10, generator=g)
    ref = logits + 1e-6 * torch.randn(1000, 10, generator=g)
    kl = kl_from_logits(logits, ref)
    assert (kl >= 0).all() and kl.max().item() < 1e-6


def test_fixed_kl_controller_never_moves():
    ctl = FixedKLController(0.2)
    ctl.update(current_kl=100.0, n_steps=10_000)
    assert ctl.value == 0.2
    assert isinstance(make_kl_controller(0.2, None), FixedKLController)


def test_adaptive_kl_controller_tracks_target():
    ctl = make_kl_controller(0.1, target_kl=6.0, horizon=10_000)
    assert isinstance(ctl, AdaptiveKLController)
    ctl.update(current_kl=12.0, n_steps=1000)  # error clipped to +0.2 -> x(1 + 0.02)
    assert ctl.value == pytest.approx(0.102)
    ctl.load_state_dict({"value": 0.1})
    ctl.update(current_kl=3.0, n_steps=1000)  # error clipped to -0.2 -> x(1 - 0.02)
    assert ctl.value == pytest.approx(0.098)
    ctl.load_state_dict({"value": 0.1})
    ctl.update(current_kl=6.6, n_steps=1000)  # error 0.1 -> x(1 + 0.01)
    assert ctl.value == pytest.approx(0.101)
    assert ctl.state_dict() == {"value": pytest.approx(0.101)}
    with pytest.raises(ValueError):
        AdaptiveKLController(0.1, target=0.0, horizon=1.0)
