"""ExampleStreams: bulk per-slot example draws equal successive ``rng.integers(n)`` calls, generator states included."""

from __future__ import annotations

import numpy as np
import pytest

from lmgym.task import ExampleStreams

# Ranges that exercise every branch: nothing drawn (1), Lemire with rare and frequent rejection, the full
# 32-bit range (no rejection), and beyond it (NumPy's 64-bit method, drawn one slot at a time).
RANGES = [1, 2, 3, 7, 1000, 2**31 + 1, 3 * 2**30, 2**32 - 1, 2**32, 2**32 + 5]


@pytest.mark.parametrize("seed", range(6))
def test_draws_equal_scalar_integers_for_random_slots_and_ranges(seed):
    plan = np.random.default_rng(100 + seed)
    num_slots = 5
    rngs = [np.random.default_rng(seed * 10 + i) for i in range(num_slots)]
    twins = [np.random.default_rng(seed * 10 + i) for i in range(num_slots)]
    streams = ExampleStreams(rngs)
    for _ in range(400):
        slots = np.flatnonzero(plan.random(num_slots) < 0.7)
        n = int(plan.choice(RANGES)) if plan.random() < 0.3 else int(plan.integers(1, 50))
        got = streams.draw(slots, n)
        assert got.dtype == np.int64
        assert got.tolist() == [int(twins[i].integers(n)) for i in slots.tolist()], n
        if plan.random() < 0.05:  # someone else uses a generator: it is where the scalar draws leave it
            i = int(plan.integers(num_slots))
            assert streams.generator(i).random() == twins[i].random()
        if plan.random() < 0.03:  # a slot is reseeded
            i, s = int(plan.integers(num_slots)), int(plan.integers(1000))
            rngs[i], twins[i] = np.random.default_rng(s), np.random.default_rng(s)
            streams.reseeded(i)
    for i in range(num_slots):
        assert streams.generator(i).bit_generator.state == twins[i].bit_generator.state


def test_a_range_of_one_draws_nothing():
    rng, twin = np.random.default_rng(3), np.random.default_rng(3)
    streams = ExampleStreams([rng])
    for _ in range(20):
        assert streams.draw(np.array([0]), 1).tolist() == [0]
        assert streams.draw(np.array([0]), 9).tolist() == [int(twin.integers(9))]
        twin.integers(1)
    assert streams.generator(0).bit_generator.state == twin.bit_generator.state


def test_vector_env_reset_draws_match_single_envs_after_many_episodes():
    import gymnasium as gym

    import lmgym  # noqa: F401  (registers the envs)

    envs = gym.make_vec("lmgym/Copy-v0", num_envs=3, vectorization_mode="vector_entry_point")
    singles = [gym.make("lmgym/Copy-v0") for _ in range(3)]
    _, infos = envs.reset(seed=7)
    want = [s.reset(seed=7 + i)[1]["example_index"] for i, s in enumerate(singles)]
    assert infos["example_index"].tolist() == want
    for _ in range(40):  # many episode starts: the slots' blocks run out and refill
        _, infos = envs.reset()
        want = [s.reset()[1]["example_index"] for s in singles]
        assert infos["example_index"].tolist() == want
