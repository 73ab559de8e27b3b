# Two commands matter: `make run` and `make test`. Everything else is a building block they call.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
ARCH := $(shell uname -m)
CODEX_PKG := $(if $(filter aarch64 arm64,$(ARCH)),codex-linux-arm64,codex-linux-x64)
CODEX_TRIPLE := $(if $(filter aarch64 arm64,$(ARCH)),aarch64-unknown-linux-musl,x86_64-unknown-linux-musl)
CODEX := codex-cli/node_modules/@openai/$(CODEX_PKG)/vendor/$(CODEX_TRIPLE)/bin/codex
APT_PACKAGES := $(shell grep -v '^\#' apt-packages.txt)

.PHONY: run test lint format bench bench-quick deps test-deps apt codex worker-deps clean schema login sync-config promote

## make run: virtualenv + pinned Codex CLI, then the API on 127.0.0.1:11435 (PORT / PROXY_HOST override).
run: deps
	$(BIN)/python -m app

## make login: Codex device-code login for CODEX_HOME (default .codev); prints a URL + code, waits, fails fast
## offline. LOGIN_ARGS passes options (e.g. --codex-home DIR --code-timeout 60). Hosts: ansible/login.yml.
login: deps
	$(BIN)/python -m app.login $(LOGIN_ARGS)

## make sync-config: repo-managed config.toml + AGENTS.md into CODEX_HOME (never auth.json; host edits are kept
## as <name>.host-edit-<time>, or refused with SYNC_ARGS=--on-host-edit=refuse).
sync-config: deps
	$(BIN)/python -m app.config_sync $(SYNC_ARGS)

## make promote: the release dev runs, to prod, only if dev is green (ansible/promote.py; PROMOTE_ARGS passes
## --dev-args/--prod-args). Prod's vault password is asked for (--vault-id prod@prompt).
promote: test-deps
	$(BIN)/python ansible/promote.py $(PROMOTE_ARGS)

## make test: installs everything the tests need (pip, npm, apt), then lint gates (ruff, pyright) and the whole suite.
test: test-deps
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/pyright
	$(BIN)/pytest
	cd cloudflare-worker && npm test

## make bench: every benchmark (≈ 10 min on 2 cores), regenerates bench/report.md + bench/report.json.
bench: test-deps
	$(BIN)/python -m bench

## make bench-quick: a ≤ 2-minute subset for development, written to .bench/quick/ (the committed report is untouched).
bench-quick: test-deps
	$(BIN)/python -m bench --quick

lint: test-deps
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/pyright

format: test-deps
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

deps: $(VENV)/.runtime codex
test-deps: $(VENV)/.test codex apt worker-deps

$(VENV)/.created:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip==25.3
	touch $@

$(VENV)/.runtime: $(VENV)/.created pyproject.toml
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.test: $(VENV)/.created pyproject.toml
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.runtime

codex: $(CODEX)
$(CODEX): codex-cli/package.json codex-cli/package-lock.json
	cd codex-cli && npm ci --no-audit --no-fund --loglevel=error
	test -x $@ && touch $@

worker-deps: cloudflare-worker/node_modules/.stamp
cloudflare-worker/node_modules/.stamp: cloudflare-worker/package.json cloudflare-worker/package-lock.json
	cd cloudflare-worker && npm ci --no-audit --no-fund --loglevel=error
	touch $@

## Debian packages the test suite drives for real (nspawn host, mmdebstrap, Redis, wrk, systemd-analyze).
apt:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing: $$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

## Regenerate the checked-in app-server JSON Schema from the pinned binary (the drift test compares).
schema: codex
	rm -rf app/codex/schema && $(CODEX) app-server generate-json-schema --experimental --out app/codex/schema

clean:
	rm -rf $(VENV) codex-cli/node_modules cloudflare-worker/node_modules
