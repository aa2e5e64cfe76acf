"""Network-health diagnostics (spec `plasticity.md` §5): activity, rank, norms, ELR."""

from scalerl.metrics.activity import dead_fraction, dormant_ratio, neuron_scores
from scalerl.metrics.elr import angular_update, elr_grad_ratio, elr_theory, is_kernel
from scalerl.metrics.health import collect_features, network_health
from scalerl.metrics.norms import (
    count_weighted_norm,
    distance,
    feature_norm,
    per_leaf_norms,
    tree_norm,
    zero_fraction,
)
from scalerl.metrics.rank import (
    all_ranks,
    effective_rank,
    feature_rank,
    pca_rank,
    singular_values,
    srank,
)

__all__ = [
    "all_ranks",
    "angular_update",
    "collect_features",
    "count_weighted_norm",
    "dead_fraction",
    "distance",
    "dormant_ratio",
    "effective_rank",
    "elr_grad_ratio",
    "elr_theory",
    "feature_norm",
    "feature_rank",
    "is_kernel",
    "network_health",
    "neuron_scores",
    "pca_rank",
    "per_leaf_norms",
    "singular_values",
    "srank",
    "tree_norm",
    "zero_fraction",
]
