"""The baseline of bench/lookup.py: a bare Flask "hello" route, served by the same gunicorn
settings as the portal (``gunicorn bench.hello_app:app``)."""

from flask import Flask

app = Flask(__name__)


@app.route("/")
def hello():
    return "hello"
