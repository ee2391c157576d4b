"""Training: the loop every model goes through (`loop.py`), k models side by side
(`stacked.py`) and the mid-training checkpoints a killed run resumes from (`resume.py`)."""
