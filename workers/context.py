"""The application context every job runs in."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask, current_app, has_app_context

_process_app: Flask | None = None


def _app() -> Flask:
    global _process_app
    if has_app_context():
        # `flask worker` and the tests already run inside the right app.
        return current_app._get_current_object()  # type: ignore[attr-defined]
    if _process_app is None:
        from portal import create_app

        _process_app = create_app()
    return _process_app


@contextmanager
def job_context() -> Iterator[Flask]:
    """A fresh app context per job: its database session is removed when the job ends."""
    app = _app()
    with app.app_context():
        yield app
