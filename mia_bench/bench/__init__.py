"""Benchmarks (`make bench`): training and gradient-norm speed against plain baselines."""
