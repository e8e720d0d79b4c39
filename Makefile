# `make run` starts everything on one machine; `make test` runs the whole suite.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cksum requirements.txt | cut -d' ' -f1)
PYTHON ?= python3
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: venv run test lint format bench clean

$(STAMP): requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

venv: $(STAMP)

# PUBLIC_URL (environment, else .env) wins; without one it is where this run serves, so the
# login hint and the sandbox provider's endpoints match `make run PORT=...`.
run: venv
	@$(PY) -m workers_site.envfile
	@PUBLIC_URL="$$($(PY) -m workers_site.envfile --public-url $(HOST) $(PORT))" && export PUBLIC_URL && \
	set -x && \
	$(PY) manage.py migrate --noinput && \
	$(PY) manage.py workers setup && \
	$(PY) manage.py workers deploy && \
	exec $(PY) manage.py workers serve --host $(HOST) --port $(PORT)

# A fresh encryption key per run: tests never see the key of a local .env.
test: venv
	@mkdir -p .run
	@broker=$$(mktemp -d) && trap 'rm -rf "$$broker"' EXIT && \
	FIELD_ENCRYPTION_KEY=$$($(PY) -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())') \
	SANDBOX_PROVIDER=true \
	CELERY_BROKER_DIR=$$broker \
	$(VENV)/bin/pytest $(PYTEST_ARGS)

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
