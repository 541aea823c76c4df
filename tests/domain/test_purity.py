"""portal/domain stays pure: no Flask, no database, no I/O, no clock; documented throughout.

Checked on the source with ast, so an import hidden in a function or a branch counts too.
"""

import ast
from pathlib import Path

import pytest

DOMAIN = Path(__file__).resolve().parents[2] / "portal" / "domain"
SOURCES = sorted(DOMAIN.glob("*.py"))

# Web, database, queue and network libraries, and the modules that do I/O or read a clock.
FORBIDDEN_TOP_LEVEL = {
    "flask",
    "flask_sqlalchemy",
    "flask_migrate",
    "flask_login",
    "flask_wtf",
    "flask_babel",
    "flask_limiter",
    "sqlalchemy",
    "alembic",
    "werkzeug",
    "wtforms",
    "psycopg",
    "psycopg2",
    "redis",
    "rq",
    "requests",
    "urllib",
    "http",
    "socket",
    "subprocess",
    "os",
    "io",
    "pathlib",
    "shutil",
    "tempfile",
    "time",
    "random",
    "secrets",
    "zoneinfo",
    "logging",
}
CLOCK_READS = {"now", "today", "utcnow", "monotonic", "perf_counter"}


def _imports(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                yield "portal.domain." + (node.module or "")
            else:
                yield node.module or ""


def _tree(path):
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def test_the_domain_has_sources():
    assert {"identity.py", "qr.py", "diagnosis.py"} <= {path.name for path in SOURCES}


@pytest.mark.parametrize("path", SOURCES, ids=lambda path: path.name)
def test_no_flask_sqlalchemy_or_io_imports(path):
    imported = set(_imports(_tree(path)))
    forbidden = {
        name
        for name in imported
        if name.split(".")[0] in FORBIDDEN_TOP_LEVEL or name.split(".")[0].startswith("flask")
    }
    assert not forbidden, f"{path.name} imports {sorted(forbidden)}"


@pytest.mark.parametrize("path", SOURCES, ids=lambda path: path.name)
def test_the_domain_imports_nothing_else_of_ours(path):
    ours = {name for name in _imports(_tree(path)) if name.split(".")[0] in {"portal", "workers"}}
    assert all(name.startswith("portal.domain") for name in ours), sorted(ours)


@pytest.mark.parametrize("path", SOURCES, ids=lambda path: path.name)
def test_no_clock_reads(path):
    calls = [
        node.func.attr
        for node in ast.walk(_tree(path))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in CLOCK_READS
    ]
    assert not calls, f"{path.name} reads a clock: {calls}"


def _public_definitions(tree):
    """Module-level public functions and classes, and the public methods of public classes."""
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef) and not node.name.startswith("_"):
            yield node.name, node
            if isinstance(node, ast.ClassDef):
                for member in node.body:
                    if isinstance(member, ast.FunctionDef) and not member.name.startswith("_"):
                        yield f"{node.name}.{member.name}", member


@pytest.mark.parametrize("path", SOURCES, ids=lambda path: path.name)
def test_every_module_and_public_definition_has_a_docstring(path):
    tree = _tree(path)
    assert ast.get_docstring(tree), f"{path.name} has no module docstring"
    undocumented = [name for name, node in _public_definitions(tree) if not ast.get_docstring(node)]
    assert not undocumented, f"{path.name}: no docstring on {undocumented}"


def test_the_checks_would_catch_a_violation():
    tree = ast.parse(
        "from flask import g\nimport sqlalchemy.orm\nfrom portal.models import Invoice\n"
        "def f():\n    return datetime.now()\n"
    )
    imported = set(_imports(tree))
    assert {"flask", "sqlalchemy.orm", "portal.models"} <= imported
    assert [name for name, node in _public_definitions(tree) if not ast.get_docstring(node)] == [
        "f"
    ]
