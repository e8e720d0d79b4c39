# `make run` starts everything on one machine; `make test` runs the whole suite.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cksum requirements.txt | cut -d' ' -f1)
PYTHON ?= python3
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: venv browser run test screenshots lint format bench clean

$(STAMP): requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "Installing requirements into $(VENV) (the first time takes a minute or two)..."
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

venv: $(STAMP)

# PUBLIC_URL (environment, else set by hand in .env) wins; without one it is where this run serves,
# written into .env so later shells (`./workers ...`) use it too, and the login hint and the sandbox
# provider's endpoints match `make run PORT=...`. Deploy follows that URL without asking (--yes):
# the new port is what was asked for; it still warns about the connected capabilities it changes.
run: venv
	@$(PY) -m workers_site.envfile
	@PUBLIC_URL="$$($(PY) -m workers_site.envfile --keep-public-url $(HOST) $(PORT))" && export PUBLIC_URL && \
	set -x && \
	$(PY) manage.py migrate --noinput && \
	$(PY) manage.py workers setup && \
	$(PY) manage.py workers deploy --yes && \
	exec $(PY) manage.py workers serve --host $(HOST) --port $(PORT)

# A fresh encryption key per run: tests never see the key of a local .env.
test: venv
	@mkdir -p .run
	@broker=$$(mktemp -d) && trap 'rm -rf "$$broker"' EXIT && \
	FIELD_ENCRYPTION_KEY=$$($(PY) -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())') \
	SANDBOX_PROVIDER=true \
	CELERY_BROKER_DIR=$$broker \
	$(VENV)/bin/pytest $(PYTEST_ARGS)

# Debian's Chromium for the browser test (tests/browser), which the pinned playwright package drives:
# `playwright install` would download a browser build from outside. Needs root; a no-op once installed.
CHROMIUM ?= /usr/bin/chromium
browser:
	@if [ -x "$(CHROMIUM)" ]; then \
		echo "Chromium is installed at $(CHROMIUM)."; \
	elif [ "$$(id -u)" -ne 0 ]; then \
		echo "make browser: installing Chromium needs root: sudo apt-get install -y chromium" >&2; exit 1; \
	else \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; \
	fi

# The browser test alone, keeping its screenshots in docs/screenshots (the README shows them).
screenshots: browser
	BROWSER_SCREENSHOTS=$(CURDIR)/docs/screenshots $(MAKE) test PYTEST_ARGS="tests/browser -q"

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: venv
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: venv
	FIELD_ENCRYPTION_KEY=$$($(PY) -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())') \
	SANDBOX_PROVIDER=true $(PY) -m benchmarks $(BENCH_ARGS)

clean:
	rm -rf .run .pytest_cache .ruff_cache
