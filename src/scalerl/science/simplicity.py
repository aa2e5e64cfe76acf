"""Simplicity-bias score of an architecture at random initialisation (`scalerl simplicity`).

The Neural Redshift measure (Teney et al., "Neural Redshift: Random Networks are not Random
Functions", CVPR 2024, §3), used by SimBa (Lee et al., ICLR 2025, §3) to compare architectures:

1. draw random weights (uniform in [−A, A], or the architecture's own initialisers);
2. evaluate the scalar output on an n × n grid over [lo, hi)², the grid embedded in a random
   2-D plane through the origin when the input has more than 2 dimensions;
3. |rfft2| without the zero frequency, summed per radial frequency, normalised (`spectrum`);
4. complexity c = mean frequency / max frequency; score = mean over inits of 1 / c, with a
   bootstrap CI over the inits.

Example:
    cfg = SimplicityConfig(archs="mlp,simba", grid=64, inits=8)
    results = run_simplicity(cfg)
    print(format_table(results))
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from scalerl.analysis.aggregate import bootstrap_mean_ci
from scalerl.errors import ConfigError
from scalerl.science.architectures import ARCHS, Init, ScalarNet, check_archs, init_params
from scalerl.science.spectrum import complexity


@dataclasses.dataclass(frozen=True)
class SimplicityConfig:
    """Settings of `scalerl simplicity` (defaults: docs/simplicity.md)."""

    archs: str = ",".join(ARCHS)
    """Comma-separated architectures: mlp, mlp-ln, residual, simba, simbav2, msr."""
    width: int = 256
    """Hidden width of every architecture."""
    depth: str = "2"
    """Number of layers/blocks; one value or a comma-separated list, e.g. 1,2,4."""
    init: Init = "uniform"
    """uniform: Dense weights and biases i.i.d. in [-A, A] (Neural Redshift); default: the
    architecture's own initialisers."""
    amplitude: float = 1.0
    """A, half-width of the uniform weight distribution."""
    grid: int = 256
    """Grid points per axis (even); the function is sampled on grid x grid inputs."""
    low: float = -100.0
    """Lower end of the input range on each grid axis."""
    high: float = 100.0
    """Upper end (excluded) of the input range on each grid axis."""
    input_dim: int = 2
    """Network input size; above 2 the grid lies in a random 2-D plane drawn per init."""
    inits: int = 32
    """Random initialisations averaged per architecture and depth."""
    batch: int = 1
    """Initialisations evaluated at once (vmap); above 1 with --init default, runs on a loaded
    2-core CPU hung (cause not found), so 1 is the default."""
    seed: int = 0
    """Seed of the initialisations and planes (the same keys for every architecture)."""
    out_dir: str = "simplicity"
    """Directory for results.json, table.md and the bar plot simplicity.png."""


def parse_list(text: str, name: str) -> tuple[str, ...]:
    """Items of a comma-separated option, stripped; ConfigError if there are none."""
    items = tuple(part.strip() for part in text.split(",") if part.strip())
    if not items:
        raise ConfigError(f"--{name} is empty; give one value or a comma-separated list")
    return items


def parse_depths(text: str) -> tuple[int, ...]:
    """The depths of `--depth` ("2" or "1,2,4"); ConfigError unless all are integers >= 1."""
    try:
        depths = tuple(int(d) for d in parse_list(text, "depth"))
    except ValueError as err:
        raise ConfigError(f"--depth must be integers such as 2 or 1,2,4, got {text!r}") from err
    if min(depths) < 1:
        raise ConfigError(f"--depth values must be >= 1, got {text!r}")
    return depths


def validate(cfg: SimplicityConfig) -> None:
    """Raises ConfigError on a setting the measure cannot use."""
    check_archs(parse_list(cfg.archs, "archs"))
    parse_depths(cfg.depth)
    if cfg.grid < 4 or cfg.grid % 2:
        raise ConfigError(f"--grid must be an even number >= 4, got {cfg.grid}")
    if not cfg.low < cfg.high or cfg.amplitude <= 0:
        raise ConfigError("need --low < --high and --amplitude > 0")
    if cfg.input_dim < 2 or cfg.inits < 2 or cfg.batch < 1:
        raise ConfigError("need --input-dim >= 2, --inits >= 2 and --batch >= 1")


def grid_points(n: int, low: float, high: float) -> jax.Array:
    """The n × n grid over [low, high)² (endpoint excluded: one period of the FFT), (n², 2)."""
    axis = jnp.linspace(low, high, n, endpoint=False)
    gx, gy = jnp.meshgrid(axis, axis, indexing="ij")
    return jnp.stack([gx.ravel(), gy.ravel()], axis=-1)


def plane_inputs(points: jax.Array, key: jax.Array, input_dim: int) -> jax.Array:
    """Grid points as network inputs: as is for 2 inputs, else on a random orthonormal plane."""
    if input_dim == 2:
        return points
    basis, _ = jnp.linalg.qr(jax.random.normal(key, (input_dim, 2)))
    return points @ basis.T


def complexities(cfg: SimplicityConfig, arch: str, depth: int) -> np.ndarray:
    """Complexity c of `cfg.inits` random initialisations of one architecture, shape (inits,)."""
    net = ScalarNet(arch, cfg.width, depth)
    points = grid_points(cfg.grid, cfg.low, cfg.high)

    def one(key: jax.Array) -> jax.Array:
        k_params, k_plane = jax.random.split(key)
        params = init_params(net, k_params, cfg.input_dim, cfg.init, cfg.amplitude)
        values = net.apply(params, plane_inputs(points, k_plane, cfg.input_dim))
        return complexity(values.reshape(cfg.grid, cfg.grid).astype(jnp.float32))

    keys = jax.random.split(jax.random.PRNGKey(cfg.seed), cfg.inits)
    run = jax.jit(lambda ks: jax.lax.map(one, ks, batch_size=cfg.batch))
    return np.asarray(run(keys), np.float64)


def score(c: np.ndarray, reps: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """Simplicity score mean(1 / c) over inits with its 95 % percentile bootstrap interval."""
    mean, low, high = bootstrap_mean_ci(1.0 / np.asarray(c, np.float64), reps, seed=seed)
    return float(mean[0]), float(low[0]), float(high[0])
