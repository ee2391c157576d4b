"""Privacy auditing with canaries: the canaries themselves (`canaries.py`) and empirical
epsilon lower bounds from an attack's scores on them (`epsilon.py`)."""
