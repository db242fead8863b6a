"""SB3 adapters: token extractor, native VecEnv adapter, metrics/eval callbacks, every env x algorithm."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("stable_baselines3")

import gymnasium as gym

import lmgym
from lmgym.agents.sb3 import (
    EvalScoreCallback,
    HeldOutEvaluator,
    LmgymMetricsCallback,
    LmgymVecEnv,
    TokenFeaturesExtractor,
    evaluate_policy_scores,
    make_sb3_env,
    make_sb3_model,
    unbatch_infos,
)
from lmgym.agents.sb3.model import ARCHS

COPY = {"length": 3, "vocab_size": 10}  # 1,000 sequences: 45 validation examples
TINY = {"embed_dim": 16, "n_layers": 1, "n_heads": 2}


def _obs_batch(env_id: str, n: int, steps: int, seed: int = 0, **kwargs):
    """A batch of real observations after ``steps`` random (non-EOS) tokens."""
    venv = make_sb3_env(env_id, n, seed=seed, env_kwargs=kwargs)
    obs = venv.reset()
    eos = venv.get_attr("eos_token_id")[0]
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        actions = rng.integers(5, venv.action_space.n, size=n)
        assert not (actions == eos).any()
        obs, *_ = venv.step(actions)
    space = venv.observation_space
    venv.close()
    return space, obs


@pytest.mark.parametrize("arch", ARCHS)
def test_extractor_reads_ids_as_integers_and_ignores_padding(arch):
    space, obs = _obs_batch("lmgym/Summarize-v0", 4, 2)
    torch.manual_seed(0)
    ext = TokenFeaturesExtractor(space, arch=arch, **TINY).eval()
    assert ext.token.num_embeddings == space["prompt_ids"].high.max() + 1  # an embedding, not a one-hot input
    floats = {k: torch.as_tensor(v).float() for k, v in obs.items()}  # what SB3's preprocess_obs hands over
    longs = {k: torch.as_tensor(v) for k, v in obs.items()}
    with torch.no_grad():
        feats = ext(floats)
        assert feats.shape == (4, 16)
        torch.testing.assert_close(feats, ext(longs))
        # Padding slots (left of the prompt, right of the response) do not change the features.
        noisy = {k: v.clone() for k, v in floats.items()}
        for ids, mask in (("prompt_ids", "prompt_mask"), ("response_ids", "response_mask")):
            pad = noisy[mask] == 0
            assert pad.any()
            noisy[ids][pad] = 7.0
        torch.testing.assert_close(ext(noisy), feats)
        # No leak across the batch: each row alone gives its batched features.
        single = ext({k: v[1:2] for k, v in floats.items()})
        torch.testing.assert_close(single, feats[1:2], atol=1e-5, rtol=1e-5)
        # A written token does change them.
        changed = {k: v.clone() for k, v in floats.items()}
        changed["response_ids"][:, 0] += 1
        assert not torch.allclose(ext(changed), feats)


def test_extractor_rejects_a_non_lmgym_space():
    with pytest.raises(ValueError, match="missing keys"):
        TokenFeaturesExtractor(gym.spaces.Dict({"x": gym.spaces.Box(0, 1, (3,))}))
    space, _ = _obs_batch("lmgym/Copy-v0", 1, 0, **COPY)
    with pytest.raises(ValueError, match="arch must be one of"):
        TokenFeaturesExtractor(space, arch="lstm")


def test_unbatch_infos_splits_nested_masked_dicts():
    infos = {
        "score": np.array([0.5, 0.0, 1.0]),
        "_score": np.array([True, False, True]),
        "details": {"rouge": np.array([0.1, 0.0, 0.2]), "_rouge": np.array([True, False, True])},
        "_details": np.array([True, False, True]),
        "prompt": np.array(["a", None, "c"], dtype=object),
        "_prompt": np.array([True, False, True]),
    }
    out = unbatch_infos(infos, 3)
    assert out == [
        {"score": 0.5, "details": {"rouge": 0.1}, "prompt": "a"},
        {},
        {"score": 1.0, "details": {"rouge": 0.2}, "prompt": "c"},
    ]
    assert unbatch_infos(infos, 3, rows=[2])[0] == {}


def test_native_adapter_matches_dummy_vec_env_step_for_step():
    """Same seeds, same actions: the native adapter and DummyVecEnv agree on everything SB3 reads."""
    native = make_sb3_env("lmgym/Copy-v0", 4, seed=3, env_kwargs=COPY, vec_env="native")
    dummy = make_sb3_env("lmgym/Copy-v0", 4, seed=3, env_kwargs=COPY, vec_env="dummy")
    assert isinstance(native.venv, LmgymVecEnv)
    assert native.observation_space == dummy.observation_space and native.action_space == dummy.action_space
    obs_n, obs_d = native.reset(), dummy.reset()
    rng = np.random.default_rng(0)
    episodes = 0
    for _ in range(60):
        for k in obs_n:
            np.testing.assert_array_equal(obs_n[k], obs_d[k])
        actions = rng.integers(0, native.action_space.n, size=4)
        obs_n, rew_n, done_n, info_n = native.step(actions)
        obs_d, rew_d, done_d, info_d = dummy.step(actions)
        np.testing.assert_array_equal(done_n, done_d)
        np.testing.assert_allclose(rew_n, rew_d)
        for i in np.flatnonzero(done_n):
            episodes += 1
            a, b = info_n[i], info_d[i]
            for key in ("score", "completion", "prompt", "TimeLimit.truncated"):
                assert a[key] == b[key]
            assert a["score"] == pytest.approx(rew_n[i])
            for k in a["terminal_observation"]:
                np.testing.assert_array_equal(a["terminal_observation"][k], b["terminal_observation"][k])
            assert a["episode"]["l"] == b["episode"]["l"]
            assert a["episode"]["r"] == pytest.approx(b["episode"]["r"], abs=1e-5)
            assert obs_n["step"][i, 0] == 0  # auto-reset in the same step
    assert episodes > 20


def test_native_adapter_attributes_and_seeding():
    env = make_sb3_env("lmgym/Copy-v0", 3, env_kwargs=COPY, vec_env="native", monitor=False)
    assert env.get_attr("vocab_size") == [15] * 3 and env.get_attr("render_mode") == [None] * 3
    assert env.env_method("decode", [5, 6], indices=[0]) == ["a b"]
    assert env.env_is_wrapped(gym.Wrapper) == [False] * 3
    env.seed(7)
    first = env.reset()
    env.seed(7)
    np.testing.assert_array_equal(env.reset()["prompt_ids"], first["prompt_ids"])
    with pytest.raises(ValueError, match="same_step"):
        LmgymVecEnv(gym.make_vec("lmgym/Copy-v0", num_envs=2, vectorization_mode="vector_entry_point", **COPY))
    with pytest.raises(ValueError, match="vec_env must be"):
        make_sb3_env("lmgym/Copy-v0", 2, vec_env="threads")


def _copy_policy(length: int, eos: int):
    def predict(obs):
        step = obs["step"][:, 0]
        prompt = obs["prompt_ids"][:, :length]  # Copy prompts are `length` symbols then "=", no padding
        return np.where(step < length, prompt[np.arange(len(step)), np.minimum(step, length - 1)], eos)

    return predict


def test_held_out_evaluator_scores_the_first_validation_examples():
    env = gym.make("lmgym/Copy-v0", **COPY).unwrapped
    scores = evaluate_policy_scores(
        _copy_policy(3, env.eos_token_id), "lmgym/Copy-v0", n_episodes=21, n_envs=8, env_kwargs=COPY
    )
    assert scores == [1.0] * 21
    evaluator = HeldOutEvaluator("lmgym/Copy-v0", COPY, n_episodes=10, n_envs=4)
    always_eos = evaluator(lambda obs: np.full(len(obs["step"]), env.eos_token_id))
    assert always_eos == [0.0] * 10
    # One wrong token out of three, on every example: token accuracy 2/3.
    wrong_first = evaluator(lambda obs: np.where(obs["step"][:, 0] == 0, 4, _copy_policy(3, env.eos_token_id)(obs)))
    assert wrong_first == pytest.approx([2 / 3] * 10)
    evaluator.close()


@pytest.mark.parametrize("algo", ["ppo", "a2c", "dqn"])
@pytest.mark.parametrize("env_id", lmgym.env_ids())
def test_stock_sb3_trains_on_every_env(env_id, algo):
    """Short PPO/A2C/DQN runs on every registered env, with the transformer extractor and callbacks."""
    kwargs = {"max_new_tokens": 3}  # short episodes so several finish in a tiny budget
    env = make_sb3_env(env_id, 2, seed=0, env_kwargs=kwargs, vec_env="native")
    extra = {
        "ppo": {"n_steps": 8, "batch_size": 8, "n_epochs": 1},
        "a2c": {"n_steps": 4},
        "dqn": {"learning_starts": 8, "buffer_size": 64, "batch_size": 8, "train_freq": 2},
    }[algo]
    model = make_sb3_model(algo, env, seed=0, extractor=TINY, **extra)
    assert isinstance(
        model.policy.features_extractor if algo != "dqn" else model.q_net.features_extractor, TokenFeaturesExtractor
    )
    metrics = LmgymMetricsCallback(curve_every=16)
    evaluator = HeldOutEvaluator(env_id, kwargs, n_episodes=4, n_envs=4)
    evaluation = EvalScoreCallback(evaluator, eval_every=32)
    model.learn(48, callback=[metrics, evaluation])
    assert model.num_timesteps == 48
    assert metrics.episodes >= 16  # 2 envs x 48 steps with episodes of <= 3 tokens
    assert metrics.curve and all(
        0.0 <= s <= 1.0 or any(k in env_id for k in ("PositiveReview", "Keywords", "Calculator"))
        for _, s in metrics.curve
    )
    prompt, completion, score = metrics.samples[-1]
    assert isinstance(completion, str) and np.isfinite(score)
    assert [x for x, _ in evaluation.curve] == [0, 32, 48]
    actions, _ = model.predict(env.reset(), deterministic=True)
    assert actions.shape == (2,) and ((actions >= 0) & (actions < env.action_space.n)).all()
    evaluator.close()
    env.close()


def test_same_seed_same_model():
    def train() -> list:
        env = make_sb3_env("lmgym/Copy-v0", 2, seed=1, env_kwargs=COPY)
        model = make_sb3_model("ppo", env, seed=1, extractor=TINY, n_steps=16, batch_size=16, n_epochs=2)
        model.learn(64)
        return [p.detach().clone() for p in model.policy.parameters()]

    for a, b in zip(train(), train(), strict=True):
        torch.testing.assert_close(a, b)


def test_make_sb3_model_rejects_unknown_algorithms():
    env = make_sb3_env("lmgym/Copy-v0", 2, env_kwargs=COPY)
    with pytest.raises(ValueError, match="Unknown SB3 algorithm"):
        make_sb3_model("sac", env)


def test_auto_picks_the_native_adapter_from_16_envs():
    assert isinstance(make_sb3_env("lmgym/Copy-v0", 16, env_kwargs=COPY, monitor=False), LmgymVecEnv)
    assert type(make_sb3_env("lmgym/Copy-v0", 4, env_kwargs=COPY, monitor=False)).__name__ == "DummyVecEnv"


def test_action_masks_forbid_unused_specials_and_an_empty_completion():
    for vec in ("native", "dummy"):
        env = make_sb3_env("lmgym/Copy-v0", 3, seed=0, env_kwargs=COPY, vec_env=vec)
        env.reset()
        assert env.has_attr("action_masks")
        start = np.stack(env.env_method("action_masks"))
        assert start.shape == (3, 15) and start.dtype == bool
        assert not start[:, [0, 1, 2, 3]].any() and start[:, 4:].all()  # pad, bos, eos, unk off at step 0
        env.step(np.array([5, 6, 7]))
        later = np.stack(env.env_method("action_masks"))
        assert later[:, 2].all() and not later[:, [0, 1, 3]].any()  # EOS allowed once a token is written
        assert env.env_method("action_masks", indices=[1])[0].shape == (15,)


def test_maskable_ppo_trains_and_never_picks_a_masked_token():
    pytest.importorskip("sb3_contrib")
    from lmgym.agents.sb3 import TokenActionMasker, masked_predict

    env = make_sb3_env("lmgym/Copy-v0", 4, seed=0, env_kwargs=COPY)
    model = make_sb3_model("maskable_ppo", env, seed=0, extractor=TINY, n_steps=8, n_epochs=1)
    metrics = LmgymMetricsCallback(curve_every=16)
    model.learn(64, callback=metrics)
    assert model.num_timesteps == 64 and metrics.episodes > 0
    masker = TokenActionMasker.from_env(gym.make("lmgym/Copy-v0", **COPY))
    predict = masked_predict(model, masker)
    obs = env.reset()
    for _ in range(8):
        actions = predict(obs)
        assert masker(obs)[np.arange(4), actions].all()
        obs, *_ = env.step(actions)
