"""`python -m mia_bench.bench`: see mia_bench/bench/cli.py."""

import sys

from mia_bench.bench.cli import main

sys.exit(main())
