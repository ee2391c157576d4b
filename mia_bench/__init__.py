"""mia_bench: membership inference attacks and training-time defenses, one Hydra config away."""

__version__ = "0.1.0"
