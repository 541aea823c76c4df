"""Evidence on a case: upload, extraction by the worker, confirmation, access, duplicates."""

from __future__ import annotations

import io

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.models import Case, Upload, UploadState, User
from portal.queue import redis_connection
from portal.services import cases, evidence, review
from portal.staff import presenters
from portal.web.i18n import LANG_COOKIE
from tests.conftest import AuthActions, csrf_token_from
from tests.factories import EVIDENCE_SAMPLE as SAMPLE
from tests.factories import run_workers
from tests.scans.corpus import encode, invoice_page

pytestmark = pytest.mark.storage_backends  # each test once on the local folder, once on S3


@pytest.fixture(scope="module")
def invoice_png() -> bytes:
    return encode(invoice_page(SAMPLE, width=1000), "PNG")


@pytest.fixture
def customer_case(app, client):
    AuthActions(client).register("kehu@example.com")
    with app.app_context():
        user = db.session.scalar(select(User))
        case = cases.open_case(
            cases.parse_claim({"code": SAMPLE.code, "number": SAMPLE.number}), customer=user
        )
        return case.reference


def upload(client, reference, name, data):
    page = client.get(f"/cases/{reference}").get_data(as_text=True)
    return client.post(
        f"/cases/{reference}/evidence",
        data={"csrf_token": csrf_token_from(page), "files": [(io.BytesIO(data), name)]},
        content_type="multipart/form-data",
        follow_redirects=True,
    )


def test_a_photo_is_read_and_the_customer_confirms_the_fields(
    app, client, customer_case, invoice_png
):
    response = upload(client, customer_case, "发票.png", invoice_png)
    assert "已收到" in response.get_data(as_text=True)
    with app.app_context():
        row = db.session.scalar(select(Upload))
        assert row.state == "received" and row.job_id
        run_workers()
        row = db.session.scalar(select(Upload))
        assert row.state == "extracted" and row.preview_key and row.thumbnail_key
        values = {f["name"]: f["value"] for f in row.extracted["fields"]}
        assert values["number"] == SAMPLE.number and values["amount"] == "47.26"
    page = client.get(f"/cases/{customer_case}").get_data(as_text=True)
    assert 'value="51142414"' in page and "核对" in page  # the confirmation form, prefilled
    client.post(
        f"/cases/{customer_case}/confirm",
        data={
            "csrf_token": csrf_token_from(page),
            "number": SAMPLE.number,
            "code": SAMPLE.code,
            "issue_date": "2026-05-01",
            "amount": "47.26",
            "tax": "2.84",
            "total": "50.10",
        },
    )
    with app.app_context():
        case = db.session.scalar(select(Case))
        assert case.confirmed_fields["total"] == "50.10"
        rows = {r.field: r for r in presenters.comparison(case, None)}
        assert rows["number"].extracted == SAMPLE.number
        assert rows["total"].confirmed == "50.10"


def test_hostile_and_bad_files_are_refused_clearly(app, client, customer_case):
    html_as_jpg = upload(
        client, customer_case, "invoice.jpg", b"<!doctype html><script>alert(1)</script>"
    ).get_data(as_text=True)
    assert "invoice.jpg" in html_as_jpg and 'class="flash flash-error"' in html_as_jpg
    empty = upload(client, customer_case, "empty.png", b"").get_data(as_text=True)
    assert 'class="flash flash-error"' in empty
    with app.app_context():
        assert db.session.scalar(select(Upload)) is None


def test_unreadable_file_is_marked_failed_with_a_reason(app, client, customer_case, invoice_png):
    truncated = encode(invoice_page(SAMPLE, width=600), "JPEG")[:2000]
    upload(client, customer_case, "cut.jpg", truncated)
    with app.app_context():
        run_workers()
        row = db.session.scalar(select(Upload))
        assert row.state == "failed" and row.error
    page = client.get(f"/cases/{customer_case}").get_data(as_text=True)
    assert "无法使用" in page


def test_files_are_served_only_to_their_owner_and_staff(
    app, client, customer_case, invoice_png, make_user
):
    upload(client, customer_case, "发票.png", invoice_png)
    with app.app_context():
        run_workers()
        upload_id = db.session.scalar(select(Upload.id))
    for variant in ("original", "preview", "thumbnail"):
        response = client.get(f"/evidence/{upload_id}/{variant}")
        assert response.status_code == 200
        assert response.headers["Content-Disposition"].startswith("attachment")
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert "sandbox" in response.headers["Content-Security-Policy"]
    other = AuthActions(app.test_client())
    other.register("other@example.com")
    assert other.client.get(f"/evidence/{upload_id}/original").status_code == 404
    anonymous = app.test_client().get(f"/evidence/{upload_id}/original")
    assert anonymous.status_code == 302
    make_user("r@example.com", "reviewer")
    staff = AuthActions(app.test_client())
    staff.login("r@example.com")
    assert staff.client.get(f"/evidence/{upload_id}/preview").status_code == 200
    page = staff.client.get(f"/staff/cases/{customer_case}").get_data(as_text=True)
    assert f"/evidence/{upload_id}/preview" in page


def test_files_are_served_whole_with_their_type_size_and_name(
    app, client, customer_case, invoice_png
):
    upload(client, customer_case, "发票.png", invoice_png)
    with app.app_context():
        run_workers()
        row = db.session.scalar(select(Upload))
        preview = evidence.storage().read(row.preview_key)
    original = client.get(f"/evidence/{row.id}/original")
    assert original.data == invoice_png and original.mimetype == "image/png"
    assert original.headers["Content-Length"] == str(len(invoice_png))
    assert original.headers["Content-Disposition"] == (
        "attachment; filename=\"__.png\"; filename*=UTF-8''%E5%8F%91%E7%A5%A8.png"
    )
    assert original.headers["Cache-Control"] == "private, max-age=3600"
    shown = client.get(f"/evidence/{row.id}/preview")
    assert shown.data == preview and shown.headers["Content-Length"] == str(len(preview))
    kind = "png" if preview.startswith(b"\x89PNG") else "jpeg"
    assert shown.mimetype == f"image/{kind}"
    assert f'filename="preview-{row.id}.' in shown.headers["Content-Disposition"]


def test_a_large_original_is_streamed_never_held_whole_in_memory(app, client, customer_case):
    import tracemalloc

    from portal.scans.fingerprints import sha256_hex

    big = b"%PDF-1.7\n" + bytes(range(256)) * (16 * 4096)  # a 16 MB "PDF"
    with app.app_context():
        case = db.session.scalar(select(Case))
        row = evidence.add_upload(case, case.customer, "big.pdf", big)
        row.state = UploadState.EXTRACTED  # as if its checks passed: customers get only those
        db.session.commit()
        upload_id = row.id
    del row
    tracemalloc.start()
    try:
        response = client.get(f"/evidence/{upload_id}/original", buffered=False)
        digest, size = __import__("hashlib").sha256(), 0
        for chunk in response.iter_encoded():
            digest.update(chunk)
            size += len(chunk)
        response.close()
        _now, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert response.status_code == 200 and response.headers["Content-Length"] == str(len(big))
    assert (size, digest.hexdigest()) == (len(big), sha256_hex(big))
    assert peak < 4 * 1024 * 1024, f"{peak} bytes held while serving a {len(big)}-byte file"


def test_a_file_missing_from_storage_is_a_404_not_an_error(app, client, customer_case, invoice_png):
    upload(client, customer_case, "发票.png", invoice_png)
    with app.app_context():
        row = db.session.scalar(select(Upload))
        evidence.storage().delete(row.storage_key)
    assert client.get(f"/evidence/{row.id}/original").status_code == 404


def test_the_same_file_on_another_case_is_flagged(app, client, customer_case, invoice_png):
    upload(client, customer_case, "a.png", invoice_png)
    with app.app_context():
        user = db.session.scalar(select(User))
        second = cases.open_case(
            cases.parse_claim({"code": SAMPLE.code, "number": "99999999"}), customer=user
        )
        evidence.add_upload(second, user, "copy.png", invoice_png)
        run_workers()
        kinds = {d.kind for d in review.duplicates(second)}
        assert "same_evidence" in kinds
        reencoded = encode(invoice_page(SAMPLE, width=1000), "JPEG", quality=70)
        third = cases.open_case(
            cases.parse_claim({"code": SAMPLE.code, "number": "88888888"}), customer=user
        )
        near = evidence.add_upload(third, user, "again.jpg", reencoded)
        run_workers()
        near = db.session.get(Upload, near.id)
        assert evidence.near_duplicates(near)


def test_upload_quota_is_enforced(app_factory, app, registry_sim, invoice_png):
    small = app_factory(UPLOAD_QUOTA_BYTES=len(invoice_png) + 10)
    client = small.test_client()
    AuthActions(client).register("quota@example.com")
    with small.app_context():
        user = db.session.scalar(select(User))
        ref = cases.open_case(
            cases.parse_claim({"code": SAMPLE.code, "number": SAMPLE.number}), customer=user
        ).reference
    upload(client, ref, "one.png", invoice_png)
    refused = upload(client, ref, "two.png", invoice_png).get_data(as_text=True)
    assert "上传额度" in refused


def test_a_lost_extraction_job_is_requeued_by_the_sweeper(app, client, customer_case, invoice_png):
    upload(client, customer_case, "a.png", invoice_png)
    with app.app_context():
        redis_connection().flushdb()
        assert evidence.sweep(grace_seconds=0) == 1
        run_workers()
        assert db.session.scalar(select(Upload.state)) == "extracted"


def test_the_lookup_form_is_filled_from_a_photo_and_nothing_is_kept(app, client, invoice_png):
    client.get("/lookup")  # its scan form is sessionless: no token
    response = client.post(
        "/lookup/scan",
        data={"file": (io.BytesIO(invoice_png), "发票.png")},
        content_type="multipart/form-data",
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'value="51142414"' in html and 'value="114698"' in html
    with app.app_context():
        assert db.session.scalar(select(Upload)) is None
    refused = client.post(
        "/lookup/scan",
        data={"file": (io.BytesIO(b"<svg></svg>"), "x.svg")},
        content_type="multipart/form-data",
    )
    assert refused.status_code == 200 and 'class="flash flash-error"' in refused.get_data(
        as_text=True
    )


def test_the_review_comparison_says_where_each_value_was_read(
    app, client, customer_case, invoice_png
):
    upload(client, customer_case, "发票.png", invoice_png)
    with app.app_context():
        run_workers()
        case = db.session.scalar(select(Case))
        with app.test_request_context(headers={"Accept-Language": "zh-CN"}):
            rows = {r.field: r for r in presenters.comparison(case, None)}
            assert rows["number"].extracted_source == "二维码 · 100%"
    with app.test_request_context(headers={"Cookie": f"{LANG_COOKIE}=en"}):
        assert evidence.source_label("text", "pdf-text", 1.0) == (
            "printed text (PDF text layer) · 100%"
        )
        assert evidence.source_label("ocr", "ocr", 0.873) == "OCR · 87%"


def test_a_file_nothing_could_be_read_from_asks_the_customer_to_type_the_fields(
    app, client, customer_case
):
    from tests.scans import layouts

    blank = layouts.pdf([layouts.Piece(40, 40, "收据")])
    upload(client, customer_case, "收据.pdf", blank)
    with app.app_context():
        run_workers()
        row = db.session.scalar(select(Upload))
        assert row.state == "extracted" and row.extracted["readable"] is False
        assert row.storage_key  # the file is kept for the reviewer
    page = client.get(f"/cases/{customer_case}").get_data(as_text=True)
    assert "我们无法读取这个文件，请在下方手动填写发票信息" in page
    assert 'name="number"' in page  # the form to type them into
