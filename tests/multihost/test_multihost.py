"""The portal on several hosts: two web hosts and a worker host, each in a Linux network
namespace of its own, sharing one PostgreSQL, one Redis and one S3-compatible bucket.

A customer signs in on web host A and uploads a photo of an invoice; the worker host C reads
its QR code; a reviewer on web host B sees the evidence, downloads it and approves; the worker
host delivers the invoice to the registry simulator (on host C); back on host A, the customer
sees the case resolved. Every host runs the production settings, with one ``SECRET_KEY`` and an
``UPLOAD_DIR`` of its own that must stay empty: the files travel only through the bucket.

The namespaces, the bridge joining them, and the way in to the machine's PostgreSQL are made
by the test (``tests/multihost/netns.py``) and removed in a ``finally``, whatever happens. The
S3-compatible server is moto's server mode, a stand-in for the real object store. It needs
root and ``ip netns`` (skipped otherwise, a failure with ``REQUIRE_MULTIHOST=1`` as in CI) and
PostgreSQL (``TEST_DATABASE_URL``): a SQLite file cannot be shared by hosts.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import http.cookiejar
import http.cookies
import os
import re
import secrets
import sys
import time
from dataclasses import replace
from html.parser import HTMLParser
from urllib.parse import urljoin

import pytest
import requests
from cryptography.fernet import Fernet
from sqlalchemy import select
from sqlalchemy.engine import make_url

from portal.extensions import db
from portal.models import Case, Upload
from tests.conftest import ROOT
from tests.factories import EVIDENCE_SAMPLE
from tests.multihost.netns import Lab, cannot_make_namespaces
from tests.s3server import CREDENTIALS, moto_command, s3_settings
from tests.scans.corpus import encode, invoice_page, phone_photo

pytestmark = [pytest.mark.multihost, pytest.mark.slow]

SAMPLE = replace(EVIDENCE_SAMPLE, number="71142414")  # a number of its own
PASSWORD = "Qing-Shan-Lv-Shui-2026"
STEP_SECONDS = 120  # the longest any one step may take (hosts starting, a job done)
HTTP_TIMEOUT = 30


@pytest.fixture
def lab(tmp_path, database_url):
    if make_url(database_url).get_backend_name() != "postgresql":
        pytest.skip(
            "hosts share one PostgreSQL database; SQLite is a file on one host "
            "(set TEST_DATABASE_URL to run this test)"
        )
    reason = cannot_make_namespaces()
    if reason:
        if os.environ.get("REQUIRE_MULTIHOST") == "1":
            pytest.fail(f"REQUIRE_MULTIHOST=1 but {reason}")
        pytest.skip(reason)
    lab = Lab(tmp_path)
    try:
        lab.start()
        yield lab
    finally:
        lab.close()


class Browser:
    """A browser for one site served by several hosts (as behind a load balancer): the cookies
    it was given go with every request, whichever host it is sent to.

    The hosts run the production settings, whose cookies are ``Secure``, over plain HTTP
    inside the lab (as behind a load balancer that ends TLS), so the cookies are kept here
    rather than in requests' jar, which would hold them back.
    """

    def __init__(self) -> None:
        self.http = requests.Session()
        self.http.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
        self.cookies: dict[str, str] = {}

    def request(self, method: str, url: str, **kwargs) -> requests.Response:
        for _ in range(10):
            headers = {"Accept-Language": "zh-CN"}
            if self.cookies:
                headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
            response = self.http.request(
                method, url, headers=headers, allow_redirects=False, timeout=HTTP_TIMEOUT, **kwargs
            )
            for line in response.raw.headers.getlist("Set-Cookie"):
                for name, morsel in http.cookies.SimpleCookie(line).items():
                    if morsel["max-age"] == "0" or "1970" in morsel["expires"]:
                        self.cookies.pop(name, None)
                    else:
                        self.cookies[name] = morsel.value
            if not response.is_redirect:
                return response
            url = urljoin(url, response.headers["Location"])
            method, kwargs = "GET", {}
        raise AssertionError(f"too many redirects at {url}")

    def get(self, url: str, **kwargs) -> requests.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs) -> requests.Response:
        return self.request("POST", url, **kwargs)


class Forms(HTMLParser):
    """The forms of a page with the values a browser would send (inputs, selects, textareas)."""

    def __init__(self, html: str, path: str) -> None:
        super().__init__()
        self.path = path  # where a form without an action posts
        self.forms: list[tuple[str, dict[str, str]]] = []
        self._fields: dict[str, str] | None = None
        self._select: str | None = None
        self._textarea: str | None = None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        name = attributes.get("name")
        if tag == "form":
            self._fields = {}
            self.forms.append((attributes.get("action") or self.path, self._fields))
        elif self._fields is None or not (name or tag == "option"):
            return
        elif tag == "input":
            kind = attributes.get("type", "text")
            if kind in ("submit", "button", "file", "image"):
                return
            if kind not in ("checkbox", "radio") or "checked" in attributes:
                self._fields[name] = attributes.get("value") or ""
        elif tag == "select":
            self._select = name
        elif tag == "option" and self._select:
            if self._select not in self._fields or "selected" in attributes:
                self._fields[self._select] = attributes.get("value") or ""
        elif tag == "textarea":
            self._textarea = name
            self._fields[name] = ""

    def handle_endtag(self, tag):
        if tag == "form":
            self._fields = None
        elif tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None

    def handle_data(self, data):
        if self._textarea and self._fields is not None:
            self._fields[self._textarea] += data

    def by_action(self, ending: str) -> dict[str, str]:
        found = [fields for action, fields in self.forms if action.split("?")[0].endswith(ending)]
        assert found, f"no form posting to …{ending}"
        return dict(found[0])


def submit(session, base: str, page_path: str, action: str, changes=None, **kwargs):
    """Load ``page_path``, fill the form posting to ``action`` as it is, apply ``changes``, and
    post it (the CSRF token comes with the form)."""
    page = session.get(base + page_path)
    assert page.status_code == 200, (page_path, page.status_code)
    fields = Forms(page.text, page_path).by_action(action) | (changes or {})
    return session.post(base + action, data=fields, **kwargs)


def verification_path(mailbox) -> str | None:
    """The path of the e-mail verification link in the mailbox, once its mail is there."""
    for path in sorted(mailbox.glob("*.eml")) if mailbox.is_dir() else ():
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        for part in message.walk():
            if part.get_content_type() == "text/plain":
                found = re.search(r"https?://[^/\s]+(/auth/verify/[^\s\"<>]+)", part.get_content())
                if found:
                    return found[1]
    return None


def wait_until(check, what: str, lab: Lab):
    deadline = time.monotonic() + STEP_SECONDS
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.5)
    raise AssertionError(f"{what}: not within {STEP_SECONDS} s\n{lab.logs()}")


def test_two_web_hosts_and_a_worker_host_share_the_evidence_and_the_case(
    lab, app, make_user, database_url, tmp_path, monkeypatch
):
    make_user("shenhe@example.com", "reviewer", PASSWORD)
    web_a, web_b, worker_c = lab.add_host("a"), lab.add_host("b"), lab.add_host("c")

    # What every host shares: PostgreSQL (forwarded), Redis and the bucket (on the gateway).
    database = make_url(database_url).set(host=lab.gateway, port=lab.forward(("127.0.0.1", 5432)))
    redis_port, s3_port = lab.free_port(), lab.free_port()
    redis_password = secrets.token_hex(16)  # a Redis others can reach wants a password
    lab.run(
        "redis",
        [
            "redis-server",
            *("--bind", lab.gateway, "--port", str(redis_port), "--requirepass", redis_password),
            *("--save", "", "--appendonly", "no"),
        ],
        host=None,
        env=dict(os.environ),
        cwd=tmp_path,
    )
    lab.run("s3", moto_command(lab.gateway, s3_port), host=None, env=dict(os.environ), cwd=tmp_path)
    lab.wait_for_port(lab.gateway, redis_port, "redis")
    lab.wait_for_port(lab.gateway, s3_port, "s3")
    storage = s3_settings(f"http://{lab.gateway}:{s3_port}", "portal-evidence")
    for name, value in CREDENTIALS.items():  # for the bucket's setup and checks from here
        monkeypatch.setenv(name, value)
    from portal.scans.storage import open_storage

    bucket = open_storage(storage)
    bucket.client.create_bucket(Bucket=storage["S3_BUCKET"])

    web_port, registry_port = 8000, 8100  # each host has its own ports: no clash possible
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("TEST_", "PORTAL_"))},
        **CREDENTIALS,
        **{name: str(value) for name, value in storage.items()},
        "PORTAL_ENV": "production",
        "SECRET_KEY": secrets.token_urlsafe(48),  # one key for every host
        "TOTP_ENCRYPTION_KEY": Fernet.generate_key().decode(),  # and one for two-step secrets
        "DATABASE_URL": database.render_as_string(hide_password=False),
        "REDIS_URL": f"redis://:{redis_password}@{lab.gateway}:{redis_port}/0",
        "REGISTRY_URL": f"http://{worker_c}:{registry_port}",
        "REGISTRY_RATE_LIMIT": "0",
        "PUBLIC_URL": f"http://{web_a}:{web_port}",
        # The customer's mailbox: mail sent from any host lands here as .eml files.
        "MAIL_URL": f"file://{tmp_path / 'mailbox'}",
        "PYTHONDONTWRITEBYTECODE": "1",
    }

    def host_env(name: str) -> dict:
        # Each host's own instance folder and UPLOAD_DIR, which nothing must be written to.
        folder = tmp_path / f"host-{name}"
        return env | {"PORTAL_INSTANCE_PATH": str(folder), "UPLOAD_DIR": str(folder / "uploads")}

    flask = [sys.executable, "-m", "flask", "--app", "wsgi"]
    for name, address in (("a", web_a), ("b", web_b)):
        gunicorn = [sys.executable, "-m", "gunicorn", "--workers", "2", "--timeout", "60"]
        lab.run(
            f"web-{name}",
            [*gunicorn, "--bind", f"{address}:{web_port}", "wsgi:app"],
            host=name,
            env=host_env(name),
            cwd=ROOT,
        )
    lab.run(
        "registry",
        [*flask, "registry", "simulate", "--host", worker_c, "--port", str(registry_port)],
        host="c",
        env=host_env("c"),
        cwd=ROOT,
    )
    lab.run("worker-c", [*flask, "worker"], host="c", env=host_env("c"), cwd=ROOT)
    for name, address, port in (("web-a", web_a, web_port), ("web-b", web_b, web_port)):
        lab.wait_for_port(address, port, name)
    lab.wait_for_port(worker_c, registry_port, "registry")
    host_a, host_b = f"http://{web_a}:{web_port}", f"http://{web_b}:{web_port}"

    # Host A: a customer registers, confirms the address from the mail (on host B: the link is
    # good on every host), signs in on A, reports the invoice and uploads a photo.
    customer = Browser()
    registered = submit(
        customer,
        host_a,
        "/auth/register",
        "/auth/register",
        {"email": "baoxiao@example.com", "password": PASSWORD, "confirm": PASSWORD},
    )
    main = registered.text[registered.text.find("<main") :][:1500]
    assert registered.status_code == 200, f"{main} {registered.request.headers}\n{lab.logs()}"
    link = wait_until(lambda: verification_path(tmp_path / "mailbox"), "the verification mail", lab)
    verified = submit(customer, host_b, link, link, {"password": PASSWORD})
    assert verified.status_code == 200, f"{verified.url}\n{lab.logs()}"
    signed_in = submit(
        customer,
        host_a,
        "/auth/login",
        "/auth/login",
        {"email": "baoxiao@example.com", "password": PASSWORD},
    )
    assert "/auth/login" not in signed_in.url, f"{signed_in.url}\n{lab.logs()}"
    claim = (
        f"/cases/new?code={SAMPLE.code}&number={SAMPLE.number}"
        "&issue_date=2026-05-01&check_code_last6=114698"
    )
    opened = submit(customer, host_a, claim, "/cases/new")
    reference = re.search(r"BJ-\d{4}-\d{6}", opened.url + opened.text)
    assert opened.status_code == 200 and reference, f"{opened.url}\n{lab.logs()}"
    reference = reference[0]
    photo = encode(
        phone_photo(invoice_page(SAMPLE), size=(2400, 1800), page_width=2000, angle=1.5),
        "JPEG",
        quality=90,
    )
    uploaded = submit(
        customer,
        host_a,
        f"/cases/{reference}",
        f"/cases/{reference}/evidence",
        files={"files": ("发票照片.jpg", photo, "image/jpeg")},
    )
    assert uploaded.status_code == 200 and "已收到" in uploaded.text, lab.logs()

    # Host C reads the QR code; host A shows the fields read, for the customer to confirm.
    def fields_read():
        page = customer.get(f"{host_a}/cases/{reference}").text
        return f'value="{SAMPLE.number}"' in page and "/confirm" in page

    wait_until(fields_read, "the worker host reads the photo", lab)
    with app.app_context():
        upload = db.session.scalar(select(Upload))
        assert upload.state == "extracted", upload.error
        read = {f["name"]: (f["value"], f["source"]) for f in upload.extracted["fields"]}
        assert read["number"] == (SAMPLE.number, "qr"), read
        upload_id, keys = upload.id, (upload.storage_key, upload.preview_key, upload.thumbnail_key)
    confirmed = submit(customer, host_a, f"/cases/{reference}", f"/cases/{reference}/confirm")
    assert confirmed.status_code == 200 and "审核员将看到您确认的内容" in confirmed.text

    # The customer's session is valid on host B too (one SECRET_KEY): a load balancer may send
    # any request anywhere.
    elsewhere = customer.get(f"{host_b}/cases/{reference}")
    assert elsewhere.status_code == 200 and reference in elsewhere.text
    assert "/auth/login" not in elsewhere.url

    # Host B: a reviewer signs in, claims the case, sees the evidence and downloads it.
    reviewer = Browser()
    signed_in = submit(
        reviewer,
        host_b,
        "/auth/login",
        "/auth/login",
        {"email": "shenhe@example.com", "password": PASSWORD},
    )
    assert signed_in.status_code == 200 and "/auth/login" not in signed_in.url, lab.logs()
    claimed = submit(
        reviewer, host_b, f"/staff/cases/{reference}", f"/staff/cases/{reference}/claim"
    )
    assert claimed.status_code == 200
    review_page = reviewer.get(f"{host_b}/staff/cases/{reference}").text
    assert f"/evidence/{upload_id}/preview" in review_page
    original = reviewer.get(f"{host_b}/evidence/{upload_id}/original")
    assert original.status_code == 200 and original.content == photo
    assert original.headers["Content-Disposition"].startswith("attachment")
    assert original.headers["X-Content-Type-Options"] == "nosniff"
    assert original.headers["Content-Security-Policy"] == "default-src 'none'; sandbox"
    preview = reviewer.get(f"{host_b}/evidence/{upload_id}/preview")
    assert preview.status_code == 200 and preview.headers["Content-Type"].startswith("image/")
    assert (
        hashlib.sha256(preview.content).hexdigest()
        == hashlib.sha256(bucket.read(keys[1])).hexdigest()
    )
    approved = submit(
        reviewer,
        host_b,
        f"/staff/cases/{reference}",
        f"/staff/cases/{reference}/approve",
        {
            "buyer_name": SAMPLE.buyer_name,
            "buyer_tax_id": SAMPLE.buyer_tax_id,
            "tax": str(SAMPLE.tax),
            "total": str(SAMPLE.total),
        },
    )
    assert approved.status_code == 200 and "已批准" in approved.text, approved.text[-2000:]

    # Host C delivers to the registry; back on host A the customer sees the case resolved.
    def resolved():
        page = customer.get(f"{host_a}/cases/{reference}").text
        return "已解决" in page and page

    page = wait_until(resolved, "the worker host delivers and the case resolves", lab)
    assert "已在登记系统登记" in page
    with app.app_context():
        assert db.session.scalar(select(Case.state)) == "resolved"
    stats = requests.get(f"http://{worker_c}:{registry_port}/_sim/stats", timeout=HTTP_TIMEOUT)
    assert stats.json()["records"] == 1

    # The files went only through the bucket: no host kept any of them.
    assert sorted(bucket.keys()) == sorted(keys)
    for name in ("a", "b", "c"):
        uploads = tmp_path / f"host-{name}" / "uploads"
        assert not uploads.exists() or not any(uploads.rglob("*")), name
