"""benchmarks/slice.py's own measuring: the CPU time of a whole process tree, orphans
included, read without polling (run in a child: it makes itself a subreaper)."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# a child that forks a grandchild burning about 0.4 s of CPU and exits without waiting for
# it, as `wsd slice --workers 2` leaves its fork server (and the workers it reaped) behind
TREE = """
import os, time
if os.fork() == 0:
    t = time.process_time()
    while time.process_time() - t < 0.4:
        pass
    os._exit(0)
os._exit(0)
"""

PROBE = """
import importlib.util, sys
spec = importlib.util.spec_from_file_location("bench_slice", sys.argv[1])
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)
wall, cpu, others = bench.run_tree([sys.executable, "-c", sys.argv[2]])
print(wall, cpu, others)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_CHILD_SUBREAPER is Linux")
def test_run_tree_counts_the_cpu_of_orphaned_descendants():
    out = subprocess.run([sys.executable, "-c", PROBE, str(ROOT / "benchmarks/slice.py"), TREE],
                         capture_output=True, text=True, check=True).stdout.split()
    wall, cpu, others = map(float, out)
    assert cpu >= 0.4  # the grandchild's CPU, although its parent never waited for it
    assert others >= 0.0 and wall > 0
