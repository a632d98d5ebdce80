"""Measure the red-flag screen on its evaluation set: emergency recall and false-alarm rate.

The sets (bench/triage_eval/emergencies*.yml) are in patients' own words; the first was written
before the rules, each later one after the rules were revised on the ones before it, so each new
set's first measurement is the honest figure for unseen wording. The tests never use them.
Figures go in docs/PERFORMANCE.md.

    .venv/bin/python bench/triage_red_flags.py            # all eleven sets, every miss and false alarm
    .venv/bin/python bench/triage_red_flags.py --quiet    # figures only
    .venv/bin/python bench/triage_red_flags.py --set bench/triage_eval/emergencies_fifth.yml
    .venv/bin/python bench/triage_red_flags.py --departments bench/triage_eval/departments.yml
        # also: how many ordinary department questions (all but the EMER group) raise a red flag
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from crm_backend.triage.red_flag_rules import rule_book
from crm_backend.triage.red_flags import screen

EVAL_DIR = Path(__file__).with_name("triage_eval")
# In the order they were written; each after the rules were revised on the ones before it.
EVAL_SETS = (
    "emergencies",
    "emergencies_holdout",
    "emergencies_third",
    "emergencies_fourth",
    "emergencies_fifth",
    "emergencies_sixth",
    "emergencies_seventh",
    "emergencies_eighth",
    "emergencies_ninth",
    "emergencies_tenth",
    "emergencies_eleventh",
    "emergencies_lead",
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quiet", action="store_true", help="print the figures only")
    parser.add_argument(
        "--set", type=Path, action="append", help="an evaluation file (repeatable; default: all eleven)"
    )
    parser.add_argument("--departments", type=Path, help="a department evaluation file: count its red flags")
    args = parser.parse_args()
    paths = args.set or [EVAL_DIR / f"{name}.yml" for name in EVAL_SETS]
    book = rule_book()
    print(f"rules version {book.version}, {len(book.rules)} rules")
    total_emergencies = total_missed = total_look_alikes = total_alarms = 0
    timings: list[float] = []
    for path in paths:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        emergencies, look_alikes = data["emergencies"], data["look_alikes"]
        missed = [case for case in emergencies if not screen(case["text"]).emergency]
        alarms = [(case, screen(case["text"])) for case in look_alikes]
        alarms = [(case, result) for case, result in alarms if result.emergency]
        for case in [*emergencies, *look_alikes] * 5:
            started = time.perf_counter()
            screen(case["text"])
            timings.append(time.perf_counter() - started)
        print(
            f"{path.name}: emergency recall {1 - len(missed) / len(emergencies):.1%} "
            f"({len(emergencies) - len(missed)} of {len(emergencies)}), false alarms "
            f"{len(alarms) / len(look_alikes):.1%} ({len(alarms)} of {len(look_alikes)} look-alikes)"
        )
        if not args.quiet:
            for case in missed:
                print(f"  missed [{case['kind']}]: {case['text']}")
            for case, result in alarms:
                print(f"  false alarm [{case['kind']}]: {case['text']} -> {', '.join(result.rule_ids)}")
        total_emergencies += len(emergencies)
        total_missed += len(missed)
        total_look_alikes += len(look_alikes)
        total_alarms += len(alarms)
    false_alarms = total_alarms / total_look_alikes
    print(
        f"all: emergency recall {1 - total_missed / total_emergencies:.1%} "
        f"({total_emergencies - total_missed} of {total_emergencies}), false alarms {false_alarms:.1%} "
        f"({total_alarms} of {total_look_alikes})"
    )
    p99 = statistics.quantiles(timings, n=100)[98]
    print(
        f"screen time: median {statistics.median(timings) * 1000:.2f} ms, 99th percentile {p99 * 1000:.2f} ms"
    )
    if args.departments:
        report_departments(args.departments, args.quiet)
    return 0 if not total_missed and false_alarms <= 0.05 else 1


def report_departments(path: Path, quiet: bool) -> None:
    """Questions written for department recommendation, by another author: all but the emergency
    department's should rarely raise a red flag."""
    groups = yaml.safe_load(path.read_text(encoding="utf-8"))["departments"]
    ordinary = [
        item if isinstance(item, str) else item["text"]
        for code, items in groups.items()
        if code != "EMER"
        for item in items
    ]
    flagged = [(text, screen(text).rule_ids) for text in ordinary]
    flagged = [(text, rules) for text, rules in flagged if rules]
    print(
        f"department questions (not EMER) with a red flag: {len(flagged) / len(ordinary):.1%} "
        f"({len(flagged)} of {len(ordinary)})"
    )
    if not quiet:
        for text, rules in flagged:
            print(f"  flagged: {text} -> {', '.join(rules)}")


if __name__ == "__main__":
    sys.exit(main())
