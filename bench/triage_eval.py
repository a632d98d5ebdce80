"""Triage quality on our own evaluation sets (bench/triage_eval/), never used to build the rules.

    .venv/bin/python bench/triage_eval.py --departments                   # development half
    .venv/bin/python bench/triage_eval.py --departments --split heldout   # the held-out half
    .venv/bin/python bench/triage_eval.py --departments --method tfidf    # the jieba + TF-IDF rival

Prints top-1 and top-3 accuracy (a department in `accept` counts as right), per department where
it missed, and the questions missed with `--misses`. Figures go in docs/PERFORMANCE.md.
The `tfidf` method needs `pip install jieba`; it is measured here only, not used by the product.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from crm_backend.triage.catalogue import DepartmentProfile, TriageData, load_triage_data
from crm_backend.triage.departments import OBSTETRICS, PAEDIATRICS, normalise, recommend
from crm_backend.triage.subject import read_subject

EVAL_DIR = Path(__file__).with_name("triage_eval")


@dataclass(frozen=True)
class Question:
    text: str
    expect: str
    accept: frozenset[str]
    age: int | None
    sex: str | None
    pregnant: bool | None
    heldout: bool

    @property
    def right(self) -> frozenset[str]:
        return self.accept | {self.expect}


def department_questions(path: Path = EVAL_DIR / "departments.yml") -> list[Question]:
    """Every question; within a department the 2nd, 4th, ... are the held-out half."""
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    questions = []
    for code, entries in raw["departments"].items():
        for index, entry in enumerate(entries):
            item = entry if isinstance(entry, dict) else {"text": entry}
            questions.append(
                Question(
                    text=str(item["text"]),
                    expect=code,
                    accept=frozenset(item.get("accept", ())),
                    age=item.get("age"),
                    sex=item.get("sex"),
                    pregnant=item.get("pregnant"),
                    heldout=index % 2 == 1,
                )
            )
    return questions


Ranker = Callable[[Question], list[str]]


def terms_ranker(data: TriageData) -> Ranker:
    def rank(q: Question) -> list[str]:
        result = recommend(q.text, age_years=q.age, sex=q.sex, pregnant=q.pregnant, data=data)
        return [d.code for d in result.departments]

    return rank


def tfidf_ranker(data: TriageData) -> Ranker:
    """jieba words + TF-IDF, cosine to each department's document (its name, aliases, description and
    term words, repeated by weight); then the same who-is-ill rules as the product."""
    import jieba

    jieba.setLogLevel(60)

    def words(text: str) -> list[str]:
        return [
            w
            for w in jieba.lcut_for_search(normalise(text))
            if w.strip() and w not in "，。、？！,.?!的了是我"
        ]

    def document(d: DepartmentProfile) -> list[str]:
        tokens = words(" ".join([d.name, *d.aliases, d.description]))
        for term in d.terms:
            for part in term.term.split("…"):
                for option in part.split("/"):
                    tokens += words(option) * max(1, round(term.weight))
        return tokens

    docs = {d.code: Counter(document(d)) for d in data.departments}
    df = Counter(w for counts in docs.values() for w in counts)
    n = len(docs)

    def vector(counts: Counter[str]) -> dict[str, float]:
        v = {w: (1 + math.log(c)) * math.log((n + 1) / (df[w] + 1)) for w, c in counts.items() if w in df}
        norm = math.sqrt(sum(x * x for x in v.values())) or 1.0
        return {w: x / norm for w, x in v.items()}

    vectors = {code: vector(c) for code, c in docs.items()}
    by_code = {d.code: d for d in data.departments}

    def rank(q: Question) -> list[str]:
        subject = read_subject(normalise(q.text), age_years=q.age, sex=q.sex, pregnant=q.pregnant)
        v = vector(Counter(words(q.text)))
        scores = {code: sum(x * dv.get(w, 0.0) for w, x in v.items()) for code, dv in vectors.items()}
        order = sorted(scores, key=lambda c: -scores[c])
        fits = []
        for code in order:
            d = by_code[code]
            if subject.sex and d.sex and d.sex != subject.sex:
                continue
            age = subject.age_years
            if age is None and d.max_age is not None:
                continue
            if age is not None and not d.sees_age(age):
                code = PAEDIATRICS if subject.is_child else None
            if code and code not in fits:
                fits.append(code)
        if subject.pregnant:
            fits = [OBSTETRICS, *[c for c in fits if c != OBSTETRICS]]
        return fits[:3]

    return rank


def evaluate(questions: Sequence[Question], rank: Ranker, *, show_misses: bool) -> None:
    top1 = top3 = 0
    missed: dict[str, int] = defaultdict(int)
    started = time.perf_counter()
    for q in questions:
        got = rank(q)
        if got and got[0] in q.right:
            top1 += 1
        else:
            missed[q.expect] += 1
            if show_misses:
                print(f"  miss {q.expect:5} got {','.join(got):18} {q.text}")
        if q.right & set(got[:3]):
            top3 += 1
    elapsed = (time.perf_counter() - started) / max(len(questions), 1)
    n = len(questions)
    print(
        f"{n} questions, {len({q.expect for q in questions})} departments: "
        f"top-1 {top1 / n:.1%} ({top1}), top-3 {top3 / n:.1%} ({top3}); {elapsed * 1000:.2f} ms per question"
    )
    if missed:
        print(
            "top-1 misses by expected department: " + ", ".join(f"{c} {k}" for c, k in sorted(missed.items()))
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--departments", action="store_true", help="department top-1 / top-3 accuracy")
    parser.add_argument("--split", choices=("dev", "heldout", "all"), default="dev")
    parser.add_argument("--method", choices=("terms", "tfidf"), default="terms")
    parser.add_argument("--misses", action="store_true", help="print every top-1 miss")
    parser.add_argument(
        "--file",
        type=Path,
        default=EVAL_DIR / "departments.yml",
        help="the question set (default: %(default)s)",
    )
    args = parser.parse_args()
    if not args.departments:
        parser.error("say what to evaluate: --departments")
    questions = [
        q
        for q in department_questions(args.file)
        if args.split == "all" or q.heldout == (args.split == "heldout")
    ]
    data = load_triage_data()
    rank = terms_ranker(data) if args.method == "terms" else tfidf_ranker(data)
    print(f"method {args.method}, split {args.split}, triage data {data.version}")
    evaluate(questions, rank, show_misses=args.misses)


if __name__ == "__main__":
    main()
