"""What an attack reads of a model: logits, losses, labels and per-sample gradient
norms (`compute.py`, `gradnorms.py`)."""
