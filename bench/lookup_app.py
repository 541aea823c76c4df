"""The portal as ``wsgi:app`` serves it, for bench/lookup.py, with the lookup rate limits taken
from the environment.

``portal/config.py`` reads only numeric limits from the environment; the per-IP and per-user
lookup limits are strings ("30 per minute;300 per hour") and every benchmark request comes
from 127.0.0.1, so without this the per-IP limit would answer 429 after 30 lookups. The
limiter still runs on every POST (against Redis), only with a ceiling the benchmark never
reaches. Nothing else differs from ``wsgi:app``.
"""

import os

from wsgi import app

for _name in ("RATELIMIT_LOOKUP_IP", "RATELIMIT_LOOKUP_USER"):
    if os.environ.get(_name):
        app.config[_name] = os.environ[_name]
