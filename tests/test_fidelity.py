"""Fidelity to the official SimbaV2 / SimBa code: suite UTD, C51 projection, temperature, loop.

Golden values (`tests/data/simbav2_official.npz`, `tests/data/simba_official.npz`) were produced
once by running the official SimbaV2 code, github.com/dojeon-ai/SimbaV2 at commit
14fafb27e6f78f0b65d19b8873b4433547a2193c (`scale_rl/agents/simbaV2/` and its SimBa baseline
`scale_rl/agents/simba/`), on CPU with jax 0.10.2 / flax 0.12.8 / optax 0.2.8, outside this
repository. Script outline (its code is not part of scalerl; SimBa: the same with
`_init_simba_networks` / `_update_simba_networks`, constant learning rate 1e-4, AdamW weight
decay 1e-2 for actor, critic and temperature, scalar critic and its Q instead of bins):

1. `_init_simbav2_networks(3, 2, cfg)` with the paper's constants at a tiny size: seed 0, actor
   width 4 (1 block), critic width 8 (1 block), 11 bins on [-5, 5], c_shift 3, scaler init and
   scale sqrt(2/h), LERP alpha init 1/2 and scale 1/sqrt(h), temperature 0.01, target entropy
   -1, learning rate 1e-4 -> 5e-5 over 100 updates, tau 0.005, gamma 0.99, no clipped double-Q.
2. Inputs from `numpy.random.default_rng(0)`: obs (4, 3) ~ N(0, 1), action (4, 2) ~
   U(-0.9, 0.9), reward (4,) ~ N(0, 1), next_obs (4, 3) ~ N(0, 1); terminated = [0, 0, 1, 0].
3. Forward passes on (obs, action): the actor's pre-tanh mean and log std, the critic's bin
   log-probabilities.
4. Two calls of the jitted `_update_simbav2_networks` from rng `PRNGKey(7)` (second batch:
   reward * 0.5 + 0.3): its losses, entropy and temperature values, and the final parameters.
5. Parameters renamed to scalerl's layout (embedder/encoder/predictor -> encoder/head) and
   packed into one float32 vector with names and shapes.

Shims needed to run it (outside the repository only): tensorflow-probability 0.25.0 with one
obsolete JAX registration disabled, `jax.tree_map` aliased to `jax.tree_util.tree_map`, the
package `__init__`s that import omegaconf and the replay buffers stubbed, and the tanh-Gaussian
sample drawn as tanh(mean + std * normal(key, (B, d))), scalerl's noise layout (the tfp
substrate draws the same numbers in (d, B) layout); log-probabilities stay tfp's.
"""

from __future__ import annotations

import ast
import dataclasses
import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import ACT_DIM, OBS_DIM, small_sac
from scalerl.agents import losses
from scalerl.agents.actor_critic import make_temperature_optimizer
from scalerl.agents.sac import make_sac, make_schedule
from scalerl.agents.state import NetState
from scalerl.buffers.replay import Batch
from scalerl.cli import main
from scalerl.config import AGENTS, TrainConfig, agent_preset, replace, validate_agent
from scalerl.errors import ConfigError
from scalerl.train.loop import evaluation_due
from scalerl.train.setup import build_agent, config_from_dict, config_to_dict, resolve

DATA = Path(__file__).parent / "data"

# ----------------------------------------------------------------------------- UTD per suite


@pytest.mark.parametrize(
    ("env", "utd"),
    [("dmc:walker-walk", 2.0), ("Hopper-v5", 1.0), ("myo-reach", 2.0), ("h1-walk-v0", 2.0)],
)
def test_auto_utd_is_the_action_repeat_of_the_suite(env, utd):
    cfg = resolve(TrainConfig(env=env))
    assert cfg.utd == utd == cfg.action_repeat


def test_explicit_utd_and_action_repeat_win_over_the_suite():
    assert resolve(TrainConfig(env="Hopper-v5", utd=4.0)).utd == 4.0
    assert resolve(TrainConfig(env="dmc:walker-walk", action_repeat=4)).utd == 4.0


def test_lr_decay_follows_the_resolved_utd():
    """MuJoCo 1M frames: 1M agent steps x UTD 1 = 1M updates (the official horizon)."""
    cfg = resolve(TrainConfig(env="Hopper-v5"))
    sac = build_agent(cfg, OBS_DIM, ACT_DIM)
    assert float(sac.schedule(500_000)) == pytest.approx(7.5e-5)
    assert float(sac.schedule(1_000_000)) == pytest.approx(5e-5)


def test_config_files_with_a_numeric_or_auto_utd_load():
    resolved = config_to_dict(resolve(TrainConfig(env="dmc:walker-walk")))
    old = json.loads(json.dumps(resolved | {"utd": 2.0}))  # written before utd became auto
    assert config_from_dict(old).utd == 2.0
    assert config_from_dict(config_to_dict(TrainConfig())).utd is None


def test_help_shows_utd_as_auto(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")  # one column of option panels, whatever the terminal
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.replace("│", " ").split())
    assert "--utd {None}|FLOAT" in text and "None = auto:" in text


# ----------------------------------------------------------------------------- C51 projection


def _near_edges(num_bins: int, v_max: float, ulps: int = 2) -> np.ndarray:
    """Float32 positions within `ulps` ulps of every bin centre (the C51 bin edges)."""
    out = []
    for centre in np.linspace(-v_max, v_max, num_bins, dtype=np.float32):
        for step in range(-ulps, ulps + 1):
            x = centre
            for _ in range(abs(step)):
                x = np.nextafter(x, np.float32(np.inf if step > 0 else -np.inf))
            out.append(x)
    return np.array(out, np.float32)


def _reference_projection(
    atoms: np.ndarray, probs: np.ndarray, v_max: float, num_bins: int | None = None
) -> np.ndarray:
    """The C51 projection in float64 with floor/frac (Bellemare et al. 2017, Alg. 1)."""
    num_bins = num_bins or atoms.shape[-1]
    b = (np.clip(atoms.astype(np.float64), -v_max, v_max) + v_max) * (num_bins - 1) / (2 * v_max)
    lower = np.clip(np.floor(b), 0, num_bins - 1).astype(int)
    frac = b - lower
    out = np.zeros((atoms.shape[0], num_bins), np.float64)
    rows = np.arange(atoms.shape[0])[:, None]
    np.add.at(out, (rows, lower), probs * (1.0 - frac))
    np.add.at(out, (rows, np.minimum(lower + 1, num_bins - 1)), probs * frac)
    return out


def test_split_moves_mass_continuously_when_index_and_weights_round_differently():
    """Indices from one rounding of b and weights from another (as two XLA fusions may compute
    them) put each atom's mass within the rounding difference of the exact split. With
    floor/frac, b = k - ulp for the index and k + ulp for the weights gave bin k - 1 all of it."""
    b_exact = np.concatenate([np.arange(11.0), np.arange(10.0) + 0.5]).astype(np.float32)
    for shift in (1, 2, 3):
        lo = b_exact.copy()
        hi = b_exact.copy()
        for _ in range(shift):
            lo, hi = np.nextafter(lo, np.float32(-1)), np.nextafter(hi, np.float32(20))
        lo, hi = np.clip(lo, 0, 10), np.clip(hi, 0, 10)
        for b_index, b_weight in ((lo, hi), (hi, lo)):
            near, side = losses.bin_split(jnp.asarray(b_index)[None], 11)
            near_w, side_w = losses.bin_split_weights(jnp.asarray(b_weight)[None])
            probs = jnp.ones((1, b_exact.size), jnp.float32)
            got = np.zeros(11)
            np.add.at(got, np.asarray(near[0]), np.asarray(near_w[0], np.float64))
            np.add.at(got, np.asarray(side[0]), np.asarray(side_w[0], np.float64))
            atoms = b_exact.astype(np.float64)[None] * 1.0 - 5.0  # v_max 5, 11 bins: dz = 1
            want = _reference_projection(atoms, np.asarray(probs, np.float64), 5.0, 11)[0]
            np.testing.assert_allclose(got, want, atol=1e-5)


@pytest.mark.slow
def test_projection_inside_the_jitted_update_matches_float64_near_every_bin_edge(monkeypatch):
    """Target atoms within 2 ulps of every bin edge, projected inside the fused, jitted SAC
    update: every atom's mass goes where the float64 projection puts it.

    Terminal rows (atoms = reward exactly) put all atoms of a row at one near-edge position;
    non-terminal rows with alpha = 0 make atoms r + gamma z_k whose float32 value depends on
    whether the multiply-add is contracted, near edges as well. The projected target is read
    from the traced update (the projection's output is returned alongside the update's), and
    the critic loss computed inside the update is checked against the float64 target.
    """
    num_bins, v_max = 31, 5.0  # bin width 1/3 is inexact in binary, like 0.1 for 101 bins
    edges = _near_edges(num_bins, v_max)
    rng = np.random.default_rng(1)
    gammas = rng.uniform(0.9, 1.0, edges.size).astype(np.float32)
    z = np.linspace(-v_max, v_max, num_bins, dtype=np.float32)
    k = rng.integers(0, num_bins, edges.size)
    shifted = (edges.astype(np.float64) - gammas * z[k].astype(np.float64)).astype(np.float32)
    reward = np.concatenate([edges, shifted])
    n = reward.size
    sac = small_sac("simbav2", normalize_reward=False, batch_size=n, num_bins=num_bins)
    state = sac.init(jax.random.PRNGKey(0))
    state = state.replace(temp=state.temp.replace(params={"log_temp": jnp.float32(-jnp.inf)}))
    keys = jax.random.split(jax.random.PRNGKey(1), 3)
    batch = Batch(
        obs=jax.random.normal(keys[0], (n, OBS_DIM)),
        action=jax.random.uniform(keys[1], (n, ACT_DIM), minval=-1, maxval=1),
        reward=jnp.asarray(reward),
        next_obs=jax.random.normal(keys[2], (n, OBS_DIM)),
        terminated=jnp.concatenate([jnp.ones(edges.size), jnp.zeros(edges.size)]),
        discount=jnp.concatenate([jnp.full(edges.size, 0.99), jnp.asarray(gammas)]),
    )
    seen = []
    projection = losses.categorical_projection

    def spy(atoms, probs, v):
        out = projection(atoms, probs, v)
        seen.append((atoms, probs, out))
        return out

    monkeypatch.setattr(losses, "categorical_projection", spy)
    step = jax.jit(lambda s, b: (sac.update(s, b)[1], seen[-1]))
    metrics, (atoms, probs, projected) = jax.device_get(step(state, batch))
    want = _reference_projection(atoms, probs.astype(np.float64), v_max)
    np.testing.assert_allclose(projected, want, atol=2e-5)
    out = np.asarray(sac._critic_out(state.critic.params, batch.obs, batch.action), np.float64)
    log_probs = out - np.log(np.sum(np.exp(out), axis=-1, keepdims=True))
    loss = np.sum(np.mean(-np.sum(want[None] * log_probs, axis=-1), axis=1))
    assert float(metrics["train/critic_loss"]) == pytest.approx(loss, rel=2e-6)


# ----------------------------------------------------------------------------- temperature


def test_simba_temperature_uses_adamw_with_the_networks_weight_decay():
    """At zero entropy gap Adam leaves log alpha alone; AdamW decays it by lr * wd * log alpha
    (official SimBa builds its temperature optimizer with the networks' AdamW)."""
    log_temp = {"log_temp": jnp.float32(np.log(0.01))}
    zero = {"log_temp": jnp.float32(0.0)}
    cases = [(agent, {}, agent_preset(agent).weight_decay) for agent in AGENTS]
    cases += [
        ("simba", {"temp_weight_decay": 0.0}, 0.0),
        ("simbav2", {"temp_weight_decay": 0.1}, 0.1),
    ]
    for agent, changes, decay in cases:
        cfg = replace(agent_preset(agent), **changes)
        tx = make_temperature_optimizer(cfg, make_schedule(cfg, 100))
        updates, _ = tx.update(zero, tx.init(log_temp), log_temp)
        expected = -cfg.lr_init * decay * float(log_temp["log_temp"])
        assert float(updates["log_temp"]) == pytest.approx(expected, rel=1e-5, abs=1e-12), agent
    assert agent_preset("simba").weight_decay > 0 == agent_preset("simbav2").weight_decay
    with pytest.raises(ConfigError, match="temp_weight_decay"):
        validate_agent(replace(agent_preset("simba"), temp_weight_decay=-1.0))
    sac = small_sac("simba")  # make_sac wires it in: one step moves log alpha up by ~4.6e-6
    temp, _ = sac._temperature_step(
        NetState(log_temp, sac.temp_tx.init(log_temp)), jnp.float32(sac.target_entropy)
    )
    assert float(temp.params["log_temp"] - log_temp["log_temp"]) > 3e-6


def test_temperature_is_logged_before_its_step(official):
    _, sac, state = official
    temp, info = sac._temperature_step(state.temp, jnp.float32(5.0))
    assert float(info["train/temperature"]) == float(jnp.exp(state.temp.params["log_temp"]))
    assert float(temp.params["log_temp"]) != float(state.temp.params["log_temp"])


# ----------------------------------------------------------------------------- training loop


def test_no_evaluation_during_the_random_warmup():
    """The official loop evaluates at step 0 and then only once updates have begun."""
    due = [t for t in range(20, 101, 20) if evaluation_due(t, 100, warmup_steps=60)]
    assert due == [60, 80, 100]
    assert evaluation_due(40, 40, warmup_steps=60)  # a run that ends inside the warm-up


# ----------------------------------------------------------------------------- golden values


def _golden(agent: str) -> dict[str, np.ndarray]:
    packed = np.load(DATA / f"{agent}_official.npz")
    values, offset, out = packed["values"], 0, {}
    for name, shape in zip(packed["names"], packed["shapes"], strict=True):
        shape = ast.literal_eval(str(shape))
        size = int(np.prod(shape))
        out[str(name)] = values[offset : offset + size].reshape(shape)
        offset += size
    return out


def _tree(golden: dict[str, np.ndarray], prefix: str, ensemble: bool = False) -> dict:
    tree: dict = {}
    for key, value in golden.items():
        if key.startswith(prefix):
            *path, leaf = key[len(prefix) :].split("/")
            node = tree
            for part in path:
                node = node.setdefault(part, {})
            node[leaf] = jnp.asarray(value[None] if ensemble else value)
    return tree


@pytest.fixture(scope="module", params=["simbav2", "simba"])
def official(request):
    """The golden values, the matching scalerl agent and its state at the official init."""
    agent = request.param
    golden = _golden(agent)
    cfg = replace(
        agent_preset(agent),
        actor_width=4,
        critic_width=8,
        actor_depth=1,
        critic_depth=1,
        num_bins=11,
        normalize_obs=False,  # the official update receives already-normalised batches
        normalize_reward=False,
        gamma=0.99,
        use_cdq=False,
    )
    sac = make_sac(cfg, 3, 2, decay_steps=100)
    actor, critic = _tree(golden, "init/actor/"), _tree(golden, "init/critic/", ensemble=True)
    temp = {"log_temp": jnp.asarray(golden["init/log_temp"])}
    state = dataclasses.replace(
        sac.init(jax.random.PRNGKey(0)),
        actor=NetState(actor, sac.actor_tx.init(actor)),
        critic=NetState(critic, sac.critic_tx.init(critic)),
        target_params=critic,
        temp=NetState(temp, sac.temp_tx.init(temp)),
        rng=jnp.asarray(golden["rng"], jnp.uint32),
    )
    return golden, sac, state


def test_forward_passes_match_the_official_code(official):
    golden, sac, state = official
    mean, log_std = sac.actor.apply({"params": state.actor.params}, golden["obs"])
    np.testing.assert_allclose(mean, golden["fwd/actor_mean"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(log_std, golden["fwd/actor_log_std"], rtol=1e-5, atol=1e-6)
    out = sac._critic_out(state.critic.params, golden["obs"], golden["action"])[0]
    if sac.cfg.critic_head == "categorical":
        log_probs = jax.nn.log_softmax(out, axis=-1)
        np.testing.assert_allclose(log_probs, golden["fwd/critic_log_prob"], atol=2e-6)
    np.testing.assert_allclose(sac._q_values(out[None])[0], golden["fwd/critic_q"], atol=2e-6)


def test_two_updates_match_the_official_code(official):
    golden, sac, state = official
    batch = Batch(
        obs=golden["obs"],
        action=golden["action"],
        reward=golden["reward"],
        next_obs=golden["next_obs"],
        terminated=golden["terminated"],
        discount=np.full(4, 0.99, np.float32),
    )
    names = {
        "train/actor_loss": "actor/loss",
        "train/entropy": "actor/entropy",
        "train/critic_loss": "critic/loss",
        "train/temperature": "temperature/value",
        "train/temperature_loss": "temperature/loss",
    }
    update = jax.jit(sac.update)
    for i in range(2):
        state, metrics = update(state, batch)
        for ours, theirs in names.items():
            want = float(golden[f"update{i}/{theirs}"])
            assert float(metrics[ours]) == pytest.approx(want, rel=1e-5, abs=1e-7), (i, ours)
        batch = dataclasses.replace(batch, reward=golden["reward"] * 0.5 + 0.3)
    for net, ensemble in (("actor", False), ("critic", True)):
        want = _tree(golden, f"final/{net}/", ensemble)
        got = getattr(state, net).params
        for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    assert float(state.temp.params["log_temp"]) == pytest.approx(
        float(golden["final/log_temp"]), abs=1e-7
    )
