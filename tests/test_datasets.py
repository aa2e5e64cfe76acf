"""Tests for the offline-RL dataset layer (scalerl.datasets): semantics, formats, errors."""

from __future__ import annotations

import json
import warnings

import h5py
import numpy as np
import pytest

from scalerl.buffers.replay import ARRAY_KEYS, replay_from_numpy, replay_to_numpy
from scalerl.datasets import (
    FORMATS,
    Dataset,
    dataset_from_transitions,
    detect_format,
    load_any,
    load_d4rl,
    load_dataset,
    load_minari,
    save_any,
    save_d4rl,
    save_dataset,
    save_minari,
    validate_dataset,
)
from scalerl.errors import DatasetError

FIELDS = ("observations", "actions", "rewards", "terminals", "timeouts", "next_observations")
META = {"env_id": "Pendulum-v1", "ref_min_score": -1200.5, "ref_max_score": 0.25, "tags": [1, 2]}


def obs_row(i: float) -> list[float]:
    """Observation i: [i, -i / 2] (distinct, exactly representable)."""
    return [i, -i / 2]


def make_ds(with_next: bool = True, n: int = 7, metadata: dict | None = None) -> Dataset:
    """Rows 0-2: episode ending in a termination; rows 3-5: episode ending in a timeout; row 6:
    a trailing incomplete episode. Rewards 1..7. Within an episode next_obs[i] = obs[i+1]; the
    true final observation after rows 2, 5, 6 is obs_row(50 + i)."""
    obs = np.array([obs_row(i) for i in range(7)], np.float32)
    nxt = np.array([obs_row(i + 1) for i in range(7)], np.float32)
    nxt[[2, 5, 6]] = [obs_row(52), obs_row(55), obs_row(56)]
    flags = np.zeros((2, 7), bool)
    flags[0, 2], flags[1, 5] = True, True
    return Dataset(
        observations=obs[:n],
        actions=np.linspace(-1, 1, 7, dtype=np.float32)[:n, None],
        rewards=np.arange(1, 8, dtype=np.float32)[:n],
        terminals=flags[0, :n],
        timeouts=flags[1, :n],
        next_observations=nxt[:n] if with_next else None,
        metadata=dict(META if metadata is None else metadata),
    )


def assert_same(a: Dataset, b: Dataset, metadata: bool = True) -> None:
    """Bitwise-identical arrays (same dtype and bytes) and, optionally, equal metadata."""
    for key in FIELDS:
        x, y = getattr(a, key), getattr(b, key)
        assert (x is None) == (y is None), key
        if x is not None:
            assert x.dtype == y.dtype and x.shape == y.shape, key
            assert x.tobytes() == y.tobytes(), key
    if metadata:
        assert a.metadata == b.metadata


# --- semantics -------------------------------------------------------------------------------


def test_construction_casts_dtypes():
    ds = Dataset(np.ones((2, 3)), np.zeros((2, 1)), [1, 2], [0.0, 1.0], [2, 0], None, {})
    assert ds.observations.dtype == np.float32 and ds.rewards.dtype == np.float32
    assert ds.terminals.tolist() == [False, True] and ds.timeouts.tolist() == [True, False]
    assert (len(ds), ds.obs_dim, ds.action_dim) == (2, 3, 1)
    assert "observations=(2, 3)" in repr(ds)


def test_to_transitions_without_next_obs_follows_simbav2_rule():
    rows = make_ds(with_next=False).to_transitions()
    assert tuple(rows) == ARRAY_KEYS and all(v.dtype == np.float32 for v in rows.values())
    # Rows 0..5 are candidates; row 5 (timeout) is skipped, row 6 (last) dropped.
    np.testing.assert_array_equal(rows["obs"], [obs_row(i) for i in (0, 1, 2, 3, 4)])
    expected_next = [obs_row(1), obs_row(2), [0, 0], obs_row(4), obs_row(5)]
    np.testing.assert_array_equal(rows["next_obs"], expected_next)
    np.testing.assert_array_equal(rows["reward"], [1, 2, 3, 4, 5])
    np.testing.assert_array_equal(rows["terminated"], [0, 0, 1, 0, 0])
    np.testing.assert_array_equal(rows["truncated"], [0, 0, 0, 0, 0])
    np.testing.assert_array_equal(rows["action"], make_ds().actions[:5])


def test_to_transitions_with_next_obs_keeps_every_row():
    rows = make_ds().to_transitions()
    np.testing.assert_array_equal(rows["obs"], [obs_row(i) for i in range(7)])
    expected_next = [obs_row(i) for i in (1, 2, 52, 4, 5, 55, 56)]
    np.testing.assert_array_equal(rows["next_obs"], expected_next)
    np.testing.assert_array_equal(rows["terminated"], [0, 0, 1, 0, 0, 0, 0])
    np.testing.assert_array_equal(rows["truncated"], [0, 0, 0, 0, 0, 1, 0])
    np.testing.assert_array_equal(rows["reward"], np.arange(1, 8))


def test_episode_returns():
    np.testing.assert_array_equal(make_ds().episode_returns(), [6.0, 15.0])  # 7 is partial
    np.testing.assert_array_equal(make_ds(n=6).episode_returns(), [6.0, 15.0])
    partial = Dataset(np.zeros((3, 1)), np.zeros((3, 1)), [1.5, 2, 3], [0] * 3, [0] * 3)
    np.testing.assert_array_equal(partial.episode_returns(), [6.5])


def test_dataset_from_transitions_round_trip_through_replay_buffer():
    ds = make_ds()
    assert_same(dataset_from_transitions(ds.to_transitions(), META), ds)
    state = replay_from_numpy(ds.to_transitions(), capacity=16)
    assert_same(dataset_from_transitions(replay_to_numpy(state), META), ds)
    with pytest.raises(DatasetError, match=r"missing keys \['next_obs'\]"):
        dataset_from_transitions({k: ds.rewards for k in ARRAY_KEYS[:-1]}, {})


# --- scalerl and D4RL formats ----------------------------------------------------------------


@pytest.mark.parametrize("with_next", [True, False])
@pytest.mark.parametrize("fmt,name", [("scalerl", "d.npz"), ("d4rl", "d.hdf5")])
def test_file_formats_round_trip_exactly(tmp_path, fmt, name, with_next):
    ds = make_ds(with_next, metadata=META | {"nested": {"a": [1.5, None]}, "seed": 3})
    path = save_any(tmp_path / name, ds, fmt)
    assert [p.name for p in tmp_path.iterdir()] == [name]  # no temporary file left behind
    loader = load_dataset if fmt == "scalerl" else load_d4rl
    assert_same(loader(path), ds)
    assert_same(load_any(path), ds)
    assert detect_format(path) == fmt


def test_scalerl_file_holds_format_header(tmp_path):
    path = save_dataset(tmp_path / "d.npz", make_ds())
    with np.load(path, allow_pickle=False) as npz:
        header = json.loads(str(npz["metadata"]))
        assert npz["terminals"].dtype == bool
    assert header["format"] == "scalerl-dataset" and header["format_version"] == 1
    assert header["ref_max_score"] == 0.25


def test_reads_d4rl_get_dataset_layout(tmp_path):
    path, n = tmp_path / "hopper-medium-v2.hdf5", 5
    rng = np.random.default_rng(0)
    obs, act = rng.normal(size=(n, 3)), rng.uniform(-1, 1, size=(n, 2))
    with h5py.File(path, "w") as f:
        f["observations"], f["actions"] = obs, act  # float64, as D4RL stores some arrays
        f["rewards"] = (np.arange(n, dtype=np.float64) / 3)[:, None]  # (N, 1) is flattened
        f["terminals"] = np.array([0, 0, 1, 0, 0], np.float32)
        f["timeouts"] = np.array([0, 0, 0, 0, 1], bool)
        f["infos/qpos"], f["infos/action_log_probs"] = np.zeros((n, 4)), np.zeros(n)
        f["metadata/algorithm"] = "SAC"
        f["metadata/policy/fc0/weight"] = np.ones((2, 2))
    ds = load_d4rl(path)
    assert ds.observations.dtype == np.float32 and ds.rewards.dtype == np.float32
    np.testing.assert_array_equal(ds.observations, obs.astype(np.float32))
    np.testing.assert_array_equal(ds.actions, act.astype(np.float32))
    np.testing.assert_array_equal(ds.rewards, (np.arange(n) / 3).astype(np.float32))
    assert ds.terminals.tolist() == [False, False, True, False, False]
    assert ds.timeouts.tolist() == [False, False, False, False, True]
    assert ds.next_observations is None
    assert ds.metadata == {"source": "d4rl:hopper-medium-v2.hdf5"}
    assert detect_format(path) == "d4rl"


def test_d4rl_next_observations_can_be_ignored(tmp_path):
    path = save_d4rl(tmp_path / "d.h5", make_ds())
    assert load_d4rl(path).next_observations is not None
    assert load_d4rl(path, use_next_observations=False).next_observations is None


# --- Minari format ---------------------------------------------------------------------------


def test_minari_round_trip_with_next_observations(tmp_path):
    ds = make_ds(n=6)  # ends with the timeout: every row survives unchanged
    path = save_minari(tmp_path, "scalerl/pendulum-test-v0", ds)
    assert path == tmp_path / "scalerl" / "pendulum-test-v0"
    assert_same(load_minari(path), ds)
    for other in (path / "data", path / "data" / "main_data.hdf5"):
        assert_same(load_any(other), ds)
    assert detect_format(path) == detect_format(path / "data" / "main_data.hdf5") == "minari"


def test_minari_trailing_episode_is_truncated(tmp_path):
    ds = make_ds()
    loaded = load_minari(save_minari(tmp_path, "d-v0", ds))
    assert_same(loaded, replace(ds, timeouts=[0, 0, 0, 0, 0, 1, 1]))


def test_minari_without_next_observations_matches_to_transitions(tmp_path):
    ds = make_ds(with_next=False)
    rows = load_minari(save_minari(tmp_path, "d-v0", ds)).to_transitions()
    expected = ds.to_transitions()
    for key in ("obs", "action", "reward", "terminated", "next_obs"):
        np.testing.assert_array_equal(rows[key], expected[key], err_msg=key)
    # Episode 2 lost its timeout row (next obs unknown) and is truncated one row earlier.
    np.testing.assert_array_equal(rows["truncated"], [0, 0, 0, 0, 1])


def episode_arrays(episode) -> dict[str, np.ndarray]:
    """A minari EpisodeData as scalerl Dataset field arrays."""
    return {
        "observations": episode.observations[:-1],
        "next_observations": episode.observations[1:],
        "actions": episode.actions,
        "rewards": episode.rewards,
        "terminals": episode.terminations,
        "timeouts": episode.truncations,
    }


def minari_as_arrays(dataset) -> dict[str, np.ndarray]:
    """Concatenates minari's own `iterate_episodes()` output, cast to scalerl dtypes."""
    eps = [episode_arrays(e) for e in dataset.iterate_episodes()]
    out = {k: np.concatenate([e[k] for e in eps]) for k in eps[0]}
    return {
        k: v.astype(bool if k in ("terminals", "timeouts") else np.float32) for k, v in out.items()
    }


def assert_matches_minari(ds: Dataset, dataset) -> None:
    """Our arrays equal what real minari returns for the same dataset."""
    for key, value in minari_as_arrays(dataset).items():
        np.testing.assert_array_equal(getattr(ds, key), value, err_msg=key)
        assert getattr(ds, key).dtype == value.dtype


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_reads_dataset_written_by_minari_buffers(tmp_path, monkeypatch):
    minari = pytest.importorskip("minari")
    from gymnasium.spaces import Box
    from minari.data_collector import EpisodeBuffer

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    rng = np.random.default_rng(1)

    def episode(steps: int, terminated: bool) -> EpisodeBuffer:
        flags = np.zeros(steps, bool)
        return EpisodeBuffer(
            observations=rng.normal(size=(steps + 1, 3)),
            actions=rng.uniform(-1, 1, size=(steps, 2)).astype(np.float32),
            rewards=rng.normal(size=steps),
            terminations=np.r_[flags[:-1], terminated],
            truncations=np.r_[flags[:-1], not terminated],
        )

    minari.create_dataset_from_buffers(
        "test/buffers-v0",
        [episode(4, True), episode(3, False), episode(1, True)],
        observation_space=Box(-np.inf, np.inf, (3,), np.float64),
        action_space=Box(-1, 1, (2,), np.float32),
    )
    ds = load_minari(tmp_path / "test" / "buffers-v0")
    assert_matches_minari(ds, minari.load_dataset("test/buffers-v0"))
    assert ds.terminals.tolist() == [0, 0, 0, 1, 0, 0, 0, 1] and ds.timeouts[6]
    assert ds.metadata == {"source": "minari", "dataset_id": "test/buffers-v0"}


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_reads_dataset_collected_by_minari_data_collector(tmp_path, monkeypatch):
    minari = pytest.importorskip("minari")
    import gymnasium as gym

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    env = minari.DataCollector(gym.make("Pendulum-v1", max_episode_steps=5))
    for seed in range(2):
        env.reset(seed=seed)
        env.action_space.seed(seed)
        done = False
        while not done:
            *_, terminated, truncated, _ = env.step(env.action_space.sample())
            done = terminated or truncated
    env.create_dataset("test/pendulum-v0", ref_min_score=-1000.0, ref_max_score=-100.0)
    env.close()
    ds = load_any(tmp_path / "test" / "pendulum-v0")
    assert_matches_minari(ds, minari.load_dataset("test/pendulum-v0"))
    assert len(ds) == 10 and ds.timeouts.tolist() == ([False] * 4 + [True]) * 2
    assert ds.metadata == {
        "source": "minari",
        "dataset_id": "test/pendulum-v0",
        "env_id": "Pendulum-v1",
        "ref_min_score": -1000.0,
        "ref_max_score": -100.0,
    }


@pytest.mark.parametrize("with_next", [True, False])
def test_minari_loads_what_save_minari_writes(tmp_path, monkeypatch, with_next):
    minari = pytest.importorskip("minari")
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    ds = make_ds(with_next)
    save_minari(tmp_path, "scalerl/hand-v1", ds)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = minari.load_dataset("scalerl/hand-v1")
    assert_matches_minari(load_minari(tmp_path / "scalerl" / "hand-v1"), theirs)
    r = obs_row
    if with_next:
        obs = [[r(0), r(1), r(2), r(52)], [r(3), r(4), r(5), r(55)], [r(6), r(56)]]
        flags = [([0, 0, 1], [0, 0, 0]), ([0, 0, 0], [0, 0, 1]), ([0], [1])]
    else:  # zero final obs after the termination; the timeout row and the last row dropped
        obs = [[r(0), r(1), r(2), [0, 0]], [r(3), r(4), r(5)]]
        flags = [([0, 0, 1], [0, 0, 0]), ([0, 0], [0, 1])]
    episodes = list(theirs.iterate_episodes())
    assert len(episodes) == theirs.total_episodes == len(obs)
    for episode, want, (term, trunc) in zip(episodes, obs, flags, strict=True):
        np.testing.assert_array_equal(episode.observations, want)
        np.testing.assert_array_equal(episode.terminations, term)
        np.testing.assert_array_equal(episode.truncations, trunc)
    assert theirs.total_steps == (7 if with_next else 5) and theirs.spec.version == 1
    assert theirs.env_spec.id == "Pendulum-v1"
    score = minari.get_normalized_score(theirs, np.array([0.25]))
    np.testing.assert_allclose(score, [1.0])


def test_save_any_minari_paths(tmp_path):
    ds = make_ds(n=6)
    assert save_any(tmp_path / "mine-v2", ds, "minari") == tmp_path / "mine-v2"
    assert save_any(tmp_path, ds, "minari") == tmp_path / "scalerl" / "pendulum-v1-v0"
    named = make_ds(n=6, metadata={"dataset_id": "ns/named-v3"})
    assert save_any(tmp_path, named, "minari") == tmp_path / "ns" / "named-v3"
    assert_same(load_any(tmp_path / "ns" / "named-v3"), named)
    with pytest.raises(DatasetError, match=r"holds 3 Minari datasets .*; pass one"):
        load_any(tmp_path)
    only = save_any(tmp_path / "root", ds, "minari")
    assert_same(load_any(tmp_path / "root"), load_minari(only))  # a root with one dataset
    assert set(FORMATS) == {"scalerl", "minari", "d4rl"}


# --- errors ----------------------------------------------------------------------------------


def replace(ds: Dataset, **changes) -> Dataset:
    """A copy of `ds` with some fields replaced."""
    fields = {k: getattr(ds, k) for k in FIELDS} | {"metadata": ds.metadata}
    return Dataset(**(fields | changes))


def test_validate_accepts_good_dataset_and_tolerance():
    ds = make_ds()
    assert validate_dataset(ds, obs_dim=2, action_dim=1) is ds
    actions = ds.actions.copy()
    actions[0] = 1.0 + 5e-7
    validate_dataset(replace(ds, actions=actions))


@pytest.mark.parametrize(
    "changes,kwargs,match",
    [
        ({"observations": None}, {}, r"no 'observations' array"),
        ({"rewards": np.zeros((7, 1))}, {}, r"'rewards' must be 1-D, got shape \(7, 1\)"),
        ({"rewards": np.zeros(6)}, {}, r"different lengths .*'rewards': 6"),
        ({"next_observations": np.zeros((7, 3))}, {}, r"'next_observations' shape \(7, 3\)"),
        ({}, {"obs_dim": 5}, r"observation dim 2 but the environment expects 5; pass the --env"),
        ({}, {"action_dim": 6}, r"action dim 1 but the environment expects 6.*Pendulum-v1"),
    ],
)
def test_validate_structure_errors(changes, kwargs, match):
    with pytest.raises(DatasetError, match=match):
        validate_dataset(replace(make_ds(), **changes), name="d.npz", **kwargs)


@pytest.mark.parametrize("key", ["observations", "rewards", "next_observations"])
def test_validate_names_first_non_finite_row(key):
    ds = make_ds()
    value = getattr(ds, key).copy()
    value[3] = np.nan
    value[5] = np.inf
    with pytest.raises(DatasetError, match=rf"'{key}' has NaN or inf values \(first at row 3\)"):
        validate_dataset(replace(ds, **{key: value}))


def test_validate_actions_out_of_range():
    actions = make_ds().actions.copy()
    actions[4] = 1.5
    with pytest.raises(DatasetError, match=r"outside \[-1, 1\] \(first at row 4.*rescale actions"):
        validate_dataset(replace(make_ds(), actions=actions))


def test_empty_dataset_is_rejected(tmp_path):
    empty = make_ds(n=0)
    with pytest.raises(DatasetError, match="is empty"):
        validate_dataset(empty)
    with pytest.raises(DatasetError, match="is empty"):
        save_dataset(tmp_path / "e.npz", empty)


def test_non_numeric_array_is_rejected():
    with pytest.raises(DatasetError, match="'rewards' is not numeric"):
        Dataset(np.zeros((1, 1)), np.zeros((1, 1)), ["x"], [0], [0])


def test_corrupt_and_foreign_npz(tmp_path):
    path = save_dataset(tmp_path / "d.npz", make_ds())
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    for load in (load_dataset, load_any):
        with pytest.raises(DatasetError, match="d.npz is corrupt or truncated"):
            load(path)
    np.savez(
        tmp_path / "v2.npz",
        **{k: np.zeros(1) for k in FIELDS[:5]},
        metadata=np.array(json.dumps({"format": "scalerl-dataset", "format_version": 2})),
    )
    with pytest.raises(DatasetError, match="version 2, expected 'scalerl-dataset' version 1"):
        load_dataset(tmp_path / "v2.npz")
    np.savez(tmp_path / "replay.npz", obs=np.zeros((1, 2)))
    with pytest.raises(DatasetError, match=r"missing \['observations'"):
        load_dataset(tmp_path / "replay.npz")
    with pytest.raises(DatasetError, match="not found"):
        load_any(tmp_path / "absent.npz")


def test_corrupt_hdf5_and_missing_d4rl_key(tmp_path):
    path = save_d4rl(tmp_path / "d.hdf5", make_ds())
    path.write_bytes(path.read_bytes()[:300])
    for load in (load_d4rl, load_any):
        with pytest.raises(DatasetError, match="not a readable HDF5 file"):
            load(path)
    with h5py.File(tmp_path / "old.hdf5", "w") as f:
        for key in FIELDS[:4]:
            f[key] = np.zeros((2, 1))
    with pytest.raises(DatasetError, match="missing key 'timeouts' \\(D4RL files need"):
        load_d4rl(tmp_path / "old.hdf5")


def test_unknown_format(tmp_path):
    (tmp_path / "data.csv").write_text("1,2\n")
    with pytest.raises(DatasetError, match=r"unknown dataset format .*supported: scalerl"):
        load_any(tmp_path / "data.csv")
    with pytest.raises(DatasetError, match=r"unknown dataset format 'csv'; choose one of"):
        save_any(tmp_path / "x.csv", make_ds(), "csv")
    with pytest.raises(DatasetError, match="is not a Minari dataset"):
        load_any(tmp_path)


def test_minari_errors(tmp_path):
    with pytest.raises(DatasetError, match="invalid Minari dataset id 'no-version'"):
        save_minari(tmp_path, "no-version", make_ds())
    path = save_minari(tmp_path, "d-v0", make_ds())
    with pytest.raises(DatasetError, match="already exists"):
        save_minari(tmp_path, "d-v0", make_ds())
    save_minari(tmp_path, "d-v0", make_ds(n=3), overwrite=True)
    assert len(load_minari(path)) == 3
    meta_path = path / "data" / "metadata.json"
    meta = json.loads(meta_path.read_text())
    meta["observation_space"] = json.dumps({"type": "Dict", "subspaces": {}})
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(DatasetError, match="Dict observation_space.*only flat"):
        load_minari(path)


def test_minari_dict_observations_rejected(tmp_path):
    path = save_minari(tmp_path, "d-v0", make_ds())
    with h5py.File(path / "data" / "main_data.hdf5", "a") as f:
        del f["episode_0/observations"]
        f["episode_0/observations/pos"] = np.zeros((4, 2))
    with pytest.raises(DatasetError, match="dict/tuple observations; scalerl supports only flat"):
        load_minari(path)
