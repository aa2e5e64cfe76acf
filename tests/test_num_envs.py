"""Several environments per seed (`--num-envs`): transitions, updates, resume, presets."""

from __future__ import annotations

import functools
import shutil
from pathlib import Path

import jax
import numpy as np
import pytest

from scalerl.cli import main, parse_train
from scalerl.config import TrainConfig
from scalerl.train.checkpoint import read_checkpoint_meta
from scalerl.train.evaluate import load_run_agent
from scalerl.train.logging import read_metrics_csv
from scalerl.train.resume import ActionLog, list_checkpoints, load_resume, resume_template
from scalerl.train.setup import build_agent, read_config
from scalerl.train.vector import final_observations, single_env_view, with_env_axis

N, STEPS, LIMIT = 4, 240, 25
ARGS = [
    "--env", "Pendulum-v1", "--agent", "mlp", "--env-steps", str(STEPS), "--warmup-steps", "40",
    "--num-envs", str(N), "--max-episode-steps", str(LIMIT), "--utd", "0.5",
    "--eval-every", "120", "--eval-episodes", "1", "--checkpoint-every", "40", "--log-every", "40",
    "--health-every", "0", "--critic-width", "16", "--actor-width", "16", "--batch-size", "16",
    "--seeds", "0-1", "--no-progress", "--no-tensorboard",
]  # fmt: skip


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> list[Path]:
    root = tmp_path_factory.mktemp("runs")
    assert main(["train", *ARGS, "--run-root", str(root), "--name", "vec"]) == 0
    return [root / "vec-s0", root / "vec-s1"]


def assert_same_run(a: Path, b: Path) -> None:
    """Same final parameters and the same metrics rows (nothing logged twice or lost)."""
    for x, y in zip(jax.tree.leaves(load_run_agent(a)[1]), jax.tree.leaves(load_run_agent(b)[1]),
                    strict=True):  # fmt: skip
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    rows = lambda d: sorted((r["metric"], r["env_step"], r["value"])  # noqa: E731
                            for r in read_metrics_csv(d / "metrics.csv")
                            if not r["metric"].startswith("perf/"))  # fmt: skip
    assert rows(a) == rows(b)


@functools.cache
def newest(run_dir: Path) -> tuple[dict, dict]:
    """The newest resume checkpoint of a run: (tree, meta)."""
    cfg = read_config(run_dir)
    sac = build_agent(cfg, 3, 1)
    return load_resume(run_dir, resume_template(sac, STEPS))


def test_every_environment_step_is_one_transition(runs):
    tree, meta = newest(runs[0])
    assert meta["t"] == STEPS and int(tree["buffer"].size) == STEPS
    assert tree["actions"].shape == (STEPS // N, N, 1)
    stored = np.asarray(tree["buffer"].data.action)
    np.testing.assert_array_equal(stored, tree["actions"].reshape(STEPS, 1))


def test_no_transition_crosses_an_episode_end(runs):
    tree, _ = newest(runs[0])
    data = jax.tree.map(lambda x: np.asarray(x).reshape(STEPS // N, N, -1), tree["buffer"].data)
    ends = data.truncated[..., 0] > 0
    # Pendulum never terminates: every environment truncates every 25 steps, at the same times.
    assert ends.sum() == N * (STEPS // N // LIMIT) and not data.terminated.any()
    np.testing.assert_array_equal(np.flatnonzero(ends[:, 0]) + 1, [25, 50])
    cont = ~ends[:-1]
    np.testing.assert_array_equal(data.next_obs[:-1][cont], data.obs[1:][cont])
    # At an end the row keeps the final observation; the next row starts from a reset.
    assert not np.allclose(data.next_obs[:-1][~cont], data.obs[1:][~cont])


def test_updates_are_utd_per_transition(runs):
    meta = read_checkpoint_meta(list_checkpoints(runs[0])[0])
    # Updates from agent step 40 on: 51 loop steps (t = 40, 44, ..., 240) of 4 transitions at
    # 0.5 update per transition.
    assert meta["updates"] == ((STEPS - 40) // N + 1) * N // 2 == 102
    assert meta["eval_resets"] == 3  # agent steps 0, 120 and 240


def test_environments_differ_and_seeds_differ(runs):
    trees = [newest(r)[0] for r in runs]
    first_obs = [np.asarray(t["buffer"].data.obs[:N]) for t in trees]
    assert len({row.tobytes() for row in first_obs[0]}) == N  # each env its own initial state
    assert not np.array_equal(first_obs[0], first_obs[1])


def test_agent_checkpoint_keeps_the_single_environment_layout(runs):
    _, state, meta = load_run_agent(runs[0])  # what scalerl evaluate and --init-from read
    assert np.shape(state.reward_stats.ret) == () and meta["agent_step"] == STEPS
    tree, _ = newest(runs[0])
    assert np.shape(tree["agent"].reward_stats.ret) == (N,)


def test_resume_with_several_environments_is_exact(runs, tmp_path):
    dirs = []
    for d in runs:
        shutil.copytree(d, tmp_path / d.name)
        dirs.append(tmp_path / d.name)
        for path in list_checkpoints(dirs[-1])[:1]:
            path.unlink()  # back to agent step 200, mid-episode, after the last evaluation
    assert main(["train", "--resume", *map(str, dirs)]) == 0
    for full, resumed in zip(runs, dirs, strict=True):
        assert_same_run(full, resumed)
        a, b = newest(full)[0], newest(resumed)[0]
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
            np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


@pytest.mark.slow
def test_worker_processes_step_like_the_main_process():
    from scalerl.envs import make_vector_env

    envs = [make_vector_env("Pendulum-v1", 3, 2, max_episode_steps=3, asynchronous=a)
            for a in (False, True)]  # fmt: skip
    try:
        outs = [[env.reset()[0]] for env in envs]
        for _ in range(4):  # crosses an episode end
            for env, out in zip(envs, outs, strict=True):
                obs, reward, _, truncated, info = env.step(np.full((2, 1), 0.5, np.float32))
                out += [obs, reward, truncated, final_observations(obs, info)]
        for a, b in zip(*outs, strict=True):
            np.testing.assert_array_equal(a, b)
    finally:
        for env in envs:
            env.close()


def test_final_observations_replace_only_ended_rows():
    next_obs = np.arange(6.0).reshape(3, 2)
    info = {"_final_obs": np.array([False, True, False]),
            "final_obs": np.array([None, np.array([9.0, 9.0]), None], dtype=object)}  # fmt: skip
    out = final_observations(next_obs, info)
    np.testing.assert_array_equal(out, [[0, 1], [9, 9], [4, 5]])
    np.testing.assert_array_equal(next_obs[1], [2, 3])  # the reset observation is kept for acting
    assert final_observations(next_obs, {}) is next_obs


def test_action_log_rows_are_loop_steps():
    log = ActionLog(3, 2, num_envs=4)
    log.record(8, np.ones((4, 2)))  # the loop step ending at agent step 8 is the second
    assert log.upto(8).shape == (2, 4, 2) and log.upto(8)[1].sum() == 8
    single = ActionLog(3, 2)
    single.record(2, np.ones(2))
    assert single.upto(2).shape == (2, 2) and single.upto(2)[1].sum() == 2


def test_env_axis_of_the_state_round_trips(runs):
    state = load_run_agent(runs[0])[1]
    assert with_env_axis(state, 1) is state
    wide = with_env_axis(state, 5)
    assert wide.reward_stats.ret.shape == (5,)
    assert np.shape(single_env_view(wide, 5).reward_stats.ret) == ()


def test_parallel_preset_and_explicit_flags_win():
    cfg = parse_train(["--preset", "parallel"])
    assert (cfg.num_envs, cfg.utd, cfg.agent.batch_size) == (128, 2 / 128, 32_768)
    cfg = parse_train(["--preset", "parallel", "--num-envs", "16", "--batch-size", "1024"])
    assert (cfg.num_envs, cfg.utd, cfg.agent.batch_size) == (16, 2 / 128, 1024)
    cfg = parse_train(["--agent", "mlp", "--preset", "parallel"])
    assert (cfg.agent.critic_width, cfg.agent.batch_size) == (256, 32_768)
    assert TrainConfig(preset="parallel").agent.batch_size == 32_768
    assert TrainConfig(preset="parallel", num_envs=8).num_envs == 8
    assert parse_train([]) == TrainConfig()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--num-envs", "0"], "num_envs must be >= 1"),
        (
            ["--num-envs", "4", "--n-step", "3", "--buffer-capacity", "8", "--warmup-steps", "8"],
            "must hold n_step",
        ),
        (["--num-envs", "8", "--env-steps", "6"], "below one step of 8 environments"),
        (["--preset", "fast"], "unknown preset 'fast'"),
    ],
)
def test_bad_num_envs_settings_are_one_line_errors(extra, message, tmp_path, capsys):
    args = ["train", "--env", "Pendulum-v1", "--run-root", str(tmp_path), *extra]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_nstep_capacity_is_a_multiple_of_num_envs():
    from scalerl.train.setup import replay_capacity, resolve

    args = ["--env", "Pendulum-v1", "--num-envs", "4", "--buffer-capacity", "10003"]
    assert replay_capacity(resolve(parse_train([*args, "--n-step", "3"]))) == 10000
    assert replay_capacity(resolve(parse_train(args))) == 10003  # one-step rows need no alignment


def test_nstep_returns_with_several_environments_train(tmp_path):
    args = [*ARGS[: ARGS.index("--seeds")], "--n-step", "3", "--env-steps", "120"]
    assert main(["train", *args, "--run-root", str(tmp_path), "--name", "nstep"]) == 0
    rows = read_metrics_csv(tmp_path / "nstep" / "metrics.csv")
    assert any(r["metric"] == "train/critic_loss" for r in rows)


def test_coloured_noise_has_one_sequence_per_environment():
    """TD3's power-law noise with 4 environments: env i enters the drawn sequence at row 3 i
    (horizon 12); an episode end redraws that environment's sequence only."""
    import jax.numpy as jnp

    from scalerl.train.setup import resolve

    args = ["--env", "Pendulum-v1", "--algo", "td3", "--agent", "mlp", "--noise-color", "1",
            "--noise-horizon", "12", "--num-envs", "4"]  # fmt: skip
    agent = build_agent(resolve(parse_train(args)), 3, 1)
    wide = with_env_axis(agent.init(jax.random.PRNGKey(0)), 4)
    seq = np.asarray(wide.extras["noise"]["seq"])
    assert seq.shape == (4, 12, 1) and np.all(seq == seq[:1])
    np.testing.assert_array_equal(wide.extras["noise"]["idx"], [0, 3, 6, 9])
    obs, restart = jnp.zeros((4, 3)), jnp.array([0.0, 1.0, 0.0, 0.0])
    new, action = agent.explore(wide, obs, jax.random.PRNGKey(1), restart)
    assert action.shape == (4, 1)
    np.testing.assert_array_equal(new.extras["noise"]["idx"], [1, 1, 7, 10])
    new_seq = np.asarray(new.extras["noise"]["seq"])
    assert not np.array_equal(new_seq[1], seq[1])  # redrawn at its episode end
    np.testing.assert_array_equal(new_seq[[0, 2, 3]], seq[[0, 2, 3]])
    one = single_env_view(new, 4).extras["noise"]  # the checkpoint keeps environment 0's
    np.testing.assert_array_equal(one["seq"], seq[0])
    assert int(one["idx"]) == 1


def test_td3_with_coloured_noise_trains_with_several_environments(tmp_path):
    args = [*ARGS[: ARGS.index("--seeds")], "--algo", "td3", "--noise-color", "1"]
    assert main(["train", *args, "--run-root", str(tmp_path), "--name", "pink"]) == 0
    rows = read_metrics_csv(tmp_path / "pink" / "metrics.csv")
    assert any(r["metric"] == "train/actor_loss" for r in rows)
