"""Developers' entry to the same harness as `int8flow bench` (see docs/benchmarks.md).

    python benchmarks/bench.py --quick
"""
import sys

from int8flow.bench.runner import main

sys.exit(main())
