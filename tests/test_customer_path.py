"""The customer path that forgives mistakes (issue 21): refused uploads explained on the page
the customer was on, forms that show every error at once and keep what was typed, one open
case per invoice, and failed attempts that do not lock the customer out."""

from __future__ import annotations

import io

import pytest
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import Upload, User
from portal.services import cases
from tests.conftest import AuthActions, csrf_token_from

SMALL = 256 * 1024  # the file limit for these tests: a "too large" file stays small
OVER_BODY = SMALL + 70 * 1024  # over the request limit (the file limit plus 64 KB of form)


@pytest.fixture
def small_app(app_factory, app):
    return app_factory(SCAN_MAX_BYTES=SMALL, MAX_CONTENT_LENGTH=SMALL + 64 * 1024)


@pytest.fixture
def customer(small_app):
    client = small_app.test_client()
    AuthActions(client).register("kehu@example.com")
    return client


@pytest.fixture
def case_ref(small_app, customer):
    with small_app.app_context():
        user = db.session.scalar(select(User))
        claim = cases.parse_claim({"code": "011001900111", "number": "51142414"})
        return cases.open_case(claim, customer=user).reference


def _post_file(client, page_url, action, field, name, data, **headers):
    token = csrf_token_from(client.get(page_url).get_data(as_text=True))
    return client.post(
        action,
        data={"csrf_token": token, field: [(io.BytesIO(data), name)]},
        content_type="multipart/form-data",
        headers=headers,
    )


def test_a_file_over_the_limit_on_the_case_page_is_explained_there(customer, case_ref):
    response = _post_file(
        customer,
        f"/cases/{case_ref}",
        f"/cases/{case_ref}/evidence",
        "files",
        "big.jpg",
        b"\xff\xd8\xff" + b"0" * OVER_BODY,
    )
    assert response.status_code == 303  # back to the page, not a 405 or a bare 413 page
    assert response.headers["Location"].endswith(f"/cases/{case_ref}#evidence")
    page = customer.get(f"/cases/{case_ref}").get_data(as_text=True)
    assert "文件太大" in page and "请压缩图片或上传 PDF/OFD/XML 原件" in page


def test_a_progress_bar_upload_gets_the_page_to_load_and_its_message_waits_there(
    customer, case_ref, small_app
):
    # The page's script sends with XMLHttpRequest: a JSON answer, so the flashed refusal is
    # shown by the page the browser loads next (not spent on a redirect the script follows).
    response = _post_file(
        customer,
        f"/cases/{case_ref}",
        f"/cases/{case_ref}/evidence",
        "files",
        "note.jpg",
        b"just some text, renamed",
        X_Requested_With="XMLHttpRequest",
    )
    assert response.is_json and response.json["redirect"].endswith(f"/cases/{case_ref}#evidence")
    page = customer.get(f"/cases/{case_ref}").get_data(as_text=True)
    assert "note.jpg" in page and "flash-error" in page and "不支持这种文件" in page
    with small_app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Upload)) == 0


def test_too_large_for_the_script_too_is_a_json_redirect_with_the_message(customer, case_ref):
    response = _post_file(
        customer,
        f"/cases/{case_ref}",
        f"/cases/{case_ref}/evidence",
        "files",
        "big.pdf",
        b"%PDF-" + b"0" * OVER_BODY,
        X_Requested_With="XMLHttpRequest",
    )
    assert response.status_code == 413 and response.json["redirect"].endswith("#evidence")
    assert "文件太大" in customer.get(f"/cases/{case_ref}").get_data(as_text=True)


def test_a_scan_too_large_for_the_lookup_is_explained_on_the_lookup_page(small_app):
    client = small_app.test_client()
    response = _post_file(
        client, "/lookup", "/lookup/scan", "file", "photo.jpg", b"\xff\xd8\xff" + b"0" * OVER_BODY
    )
    assert response.status_code == 303 and "/lookup" in response.headers["Location"]
    page = client.get("/lookup").get_data(as_text=True)
    assert "文件太大" in page and "发票号码" in page  # the form is there to go on with


def test_upload_forms_offer_a_camera_and_a_file_chooser_with_the_servers_limits(customer, case_ref):
    for url in (f"/cases/{case_ref}", "/lookup"):
        page = customer.get(url).get_data(as_text=True)
        assert "拍照" in page and "选择文件" in page
        assert 'accept="image/*" capture="environment"' in page
        chooser = page.split('class="upload-control upload-choose"')[1].split("</label>")[0]
        assert "capture" not in chooser and ".pdf" in chooser and ".ofd" in chooser
        assert f'data-max-bytes="{SMALL}"' in page and "文件太大" in page


def test_the_lookup_scan_takes_the_file_from_whichever_control_was_used(client, app):
    token = csrf_token_from(client.get("/lookup").get_data(as_text=True))
    response = client.post(
        "/lookup/scan",
        data={
            "csrf_token": token,
            "file": [(io.BytesIO(b""), ""), (io.BytesIO(b"plain text"), "x.txt")],
        },
        content_type="multipart/form-data",
    )
    page = response.get_data(as_text=True)
    assert "不支持这种文件" in page  # the second control's file was read, and refused clearly
