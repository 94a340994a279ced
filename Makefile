# The two commands of the README:
#   make run   — set up, start the embedded stack (local node, registry, API), sign + verify a sample document
#   make test  — set up, run the whole test suite
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: run test setup lint bench clean reliability kubo

run: setup
	$(VENV)/bin/docchain up

# One pytest worker per core, up to 4; a test file stays on one worker, so its module-scoped servers start once.
test: setup kubo lint
	$(PY) -m pytest --numprocesses=auto --maxprocesses=4 --dist loadfile $(PYTEST_ARGS)

setup: $(VENV)/.installed node_modules/.installed

# kubo (the IPFS node the IPFS backend's tests run; `make run`'s embedded stack does not need it) built from its Go
# module into a per-machine cache outside the repo, once per machine: tests/storage/kubo.py looks there (or at
# $DOCCHAIN_KUBO) for the same version.
KUBO_VERSION := v0.43.1
KUBO ?= $(HOME)/.cache/docchain/kubo-$(KUBO_VERSION)/ipfs

kubo: $(KUBO)

# kubo v0.43.1's go.mod replaces go-libp2p with a fork that the module proxy does not serve (and `go install
# pkg@version` refuses a module with replace directives): its source is built in a scratch copy with that replace
# dropped for the go-libp2p release the replace's TODO waits for (quic-go >= 0.62, webtransport-go >= 0.13).
KUBO_LIBP2P := v0.52.0
$(KUBO):
	set -e; src=$$(mktemp -d); trap 'rm -rf "$$src"' EXIT; \
	cp -r "$$(go mod download -json github.com/ipfs/kubo@$(KUBO_VERSION) | sed -n 's/^\t"Dir": "\(.*\)",$$/\1/p')/." "$$src"; \
	chmod -R u+w "$$src"; cd "$$src"; \
	go mod edit -dropreplace=github.com/libp2p/go-libp2p -require=github.com/libp2p/go-libp2p@$(KUBO_LIBP2P); \
	go mod tidy; go build -trimpath -o $(abspath $(KUBO)) ./cmd/ipfs

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e ".[test]"
	touch $@

# `npm install` rather than `npm ci`: anvil's wrapper lists one optional binary package per platform and
# registries that mirror only the local platform's leave the others out of the lock, which `npm ci` refuses.
# The versions still come from package-lock.json.
node_modules/.installed: package.json package-lock.json
	npm install --no-audit --no-fund --loglevel=error
	touch $@

# mypy checks the packages [tool.mypy] names, by their docchain.* names; chain/, the exact core both sides build
# on, and the lifecycle core (states, store, service) also pass --strict. The strict run reports only the modules
# it names (the rest of api/ they import passes plain mypy) and keeps its own cache, so the two runs keep theirs.
lint: setup
	$(VENV)/bin/ruff check --quiet .
	$(VENV)/bin/ruff format --check --quiet .
	$(VENV)/bin/mypy
	$(VENV)/bin/mypy --strict --follow-imports=silent --cache-dir .mypy_cache/strict \
		-p docchain.chain -m docchain.api.lifecycle -m docchain.api.store -m docchain.api.service

# The reliability suite (tests/reliability/) at the issue's full sizes: 100 clients x 50 submissions on SQLite and
# PostgreSQL, two replicas, a dozen SIGKILLs, node outage and reorgs, shutdowns, hostile input, slither and the
# registry's invariants. It writes docs/reliability.md from what the run measured. `make test` runs the same suite
# at CI size (RELIABILITY_SCALE=ci, its report in test-output/).
reliability: setup
	RELIABILITY_SCALE=full RELIABILITY_REPORT=docs/reliability.md $(PY) -m pytest tests/reliability --timeout 3600 $(PYTEST_ARGS)

bench: setup kubo
	$(PY) bench/gas.py
	$(PY) bench/envelopes.py
	$(PY) bench/node.py
	$(PY) bench/rpc.py
	$(PY) bench/api.py
	$(PY) bench/storage.py
	$(PY) bench/hashing.py
	$(PY) bench/compare.py

clean:
	rm -rf $(VENV) node_modules
