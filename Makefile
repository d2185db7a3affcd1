# shipml: the two set-up commands.
#   make demo   installs the kit into .venv and runs its main job on the bundled defaults
#   make test   installs the kit with its dev tools and runs the tests
# Both work on a fresh clone; `make test` also installs the system packages the tests need
# (Debian: chromium for the browser tests, wrk for the load benchmark, bubblewrap for the
# sandbox, docker.io and debootstrap for the simulated Gradescope and Actions runs) when run
# as root. The tests never use a system Docker service (on a machine with systemd, installing
# docker.io starts one): they start a containerd and a dockerd of their own and stop both by PID.
# After either, `make test-fast` runs the fast tier alone (pytest -m fast, under 3 minutes): no Docker
# engine, browser, build, team service, model training or grading run (tests/conftest.py marks the tiers).

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | sha256sum | cut -c1-12)

.PHONY: demo test test-fast lint system-deps sandbox-deps clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[all,dev]'
	rm -f $(VENV)/.installed-*
	touch $@

demo: $(STAMP) sandbox-deps
	$(VENV)/bin/shipml demo

# The sandbox needs bubblewrap when grading as root (the demo grades).
sandbox-deps:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && ! command -v bwrap >/dev/null; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null; \
	fi

system-deps:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  missing=""; \
	  command -v chromium >/dev/null || missing="$$missing chromium"; \
	  command -v wrk >/dev/null || missing="$$missing wrk"; \
	  command -v bwrap >/dev/null || missing="$$missing bubblewrap"; \
	  command -v dockerd >/dev/null || missing="$$missing docker.io"; \
	  command -v debootstrap >/dev/null || missing="$$missing debootstrap"; \
	  if [ -n "$$missing" ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; fi; \
	fi

test: $(STAMP) system-deps
	$(PY) -m ruff check .
	$(PY) -m pytest

test-fast: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m pytest -m fast

lint: $(STAMP)
	$(PY) -m ruff check .

clean:
	rm -rf $(VENV) book/_build site out
