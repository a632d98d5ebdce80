"""Measure the red-flag screen on its evaluation set: emergency recall and false-alarm rate.

The set (bench/triage_eval/emergencies.yml) was written in patients' own words before the rules;
the tests never use it. Figures go in docs/PERFORMANCE.md.

    .venv/bin/python bench/triage_red_flags.py            # figures, and every miss and false alarm
    .venv/bin/python bench/triage_red_flags.py --quiet    # figures only
    .venv/bin/python bench/triage_red_flags.py --set bench/triage_eval/emergencies_holdout.yml
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

from crm_backend.triage.red_flags import rule_book, screen

EVAL_SET = Path(__file__).with_name("triage_eval") / "emergencies.yml"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quiet", action="store_true", help="print the figures only")
    parser.add_argument(
        "--set", type=Path, default=EVAL_SET, help="another evaluation file of the same shape"
    )
    parser.add_argument("--departments", type=Path, help="a department evaluation file: count its red flags")
    args = parser.parse_args()
    data = yaml.safe_load(args.set.read_text(encoding="utf-8"))
    emergencies, look_alikes = data["emergencies"], data["look_alikes"]

    missed = [case for case in emergencies if not screen(case["text"]).emergency]
    alarms = [(case, screen(case["text"])) for case in look_alikes]
    alarms = [(case, result) for case, result in alarms if result.emergency]

    timings = []
    for case in [*emergencies, *look_alikes] * 5:
        started = time.perf_counter()
        screen(case["text"])
        timings.append(time.perf_counter() - started)

    recall = 1 - len(missed) / len(emergencies)
    false_alarms = len(alarms) / len(look_alikes)
    print(f"rules version {rule_book().version}, {len(rule_book().rules)} rules, set {args.set.name}")
    print(f"emergency recall: {recall:.1%} ({len(emergencies) - len(missed)} of {len(emergencies)})")
    print(f"false-alarm rate: {false_alarms:.1%} ({len(alarms)} of {len(look_alikes)} look-alikes)")
    p99 = statistics.quantiles(timings, n=100)[98]
    print(
        f"screen time: median {statistics.median(timings) * 1000:.2f} ms, 99th percentile {p99 * 1000:.2f} ms"
    )
    if not args.quiet:
        for case in missed:
            print(f"  missed [{case['kind']}]: {case['text']}")
        for case, result in alarms:
            print(f"  false alarm [{case['kind']}]: {case['text']} -> {', '.join(result.rule_ids)}")
    if args.departments:
        report_departments(args.departments, args.quiet)
    return 0 if not missed and false_alarms <= 0.05 else 1


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
