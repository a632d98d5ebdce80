"""Ctrl-C is how `make run` ends: make must not report it as `make: *** [run] Error 130`."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from tests.support.stack import ROOT, free_port, wait_until


def test_ctrl_c_ends_make_run_without_an_error(tmp_path: Path) -> None:
    # `make run`'s own recipe with real honcho; only what it starts is a stand-in (and no install).
    procfile = tmp_path / "Procfile"
    procfile.write_text("sleeper: sleep 60\n")
    output = tmp_path / "make.out"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAKE")} | {"PYTHONUNBUFFERED": "1"}
    with output.open("wb") as out:
        make = subprocess.Popen(
            [
                "make",
                "-o",
                "install",
                "-o",
                "migrate",
                "-o",
                "model",
                "run",
                "APP_PY=true",
                f"PROCFILE={procfile}",
                f"PORT={free_port()}",
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, as a terminal's foreground job
        )
    try:
        wait_until(lambda: "sleeper.1 started" in output.read_text(), 30, "honcho to start the process")
        os.killpg(make.pid, signal.SIGINT)  # what Ctrl-C does: the whole foreground group
        code = make.wait(30)
    finally:
        if make.poll() is None:
            os.killpg(make.pid, signal.SIGKILL)
    text = output.read_text()
    # make itself ends by the user's signal, as any program does on Ctrl-C (the shell prints nothing);
    # what must not happen is make reporting the recipe as failed.
    assert code in (0, -signal.SIGINT), text
    assert "Error" not in text and "sleeper.1 stopped" in text, text
