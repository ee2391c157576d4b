"""Reproducing the papers: the targets behind `make table-*`, their planning, smoke-scale
fake datasets and the comparison with the papers' numbers."""
