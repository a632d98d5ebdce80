"""NLU quality: intent F1 of the current model on the held-out set (bot/evaluation/nlu_heldout.yml).

The model is the one `bot/launch.py train` returns for the current inputs (`make test` runs
`make model` first); bot/evaluation/evaluate_nlu.py finds it the same way. A held-out message that
ends up as nlu_fallback counts as wrong. Takes about a minute on 2 cores (loading TensorFlow and
the model is most of it).
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support.stack import RASA_PY, ROOT

EVALUATE = ROOT / "bot" / "evaluation" / "evaluate_nlu.py"
HELDOUT = ROOT / "bot" / "evaluation" / "nlu_heldout.yml"
TRAINING_DATA = ROOT / "training_data"
MIN_WEIGHTED_F1 = 0.90
MIN_INTENT_F1 = 0.75

_INTENT = re.compile(r"^\s*-\s*intent:\s*(\S+)\s*$")
_EXAMPLE = re.compile(r"^\s+-\s+(.+?)\s*$")
_IGNORED = re.compile(r"[\s，,。.!！?？~～、]")


def nlu_examples(path: Path) -> dict[str, list[str]]:
    """Intent -> examples of a Rasa NLU file (plain examples, as all of ours are)."""
    examples: dict[str, list[str]] = {}
    intent: str | None = None
    for line in path.read_text(encoding="utf-8").splitlines():
        if match := _INTENT.match(line):
            intent = match.group(1)
            examples.setdefault(intent, [])
        elif intent and not line.lstrip().startswith("examples:") and (match := _EXAMPLE.match(line)):
            examples[intent].append(match.group(1))
        elif line and not line.startswith((" ", "#")):
            intent = None  # a new top-level key ends the nlu: list
    return examples


def normalised(text: str) -> str:
    return _IGNORED.sub("", text).lower()


def test_heldout_set_covers_every_trained_intent_and_is_never_trained_on() -> None:
    heldout = nlu_examples(HELDOUT)
    trained: dict[str, list[str]] = {}
    for path in sorted(TRAINING_DATA.glob("*/nlu.yml")):
        for intent, examples in nlu_examples(path).items():
            trained.setdefault(intent, []).extend(examples)
    assert set(heldout) == set(trained), "every trained intent needs held-out examples, and only those"
    assert all(len(examples) >= 15 for examples in heldout.values()), {i: len(e) for i, e in heldout.items()}
    seen = {normalised(example) for examples in trained.values() for example in examples}
    leaked = [example for examples in heldout.values() for example in examples if normalised(example) in seen]
    assert not leaked, f"held-out examples also in training_data/: {leaked}"


@pytest.fixture(scope="module")
def summary(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("nlu-evaluation")
    command = [
        str(RASA_PY),
        str(EVALUATE),
        "--no-train",
        "--out",
        str(out),
        "--threshold",
        str(MIN_WEIGHTED_F1),
    ]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    summary_file = out / "summary.json"
    if not summary_file.exists():
        pytest.fail(f"evaluation did not run (exit code {result.returncode}):\n{result.stderr[-3000:]}")
    return json.loads(summary_file.read_text(encoding="utf-8"))


def _errors(summary: dict[str, Any]) -> str:
    return "\n".join(f"{e['intent']} -> {e['predicted']}: {e['text']}" for e in summary["errors"])


def test_weighted_average_intent_f1(summary: dict[str, Any]) -> None:
    assert summary["weighted_avg_f1"] >= MIN_WEIGHTED_F1, _errors(summary)


def test_every_intent_f1(summary: dict[str, Any]) -> None:
    weak = {intent: v["f1"] for intent, v in summary["per_intent"].items() if v["f1"] < MIN_INTENT_F1}
    assert not weak, f"intents below F1 {MIN_INTENT_F1}: {weak}\n{_errors(summary)}"
