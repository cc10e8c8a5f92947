# Offline workflow: no Pulumi CLI, plugins or cloud credentials needed.
STACK ?= production
PYTHON ?= python3
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
PROM_STAMP := .tools/prometheus/.installed-$(PROMETHEUS_DEB_SHA256)-$(ALERTMANAGER_DEB_SHA256)

.PHONY: venv checkers synth synth-all snapshot diff preflight first-up test lint bench clean

$(STAMP): pyproject.toml requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

# checkov cannot share a virtualenv with pulumi (conflicting pins): it gets its own.
$(CHECKOV_STAMP): tools/checkov-requirements.txt
	$(PYTHON) -m venv .venv-checkov
	.venv-checkov/bin/pip install --quiet --disable-pip-version-check -r tools/checkov-requirements.txt
	touch $@

# Schemas of custom resources (npm @kubernetes-models/*), pinned by package-lock.json.
$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

venv: $(STAMP)

$(PROM_STAMP):
	rm -rf .tools/prometheus && mkdir -p .tools/prometheus/debs
	cd .tools/prometheus/debs && \
	  { curl -fsSL --retry 3 -o '$(PROMETHEUS_DEB)' '$(DEBIAN_POOL)/prometheus/$(PROMETHEUS_DEB)' || \
	    curl -fsSL --retry 3 -o '$(PROMETHEUS_DEB)' '$(DEBIAN_SNAPSHOT)/$(PROMETHEUS_DEB_SHA1)'; } && \
	  { curl -fsSL --retry 3 -o '$(ALERTMANAGER_DEB)' '$(DEBIAN_POOL)/prometheus-alertmanager/$(ALERTMANAGER_DEB)' || \
	    curl -fsSL --retry 3 -o '$(ALERTMANAGER_DEB)' '$(DEBIAN_SNAPSHOT)/$(ALERTMANAGER_DEB_SHA1)'; } && \
	  printf '%s  %s\n' '$(PROMETHEUS_DEB_SHA256)' '$(PROMETHEUS_DEB)' \
	    '$(ALERTMANAGER_DEB_SHA256)' '$(ALERTMANAGER_DEB)' | sha256sum --check --strict
	for deb in .tools/prometheus/debs/*.deb; do dpkg -x "$$deb" .tools/prometheus; done
	.tools/prometheus/usr/bin/promtool --version
	.tools/prometheus/usr/bin/amtool --version
	touch $@

checkers: $(CHECKOV_STAMP) $(NODE_STAMP) $(PROM_STAMP)

synth: $(STAMP)
	$(PY) -m offline.synth --stack $(STACK)

# Every environment of stacks/environments/.
synth-all: $(STAMP)
	$(PY) -m offline.synth --all

# What the work tree changes against BASE (a git ref), for every stack, or only for STACK when
# it is given: make diff BASE=origin/main [STACK=staging]
diff: $(STAMP)
	$(PY) -m offline.diff --base $(BASE) $(if $(filter command line environment,$(origin STACK)),--stack $(STACK))

# Can CI deploy STACK's file (its KMS secrets provider, encryptedkey, every secret set)?
preflight: $(STAMP)
	$(PY) -m offline.preflight --stack $(STACK)

# The commands of a new stack's first `pulumi up`: image repositories, images, the rest.
first-up: $(STAMP)
	$(PY) -m offline.first_up --stack $(STACK)

# Rewrite the committed URN snapshots (tests/snapshots/) after an intended URN change.
snapshot: $(STAMP)
	$(PY) -m offline.snapshot

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy .

test: lint checkers
	$(PY) -m pytest

bench: $(STAMP)
	$(PY) -m offline.bench

clean:
	rm -rf build .mypy_cache .ruff_cache
