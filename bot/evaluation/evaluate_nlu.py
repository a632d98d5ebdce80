"""Held-out NLU evaluation: intent F1 of a trained model on bot/evaluation/nlu_heldout.yml.

Run with the Rasa virtualenv's interpreter, from any directory:

    .venv-rasa/bin/python bot/evaluation/evaluate_nlu.py [--model PATH] [--out DIR] [--threshold 0.90]

Without --model it evaluates the model `bot/launch.py train` returns for the current inputs
(bot/models/<inputs digest>.tar.gz), training it first if it does not exist yet, unless --no-train
is given. It runs `rasa test nlu --nlu bot/evaluation/nlu_heldout.yml --model <model>`, reads
the intent_report.json Rasa writes, prints per-intent F1 with the weighted and macro averages,
and writes them to <out>/summary.json.

Honest about fallbacks: on its own, `rasa test nlu` undoes the FallbackClassifier's prediction and
scores the intent ranked below nlu_fallback. The patient would get the fallback, not that intent,
so this script keeps nlu_fallback as the prediction (it counts as wrong for every test example).
Rasa is therefore run in this process, with that undo step switched off.

Averages are over the intents of the test set: nlu_fallback appears in Rasa's report as a
predicted label without test examples, and is left out of the macro average (weighted by
support, it adds nothing to the weighted average anyway).

Exit status: 0 when the weighted-average intent F1 reaches --threshold (and every intent reaches
--min-intent-f1, if given), 1 when it does not, 2 when the evaluation could not run.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

BOT_DIR = Path(__file__).resolve().parents[1]
ROOT = BOT_DIR.parent
# launch.py lives in bot/; with bot/ on sys.path the custom NLU components (carebridge_nlu) that
# the model names in its pipeline are importable in this process too.
if str(BOT_DIR) not in sys.path:
    sys.path.insert(0, str(BOT_DIR))

import launch  # noqa: E402

HELDOUT = BOT_DIR / "evaluation" / "nlu_heldout.yml"
DEFAULT_OUT = ROOT / "var" / "nlu-evaluation"
SUMMARY_FILE = "summary.json"
FALLBACK_INTENT = "nlu_fallback"
#: Keys of Rasa's (scikit-learn's) report that are not labels.
AGGREGATE_KEYS = {"accuracy", "micro avg", "macro avg", "weighted avg"}
EXIT_BELOW_THRESHOLD = 1
EXIT_ERROR = 2


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, help="model archive (default: the one for the current inputs)")
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help=f"results directory (default: {DEFAULT_OUT})"
    )
    parser.add_argument("--nlu", type=Path, default=HELDOUT, help=f"test data (default: {HELDOUT})")
    parser.add_argument("--threshold", type=float, default=0.90, help="minimum weighted-average intent F1")
    parser.add_argument(
        "--min-intent-f1", type=float, default=0.0, help="minimum F1 of every intent (default: off)"
    )
    parser.add_argument(
        "--no-train",
        action="store_true",
        help="fail instead of training when the default model does not exist",
    )
    return parser.parse_args(argv)


def default_model(allow_training: bool) -> Path:
    """The model `bot/launch.py train` returns for the current inputs."""
    model = launch.MODELS / f"{launch.inputs_digest()}.tar.gz"
    if model.exists() or not allow_training:
        return model
    return launch.train()


def run_rasa_test_nlu(model: Path, test_data: Path, out: Path) -> None:
    """`rasa test nlu` in this process, keeping nlu_fallback predictions as they are."""
    from rasa import __main__ as rasa_main
    from rasa.nlu.classifiers import fallback_classifier

    # rasa.nlu.test calls fallback_classifier.is_fallback_classifier_prediction() to decide whether
    # to undo a fallback; never undoing it scores what the patient would actually get.
    if not hasattr(fallback_classifier, "is_fallback_classifier_prediction"):
        raise SystemExit("this Rasa version undoes fallbacks differently: update evaluate_nlu.py")
    fallback_classifier.is_fallback_classifier_prediction = lambda prediction: False
    argv = ["rasa", "test", "nlu", "--nlu", str(test_data), "--model", str(model), "--out", str(out)]
    argv += ["--no-plot"]
    saved_argv, sys.argv = sys.argv, argv
    try:
        rasa_main.main()
    finally:
        sys.argv = saved_argv


def summarise(out: Path, model: Path, test_data: Path) -> dict[str, Any]:
    """Per-intent figures and averages from Rasa's intent_report.json (and its error list)."""
    report: dict[str, Any] = json.loads((out / "intent_report.json").read_text(encoding="utf-8"))
    intents = {
        label: values
        for label, values in sorted(report.items())
        if label not in AGGREGATE_KEYS and isinstance(values, dict) and values.get("support")
    }
    support = sum(values["support"] for values in intents.values())
    weighted = sum(values["f1-score"] * values["support"] for values in intents.values()) / support
    macro = sum(values["f1-score"] for values in intents.values()) / len(intents)
    errors_file = out / "intent_errors.json"
    errors = json.loads(errors_file.read_text(encoding="utf-8")) if errors_file.exists() else []
    pairs = Counter((error["intent"], error["intent_prediction"]["name"]) for error in errors)
    return {
        "model": str(model),
        "test_data": str(test_data),
        "examples": support,
        "accuracy": round(report.get("accuracy", 0.0), 4),
        "weighted_avg_f1": round(weighted, 4),
        "macro_avg_f1": round(macro, 4),
        "fallback_predictions": sum(
            count for (_, predicted), count in pairs.items() if predicted == FALLBACK_INTENT
        ),
        "per_intent": {
            label: {
                "precision": round(values["precision"], 4),
                "recall": round(values["recall"], 4),
                "f1": round(values["f1-score"], 4),
                "support": int(values["support"]),
            }
            for label, values in intents.items()
        },
        "confusions": [
            {"intent": intent, "predicted": predicted, "count": count}
            for (intent, predicted), count in pairs.most_common()
        ],
        "errors": [
            {
                "text": error["text"],
                "intent": error["intent"],
                "predicted": error["intent_prediction"]["name"],
                "confidence": round(error["intent_prediction"].get("confidence") or 0.0, 3),
            }
            for error in errors
        ],
    }


def print_summary(summary: dict[str, Any]) -> None:
    print(f"\nHeld-out intent F1 of {summary['model']} on {summary['examples']} examples")
    print(f"{'intent':<24} {'precision':>9} {'recall':>7} {'f1':>7} {'support':>8}")
    for intent, values in summary["per_intent"].items():
        print(
            f"{intent:<24} {values['precision']:>9.3f} {values['recall']:>7.3f} "
            f"{values['f1']:>7.3f} {values['support']:>8}"
        )
    print(f"{'weighted avg':<24} {'':>9} {'':>7} {summary['weighted_avg_f1']:>7.3f}")
    print(f"{'macro avg':<24} {'':>9} {'':>7} {summary['macro_avg_f1']:>7.3f}")
    print(f"accuracy {summary['accuracy']:.3f}, predicted as nlu_fallback: {summary['fallback_predictions']}")
    if summary["errors"]:
        print("errors (expected -> predicted, confidence):")
        for error in summary["errors"]:
            print(f"  {error['intent']} -> {error['predicted']} ({error['confidence']:.2f}): {error['text']}")


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    launch.prepare_environment()
    model = (args.model or default_model(allow_training=not args.no_train)).resolve()
    if not model.exists():
        print(f"no model at {model}: run `make model` (or pass --model)", file=sys.stderr)
        return EXIT_ERROR
    out = args.out.resolve()
    (out / "intent_report.json").unlink(missing_ok=True)
    (out / "intent_errors.json").unlink(missing_ok=True)
    (out / SUMMARY_FILE).unlink(missing_ok=True)
    try:
        run_rasa_test_nlu(model, args.nlu.resolve(), out)
    except SystemExit as exit_:
        if exit_.code:
            print(f"rasa test nlu failed: {exit_.code}", file=sys.stderr)
            return EXIT_ERROR
    if not (out / "intent_report.json").exists():
        print(f"rasa test nlu wrote no {out / 'intent_report.json'}", file=sys.stderr)
        return EXIT_ERROR

    summary = summarise(out, model, args.nlu.resolve())
    weak = {intent: v["f1"] for intent, v in summary["per_intent"].items() if v["f1"] < args.min_intent_f1}
    summary["threshold"] = args.threshold
    summary["min_intent_f1"] = args.min_intent_f1
    summary["passed"] = summary["weighted_avg_f1"] >= args.threshold and not weak
    (out / SUMMARY_FILE).write_text(
        json.dumps(summary, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    print_summary(summary)
    print(f"summary: {out / SUMMARY_FILE}")
    if summary["weighted_avg_f1"] < args.threshold:
        print(f"FAIL: weighted-average intent F1 {summary['weighted_avg_f1']:.3f} < {args.threshold:.2f}")
    for intent, f1 in weak.items():
        print(f"FAIL: intent {intent} F1 {f1:.3f} < {args.min_intent_f1:.2f}")
    return 0 if summary["passed"] else EXIT_BELOW_THRESHOLD


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
