# CareBridge: `make run` starts the whole stack, `make test` runs every test. Both install what is missing.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
RASA_VENV := .venv-rasa
APP_PY := $(VENV)/bin/python
RASA_PY := $(RASA_VENV)/bin/python

# Settings may live in .env (KEY=value lines); make and every process read the same file.
-include .env
export
PORT ?= 8000
# The web app listens here only: the sandbox, the simulator and the development bot token must not
# be reachable from the network. Set HOST=0.0.0.0 (in .env) behind a real proxy with real credentials.
HOST ?= 127.0.0.1
# The WeChat sandbox's own port when `make run-scaled` runs it as a separate process.
SANDBOX_PORT ?= 8901
# The action server reaches the CRM's bot API here (honcho gives each process its own PORT, so
# the web app's address is fixed before honcho starts).
CRM_API_URL ?= http://127.0.0.1:$(PORT)
ifeq ($(strip $(WECHAT_OA_APPID)),)
# No real official account: the web app serves the WeChat sandbox and the simulator itself.
WECHAT_API_BASE ?= http://127.0.0.1:$(PORT)
endif

.PHONY: help install run run-scaled test lint format migrate model bench clean browser

help:
	@echo "make run   - install what is missing, migrate, train if needed, start everything"
	@echo "make test  - install what is missing and run the whole test suite"

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' \
		|| { echo "CareBridge needs CPython 3.11 (found $$($(PYTHON) --version))"; exit 1; }
	@test -x $(APP_PY) || $(PYTHON) -m venv $(VENV)
	$(APP_PY) -m pip install -q --upgrade pip
	$(APP_PY) -m pip install -q -e '.[dev]'
	@touch $@

# Rasa 3.6 declares Python <3.11 and pins 2023 libraries: it gets its own environment and a
# verified pin set, installed without resolving (see bot/rasa-requirements.txt).
$(RASA_VENV)/.installed: bot/rasa-requirements.txt
	@test -x $(RASA_PY) || $(PYTHON) -m venv $(RASA_VENV)
	$(RASA_PY) -m pip install -q --upgrade pip
	$(RASA_PY) -m pip install -q --no-deps --ignore-requires-python -r bot/rasa-requirements.txt
	@touch $@

install: $(VENV)/.installed $(RASA_VENV)/.installed

migrate: $(VENV)/.installed
	$(VENV)/bin/alembic -c crm_backend/alembic.ini upgrade head

model: $(RASA_VENV)/.installed
	$(RASA_PY) bot/launch.py train

# Ctrl-C stops honcho, which ends with 130 (interrupted): that is how a run ends, not an error.
STOPPED_BY_CTRL_C := || [ $$? -eq 130 ]
PROCFILE ?= Procfile

run: install migrate model
	$(APP_PY) -m crm_backend.appointments.demo_data
	$(APP_PY) -m crm_backend.triage.seed
	$(APP_PY) -m crm_backend.followups.seed
	$(VENV)/bin/honcho start -f $(PROCFILE) -p $(PORT) $(STOPPED_BY_CTRL_C)

# Two web processes, two workers and two Rasa servers with their action servers (Procfile.scaled).
run-scaled: install migrate model
	$(APP_PY) -m crm_backend.appointments.demo_data
	$(APP_PY) -m crm_backend.triage.seed
	$(APP_PY) -m crm_backend.followups.seed
	RASA_URLS=http://127.0.0.1:5005,http://127.0.0.1:5006 \
	ACTION_SERVER_URLS=http://127.0.0.1:5055,http://127.0.0.1:5056 \
	$(if $(strip $(WECHAT_OA_APPID)),,WECHAT_API_BASE=http://127.0.0.1:$(SANDBOX_PORT)) \
		$(VENV)/bin/honcho start -f Procfile.scaled -p $(PORT) $(STOPPED_BY_CTRL_C)

# Browser tests drive Debian's Chromium through Playwright (Playwright cannot download its own here).
browser:
	@test -x /usr/bin/chromium || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

# lint-imports checks the dependency rules of docs/ARCHITECTURE.md ([tool.importlinter] in pyproject.toml).
lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

test: install model lint browser
	$(VENV)/bin/pytest

format: $(VENV)/.installed
	$(VENV)/bin/ruff format . && $(VENV)/bin/ruff check --fix .

bench: install model
	$(APP_PY) bench/webhook_latency.py

clean:
	rm -rf $(VENV) $(RASA_VENV) var bot/models .pytest_cache .ruff_cache
