"""Science tools: measurements of architectures rather than training code.

`simplicity` is the Neural Redshift simplicity-bias score (Teney et al., CVPR 2024) of a network
at random initialisation; see docs/simplicity.md.
"""
