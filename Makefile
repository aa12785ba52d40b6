# Entry points. `make run` sets everything up and starts the platform; `make test` runs the test suite.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
CONSTRAINTS := requirements/constraints.txt
# pip 24.0: later releases crash in `pip check` on itk 5.4.7's malformed wheel tag. versioneer: the
# pyradiomics-bhklab sdist needs it at build time (packages build without isolation, see below).
BOOTSTRAP := pip==24.0 setuptools==84.2.1 wheel==0.48.0 versioneer==0.29

.PHONY: run stop status test fuzz lint typecheck train bench system-deps test-deps venv viewer clean-cache

run: system-deps venv
	$(PY) -m awesomme.cli up

stop:
	@if [ -x $(PY) ]; then $(PY) -m awesomme.cli down; else echo "nothing was running"; fi

status: venv
	$(PY) -m awesomme.cli status

test: system-deps test-deps venv
	cd ohif-plugin && npm test
	$(PY) -m pytest

# Schemathesis over /api, from the server's OpenAPI schema, as a platform admin and as a cohort member, on a platform
# of its own (never in `make test`): AWESOMME_FUZZ_EXAMPLES fuzzed cases per operation and caller (CI runs 20).
fuzz: system-deps venv
	AWESOMME_FUZZ_EXAMPLES=$${AWESOMME_FUZZ_EXAMPLES:-150} $(PY) -m pytest tests/fuzz

lint: venv
	$(VENV)/bin/ruff check extensions apps tests benchmarks
	$(VENV)/bin/ruff format --check extensions apps tests benchmarks

typecheck: venv
	$(VENV)/bin/mypy

# Trains the three demo models from scratch on phantoms (seeds < 50000) and rewrites their YAMLs with the
# weights' sha256 and the held-out figures (seeds >= 50000). Minutes per model on a 2-core CPU; on a GPU where there
# is one (lung_nodule_ct's shipped weights come from its GPU recipe: its CPU recipe misses the Dice target).
train: venv
	$(PY) -m awesomme.training --all --device auto

# Each benchmark prints ratios against a baseline it measures in the same run (see benchmarks/README.md).
bench: system-deps venv
	$(PY) benchmarks/table3.py
	$(PY) benchmarks/radiomics_overhead.py

# Debian packages: Orthanc with DICOMweb, dciodvfy for validating what we write, tcmalloc for the server.
system-deps:
	@if [ ! -x /usr/sbin/Orthanc ] || [ ! -f /usr/share/orthanc/plugins/libOrthancDicomWeb.so ] || ! command -v dciodvfy >/dev/null \
		|| ! /sbin/ldconfig -p | grep -q libtcmalloc_minimal.so.4; then \
		scripts/install-system-deps.sh; fi

# What only the tests need: chromium (the viewer tests' real browser) and PostgreSQL (the DB suite's second backend).
test-deps:
	@if [ ! -x /usr/bin/chromium ] || ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
		scripts/install-system-deps.sh --test-tools; fi

venv: $(VENV)/.installed viewer

# The viewer at /viewer/: the prebuilt @ohif/app pinned by integrity in ohif-plugin/ohif-app.lock, unpacked and
# patched into var/viewer/ (skipped when installed), and our extension and mode built into ohif-plugin/dist/.
PLUGIN_SOURCES := $(shell find ohif-plugin/src -type f 2>/dev/null) ohif-plugin/build.mjs
viewer: ohif-plugin/dist/awesomme-extension.mjs
	$(PYTHON) scripts/install_viewer.py

ohif-plugin/node_modules/.package-lock.json: ohif-plugin/package-lock.json
	cd ohif-plugin && npm ci --no-audit --no-fund
	touch $@

ohif-plugin/dist/awesomme-extension.mjs: ohif-plugin/node_modules/.package-lock.json $(PLUGIN_SOURCES)
	cd ohif-plugin && npm run build

# torch first, then MONAI Label without build isolation: its `sam2` sdist would otherwise build against a CUDA torch.
$(VENV)/.installed: $(CONSTRAINTS) setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q $(BOOTSTRAP)
	$(PIP) install -q -c $(CONSTRAINTS) torch torchvision
	SAM2_BUILD_CUDA=0 $(PIP) install -q --no-build-isolation -c $(CONSTRAINTS) -e '.[dev]'
	$(PIP) check
	touch $@
