"""A function run on its own thread while the caller goes on: the scan pipeline overlaps work
that releases the GIL (hashing, JPEG encoding) with work that does not (reading QR codes).

A fresh thread per call, not a pool: RQ forks a work horse per job, and a pool's threads do not
survive a fork (a pool made before it would hang the child).

Public API:

- ``Background(function, *args)``: starts at once; ``result()`` waits and returns (or raises).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Background(Generic[T]):
    """``function(*args)`` running on a daemon thread; ``result()`` joins it."""

    def __init__(self, function: Callable[..., T], *args: object) -> None:
        self._value: T | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(function, args), daemon=True)
        self._thread.start()

    def _run(self, function: Callable[..., T], args: tuple[object, ...]) -> None:
        try:
            self._value = function(*args)
        except BaseException as error:  # handed to the caller by result()
            self._error = error

    def result(self) -> T:
        """Wait for the function; return its value or raise its exception."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]
