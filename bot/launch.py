"""Train and run CareBridge's Rasa assistant without shell tricks.

Run with the Rasa virtualenv's interpreter, from any directory:

    .venv-rasa/bin/python bot/launch.py train      # train only if bot inputs changed
    .venv-rasa/bin/python bot/launch.py server     # train if needed, then run Rasa (REST + HTTP API)
    .venv-rasa/bin/python bot/launch.py actions    # run the custom action server
    .venv-rasa/bin/python bot/launch.py validate   # check domain, data and config
    .venv-rasa/bin/python bot/launch.py rasa ...    # Rasa's own CLI, as the commands above run it

Environment (all optional):
    REDIS_URL           redis://[:password@]host:port/db, default redis://127.0.0.1:6379/0; split into
                        RASA_REDIS_HOST/PORT/DB/PASSWORD for bot/endpoints.yml unless those are set
    RASA_PORT           Rasa server port, default 5005
    RASA_INTERFACE      address Rasa binds to, default 127.0.0.1 (its HTTP API has no auth by default)
    RASA_AUTH_TOKEN     if set, required by Rasa's HTTP API (not by the REST channel webhook)
    ACTION_SERVER_PORT  action server port, default 5055
    LOG_LEVEL           read by Rasa itself (DEBUG, INFO, WARNING, ...)

`server` and `actions` replace this process with Rasa (exec), so signals from a process manager
reach Rasa directly.
"""

from __future__ import annotations

import hashlib
import os
import runpy
import shutil
import signal
import subprocess
import sys
import tempfile
import warnings
from importlib import metadata
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import unquote, urlsplit

BOT_DIR = Path(__file__).resolve().parent
ROOT = BOT_DIR.parent
CONFIG = BOT_DIR / "config.yml"
DOMAIN = BOT_DIR / "intents"
#: Custom NLU components named in config.yml: part of the model, so part of its hash.
NLU_COMPONENTS = BOT_DIR / "carebridge_nlu"
DATA = ROOT / "training_data"
MODELS = BOT_DIR / "models"
ENDPOINTS = BOT_DIR / "endpoints.yml"
CREDENTIALS = BOT_DIR / "credentials.yml"

#: Deprecation warnings that Rasa's pinned 2023 libraries print at every start, by the package
#: folder whose code raises them. Only these are silenced: anything else (our own code, Rasa's
#: warnings about the domain and training data) still shows.
QUIET_DEPRECATIONS = (
    "rasa/cli/arguments/",  # argparse: nesting argument groups
    "sanic_cors/",  # distutils' LooseVersion
    "tensorflow/",  # sre_constants, jax.xla_computation
    "matplotlib/",  # pyparsing's camelCase names (PyparsingDeprecationWarning)
)

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
REDIS_VARIABLES = ("RASA_REDIS_HOST", "RASA_REDIS_PORT", "RASA_REDIS_DB", "RASA_REDIS_PASSWORD")
#: Trained models kept in bot/models/ (most recently trained or used first).
KEEP_MODELS = 3
DIGEST_LENGTH = 16


def log(message: str) -> None:
    """Progress goes to stderr so `train` prints only the model path on stdout."""
    print(f"[launch] {message}", file=sys.stderr, flush=True)


def redis_settings(url: str) -> dict[str, str]:
    """Split a redis:// URL into the RASA_REDIS_* values bot/endpoints.yml reads."""
    parts = urlsplit(url)
    if parts.scheme != "redis":
        raise SystemExit(f"REDIS_URL must be redis://host:port/db for Rasa's stores, not {parts.scheme}://")
    if parts.username not in (None, "", "default"):
        raise SystemExit("REDIS_URL names a Redis ACL user; Rasa's stores here only support a password")
    db = parts.path.lstrip("/") or "0"
    if not db.isdigit():
        raise SystemExit(f"REDIS_URL database must be a number, got {db!r}")
    values = (parts.hostname or "127.0.0.1", str(parts.port or 6379), db, unquote(parts.password or ""))
    return dict(zip(REDIS_VARIABLES, values, strict=True))


def prepare_environment() -> None:
    """Set everything bot/endpoints.yml substitutes, plus switches that quieten Rasa and TF."""
    env = os.environ
    # Rasa fails on an unset ${VAR}, so all four must exist (an empty password means no AUTH).
    if not all(key in env for key in REDIS_VARIABLES):
        for key, value in redis_settings(env.get("REDIS_URL") or DEFAULT_REDIS_URL).items():
            env.setdefault(key, value)
    env.setdefault("RASA_PORT", "5005")
    env.setdefault("ACTION_SERVER_PORT", "5055")
    env.setdefault("RASA_TELEMETRY_ENABLED", "false")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.setdefault("SQLALCHEMY_SILENCE_UBER_WARNING", "1")
    # config.yml names components in bot/carebridge_nlu/, and the action server imports bot/dialogs/.
    paths = [path for path in env.get("PYTHONPATH", "").split(os.pathsep) if path and path != str(BOT_DIR)]
    env["PYTHONPATH"] = os.pathsep.join([str(BOT_DIR), *paths])
    # Rasa's training cache goes to <cwd>/.rasa/cache; pin it to bot/.rasa whatever the cwd.
    env.setdefault("RASA_CACHE_DIRECTORY", str(BOT_DIR / ".rasa" / "cache"))


def training_inputs() -> list[Path]:
    """Every file that shapes the model, in a stable order (editor droppings excluded)."""
    files = [CONFIG]
    for folder in (DOMAIN, NLU_COMPONENTS, DATA):
        files += sorted(
            path
            for path in folder.rglob("*")
            if path.is_file()
            and not any(part.startswith(".") for part in path.relative_to(folder).parts)
            and not path.name.endswith(("~", ".pyc"))
            and "__pycache__" not in path.parts
        )
    return files


def inputs_digest() -> str:
    """Content hash of the training inputs and the Rasa version: the model's file name."""
    digest = hashlib.sha256(f"rasa {metadata.version('rasa')}\n".encode())
    for path in training_inputs():
        digest.update(path.relative_to(ROOT).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:DIGEST_LENGTH]


def rasa_command(*args: str) -> list[str]:
    """Rasa's CLI through this interpreter (so the venv's rasa is used without PATH tricks), started
    by `run_rasa` below."""
    return [sys.executable, str(Path(__file__).resolve()), "rasa", *args]


def run_rasa(args: list[str]) -> None:
    """Rasa's CLI in this process, without its libraries' start-up deprecation warnings.

    Filters cannot do it: importing Sanic puts "show every DeprecationWarning once" in front of
    PYTHONWARNINGS' filters, and Rasa puts "show every UserWarning once" in front of everything
    (pyparsing's deprecations are both). So the warnings are dropped where they are shown.
    """
    show = warnings.showwarning

    def showwarning(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: TextIO | None = None,
        line: str | None = None,
    ) -> None:
        where = Path(filename).as_posix()
        if issubclass(category, DeprecationWarning) and any(
            f"/site-packages/{folder}" in where for folder in QUIET_DEPRECATIONS
        ):
            return
        show(message, category, filename, lineno, file, line)

    warnings.showwarning = showwarning
    if args[:1] == ["run"]:
        check_action_schema_once()
    sys.argv = ["rasa", *args]
    runpy.run_module("rasa", run_name="__main__", alter_sys=True)


def check_action_schema_once() -> None:
    """Rasa checks every action server's answer with `jsonschema.validate`, which first checks
    Rasa's own schema, the same every time, against JSON Schema's meta-schema: the larger part of
    Rasa's CPU for a turn with a custom action (docs/PERFORMANCE.md, "Figures behind code
    comments"). The schema is checked once here and each answer against it, with the validator
    class `jsonschema.validate` picks; an answer that fails goes through Rasa's own check, for its
    message.
    """
    from jsonschema import ValidationError, validators
    from rasa.core.actions.action import RemoteAction

    schema = RemoteAction.action_response_format_spec()
    validator_class = validators.validator_for(schema)
    validator_class.check_schema(schema)
    validator = validator_class(schema)
    rasa_check = RemoteAction._validate_action_result

    def validate_action_result(action: RemoteAction, result: dict[str, Any]) -> bool:
        try:
            validator.validate(result)
        except ValidationError:
            return rasa_check(action, result)  # raises Rasa's error
        return True

    RemoteAction._validate_action_result = validate_action_result  # type: ignore[method-assign]


def prune_models(keep: Path) -> None:
    """Delete old models named by launch.py, keeping the newest few (and always `keep`)."""
    ours = [
        path
        for path in MODELS.glob("*.tar.gz")
        if len(path.name) == DIGEST_LENGTH + len(".tar.gz")
        and all(char in "0123456789abcdef" for char in path.name[:DIGEST_LENGTH])
    ]
    ours.sort(key=lambda path: path.stat().st_mtime, reverse=True)
    for path in ours[KEEP_MODELS:]:
        if path != keep:
            log(f"removing old model {path.name}")
            path.unlink(missing_ok=True)


def train() -> Path:
    """Return the model for the current inputs, training it first if it does not exist yet."""
    name = inputs_digest()
    model = MODELS / f"{name}.tar.gz"
    if model.exists():
        model.touch()
        log(f"model is up to date: {model}")
        return model

    MODELS.mkdir(parents=True, exist_ok=True)
    # SIGTERM (e.g. a process manager stopping `server` while it trains) becomes SystemExit, so
    # subprocess.run kills `rasa train` and the scratch directory is removed, as on Ctrl-C.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    # Train into a scratch directory and move the result in place at the end, so an
    # interrupted run never leaves a half-written model under the name that means "done".
    with tempfile.TemporaryDirectory(prefix=".training-", dir=MODELS) as scratch:
        command = rasa_command(
            "train",
            "--config", str(CONFIG),
            "--domain", str(DOMAIN),
            "--data", str(DATA),
            "--out", scratch,
            "--fixed-model-name", name,
        )  # fmt: skip
        log(f"training model {name} (bot inputs changed)")
        # Rasa's own output goes to stderr too: stdout carries only the final model path.
        result = subprocess.run(command, cwd=BOT_DIR, stdout=sys.stderr, check=False)
        trained = Path(scratch) / f"{name}.tar.gz"
        if result.returncode != 0 or not trained.exists():
            raise SystemExit(f"rasa train failed (exit code {result.returncode})")
        shutil.move(trained, model)
    prune_models(keep=model)
    return model


def exec_rasa(*args: str, cwd: Path) -> None:
    """Replace this process with Rasa so it receives signals directly."""
    command = rasa_command(*args)
    log("exec " + " ".join(command))
    sys.stdout.flush()
    os.chdir(cwd)
    os.execvp(command[0], command)


def server() -> None:
    """Rasa server: REST channel, HTTP API, Redis tracker store (locks in memory: the CRM orders turns)."""
    model = train()
    args = [
        "run",
        "--enable-api",
        "--model", str(model),
        "--endpoints", str(ENDPOINTS),
        "--credentials", str(CREDENTIALS),
        "--interface", os.environ.get("RASA_INTERFACE", "127.0.0.1"),
        "--port", os.environ["RASA_PORT"],
    ]  # fmt: skip
    if os.environ.get("RASA_AUTH_TOKEN"):
        args += ["--auth-token", os.environ["RASA_AUTH_TOKEN"]]
    exec_rasa(*args, cwd=BOT_DIR)


def actions() -> None:
    """Action server for the `dialogs` package in bot/, on the Rasa server's interface.

    Whoever reaches it can run actions, which call the CRM with the bot token; rasa_sdk listens on
    every interface unless SANIC_HOST says otherwise."""
    os.environ.setdefault("SANIC_HOST", os.environ.get("RASA_INTERFACE", "127.0.0.1"))
    port = os.environ["ACTION_SERVER_PORT"]
    exec_rasa("run", "actions", "--actions", "dialogs", "--port", port, cwd=BOT_DIR)


def validate() -> int:
    """Check domain, training data and config, failing on the warnings Rasa counts as failures."""
    command = rasa_command(
        "data", "validate",
        "--domain", str(DOMAIN),
        "--data", str(DATA),
        "--config", str(CONFIG),
        "--fail-on-warnings",
    )  # fmt: skip
    return subprocess.run(command, cwd=BOT_DIR, check=False).returncode


def main(argv: list[str]) -> int:
    prepare_environment()
    if argv[:1] == ["rasa"]:  # rasa_command
        run_rasa(argv[1:])
        return 0
    commands = ("train", "server", "actions", "validate")
    if len(argv) != 1 or argv[0] not in commands:
        print(f"usage: {Path(sys.argv[0]).name} {{{'|'.join(commands)}}}", file=sys.stderr)
        return 2
    command = argv[0]
    if command == "train":
        print(train())
    elif command == "server":
        server()
    elif command == "actions":
        actions()
    else:
        return validate()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
