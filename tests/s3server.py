"""An S3-compatible server for the tests: moto's server mode, run as a process of our own.

moto (``moto[server]`` from PyPI) is a stand-in for the real object store (Amazon S3, OSS,
COS, MinIO…): it speaks the same S3 API over HTTP, so the portal's ``S3Storage`` runs against
it exactly as in production, through boto3 and real sockets. It keeps objects in memory.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

# moto accepts any credentials; setting them keeps boto3 from looking for real ones (files,
# instance metadata) and from ever sending a developer's own.
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "portal-tests",
    "AWS_SECRET_ACCESS_KEY": "portal-tests-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def s3_settings(url: str, bucket: str) -> dict:
    """Portal settings for ``S3Storage`` on ``bucket`` of the S3-compatible server at ``url``."""
    return {
        "EVIDENCE_STORAGE": "s3",
        "S3_BUCKET": bucket,
        "S3_PREFIX": "evidence/",
        "S3_ENDPOINT_URL": url,
        "S3_REGION": CREDENTIALS["AWS_DEFAULT_REGION"],
        "S3_ADDRESSING_STYLE": "path",
        "S3_CONNECT_TIMEOUT": 2.0,
        "S3_READ_TIMEOUT": 10.0,
    }


def moto_command(host: str, port: int) -> list[str]:
    """The command line of moto's S3-compatible server on ``host``:``port``."""
    return [sys.executable, "-m", "moto.server", "-H", host, "-p", str(port)]


class MotoServer:
    """``python -m moto.server`` on ``host``:``port`` until ``stop()``; ``settings(bucket)``
    are the portal settings that point ``S3Storage`` at one of its buckets."""

    def __init__(self, host: str, port: int, log_path: Path):
        self.host, self.port = host, port
        self.url = f"http://{host}:{port}"
        self.log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            moto_command(host, port),
            env={**os.environ, **CREDENTIALS},
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                socket.create_connection((host, port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"moto server did not start:\n{log_path.read_text(errors='replace')}")

    def settings(self, bucket: str) -> dict:
        """Portal settings for ``S3Storage`` on ``bucket`` of this server."""
        return s3_settings(self.url, bucket)

    def new_bucket(self) -> dict:
        """Create an empty bucket of its own; return the settings for it."""
        from portal.scans.storage_s3 import make_client

        bucket = f"portal-test-{uuid.uuid4().hex[:16]}"
        settings = self.settings(bucket)
        make_client(settings).create_bucket(Bucket=bucket)
        return settings

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.log.close()
