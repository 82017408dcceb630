# JukiNet developer entry points. Every target is idempotent and quick when nothing is missing.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
STATE ?= $(CURDIR)/state
BUF_VERSION := 1.75.0
BUF := node_modules/.bin/buf
DEB_PACKAGES := softhsm2 opensc

.PHONY: setup system-packages venv test demo lint proto up clean bench removals properties mutation

setup: system-packages $(STAMP)

# Debian packages: SoftHSM (the PKCS#11 token used in tests and demos) and OpenSC tools.
system-packages:
	@missing=""; for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

test: setup
	$(PY) -m pytest -q

# Property-based tests with many more examples than CI runs (CI: the "ci" profile in tests/properties/propcount.py).
properties: setup
	JUKINET_HYPOTHESIS_PROFILE=long $(PY) -m pytest -q -p no:cacheprovider tests/properties

# Mutation testing of the security-critical modules ([tool.mutmut] in pyproject.toml), niced: CPU-heavy.
# Results are cached in mutants/ (delete it for a fresh run); the last line is the score.
mutation: setup
	nice -n 10 $(VENV)/bin/mutmut run --max-children 2
	$(VENV)/bin/mutmut export-cicd-stats
	$(PY) bench/mutation_score.py

demo: setup
	$(VENV)/bin/jukinet demo --state $(STATE)/demo

up: setup
	$(VENV)/bin/jukinet up --state $(STATE)/up

bench: setup
	$(PY) bench/raw_limits.py
	$(PY) bench/ingest.py
	$(PY) bench/lookup.py
	$(PY) bench/batch.py
	$(PY) bench/push.py
	$(PY) bench/allocate.py
	$(PY) bench/login.py
	$(PY) bench/biometric_eval.py

# Remove each security check in a copy of the project and run the tests that must notice (docs/SECURITY.md).
removals: setup
	$(PY) tools/removals.py

# Regenerate jukinet/v1 from proto/ (the generated code is committed; tests/test_proto_fresh.py checks it).
proto: $(STAMP)
	$(PY) -m grpc_tools.protoc -Iproto --python_out=. --pyi_out=. --grpc_python_out=. proto/jukinet/v1/*.proto

$(BUF):
	npm install --no-save --no-audit --no-fund --silent @bufbuild/buf@$(BUF_VERSION)

lint: setup $(BUF)
	$(BUF) lint proto
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

clean:
	rm -rf $(STATE) .pytest_cache
