# 发票补录服务平台 — the two commands a newcomer needs: `make run` and `make test`.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PO     := $(wildcard portal/translations/*/LC_MESSAGES/messages.po)
MO     := $(PO:.po=.mo)
# Exact versions with hashes (README "Dependencies"): the app, and the app with its dev extra.
LOCK     := requirements.lock
DEV_LOCK := requirements-dev.lock
# pip, not uv, installs them: nothing but Python and pip is needed to run or test the portal.
# setuptools comes from the lock too, hence no build isolation for the project itself.
INSTALL_LOCKED = $(BIN)/pip install -q --require-hashes -r $(1) && \
	PYTHONWARNINGS=ignore $(BIN)/pip install -q --no-deps --no-build-isolation -e .

.PHONY: run test lint help-pictures translations translations-update lock lock-upgrade lock-check \
	test-lowest test-font setup clean

run: $(VENV)/.installed $(MO)
	@scripts/setup-system run
	$(BIN)/python -m portal.devrun

# The pure rules (tests/domain) run under coverage, on their own: portal/domain/ must be covered
# by its own tests. Tracing the whole suite made it half again as slow. PYTEST_ARGS go to the
# main run only (CI's --junitxml would otherwise be overwritten). The main run is spread over
# TEST_WORKERS pytest-xdist workers (each test has its own database, each worker its own Redis
# database: tests/conftest.py); the browser journeys stay together in one (--dist loadgroup).
TEST_WORKERS ?= 2
test: $(VENV)/.installed-dev $(MO)
	@scripts/setup-system test
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup --ignore=tests/domain $(PYTEST_ARGS)
	$(BIN)/python -m pytest -q --cov --cov-report= tests/domain
	@$(BIN)/python -m coverage report --include='portal/domain/*' --fail-under=95 \
	  --no-skip-covered | tail -1 | sed 's|^TOTAL|portal/domain/ branch coverage (min 95%):|'

# What the machine needs from Debian (installed as root, else named): see scripts/setup-system.
setup:
	scripts/setup-system test

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(VENV)/bin/python $(LOCK) setup.cfg pyproject.toml
	$(call INSTALL_LOCKED,$(LOCK))
	touch $@

$(VENV)/.installed-dev: $(VENV)/bin/python $(DEV_LOCK) setup.cfg pyproject.toml
	$(call INSTALL_LOCKED,$(DEV_LOCK))
	touch $@ $(VENV)/.installed

# Refresh the locks after changing setup.cfg: versions already locked stay unless the new ranges
# exclude them (`make lock-upgrade` takes the newest allowed of everything). The dev lock is
# constrained by the app lock, so both pin the same version of every shared package.
LOCK_COMPILE = printf 'setuptools>=70.1\n' | $(BIN)/uv pip compile pyproject.toml - --universal \
	--generate-hashes --quiet --custom-compile-command "make lock"
# The dev lock keeps the extras its packages ask for (pytest-cov wants coverage[toml]): pip's
# hash-checking mode refuses a dependency with extras that the file does not pin itself (it did
# once coverage 7.18 came out). The app lock has none and stays a plain constraints file.
DEV_LOCK_FLAGS = --no-strip-extras
UV_TOOL = test -x $(BIN)/uv || $(BIN)/pip install -q 'uv>=0.13,<0.14'
lock: $(VENV)/bin/python
	@$(UV_TOOL)
	$(LOCK_COMPILE) $(UPGRADE) -o $(LOCK)
	$(LOCK_COMPILE) $(UPGRADE) --extra dev $(DEV_LOCK_FLAGS) -c $(LOCK) -o $(DEV_LOCK)

lock-upgrade:
	$(MAKE) lock UPGRADE=--upgrade

# CI: the committed locks are what setup.cfg resolves to (fails when setup.cfg changed alone).
# Comments are left out of the comparison: they name the constraints file's path.
LOCK_PINS = grep -v '^ *\#' $(1)
lock-check: $(VENV)/bin/python
	@$(UV_TOOL)
	@tmp=$$(mktemp -d) && trap 'rm -rf $$tmp' EXIT && cp $(LOCK) $(DEV_LOCK) $$tmp/ && \
	$(LOCK_COMPILE) -o $$tmp/$(LOCK) && \
	$(LOCK_COMPILE) --extra dev $(DEV_LOCK_FLAGS) -c $$tmp/$(LOCK) -o $$tmp/$(DEV_LOCK) && \
	for f in $(LOCK) $(DEV_LOCK); do \
	  if ! diff -u <($(call LOCK_PINS,$$f)) <($(call LOCK_PINS,$$tmp/$$f)) >$$tmp/diff; then \
	    head -40 $$tmp/diff; echo "$$f is out of date with setup.cfg: run make lock"; exit 1; fi; \
	done && echo "requirements.lock and requirements-dev.lock match setup.cfg"

# CI: the lowest version setup.cfg allows of every direct dependency, in a venv of its own, runs
# the suite on SQLite, so that a floor that does not work fails.
LOWEST := .venv-lowest
test-lowest: $(VENV)/.installed-dev $(MO)
	@tmp=$$(mktemp -d) && \
	$(BIN)/uv pip compile pyproject.toml --extra dev --resolution lowest-direct --quiet \
	  --no-header -o $$tmp/lowest.txt && \
	rm -rf $(LOWEST) && $(PYTHON) -m venv $(LOWEST) && \
	$(LOWEST)/bin/pip install -q -r $$tmp/lowest.txt && \
	$(LOWEST)/bin/pip install -q --no-deps -e . && \
	grep -E '^(flask|flask-wtf|flask-limiter|rq|sqlalchemy|werkzeug|gunicorn|redis|pillow)==' \
	  $$tmp/lowest.txt | tr '\n' ' ' && echo && rm -rf $$tmp
	TEST_DATABASE_URL= $(LOWEST)/bin/python -m pytest -q -p no:cacheprovider -n $(TEST_WORKERS) \
	  --dist loadgroup $(PYTEST_ARGS)

# The test font (tests/fonts/): regenerate after the corpus draws a new character.
test-font: $(VENV)/.installed-dev
	$(BIN)/python tests/fonts/make_subset.py $(FONT)

%.mo: %.po
	$(BIN)/pybabel compile -i $< -o $@ -d portal/translations

# After changing translatable text: extract, merge into the catalogs, then translate the blanks.
# The help centre's annotated sample invoices (static/img/help/*.png, committed).
help-pictures: $(VENV)/.installed
	$(BIN)/python scripts/help_pictures.py

translations-update: $(VENV)/.installed
	$(BIN)/pybabel extract -F babel.cfg -k _l -o portal/translations/messages.pot portal
	$(BIN)/pybabel update -i portal/translations/messages.pot -d portal/translations --no-fuzzy-matching

translations: $(MO)

clean:
	rm -rf $(VENV) $(LOWEST) instance/*.db .pytest_cache
