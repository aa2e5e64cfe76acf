"""Learning tests (slow): each agent (SAC with each network; TD3 and DDPG with the MLP) must
solve Pendulum-v1 with a small network.

Random actions score about -1200 to -1500 on Pendulum-v1; a swing-up policy scores above -200.
The test asserts the best of the last three evaluations (agent steps 5k-7k) beats -300.
Each run takes 7,000 agent steps (1,000 random) at UTD 1 with 5 evaluation episodes.
"""

from __future__ import annotations

import pytest

from conftest import eval_returns
from scalerl.config import TrainConfig, agent_preset, replace
from scalerl.train.loop import train

THRESHOLD = -300.0

SIZES = {
    "simbav2": {"critic_width": 128, "critic_depth": 1, "actor_width": 64},
    "simba": {"critic_width": 128, "critic_depth": 1, "actor_width": 64},
    "mlp": {"critic_width": 128, "actor_width": 128},
}


def _pendulum_run(tmp_path, name: str, agent) -> list[float]:
    """Evaluation returns of a 7,000-step Pendulum-v1 run (1,000 random steps, UTD 1)."""
    cfg = TrainConfig(
        env="Pendulum-v1",
        seed=0,
        env_steps=7_000,
        warmup_steps=1_000,
        utd=1.0,
        eval_every=1_000,
        eval_episodes=5,
        progress=False,
        tensorboard=False,
        run_root=tmp_path,
        name=name,
        agent=agent,
    )
    returns = eval_returns(train(cfg))
    assert returns[0] < -900.0, f"untrained policy should fail, got {returns[0]:.0f}"
    return returns


@pytest.mark.slow
@pytest.mark.parametrize("agent", ["simbav2", "simba", "mlp"])
def test_agent_swings_up_pendulum(agent, tmp_path):
    returns = _pendulum_run(tmp_path, agent, replace(agent_preset(agent), **SIZES[agent]))
    assert max(returns[-3:]) > THRESHOLD, f"{agent} eval returns: {[round(r) for r in returns]}"


@pytest.mark.slow
@pytest.mark.parametrize("algo", ["td3", "ddpg"])
def test_deterministic_algos_swing_up_pendulum(algo, tmp_path):
    """TD3 and DDPG (white exploration noise 0.1) with the small MLP, same budget as SAC's.

    When written, seed 0 reached -332 (TD3) and -151 (DDPG) at 6k steps, from about -1250.
    """
    agent = replace(agent_preset("mlp"), algo=algo, **SIZES["mlp"])
    returns = _pendulum_run(tmp_path, algo, agent)
    assert max(returns[-3:]) > THRESHOLD, f"{algo} eval returns: {[round(r) for r in returns]}"
