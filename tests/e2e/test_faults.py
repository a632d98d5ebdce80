"""The fault-injection suite's short version (bench/faults.py --short): two web processes behind a
load balancer, two workers, Rasa, a mixed load, and one fault after another; nothing acknowledged
may be lost and nothing may go out twice."""

from __future__ import annotations

import subprocess
import sys

from bench.faults import SHORT_FAULTS
from tests.support.stack import ROOT


def test_nothing_is_lost_or_sent_twice_under_faults() -> None:
    run = subprocess.run(
        [sys.executable, "bench/faults.py", "--short"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    table = run.stdout
    assert run.returncode == 0, f"{table}\n{run.stderr[-4000:]}"
    for fault in SHORT_FAULTS:
        assert f"| {fault} |" in table, table
