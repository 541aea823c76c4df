"""`make run` (portal/devrun.py) builds mail links for the port it serves on."""

import pytest

from portal import devrun


class _Stop(Exception):
    pass


def _env_seen_by_redis_choice(monkeypatch) -> dict:
    seen: dict = {}

    def choose_redis(sup, env):
        seen.update(env)
        raise _Stop

    monkeypatch.setattr(devrun, "choose_redis", choose_redis)
    monkeypatch.setattr(devrun.signal, "signal", lambda *args: None)  # keep pytest's handlers
    with pytest.raises(_Stop):
        devrun.main()
    return seen


def test_public_url_follows_port(monkeypatch):
    monkeypatch.setenv("PORT", "8311")
    monkeypatch.delenv("PUBLIC_URL", raising=False)
    assert _env_seen_by_redis_choice(monkeypatch)["PUBLIC_URL"] == "http://127.0.0.1:8311"


def test_explicit_public_url_wins(monkeypatch):
    monkeypatch.setenv("PORT", "8311")
    monkeypatch.setenv("PUBLIC_URL", "https://fapiao.example.cn")
    assert _env_seen_by_redis_choice(monkeypatch)["PUBLIC_URL"] == "https://fapiao.example.cn"
