"""scalerl: scalable deep RL for continuous control in JAX."""

__version__ = "0.1.0"
