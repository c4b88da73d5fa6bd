# The two commands that matter: `make demo` (the main job) and `make test` (the whole suite).
# Everything the project needs is installed from here: the virtualenv and the testbed's binaries.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml testbed/pyproject.toml | sha1sum | cut -c1-12)
TESTBED_BIN = $(shell scripts/testbed-bin.sh --print)
export PATH := $(TESTBED_BIN):$(abspath $(BIN)):$(PATH)

.PHONY: all venv testbed-bin testbed-packages images crds golden lint typecheck unit tools-tests test demo playground clean

all: test

$(STAMP): pyproject.toml testbed/pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]' -e testbed
	@rm -f $(VENV)/.installed-* && touch $@

venv: $(STAMP)

## Build the testbed's binaries (kube-apiserver, etcd, kwok, helm, kubelet, CoreDNS, …) into the cache outside the clone.
testbed-bin:
	scripts/testbed-bin.sh

## Install the Debian packages real nodes need (containerd, runc, CNI plugins, …) if any is missing (root).
testbed-packages:
	scripts/testbed-packages.sh

## Build the images real nodes run (pause, base, the operator from its Dockerfile, stand-ins), cached outside the clone.
images: venv testbed-packages testbed-bin
	$(BIN)/sharedcore-testbed images

## Regenerate crds/ from the pydantic models.
crds: venv
	$(BIN)/sharedcore crds --out crds

## Regenerate the packaging files derived from one source: RBAC, CRD copies, alert rules, dashboard, Argo CD health.
.PHONY: manifests
manifests: venv
	$(BIN)/sharedcore manifests

## Regenerate the renderer's golden files under tests/golden/.
golden: venv
	SHAREDCORE_UPDATE_GOLDEN=1 $(BIN)/pytest -q tests/unit/test_render_golden.py

lint: venv
	$(BIN)/ruff check operator testbed tests scripts bench
	$(BIN)/ruff format --check operator testbed tests scripts bench

typecheck: venv
	$(BIN)/mypy
	$(BIN)/mypy scripts bench

## Fast tests: no control planes, and none of the tools the Go build makes (helm, kubectl, promtool).
unit: venv
	$(BIN)/pytest -m 'not cluster and not tools'

## The packaging tests: the chart, the kustomize trees and the alert rules, read by helm, kubectl and promtool.
tools-tests: venv testbed-bin
	$(BIN)/pytest -m 'tools and not cluster'

## Everything: lint, types, unit and cluster tests on real control planes (and real nodes).
test: venv testbed-packages testbed-bin images lint typecheck
	$(BIN)/pytest

## The main job: two sites and a witness, both operators, a failover narrated end to end.
demo: venv testbed-bin $(if $(REAL),testbed-packages images)
	$(BIN)/python scripts/demo.py $(if $(REAL),--real-database) $(DEMO_ARGS)

## The whole pair on real nodes, to try by hand (root): `sharedcore-testbed down --dir .playground` ends it.
playground: venv testbed-packages testbed-bin images
	$(BIN)/sharedcore-testbed up --dir .playground --nodes real --node-count 3 --pair danang quangnam witness

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
