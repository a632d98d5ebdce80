"""The fault-injection suite's short version (bench/faults.py --short): two web processes behind a
load balancer, two workers, Rasa, a mixed load, and one fault after another; nothing acknowledged
may be lost and nothing may go out twice, and every complaint confirmed mid-fault is registered
once."""

from __future__ import annotations

import re
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
    # Complaints filed through the chat's intake while the faults ran: confirmed ones registered once.
    summary = re.search(
        r"complaints: (\d+) started, (\d+) confirmed, (\d+) registered once, 0 lost, 0 duplicated", table
    )
    assert summary is not None, table
    started, confirmed, registered = map(int, summary.groups())
    assert started >= len(SHORT_FAULTS) // 2 and confirmed >= 1 and registered >= 1, table
