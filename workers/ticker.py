"""Periodic jobs, enqueued by a small thread inside every worker process.

Each period has one slot in Redis (SET NX): whichever worker takes it enqueues the job, so with
many workers on many hosts each periodic job still runs once per period. It needs no separate
scheduler process, and it survives Redis being flushed (the next slot is simply taken again).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from redis import Redis
from rq import Queue

log = logging.getLogger(__name__)


class Ticker(threading.Thread):
    """Every ``interval`` seconds, enqueue ``func_path`` on ``queue`` once across all workers."""

    def __init__(
        self,
        connection: Redis,
        queue: Queue,
        func_path: str,
        interval: float,
        name: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(name=f"ticker-{name}", daemon=True)
        self.connection = connection
        self.queue = queue
        self.func_path = func_path
        self.interval = interval
        self.job_name = name
        self.clock = clock
        self.stopped = threading.Event()

    def tick(self) -> bool:
        """Enqueue the job for the current period if no worker did yet; True if this one did."""
        slot = int(self.clock() // self.interval)
        key = f"portal:tick:{self.job_name}:{slot}"
        if not self.connection.set(key, "1", nx=True, ex=max(2, int(self.interval * 3))):
            return False
        self.queue.enqueue(
            self.func_path, job_id=f"{self.job_name}-{slot}", result_ttl=60, failure_ttl=3600
        )
        return True

    def run(self) -> None:
        while not self.stopped.is_set():
            try:
                self.tick()
            except Exception:  # Redis away for a moment: try again next period
                log.warning("could not enqueue periodic job %s", self.job_name, exc_info=True)
            self.stopped.wait(self.interval)

    def stop(self) -> None:
        self.stopped.set()
