"""The fused train step: fractional UTD schedule and no retracing over a run."""

from __future__ import annotations

import jax
import pytest

from scalerl.config import AgentConfig, TrainConfig
from scalerl.train.loop import train
from scalerl.train.step import UpdateSchedule


@pytest.mark.parametrize(
    ("utd", "expected"),
    [(0.5, [0, 1, 0, 1]), (1.5, [1, 2, 1, 2]), (2.0, [2, 2, 2, 2]), (0.25, [0, 0, 0, 1])],
)
def test_fractional_utd_schedule(utd, expected):
    schedule = UpdateSchedule(utd)
    assert [schedule.next() for _ in range(4)] == expected


class CompileCounter:
    """Counts programs lowered for compilation (one per new function and signature). Lowering
    happens whether or not the persistent compilation cache then skips the backend compile
    (the tests share one cache, see conftest), so the count does not depend on the cache."""

    def __init__(self) -> None:
        self.count = 0
        jax.monitoring.register_event_duration_secs_listener(self._on_event)

    def _on_event(self, name: str, *args, **kwargs) -> None:
        if name.endswith("jaxpr_to_mlir_module_duration"):
            self.count += 1


def test_compile_count_does_not_grow_with_run_length(tmp_path):
    counter = CompileCounter()

    def compiles_for(env_steps: int, name: str) -> int:
        before = counter.count
        cfg = TrainConfig(
            env="dmc:cartpole-balance",
            env_steps=env_steps,
            warmup_steps=20,
            utd=0.5,
            buffer_capacity=50,
            eval_every=40,
            eval_episodes=1,
            max_episode_steps=60,
            log_every=10,
            progress=False,
            tensorboard=False,
            run_root=tmp_path,
            name=name,
            agent=AgentConfig(critic_width=16, actor_width=8, batch_size=8),
        )
        train(cfg)
        return counter.count - before

    compiles_for(160, "first")  # one-off compiles of eager helpers happen in the first run
    short = compiles_for(160, "short")
    long = compiles_for(480, "long")
    assert short > 0
    assert long == short, f"{short} compiles for 80 steps but {long} for 240: something retraces"
