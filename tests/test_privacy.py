"""Privacy: personal data masked in logs, evidence retention, a customer's own data export."""

from __future__ import annotations

import io
import json
import logging
import zipfile
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.models import (
    AuditEvent,
    BuyerLink,
    Case,
    CaseEvent,
    CaseState,
    LookupEvent,
    Rating,
    Upload,
    User,
    utcnow,
)
from portal.services import audit, cases, evidence, privacy
from portal.support import logmask
from tests.factories import case_with_evidence

pytestmark = pytest.mark.storage_backends  # tests with an app: the local folder, then S3

# --------------------------------------------------------------------------- helpers


def stored_keys(case: Case) -> list[str]:
    return [k for u in case.uploads for k in (u.storage_key, u.preview_key, u.thumbnail_key) if k]


# --------------------------------------------------------------------------- log masking


@pytest.mark.parametrize(
    ("raw", "masked"),
    [
        ("login kehu@example.com ok", "login k***@example.com ok"),
        ("联系邮箱：zhang.san+fp@mail.demo.cn。", "联系邮箱：z***@mail.demo.cn。"),
        ("13812345678@qq.com", "1***@qq.com"),
        (
            "GET /staff/users?q=kehu%40example.com HTTP/1.1",
            "GET /staff/users?q=k***%40example.com HTTP/1.1",
        ),
        ("phone 13812345678", "phone 138****5678"),
        ("手机13812345678，谢谢", "手机138****5678，谢谢"),
        ("+86 138-1234-5678", "+86 138****5678"),
        ("tel: 8613912345678", "tel: 86139****5678"),
        ("buyer 911101017967003199 seller", "buyer 9111********3199 seller"),
        ("seller=91320621MA1MRHG205", "seller=9132********G205"),
        ("?buyer=91320621ma1mrhg205&page=2", "?buyer=9132********g205&page=2"),
        ("legacy 110108123456789", "legacy 1101********6789"),
        ("id 11010819900307123X.", "id 1101********123X."),
    ],
)
def test_personal_data_is_masked(raw, masked):
    assert logmask.mask(raw) == masked


@pytest.mark.parametrize(
    "text",
    [
        "invoice 011001900111-51142414 registered",  # a legacy invoice key
        "数电票 26112000000012345678",  # 20-digit invoice number
        "check code 65431824771847114698",
        "sha256 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "request 3f2b8c1e9d7a4b6f8e0c1d2a3b4c5d6e",
        "key ab/cd/abcdef0123456789abcdef0123456789",
        "total ¥1,234.56 on 2026-05-01 13:45:12, 12 tries, 3600 s",
        "BJ-2026-000123",
    ],
)
def test_other_identifiers_are_left_alone(text):
    assert logmask.mask(text) == text


class Capture(logging.Handler):
    """Keeps what it would have written, formatted by a plain formatter."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(message)s"))
        self.lines: list[str] = []
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        try:
            line = self.format(record)
        except Exception:
            self.handleError(record)
            return
        self.records.append(record)
        self.lines.append(line)


@pytest.fixture
def capture():
    """A handler on a logger of its own, with the masking filter on the handler."""
    logger = logging.getLogger("tests.privacy.capture")
    handler = Capture()
    handler.addFilter(logmask.MaskingFilter())
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger, handler
    logger.removeHandler(handler)


def test_the_filter_formats_first_then_masks_keeping_percent_signs(capture):
    logger, handler = capture
    logger.info("user %s (%s) is %d%% done", "kehu@example.com", "13812345678", 50)
    logger.info("buyer %(tax)s", {"tax": "911101017967003199"})
    logger.info("literal 100% and 13812345678")  # no args: "%" is not a format here
    assert handler.lines == [
        "tests.privacy.capture user k***@example.com (138****5678) is 50% done",
        "tests.privacy.capture buyer 9111********3199",
        "tests.privacy.capture literal 100% and 138****5678",
    ]
    assert all(r.args is None for r in handler.records[:2])
    # The record stays formattable by any later handler.
    assert handler.records[0].getMessage().endswith("50% done")


def test_a_traceback_is_masked_too(capture):
    logger, handler = capture
    try:
        raise ValueError("no account for kehu@example.com")
    except ValueError:
        logger.exception("failed for %s", "13812345678")
    text = handler.lines[0]
    assert "Traceback" in text and "k***@example.com" in text and "138****5678" in text
    assert "kehu@" not in text and "13812345678" not in text


def test_a_record_that_cannot_be_formatted_is_left_to_logging(capture, monkeypatch):
    logger, handler = capture
    errors = []
    monkeypatch.setattr(handler, "handleError", errors.append)
    # Only our handler: pytest's log capture (when its plugin is on) re-raises format errors.
    monkeypatch.setattr(logger, "handlers", [handler])
    logger.info("%d apples", "not a number")
    assert errors and handler.lines == []  # logging's own error path, not a crash in the filter


@pytest.fixture
def clean_logging():
    """Undo what ``install`` attaches to shared loggers and handlers."""
    names = ("", "portal", "gunicorn.error", "gunicorn.access", "werkzeug", "rq.worker")
    yield
    for name in names:
        logger = logging.getLogger(name)
        for target in (logger, *logger.handlers):
            for f in list(target.filters):
                if isinstance(f, logmask.MaskingFilter):
                    target.removeFilter(f)


def test_install_covers_the_app_root_and_gunicorn_loggers(app, clean_logging):
    root_capture, access_capture = Capture(), Capture()
    root, access = logging.getLogger(), logging.getLogger("gunicorn.access")
    root.addHandler(root_capture)
    access.addHandler(access_capture)
    child = logging.getLogger("portal.services.somewhere")
    old_level = root.level
    root.setLevel(logging.INFO)
    try:
        logmask.install(app)
        logmask.install(app)  # twice attaches nothing twice
        for target in (app.logger, root, root_capture, access, access_capture):
            assert sum(isinstance(f, logmask.MaskingFilter) for f in target.filters) == 1
        child.warning("mail to %s failed", "kehu@example.com")  # propagates to root's handler
        app.logger.warning("tax id %s", "911101017967003199")
        access.info('%(h)s "%(r)s"', {"h": "127.0.0.1", "r": "GET /?email=a@b.cn"})
    finally:
        root.removeHandler(root_capture)
        access.removeHandler(access_capture)
        root.setLevel(old_level)
    text = "\n".join(root_capture.lines)
    assert "k***@example.com" in text and "9111********3199" in text
    assert "kehu@example.com" not in text and "911101017967003199" not in text
    assert access_capture.lines == ['gunicorn.access 127.0.0.1 "GET /?email=a***@b.cn"']


# --------------------------------------------------------------------------- retention


def test_the_cutoff_counts_calendar_months():
    now = datetime(2026, 3, 31, 8, 0, tzinfo=UTC)
    assert privacy.retention_cutoff(now, 1) == datetime(2026, 2, 28, 8, 0, tzinfo=UTC)
    assert privacy.retention_cutoff(now, 24) == datetime(2024, 3, 31, 8, 0, tzinfo=UTC)
    assert privacy.retention_cutoff(now, 25) == datetime(2024, 2, 29, 8, 0, tzinfo=UTC)
    with pytest.raises(ValueError):
        privacy.retention_cutoff(datetime(2026, 3, 31), 1)  # a naive time is refused


def test_retention_months_comes_from_the_setting_with_a_default(app_factory):
    with app_factory().app_context():
        assert privacy.retention_months() == 24
    with app_factory(EVIDENCE_RETENTION_MONTHS=6).app_context():
        assert privacy.retention_months() == 6


def _audit_rows() -> list[tuple[int, str]]:
    return db.session.execute(select(AuditEvent.id, AuditEvent.hash).order_by(AuditEvent.id)).all()


def test_a_dry_run_reports_and_changes_nothing(ctx):
    old = case_with_evidence("old@example.com", files=2, closed_days_ago=800)
    case_with_evidence("recent@example.com", closed_days_ago=30)
    case_with_evidence("open@example.com")
    keys = stored_keys(old)
    rows_before = [(u.id, u.extracted, u.preview_key) for u in db.session.scalars(select(Upload))]
    audit_before = _audit_rows()

    report = privacy.purge_evidence(24, dry_run=True)

    assert report.dry_run and report.months == 24
    assert {u.case_reference for u in report.uploads} == {old.reference}
    assert (len(report.uploads), report.cases, report.files, report.missing) == (2, 1, 6, 0)
    assert report.bytes == sum(evidence.storage().size(k) for k in keys)
    assert report.summary().startswith("would purge 2 upload(s) of 1 case(s)")
    db.session.expire_all()
    assert all(evidence.storage().exists(k) for k in keys)
    assert [
        (u.id, u.extracted, u.preview_key) for u in db.session.scalars(select(Upload))
    ] == rows_before
    assert _audit_rows() == audit_before


def test_purge_deletes_old_evidence_keeps_the_records_and_the_audit_trail(ctx):
    old = case_with_evidence("old@example.com", files=2, closed_days_ago=800)
    recent = case_with_evidence("recent@example.com", closed_days_ago=30)
    still_open = case_with_evidence("open@example.com")
    old_keys, kept_keys = stored_keys(old), stored_keys(recent) + stored_keys(still_open)
    old_ids = [u.id for u in old.uploads]
    audit_before = _audit_rows()

    report = privacy.purge_evidence(24)

    assert not report.dry_run and len(report.uploads) == 2 and report.files == 6
    store = evidence.storage()
    assert not any(store.exists(k) for k in old_keys)
    assert all(store.exists(k) for k in kept_keys)
    db.session.expire_all()
    for upload_id in old_ids:
        upload = db.session.get(Upload, upload_id)
        assert upload.is_purged and upload.state == "purged" and upload.extracted is None
        assert upload.purged_at is not None
        assert upload.preview_key is None and upload.thumbnail_key is None
        assert upload.storage_key and upload.sha256  # the record of what was held stays
    assert not any(u.is_purged for u in recent.uploads + still_open.uploads)
    # Every earlier audit row is still there, unchanged; one new row per purged upload.
    after = _audit_rows()
    assert after[: len(audit_before)] == audit_before
    purged_rows = db.session.scalars(
        select(AuditEvent).where(AuditEvent.action == "upload.purged").order_by(AuditEvent.id)
    ).all()
    assert [int(r.object_id) for r in purged_rows] == old_ids
    assert purged_rows[0].before["storage_key"] == old_keys[0]
    assert purged_rows[0].after["case"] == old.reference and purged_rows[0].actor == "retention"
    assert purged_rows[0].after["retention_months"] == 24
    assert audit.verify_chain().ok
    # The case itself and its timeline are kept.
    assert db.session.get(Case, old.id).state == CaseState.WITHDRAWN
    # Nothing is purged twice.
    assert privacy.purge_evidence(24).uploads == []
    assert len(_audit_rows()) == len(after)


def test_purge_uses_the_setting_and_a_given_now(app, app_factory):
    with app_factory(EVIDENCE_RETENTION_MONTHS=1).app_context():
        case = case_with_evidence("old@example.com", closed_days_ago=40)
        assert privacy.purge_evidence(dry_run=True).months == 1
        assert len(privacy.purge_evidence(dry_run=True).uploads) == 1
        earlier = utcnow() - timedelta(days=30)
        assert privacy.purge_evidence(dry_run=True, now=earlier).uploads == []
        assert len(privacy.purge_evidence().uploads) == 1
        assert db.session.get(Upload, case.uploads[0].id).is_purged


def test_a_merged_case_waits_for_the_case_it_was_merged_into(ctx):
    target = case_with_evidence("target@example.com")
    duplicate = case_with_evidence("dup@example.com", derived=False)
    duplicate.state, duplicate.merged_into_id = CaseState.MERGED, target.id
    duplicate.resolved_at = utcnow() - timedelta(days=800)
    db.session.commit()
    assert privacy.purge_evidence(24, dry_run=True).uploads == []  # the target is still open
    cases.withdraw(target, target.customer)
    target.resolved_at = utcnow() - timedelta(days=800)
    db.session.commit()
    purged = {u.case_reference for u in privacy.purge_evidence(24).uploads}
    assert purged == {target.reference, duplicate.reference}


def test_an_upload_still_waiting_for_extraction_is_not_picked_up_again(ctx):
    case = case_with_evidence("old@example.com", closed_days_ago=800, derived=False)
    assert case.uploads[0].state == "received"
    privacy.purge_evidence(24)
    db.session.expire_all()
    upload = db.session.get(Upload, case.uploads[0].id)
    assert upload.state == "purged" and upload.is_purged
    assert evidence.sweep(grace_seconds=0) == 0
    # A job for it still in the queue finds nothing to read (its file is gone).
    assert evidence.process(upload.id) == "purged"


def test_the_purge_command(app, runner):
    from portal.cli.ops import data_cli

    app.cli.add_command(data_cli)
    with app.app_context():
        case_with_evidence("old@example.com", closed_days_ago=800)
    dry = runner.invoke(args=["data", "purge", "--dry-run", "--months", "24", "-v"])
    assert dry.exit_code == 0, dry.output
    assert "would purge 1 upload(s) of 1 case(s)" in dry.output and "3/3 file(s)" in dry.output
    done = runner.invoke(args=["data", "purge"])
    assert done.exit_code == 0 and "purged 1 upload(s)" in done.output
    again = runner.invoke(args=["data", "purge"])
    assert "purged 0 upload(s)" in again.output
    with app.app_context():
        row = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "upload.purged"))
        assert row.actor == "cli"


# --------------------------------------------------------------------------- export


def _zip(data: bytes) -> tuple[dict, zipfile.ZipFile]:
    archive = zipfile.ZipFile(io.BytesIO(data))
    assert archive.testzip() is None
    return json.loads(archive.read("data.json")), archive


def test_the_export_holds_the_customers_own_data_and_nothing_of_anyone_else(ctx):
    mine = case_with_evidence("kehu@example.com", files=2)
    closed = case_with_evidence("kehu@example.com", closed_days_ago=800)
    theirs = case_with_evidence("other@example.com")
    user = mine.customer
    cases.add_message(mine, user, "请尽快处理，电话 13812345678")
    db.session.add(CaseEvent(case_id=mine.id, kind="note", public=False, body="内部备注：可疑"))
    db.session.add(Rating(case_id=closed.id, score=5, comment="很快"))
    db.session.add(Rating(case_id=theirs.id, score=1, comment="别人的评价"))
    db.session.add(BuyerLink(user_id=user.id, buyer_tax_id="911101017967003199", state="approved"))
    db.session.add(
        BuyerLink(user_id=theirs.customer_id, buyer_tax_id="91440106068698695J", state="approved")
    )
    db.session.add(LookupEvent(invoice_key="011001900111-51142414", finding="ok", user_id=user.id))
    db.session.add(
        LookupEvent(invoice_key="011001900111-99999999", finding="ok", user_id=theirs.customer_id)
    )
    db.session.commit()
    privacy.purge_evidence(24)  # the closed case's file is gone; its record stays

    data, archive = _zip(privacy.export_customer_data(user))

    assert data["account"]["email"] == "kehu@example.com"
    assert [c["reference"] for c in data["cases"]] == [mine.reference, closed.reference]
    text = json.dumps(data, ensure_ascii=False)
    assert theirs.reference not in text and "other@example.com" not in text
    assert "别人的评价" not in text and "91440106068698695J" not in text
    assert "内部备注" not in text  # staff notes stay internal
    exported = data["cases"][0]
    assert any(e["kind"] == "message" and "13812345678" in e["body"] for e in exported["events"])
    assert exported["claimed"]["number"] == mine.claimed_number
    assert exported["contact_phone"] == "13812345678"
    assert data["ratings"] == [
        {"case": closed.reference, "score": 5, "comment": "很快", "created_at": ANY_TIME}
    ]
    assert [link["buyer_tax_id"] for link in data["buyer_links"]] == ["911101017967003199"]
    assert [e["invoice_key"] for e in data["lookups"]] == ["011001900111-51142414"]
    # The originals of the customer's evidence, byte for byte; the purged one is listed only.
    names = sorted(n for n in archive.namelist() if n.startswith("evidence/"))
    assert len(names) == 2 and all(n.startswith(f"evidence/{mine.reference}/") for n in names)
    for upload in exported["uploads"]:
        row = db.session.get(Upload, upload["id"])
        assert archive.read(upload["file"]) == evidence.storage().read(row.storage_key)
        assert upload["sha256"] == row.sha256
    gone = data["cases"][1]["uploads"][0]
    assert gone["file"] is None and gone["purged_at"]
    assert "README.txt" in archive.namelist()
    row = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "user.data_exported"))
    assert row.object_id == str(user.id) and row.after == {"cases": 2, "files": 2, "bytes": ANY}


class _Any:
    def __eq__(self, other):
        return True


ANY = _Any()


class _AnyTime:
    def __eq__(self, other):
        return isinstance(other, str) and datetime.fromisoformat(other).tzinfo is not None


ANY_TIME = _AnyTime()


def test_an_account_without_cases_exports_just_the_account(ctx, make_user):
    user = db.session.get(User, make_user("staff@example.com", role="reviewer"))
    case_with_evidence("kehu@example.com")
    data, archive = _zip(privacy.export_customer_data(user, actor="cli"))
    assert data["account"]["role"] == "reviewer" and data["cases"] == data["ratings"] == []
    assert sorted(archive.namelist()) == ["README.txt", "data.json"]


def test_the_export_command_writes_a_private_zip(app, runner, tmp_path):
    from portal.cli.ops import data_cli

    app.cli.add_command(data_cli)
    with app.app_context():
        case = case_with_evidence("kehu@example.com")
        reference = case.reference
    out = tmp_path / "kehu.zip"
    result = runner.invoke(args=["data", "export", "--email", "KEHU@example.com", "--out", out])
    assert result.exit_code == 0, result.output
    assert "1 case(s), 1 file(s)" in result.output
    assert out.stat().st_mode & 0o077 == 0
    data, _archive = _zip(out.read_bytes())
    assert data["cases"][0]["reference"] == reference
    again = runner.invoke(args=["data", "export", "--email", "kehu@example.com", "--out", out])
    assert again.exit_code != 0 and "exists" in again.output
    missing = runner.invoke(args=["data", "export", "--email", "nobody@example.com"])
    assert missing.exit_code != 0 and "no user" in missing.output


# --------------------------------------------------------------------------- the download


def test_a_customer_downloads_their_own_data(app, client, auth):
    assert client.get("/account/data.zip").status_code in (302, 401)  # signed in only
    auth.register("kehu@example.com")
    with app.app_context():
        mine = case_with_evidence("kehu@example.com").reference
        theirs = case_with_evidence("other@example.com").reference
    response = client.get("/account/data.zip")
    assert response.status_code == 200 and response.mimetype == "application/zip"
    assert response.headers["Content-Disposition"].startswith("attachment;")
    assert "no-store" in response.headers["Cache-Control"]
    data, archive = _zip(response.get_data())
    response.close()
    assert [c["reference"] for c in data["cases"]] == [mine]
    assert not any(theirs in name for name in archive.namelist())


def test_a_purged_upload_is_said_on_the_case_page_and_its_files_are_gone(app, client, auth):
    auth.register("kehu@example.com")
    with app.app_context():
        case = case_with_evidence("kehu@example.com", closed_days_ago=800)
        reference, upload_id = case.reference, case.uploads[0].id
    before = client.get(f"/cases/{reference}").get_data(as_text=True)
    assert f"/evidence/{upload_id}/original" in before and "已按保存期限规定删除" not in before
    assert client.get(f"/evidence/{upload_id}/original").status_code == 200

    with app.app_context():
        privacy.purge_evidence(24)

    page = client.get(f"/cases/{reference}").get_data(as_text=True)
    assert "已按保存期限规定删除" in page
    assert f"/evidence/{upload_id}/original" not in page
    for variant in ("original", "preview", "thumbnail"):
        assert client.get(f"/evidence/{upload_id}/{variant}").status_code == 404
