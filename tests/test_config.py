"""Settings: one table of variables (portal/config.py), read at create_app, bad values refused."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from decimal import Decimal

import pytest

from portal import create_app
from portal.config import SETTINGS, ConfigError, all_settings, load_config
from portal.scans.limits import OcrPolicy, ScanLimits
from tests.conftest import ROOT


@pytest.fixture
def clean_env(monkeypatch):
    """No portal variable from the developer's shell leaks into these tests."""
    for row in all_settings():
        monkeypatch.delenv(row.name, raising=False)
    for name in ("TEST_DATABASE_URL", "TEST_REDIS_URL", "PORTAL_ENV"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("REGISTRY_BATCH_SIZE", "lots"),
        ("REGISTRY_BATCH_SIZE", "500"),  # the batch endpoint takes at most 100
        ("REGISTRY_READ_TIMEOUT", "0"),
        ("MONITOR_FAILURE_RATE", "2"),
        ("RATELIMIT_LOGIN", "ten a minute"),
        ("SCAN_OCR", "sometimes"),
        ("SCAN_MAX_PIXELS", "0"),
        ("SLA_POLICY", '{"counter": {"resolution_days": "soon"}}'),
        ("SLA_POLICY", "{not json"),
        ("FOUR_EYES_AMOUNT", "-5"),
        ("SELLER_TAX_ID", "911101017967003190"),  # wrong check character
        ("TEST_REDIS_URL", "localhost:6379"),
        ("PUBLIC_URL", "portal.example"),
        ("MAIL_URL", "smtp:"),
        ("TEST_DATABASE_URL", "not a database"),
    ],
)
def test_an_invalid_value_is_refused_at_start_with_its_name(clean_env, name, value):
    clean_env.setenv(name, value)
    with pytest.raises(ConfigError, match=rf"\b{name}: "):
        create_app({})


def test_every_bad_variable_is_named_at_once(clean_env):
    clean_env.setenv("REGISTRY_BATCH_SIZE", "lots")
    clean_env.setenv("SESSION_IDLE_MINUTES", "0")
    with pytest.raises(ConfigError) as refused:
        load_config("testing")
    assert "REGISTRY_BATCH_SIZE: Not a valid integer." in str(refused.value)
    assert "SESSION_IDLE_MINUTES: " in str(refused.value)


def test_the_app_does_not_start_with_a_bad_value(clean_env):
    # What gunicorn, `flask` and the worker do first: import wsgi. It fails, naming the variable.
    env = {**os.environ, "PORTAL_ENV": "testing", "REGISTRY_RATE_LIMIT": "fast"}
    result = subprocess.run(
        [sys.executable, "-c", "import wsgi"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode != 0
    assert "REGISTRY_RATE_LIMIT: Not a valid integer." in result.stderr


def test_production_names_each_required_variable(clean_env):
    with pytest.raises(ConfigError, match="SECRET_KEY") as refused:
        load_config("production")
    assert "DATABASE_URL" in str(refused.value)


def test_values_are_typed_and_empty_means_unset(clean_env):
    clean_env.setenv("REGISTRY_CONNECT_TIMEOUT", "1.5")
    clean_env.setenv("REGISTRY_BATCH_SIZE", "20")
    clean_env.setenv("FOUR_EYES_AMOUNT", "5000.50")
    clean_env.setenv("SLA_POLICY", '{"web": {"first_response_hours": 8}}')
    clean_env.setenv("MONITOR_BACKLOG_MAX", "")
    settings = load_config("testing")
    assert settings["REGISTRY_CONNECT_TIMEOUT"] == 1.5
    assert settings["REGISTRY_BATCH_SIZE"] == 20
    assert settings["FOUR_EYES_AMOUNT"] == Decimal("5000.50")
    assert settings["SLA_POLICY"] == {"web": {"first_response_hours": 8}}
    assert settings["MONITOR_BACKLOG_MAX"] == 5000


def test_the_environment_is_read_when_the_app_is_created(clean_env):
    assert create_app({}).config["PAGE_SIZE"] == 25
    clean_env.setenv("PAGE_SIZE", "40")
    assert create_app({}).config["PAGE_SIZE"] == 40
    # A mapping given to create_app still wins over the environment.
    assert create_app({"PAGE_SIZE": 7}).config["PAGE_SIZE"] == 7


def test_every_scan_limit_has_its_variable(clean_env):
    clean_env.setenv("SCAN_MAX_PDF_PAGES", "7")
    clean_env.setenv("SCAN_MAX_ZIP_MEMBERS", "12")
    clean_env.setenv("SCAN_OCR", "never")
    limits = ScanLimits.from_config(load_config("testing"))
    assert limits.max_pdf_pages == 7 and limits.max_zip_members == 12
    assert limits.ocr is OcrPolicy.NEVER
    names = {row.name for row in all_settings()}
    for field in ScanLimits.__dataclass_fields__:
        assert f"SCAN_{field.upper()}" in names


def test_reconciliation_and_retention_defaults_are_settings(clean_env):
    from portal.services import privacy, reconcile

    clean_env.setenv("RECONCILE_CHUNK", "50")
    clean_env.setenv("EVIDENCE_RETENTION_MONTHS", "6")
    with create_app({}).app_context():
        assert reconcile.setting("RECONCILE_CHUNK") == 50
        assert reconcile.setting("RECONCILE_PAGE_SIZE") == 1000
        assert privacy.retention_months() == 6


def _readme_variables() -> set[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    table = text.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    names = set()
    for line in table.splitlines():
        if line.startswith("| `"):
            first_cell = line.split("|")[1]
            names |= set(re.findall(r"`([A-Z][A-Z0-9_]+)`", first_cell))
    return names


# Read elsewhere: by create_app itself, by prometheus_client/gunicorn.conf.py, by the test suite.
NOT_SETTINGS = {
    "PORTAL_ENV",
    "PORTAL_INSTANCE_PATH",
    "PROMETHEUS_MULTIPROC_DIR",
    "CHROMIUM",
    "REQUIRE_BROWSER",
    "BROWSER_ARTIFACTS",
}


def test_readme_documents_every_setting_and_nothing_else():
    documented = _readme_variables()
    rows = {row.name for row in all_settings()} | {"TEST_DATABASE_URL", "TEST_REDIS_URL"}
    assert sorted(rows - documented) == []
    assert sorted(documented - rows - NOT_SETTINGS) == []
    assert len({row.config_key for row in SETTINGS}) == len(SETTINGS)  # no key twice
