"""One experiment, the protocol top to bottom (`run.py`): the models it trains, the
reference models of LiRA / RMIA, early-stopping snapshots and the results it writes."""
