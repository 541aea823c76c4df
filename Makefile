# 发票补录服务平台 — the two commands a newcomer needs: `make run` and `make test`.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PO     := $(wildcard portal/translations/*/LC_MESSAGES/messages.po)
MO     := $(PO:.po=.mo)

.PHONY: run test lint translations translations-update chaos bench clean

run: $(VENV)/.installed $(MO)
	$(BIN)/python -m portal.devrun

# The pure rules (tests/domain) run under coverage, on their own: portal/domain/ must be covered
# by its own tests. Tracing the whole suite made it half again as slow. PYTEST_ARGS go to the
# main run only (CI's --junitxml would otherwise be overwritten).
test: $(VENV)/.installed-dev $(MO)
	$(BIN)/python -m pytest --ignore=tests/domain $(PYTEST_ARGS)
	$(BIN)/python -m pytest -q --cov --cov-report= tests/domain
	@$(BIN)/python -m coverage report --include='portal/domain/*' --fail-under=95 \
	  --no-skip-covered | tail -1 | sed 's|^TOTAL|portal/domain/ branch coverage (min 95%):|'

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: $(VENV)/bin/python setup.cfg pyproject.toml
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/bin/python setup.cfg pyproject.toml
	$(BIN)/pip install -q -e '.[dev]'
	touch $@ $(VENV)/.installed

%.mo: %.po
	$(BIN)/pybabel compile -i $< -o $@ -d portal/translations

# After changing translatable text: extract, merge into the catalogs, then translate the blanks.
translations-update: $(VENV)/.installed
	$(BIN)/pybabel extract -F babel.cfg -k _l -o portal/translations/messages.pot portal
	$(BIN)/pybabel update -i portal/translations/messages.pot -d portal/translations --no-fuzzy-matching

translations: $(MO)

clean:
	rm -rf $(VENV) instance/*.db .pytest_cache
