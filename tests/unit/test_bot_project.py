"""The Rasa project itself: domain, training data and config must agree (`rasa data validate`)."""

from __future__ import annotations

import subprocess

from tests.support.stack import RASA_PY, ROOT


def test_rasa_data_validate_passes() -> None:
    result = subprocess.run(
        [str(RASA_PY), "bot/launch.py", "validate"], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def test_every_feature_has_its_domain_and_training_data() -> None:
    domains = {path.stem for path in (ROOT / "bot" / "intents").glob("*.yml")}
    data = {path.name for path in (ROOT / "training_data").iterdir() if path.is_dir()}
    assert domains == data, "bot/intents/<feature>.yml and training_data/<feature>/ must match"
