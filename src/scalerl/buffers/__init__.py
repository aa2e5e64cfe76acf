"""Replay buffers: an on-device, pure-functional, vmappable uniform buffer with n-step returns."""

from scalerl.buffers.replay import (
    Batch,
    ReplayState,
    Transition,
    can_sample,
    load_replay,
    replay_add,
    replay_add_batch,
    replay_from_numpy,
    replay_init,
    replay_sample,
    replay_sample_many,
    replay_to_numpy,
    save_replay,
)

__all__ = [
    "Batch",
    "ReplayState",
    "Transition",
    "can_sample",
    "load_replay",
    "replay_add",
    "replay_add_batch",
    "replay_from_numpy",
    "replay_init",
    "replay_sample",
    "replay_sample_many",
    "replay_to_numpy",
    "save_replay",
]
