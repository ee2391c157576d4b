"""`python -m mia_bench.report`: see mia_bench/report/cli.py."""

import sys

from mia_bench.report.cli import main

sys.exit(main())
