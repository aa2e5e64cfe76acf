"""Offline-RL datasets: the `Dataset` container and the scalerl, D4RL and Minari file formats.

See docs/datasets.md.
"""

from scalerl.datasets.d4rl import load_d4rl, save_d4rl
from scalerl.datasets.dataset import Dataset, dataset_from_transitions, validate_dataset
from scalerl.datasets.io import FORMATS, detect_format, load_any, save_any
from scalerl.datasets.minari_format import load_minari, save_minari
from scalerl.datasets.scalerl_format import load_dataset, save_dataset

__all__ = [
    "FORMATS",
    "Dataset",
    "dataset_from_transitions",
    "detect_format",
    "load_any",
    "load_d4rl",
    "load_dataset",
    "load_minari",
    "save_any",
    "save_d4rl",
    "save_dataset",
    "save_minari",
    "validate_dataset",
]
