# PoseEmbroider: `make quickstart` runs the main job on the offline world, `make test` runs the tests.
# Both install what they need first (`make install`: a .venv with the pinned CPU torch, idempotent).

SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
PYTHON ?= python3
VENV ?= .venv
VPY := $(VENV)/bin/python
PIP := $(VPY) -m pip
STAMP := $(VENV)/.poseembroider-installed
# pip.conf of some machines lists local indexes that print one warning per package: keep the log readable
QUIET_PIP := { grep -v "is ignored: it is neither a file nor a directory" || true; }

.PHONY: install test test-slow reliability quickstart bench lint clean-venv

install: $(STAMP)

$(STAMP): Makefile requirements.txt constraints.txt pyproject.toml setup.py tools/install_system_packages.sh tools/ensure_torchvision_importable.py
	bash tools/install_system_packages.sh
	test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	@# a setuptools that builds editable wheels by itself: no build environment is downloaded at each install
	$(PIP) install -q -c constraints.txt "setuptools>=70.1" 2>&1 | $(QUIET_PIP)
	@# the pinned CPU torch, then this checkout in editable mode with every extra (`-e .[all]`)
	$(PIP) install -q -c constraints.txt --no-build-isolation -r requirements.txt 2>&1 | $(QUIET_PIP)
	@# pyrender pins PyOpenGL 3.1.0, whose OSMesa binding is broken; 3.1.10 serves OSMesa and EGL
	$(PIP) install -q --no-deps PyOpenGL==3.1.10 2>&1 | $(QUIET_PIP)
	$(VPY) tools/ensure_torchvision_importable.py
	$(VPY) -c "import torch, smplx, pyrender, poseembroider; print('installed: torch', torch.__version__, 'cuda', torch.version.cuda)"
	touch $(STAMP)

test: install
	$(VPY) -m pytest -q

test-slow: install
	$(VPY) -m pytest -q -m slow

reliability: install
	$(VPY) tools/reliability_report.py

quickstart: install
	$(VENV)/bin/poseembroider quickstart

bench: install
	$(VPY) benchmarks/run_all.py

lint: install
	$(VPY) -m ruff check src tests benchmarks

clean-venv:
	rm -rf $(VENV)
