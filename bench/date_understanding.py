"""Time Chinese date understanding (crm_backend/appointments/dates.py) once its library is loaded:
the median over the booking test table, and the slowest hostile input. Figures go in
docs/PERFORMANCE.md.

    .venv/bin/python bench/date_understanding.py
"""

from __future__ import annotations

import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from crm_backend.appointments.dates import understand_half_day, understand_when, warm_up
from tests.appointments.test_dates import HOSTILE, MONDAY_TABLE

NOW = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)


def timed(text: str) -> float:
    started = time.perf_counter()
    understand_when(text, NOW)
    understand_half_day(text)
    return time.perf_counter() - started


def main() -> None:
    warm_up()
    ordinary = [timed(text) for text, *_ in MONDAY_TABLE for _ in range(5)]
    hostile = [timed(text) for text in HOSTILE]
    print(f"ordinary phrases: median {statistics.median(ordinary) * 1000:.2f} ms over {len(ordinary)} calls")
    print(f"hostile inputs:   slowest {max(hostile) * 1000:.1f} ms of {len(hostile)}")


if __name__ == "__main__":
    main()
